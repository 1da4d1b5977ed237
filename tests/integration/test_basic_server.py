"""The suite's basic IMAP server announces none of the extensions Facteur can do without."""

from __future__ import annotations

import pytest

from tests.conftest import BASIC_IMAP_CAPABILITY
from tests.support.accounts import make_account
from tests.support.mailboxes import imap_commands
from webmail.mailstore.imap import ImapStore
from webmail.transport.imap import close_quietly, open_imap

pytestmark = pytest.mark.integration

EXTENSIONS = {"SORT", "THREAD=REFERENCES", "ESEARCH", "MOVE", "UIDPLUS", "LIST-STATUS"}


def test_the_basic_server_hides_its_extensions_after_login(
    person, basic_mail_server, basic_mail_user
):
    account = make_account(person, basic_mail_server, basic_mail_user)
    client = open_imap(account.incoming_endpoint())
    try:
        announced = {c.decode().upper() for c in client.capabilities()}
    finally:
        close_quietly(client)
    assert not announced & EXTENSIONS
    assert set(BASIC_IMAP_CAPABILITY.upper().split()) <= announced


def test_folders_and_pages_work_on_the_basic_server(person, basic_mail_server, basic_mail_user):
    account = make_account(person, basic_mail_server, basic_mail_user)
    for number in range(3):
        basic_mail_server.deliver(
            basic_mail_user.address,
            f"Subject: {number}\r\nFrom: a@example.org\r\n\r\nBody\r\n".encode(),
        )
    store = ImapStore(account)
    inbox = next(f for f in store.folders() if f.name == "INBOX")
    assert (inbox.unread, inbox.total) == (3, 3)  # STATUS, one folder at a time
    assert store.special_folder("\\Sent") == "Sent"
    with imap_commands() as sent:
        by_subject = store.page("INBOX", 1, per_page=2, sort="subject", reverse=False)
    assert [m.subject for m in by_subject.items] == ["0", "1"]
    # Dovecot would run SORT all the same: the order must come from the local sort.
    assert not [line for line in sent if "SORT" in line]
