from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from accounts.provisioning import (
    OPTIONAL_PEOPLE_COLUMNS,
    PEOPLE_COLUMNS,
    ImportReport,
    Outcome,
    ProvisioningError,
)
from accounts.provisioning import import_people as run_import


class Command(BaseCommand):
    help = (
        "Create or update people and their mail accounts from a UTF-8 CSV file with the "
        f"header {','.join(PEOPLE_COLUMNS)}, and optionally the columns "
        f"{','.join(OPTIONAL_PEOPLE_COLUMNS)}. Nothing is written unless every line is valid."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="The CSV file.")

    def handle(self, *args, **options) -> None:
        try:
            report = run_import(options["file"])
        except OSError as exc:
            raise CommandError(f"{options['file']}: {exc.strerror}") from None
        except ProvisioningError as exc:
            summary = _("Nothing was imported; correct these lines and run again:")
            raise CommandError("\n".join([summary, *exc.errors])) from None
        self.stdout.write(_summary(report))


def _summary(report: ImportReport) -> str:
    counts = {
        "people_created": report.people[Outcome.CREATED],
        "people_updated": report.people[Outcome.UPDATED],
        "people_unchanged": report.people[Outcome.UNCHANGED],
        "accounts_created": report.accounts[Outcome.CREATED],
        "accounts_updated": report.accounts[Outcome.UPDATED],
        "accounts_unchanged": report.accounts[Outcome.UNCHANGED],
    }
    return (
        _(
            "People: %(people_created)d created, %(people_updated)d updated, "
            "%(people_unchanged)d unchanged. Mail accounts: %(accounts_created)d created, "
            "%(accounts_updated)d updated, %(accounts_unchanged)d unchanged."
        )
        % counts
    )
