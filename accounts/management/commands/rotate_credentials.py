from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from accounts.provisioning import ProvisioningError, rotate_credentials


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored mail password with the first key of "
        "FACTEUR_CREDENTIALS_KEYS, so that older keys can then be removed."
    )

    def handle(self, *args, **options) -> None:
        try:
            count = rotate_credentials()
        except ProvisioningError as exc:
            summary = _("Nothing was re-encrypted:")
            raise CommandError("\n".join([summary, *exc.errors])) from None
        self.stdout.write(_("%(count)d credentials re-encrypted.") % {"count": count})
