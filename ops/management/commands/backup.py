from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from ops.backup import backup


class Command(BaseCommand):
    help = (
        "Write a consistent backup of Facteur's database (people, accounts, outbox, "
        "POP3 mail, contacts, settings) to one gzip-compressed file. The credentials "
        "keys are not in it: keep them apart with backup_keys."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--output", required=True, type=Path, help=_("the file to write"))

    def handle(self, *args, output: Path, **options) -> None:
        if output.exists():
            raise CommandError(_("%(path)s exists already.") % {"path": output})
        backup(output)
        self.stdout.write(_("Backup written to %(path)s.") % {"path": output})
