"""Runs Facteur with a demo: a local mail server with demo people and mail,
the web app and a Celery worker, on the embedded defaults."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import MailAccount, Protocol, Security, ServerPreset
from webmail.localmail.demo import DEMO_PASSWORD, DEMO_PEOPLE, seed_demo
from webmail.localmail.server import LocalMailServer

DEMO_DOMAIN = "demo.test"


def admin_password() -> str:
    """The demo admin's password for this run: FACTEUR_DEMO_ADMIN_PASSWORD, or a new one.

    A fixed, published password would hand the administration to anyone who
    reaches the demo.
    """
    return os.environ.get("FACTEUR_DEMO_ADMIN_PASSWORD") or secrets.token_urlsafe(12)


class Command(BaseCommand):
    help = "Run Facteur with a local demo mail server, demo people and mail, and a worker."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--addr", default="127.0.0.1:8000", help="address:port to serve on")
        parser.add_argument("--no-worker", action="store_true", help="do not start a Celery worker")

    def handle(self, *args, addr: str, no_worker: bool, **options) -> None:
        if not settings.DEBUG:
            raise CommandError("The demo runs with FACTEUR_DEBUG=1 (./scripts/demo sets it).")
        settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
        call_command("migrate", interactive=False, verbosity=0)

        # A plain `kill` must stop the mail server and the worker too, as Ctrl-C does.
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
        LocalMailServer.ensure_installed()
        server = LocalMailServer(Path(settings.DATA_DIR) / "mail", domain=DEMO_DOMAIN)
        worker = None
        password = admin_password()
        try:
            server.start()
            self._provision(server, password)
            marker = Path(settings.DATA_DIR) / "mail" / ".seeded"
            if not marker.exists():
                seed_demo(
                    server, [(f"{login}@{DEMO_DOMAIN}", DEMO_PASSWORD) for login, _ in DEMO_PEOPLE]
                )
                marker.touch()
            if not no_worker:
                worker = subprocess.Popen(  # noqa: S603 - our interpreter, our arguments
                    [
                        sys.executable,
                        "-m",
                        "celery",
                        "-A",
                        "webmail",
                        "--quiet",
                        "worker",
                        "--hostname",
                        "facteur-demo@%h",
                        "--loglevel",
                        "WARNING",
                        "--concurrency",
                        "2",
                        # One process for the demo: the worker also runs the periodic sweep.
                        "--beat",
                        "--schedule",
                        str(Path(settings.DATA_DIR) / "celerybeat-schedule"),
                    ],
                    env=os.environ.copy(),
                )
            login, _ = DEMO_PEOPLE[0]
            self.stdout.write(
                self.style.SUCCESS(
                    f"\nFacteur is running at http://{addr}/\n"
                    f"  Sign in as {login} (or {DEMO_PEOPLE[1][0]}), password {DEMO_PASSWORD}\n"
                    f"  Administration: http://{addr}/admin/ as admin, password {password}\n"
                    "Press Ctrl-C to stop.\n"
                )
            )
            call_command("runserver", addr, use_reloader=False, use_threading=True)
        finally:
            if worker is not None:
                worker.terminate()
                worker.wait(timeout=30)
            server.stop()

    def _provision(self, server: LocalMailServer, password: str) -> None:
        """Points the demo preset and accounts at this run's mail server ports,
        and gives the admin this run's password."""
        preset, _ = ServerPreset.objects.update_or_create(
            name="Demo",
            defaults={
                "domain": DEMO_DOMAIN,
                "imap_host": server.host,
                "imap_port": server.imap_port,
                "imap_security": Security.STARTTLS,
                "pop3_host": server.host,
                "pop3_port": server.pop3_port,
                "pop3_security": Security.STARTTLS,
                "smtp_host": server.host,
                "smtp_port": server.submission_port,
                "smtp_security": Security.STARTTLS,
                "ca_file": str(server.ca_file),
                "accept_untrusted": False,
            },
        )
        user_model = get_user_model()
        admin, _ = user_model.objects.get_or_create(
            username="admin", defaults={"email": f"admin@{DEMO_DOMAIN}"}
        )
        admin.is_staff = admin.is_superuser = True
        admin.set_password(password)
        admin.save()
        for login, full_name in DEMO_PEOPLE:
            address = f"{login}@{DEMO_DOMAIN}"
            first, _, last = full_name.partition(" ")
            person, created = user_model.objects.get_or_create(
                username=login, defaults={"email": address, "first_name": first, "last_name": last}
            )
            if created:
                person.set_password(DEMO_PASSWORD)
                person.save()
            account = MailAccount.objects.filter(user=person, email=address).first() or MailAccount(
                user=person,
                email=address,
                display_name=full_name,
                login=address,
                protocol=Protocol.IMAP,
            )
            account.apply_preset(preset)
            account.set_password(DEMO_PASSWORD)
            account.save()
