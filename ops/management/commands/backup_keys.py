from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from ops.backup import write_keys


class Command(BaseCommand):
    help = (
        "Write FACTEUR_CREDENTIALS_KEYS to a file only its owner can read, to be kept "
        "apart from the database backups: whoever holds both can read every mail password."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--output", required=True, type=Path, help=_("the file to write"))

    def handle(self, *args, output: Path, **options) -> None:
        try:
            write_keys(output)
        except FileExistsError:
            raise CommandError(_("%(path)s exists already.") % {"path": output}) from None
        self.stdout.write(_("Credentials keys written to %(path)s.") % {"path": output})
