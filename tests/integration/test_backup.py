"""Back up, restore into an empty database, and read mail again through the restored account.

``manage.py backup`` and ``restore`` run as the operator runs them, as processes.
The restored account's password decrypts only with the key kept apart from the
backup, and then signs in to the real Dovecot again.
"""

from __future__ import annotations

import gzip
import os
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import psycopg
import pytest
from django.conf import settings

from accounts.crypto import generate_key
from tests.integration.celery_worker import ROOT, database_url
from tests.support.accounts import make_account
from webmail.models import Contact, OutgoingMessage

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

POSTGRES = os.environ.get("FACTEUR_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres")

#: Run in the restored deployment: the account's Inbox, read live over IMAP.
READ_INBOX = """
from accounts.models import MailAccount
from webmail.mailstore.imap import ImapStore
from webmail.models import OutgoingMessage
account = MailAccount.objects.get(email={email!r})
page = ImapStore(account).page("INBOX", 1, per_page=10)
print("SUBJECTS", [item.subject for item in page.items])
print("RAW", bytes(OutgoingMessage.objects.get().raw).hex())
"""


def manage(*args: str, database: str, **environment: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database,
        **environment,
    }
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture
def fresh_postgres() -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped afterwards."""
    name = f"facteur_restore_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(POSTGRES, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError:
        pytest.skip("No PostgreSQL to restore into")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield POSTGRES.rsplit("/", 1)[0] + "/" + name
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def backed_up(tmp_path, person, mail_server, mail_user) -> tuple[Path, object, bytes]:
    account = make_account(person, mail_server, mail_user)
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "zoe@example.org", mail_user.address, "Kept safe"
    msg.set_content("Hello")
    mail_server.deliver(mail_user.address, msg.as_bytes())
    Contact.objects.create(user=person, email="zoe@example.org", name="Zoé")
    raw = bytes(range(256)) * 4  # binary columns must come back byte for byte
    OutgoingMessage.objects.create(
        user=person,
        account=account,
        message_id="<kept@example.test>",
        raw=raw,
        envelope_from=account.email,
        envelope_to=["zoe@example.org"],
        send_after="2026-01-01T00:00:00Z",
    )
    backup = tmp_path / "facteur.backup"
    result = manage("backup", "--output", str(backup), database=database_url())
    assert result.returncode == 0, result.stderr
    return backup, account, raw


def test_the_backup_never_holds_the_keys_or_a_clear_password(backed_up, mail_user):
    backup, account, __ = backed_up
    content = gzip.decompress(backup.read_bytes()).decode()
    assert account.password_encrypted in content
    assert mail_user.password not in content
    for key in settings.CREDENTIALS_KEYS:
        assert key not in content


@pytest.mark.parametrize("target", ["sqlite", "postgresql"])
def test_a_backup_restores_into_an_empty_database_and_reads_mail_again(
    request, tmp_path, backed_up, target
):
    backup, account, raw = backed_up
    if target == "sqlite":
        database = f"sqlite:///{tmp_path / 'restored.sqlite3'}"
    else:
        database = request.getfixturevalue("fresh_postgres")

    restored = manage("restore", str(backup), database=database)
    assert restored.returncode == 0, restored.stderr
    assert "cannot be decrypted" not in restored.stderr

    read = manage("shell", "-c", READ_INBOX.format(email=account.email), database=database)
    assert read.returncode == 0, read.stderr
    assert "SUBJECTS ['Kept safe']" in read.stdout
    assert f"RAW {raw.hex()}" in read.stdout

    again = manage("restore", str(backup), database=database)
    assert again.returncode != 0
    assert "not empty" in again.stderr


def test_without_the_kept_key_the_restore_says_the_passwords_cannot_be_read(tmp_path, backed_up):
    backup, account, __ = backed_up
    database = f"sqlite:///{tmp_path / 'restored.sqlite3'}"
    restored = manage(
        "restore", str(backup), database=database, FACTEUR_CREDENTIALS_KEYS=generate_key()
    )
    assert restored.returncode == 0, restored.stderr
    assert "cannot be decrypted" in restored.stderr
    assert account.email in restored.stderr


def test_the_keys_are_written_apart_for_their_owner_only(tmp_path):
    keys = tmp_path / "facteur.keys"
    written = manage("backup_keys", "--output", str(keys), database=database_url())
    assert written.returncode == 0, written.stderr
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    assert keys.read_text() == f"FACTEUR_CREDENTIALS_KEYS={','.join(settings.CREDENTIALS_KEYS)}\n"
    again = manage("backup_keys", "--output", str(keys), database=database_url())
    assert again.returncode != 0
