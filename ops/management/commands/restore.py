from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from ops.backup import BackupError, restore, undecryptable_accounts


class Command(BaseCommand):
    help = (
        "Restore a file written by backup into a new, empty database (its tables are "
        "created first). The credentials keys of the backed-up deployment must be in "
        "FACTEUR_CREDENTIALS_KEYS for the mail passwords to work."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("backup", type=Path, help=_("the file written by backup"))

    def handle(self, *args, backup: Path, **options) -> None:
        if not backup.is_file():
            raise CommandError(_("There is no file %(path)s.") % {"path": backup})
        try:
            restore(backup)
        except BackupError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(_("Restored from %(path)s.") % {"path": backup})
        broken = undecryptable_accounts()
        if broken:
            self.stderr.write(
                _(
                    "The passwords of %(count)d accounts cannot be decrypted with "
                    "FACTEUR_CREDENTIALS_KEYS: set the keys kept with the backup. %(accounts)s"
                )
                % {"count": len(broken), "accounts": ", ".join(broken)}
            )
