"""All inboxes: the Inbox of every account of the person in one list, against the real
Dovecot, with the mail Facteur keeps for a POP3 account among them."""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from types import SimpleNamespace

import pytest
from django.urls import reverse

from accounts.models import MailAccount, Protocol
from tests.support.accounts import make_account, unreachable_account
from tests.support.mailboxes import imap as imap_of
from webmail.mailstore.imap import ImapStore
from webmail.mailstore.local import LocalStore

pytestmark = pytest.mark.integration

START = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)
UNIFIED = "/all/"


def mail(subject: str, hour: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Zoé Martin <zoe@example.org>"
    msg["To"] = "me@example.test"
    msg["Subject"] = subject
    msg["Date"] = format_datetime(START + timedelta(hours=hour))
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@example.org>"
    msg.set_content(f"{subject}.")
    return msg.as_bytes()


def new_mailbox(mail_server) -> SimpleNamespace:
    mailbox = SimpleNamespace(
        address=f"user-{uuid.uuid4().hex[:12]}@{mail_server.domain}",
        password=secrets.token_urlsafe(12),
    )
    mail_server.add_user(mailbox.address, mailbox.password)
    return mailbox


def fill_imap(mail_server, account: MailAccount, name: str, hours: list[int]) -> None:
    with imap_of(mail_server, account) as client:
        for hour in hours:
            client.append("INBOX", mail(f"{name} {hour}", hour))


@pytest.fixture
def three(person, mail_server, mail_user) -> list[MailAccount]:
    """Two IMAP accounts and a POP3 one, whose messages alternate in time."""
    first = make_account(person, mail_server, mail_user)
    second = make_account(person, mail_server, new_mailbox(mail_server), position=1)
    pop3 = make_account(
        person, mail_server, new_mailbox(mail_server), position=2, protocol=Protocol.POP3
    )
    fill_imap(mail_server, first, "First", [1, 4, 7])
    fill_imap(mail_server, second, "Second", [2, 5, 8])
    local = LocalStore(pop3)
    for hour in (3, 6, 9):
        local.append("INBOX", mail(f"Kept {hour}", hour))
    return [first, second, pop3]


def subjects(page: str) -> list[str]:
    return re.findall(r'<td class="subject"><a href="[^"]*"><bdi>([^<]*)</bdi>', page)


def unified(client, **query) -> str:
    response = client.get(UNIFIED, query)
    assert response.status_code == 200
    return response.content.decode()


def test_every_inbox_in_one_list_newest_first(signed_in_client, three):
    page = unified(signed_in_client)
    assert subjects(page) == [
        "Kept 9",
        "Second 8",
        "First 7",
        "Kept 6",
        "Second 5",
        "First 4",
        "Kept 3",
        "Second 2",
        "First 1",
    ]
    # Each row says its account, and opens the message in it.
    first, second, pop3 = three
    rows = re.findall(r'<tr class="message-row[^"]*" data-uid="[^"]*" data-account="([^"]*)"', page)
    assert rows == [pop3.email, second.email, first.email] * 3
    message = reverse("webmail:message", args=[second.pk, 3]) + "?folder=INBOX"
    assert f'<a href="{message}"><bdi>Second 8</bdi>' in page


def test_pages_read_only_the_newest_of_each_account(signed_in_client, three, settings, monkeypatch):
    settings.MESSAGES_PER_PAGE = 4
    asked: list[int] = []
    page_of = ImapStore.page

    def counted(self, folder, number, *, per_page, **kwargs):
        asked.append(per_page)
        return page_of(self, folder, number, per_page=per_page, **kwargs)

    monkeypatch.setattr(ImapStore, "page", counted)
    first = unified(signed_in_client)
    assert subjects(first) == ["Kept 9", "Second 8", "First 7", "Kept 6"]
    assert asked == [4, 4]
    second = unified(signed_in_client, page=2)
    assert subjects(second) == ["Second 5", "First 4", "Kept 3", "Second 2"]
    assert asked[2:] == [8, 8]
    third = unified(signed_in_client, page=3)
    assert subjects(third) == ["First 1"]
    assert "9 of 9" in third and 'rel="next"' not in third


def test_an_account_whose_server_is_down_is_told_and_the_others_listed(
    signed_in_client, three, person
):
    unreachable_account(person, email="down@example.test", position=3)
    page = unified(signed_in_client)
    assert len(subjects(page)) == 9
    assert re.search(r'class="notice unified-problem"[^>]*>The Inbox of down@example.test', page)


def test_another_persons_accounts_are_never_included(
    signed_in_client, three, mail_server, django_user_model
):
    stranger = django_user_model.objects.create_user(username="stranger", password="x-Pass-123!")
    theirs = make_account(stranger, mail_server, new_mailbox(mail_server))
    fill_imap(mail_server, theirs, "Stranger", [10])
    page = unified(signed_in_client)
    assert "Stranger" not in page and theirs.email not in page


def test_a_pop3_account_delivering_into_another_is_read_there_once(
    signed_in_client, three, mail_server
):
    first = three[0]
    delivering = make_account(
        first.user, mail_server, new_mailbox(mail_server), position=4, protocol=Protocol.POP3
    )
    delivering.pop3_deliver_to = first
    delivering.save()
    assert len(subjects(unified(signed_in_client))) == 9


def test_the_folder_pane_offers_all_inboxes_from_two_accounts(signed_in_client, three):
    mailbox = signed_in_client.get(reverse("webmail:mailbox", args=[three[0].pk]))
    assert f'href="{UNIFIED}"' in mailbox.content.decode()
    page = unified(signed_in_client)
    assert f'href="{UNIFIED}" aria-current="page"' in page


def test_one_account_has_no_all_inboxes(signed_in_client, mail_account):
    page = signed_in_client.get(reverse("webmail:mailbox", args=[mail_account.pk]))
    assert UNIFIED not in page.content.decode()


def test_the_list_alone_for_a_refresh(signed_in_client, three):
    response = signed_in_client.get(
        UNIFIED, headers={"HX-Request": "true", "HX-Target": "message-list"}
    )
    page = response.content.decode()
    assert len(subjects(page)) == 9 and "<html" not in page


def test_signing_in_is_required(client):
    response = client.get(UNIFIED)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
