from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from accounts.models import Security
from accounts.provisioning import ProvisioningError, add_preset


class Command(BaseCommand):
    help = (
        "Create or update the server preset NAME, so that a mail account of its domain "
        "needs only an address and a password. Options left out are cleared."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--domain", required=True, help="The mail domain, e.g. example.org.")
        securities = Security.values
        for protocol, required in (("imap", False), ("pop3", False), ("smtp", True)):
            upper = protocol.upper()
            parser.add_argument(
                f"--{protocol}",
                required=required,
                default="",
                metavar="HOST:PORT",
                help=f"The {upper} server; an IPv6 address goes in brackets: [ADDRESS]:PORT.",
            )
            parser.add_argument(
                f"--{protocol}-security", choices=securities, default="", help=f"{upper} security."
            )
        trust = parser.add_mutually_exclusive_group()
        trust.add_argument(
            "--ca-file", default="", help="A PEM file of the authority that signed the servers."
        )
        trust.add_argument(
            "--insecure",
            action="store_true",
            help="Accept any certificate: only for servers on a network you trust.",
        )

    def handle(self, *args, **options) -> None:
        try:
            preset, outcome = add_preset(
                options["name"],
                domain=options["domain"],
                imap=options["imap"],
                imap_security=options["imap_security"],
                pop3=options["pop3"],
                pop3_security=options["pop3_security"],
                smtp=options["smtp"],
                smtp_security=options["smtp_security"],
                ca_file=options["ca_file"],
                accept_untrusted=options["insecure"],
            )
        except ProvisioningError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            _("Preset “%(name)s”: %(outcome)s.") % {"name": preset.name, "outcome": outcome}
        )
