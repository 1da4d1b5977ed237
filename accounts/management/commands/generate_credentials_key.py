from django.core.management.base import BaseCommand

from accounts.crypto import generate_key


class Command(BaseCommand):
    help = "Print a new key for FACTEUR_CREDENTIALS_KEYS."
    requires_system_checks = []

    def handle(self, *args, **options) -> None:
        self.stdout.write(generate_key())
