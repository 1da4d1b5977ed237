"""Back up Facteur's own data to one file, and restore it into an empty database.

The backup is Django's ``dumpdata`` read in one transaction, so that it is
consistent while people keep using Facteur, written as gzip-compressed JSON
Lines (one row a line: neither writing nor reading it holds the whole database
in memory). It restores into SQLite or PostgreSQL alike. It holds the mail
passwords only as stored, encrypted: the credentials keys that decrypt them are
never in it and are kept apart (``backup_keys``). Mail on the IMAP server is
not Facteur's to back up.
"""

from __future__ import annotations

import gzip
import os
import tempfile
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.db import connection, transaction
from django.utils.translation import gettext as _

from accounts import crypto
from accounts.models import MailAccount

#: Left out: rebuilt by ``migrate`` (content types, permissions), or worth nothing
#: once restored (sessions: people sign in again; the heartbeat).
EXCLUDED = ("contenttypes", "auth.permission", "sessions", "ops.heartbeat")


class BackupError(Exception):
    pass


def backup(path: Path) -> None:
    """Write every row of Facteur's database to ``path`` (gzip-compressed JSON Lines)."""
    with gzip.open(path, "wt", encoding="utf-8") as stream, transaction.atomic():
        if connection.vendor == "postgresql":
            # One snapshot for every table; SQLite's read transaction is one already.
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        call_command(
            "dumpdata",
            format="jsonl",
            natural_foreign=True,
            exclude=list(EXCLUDED),
            stdout=stream,
            verbosity=0,
        )


def is_empty() -> bool:
    """Whether the database holds no row of Facteur's (migrations may have run)."""
    excluded_models = {label for label in EXCLUDED if "." in label}
    excluded_apps = {label for label in EXCLUDED if "." not in label}
    for model in apps.get_models():
        meta = model._meta
        if meta.app_label in excluded_apps or meta.label_lower in excluded_models:
            continue
        if model._default_manager.using(connection.alias).exists():
            return False
    return True


def restore(path: Path) -> None:
    """Load a backup into this database, which must hold no row yet; its tables are made first."""
    call_command("migrate", interactive=False, verbosity=0)
    if not is_empty():
        raise BackupError(_("The database is not empty: restore only into a new, empty database."))
    with tempfile.TemporaryDirectory() as folder:
        # loaddata knows the format and compression by the name only.
        fixture = Path(folder) / "facteur-backup.jsonl.gz"
        os.symlink(path.resolve(), fixture)
        with transaction.atomic():
            call_command("loaddata", str(fixture), verbosity=0)


def undecryptable_accounts() -> list[str]:
    """Accounts whose stored passwords the configured keys cannot decrypt."""
    broken = []
    for account in MailAccount.objects.only(
        "email", "password_encrypted", "smtp_password_encrypted"
    ):
        tokens = [account.password_encrypted, account.smtp_password_encrypted]
        try:
            for token in filter(None, tokens):
                crypto.decrypt(token)
        except crypto.CredentialError:
            broken.append(account.email)
    return broken


def write_keys(path: Path) -> None:
    """Write the credentials keys to ``path``, readable by its owner only; never overwrite."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as keys:
        keys.write(f"FACTEUR_CREDENTIALS_KEYS={','.join(settings.CREDENTIALS_KEYS)}\n")
