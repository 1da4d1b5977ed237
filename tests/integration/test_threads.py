"""Conversations against the real Dovecots: THREAD where the server has it, the headers
threaded here where it has not, the person's replies from Sent, the mail Facteur keeps,
and the choice between conversations and single messages."""

from __future__ import annotations

import html
import importlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime

import pytest
from django.apps import apps
from django.urls import reverse
from imapclient import IMAPClient

from accounts.models import MailAccount, Protocol
from tests.support.accounts import make_account
from tests.support.corpus import corpus_messages, require_corpus
from tests.support.mailboxes import imap as imap_of
from tests.support.mailboxes import imap_commands
from webmail.mailstore.imap import ImapStore
from webmail.mailstore.local import LocalStore
from webmail.models import LocalMessage, MailPreferences

pytestmark = pytest.mark.integration

START = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)


def mail(
    number: int,
    subject: str,
    *,
    sender: str = "Alice Martin <alice@example.org>",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: str | None = None,
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "me@example.test"
    msg["Subject"] = subject
    msg["Date"] = format_datetime(START + timedelta(hours=number))
    msg["Message-ID"] = message_id or f"<m{number}@example.org>"
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = references
    msg.set_content(f"Text of message {number}.")
    return msg.as_bytes()


#: The Inbox, in the order of arrival (UIDs 1 to 7), and what makes its threads.
INBOX = [
    mail(1, "Budget 2025", message_id="<budget@example.org>"),
    # A reply by references.
    mail(
        2,
        "Re: Budget 2025",
        sender="Bruno Petit <bruno@example.org>",
        in_reply_to="<budget@example.org>",
        references="<budget@example.org>",
    ),
    mail(3, "Lunch on Friday", sender="Claire Dubois <claire@example.org>"),
    # An answer to the person's own reply, which is in Sent, not in the Inbox.
    mail(
        4,
        "Re: Budget 2025",
        in_reply_to="<my-reply@office.test>",
        references="<budget@example.org> <my-reply@office.test>",
    ),
    # A reply by its subject alone: its program wrote no references.
    mail(5, "Re: Lunch on Friday", sender="Denis Moreau <denis@example.org>"),
    # Two answers to a message the Inbox does not hold.
    mail(6, "Holiday photos", references="<gone@example.org>"),
    mail(
        7,
        "Re: Holiday photos",
        sender="Bruno Petit <bruno@example.org>",
        references="<gone@example.org> <m6@example.org>",
    ),
]
THREADS = {frozenset({1, 2, 4}), frozenset({3, 5}), frozenset({6, 7})}
OWN_REPLY = mail(
    3,
    "Re: Budget 2025",
    sender="Me <me@example.test>",
    message_id="<my-reply@office.test>",
    in_reply_to="<m2@example.org>",
    references="<budget@example.org> <m2@example.org>",
)


def fill(client: IMAPClient) -> None:
    """The Inbox above, unread, and the person's reply in Sent."""
    for raw in INBOX:
        client.append("INBOX", raw)
    client.append("Sent", OWN_REPLY, flags=[b"\\Seen"])


@pytest.fixture
def commands() -> Iterator[list[str]]:
    """Every command line that IMAP clients of this process send from now on, untagged."""
    with imap_commands() as sent:
        yield sent


@pytest.fixture
def basic_account(person, basic_mail_server, basic_mail_user) -> MailAccount:
    account = make_account(person, basic_mail_server, basic_mail_user, position=1)
    with imap_of(basic_mail_server, account) as client:
        fill(client)
    return account


@pytest.fixture
def full_account(mail_account, imap) -> MailAccount:
    fill(imap)
    return mail_account


def groups(store, folder: str = "INBOX") -> set[frozenset[int]]:
    page = store.conversations(folder, 1, per_page=50)
    return {frozenset(c.uids) for c in page.items}


# The same threads, by THREAD or by the headers --------------------------------


def test_a_server_with_thread_groups_the_messages_itself(full_account, commands):
    assert groups(ImapStore(full_account)) == THREADS
    assert "UID THREAD REFERENCES UTF-8 ALL" in commands
    assert not any("HEADER.FIELDS" in c for c in commands)


def test_without_thread_the_headers_are_fetched_and_threaded_here(basic_account, commands):
    assert groups(ImapStore(basic_account)) == THREADS
    assert not any("THREAD" in c for c in commands)
    fetches = [c for c in commands if "HEADER.FIELDS" in c]
    assert len(fetches) == 1
    assert "MESSAGE-ID IN-REPLY-TO REFERENCES SUBJECT DATE" in fetches[0]


def test_both_ways_give_the_same_conversations_in_the_same_order(full_account, basic_account):
    full = ImapStore(full_account).conversations("INBOX", 1, per_page=50)
    basic = ImapStore(basic_account).conversations("INBOX", 1, per_page=50)
    assert (
        [c.uids for c in full.items]
        == [c.uids for c in basic.items]
        == [
            (6, 7),
            (3, 5),
            (1, 2, 4),
        ]
    )
    budget = full.items[-1]
    assert budget.subject == "Budget 2025"
    assert [p.name for p in budget.participants] == ["Alice Martin", "Bruno Petit"]
    assert (budget.count, budget.unread, budget.latest.uid) == (3, 3, 4)


def test_threads_are_cached_by_the_folder_contents(full_account, imap, commands):
    store = ImapStore(full_account)
    groups(store)
    groups(store)
    assert sum("THREAD" in c for c in commands) == 1
    imap.append("INBOX", mail(8, "Re: Lunch on Friday", references="<m3@example.org>"))
    assert frozenset({3, 5, 8}) in groups(store)
    assert sum("THREAD" in c for c in commands) == 2


def test_a_large_thread_counts_every_message_but_fetches_the_first_and_newest(
    mail_account, imap, commands
):
    first = "<first@example.org>"
    imap.append("INBOX", mail(0, "Long one", message_id=first))
    for number in range(1, 15):
        imap.append("INBOX", mail(number, "Re: Long one", references=first))
    imap.select_folder("INBOX")
    imap.add_flags([2], [b"\\Seen"])
    (conversation,) = ImapStore(mail_account).conversations("INBOX", 1, per_page=10).items
    assert (conversation.count, conversation.unread, conversation.latest.uid) == (15, 14, 15)
    assert conversation.subject == "Long one"
    fetches = [c for c in commands if "FETCH" in c]
    assert fetches == [
        "FETCH 15 (UID)",  # the last UID: with the count, what the cache is keyed by
        "UID FETCH 1,7,8,9,10,11,12,13,14,15 (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE"
        " BODYSTRUCTURE)",
        "UID FETCH 2,3,4,5,6 (FLAGS)",
    ]


def test_threads_are_paged_newest_first(full_account):
    store = ImapStore(full_account)
    first = store.conversations("INBOX", 1, per_page=2)
    second = store.conversations("INBOX", 2, per_page=2)
    assert (first.total, first.num_pages, second.number) == (3, 2, 2)
    assert [c.latest.uid for c in first.items] == [7, 5]
    assert [c.latest.uid for c in second.items] == [4]
    assert first.folder.total == 7


def test_a_thread_is_found_from_any_of_its_messages(full_account):
    store = ImapStore(full_account)
    assert store.thread_uids("INBOX", 2) == [1, 2, 4]
    assert store.thread_uids("INBOX", 5) == [3, 5]


# The person's replies, from Sent ------------------------------------------------


@pytest.mark.parametrize("server", ["full", "basic"])
def test_own_replies_are_found_in_sent_by_message_id(server, request):
    store = ImapStore(request.getfixturevalue(f"{server}_account"))
    # Answers one of these, or is one they answer.
    assert store.related_uids("Sent", ["<m2@example.org>"], []) == [1]
    assert store.related_uids("Sent", [], ["<my-reply@office.test>"]) == [1]
    assert store.related_uids("Sent", ["<m3@example.org>"], ["<gone@example.org>"]) == []
    assert store.related_uids("Sent", [], []) == []


def conversation_url(account, uid: int, folder: str = "INBOX") -> str:
    return reverse("webmail:conversation", args=[account.pk, uid]) + f"?folder={folder}"


def test_opening_a_conversation_shows_its_messages_with_the_own_reply_in_order(
    signed_in_client, full_account, imap
):
    response = signed_in_client.get(conversation_url(full_account, 4))
    assert response.status_code == 200
    page = response.content.decode()
    assert page.count('class="conversation-entry') == 4
    texts = [f"Text of message {n}." for n in (1, 2, 3, 4)]  # the reply was sent at hour 3
    positions = [page.index(text) for text in texts]
    assert positions == sorted(positions)
    assert page.count("conversation-entry own") == 1
    assert 'data-folder="Sent"' in page
    # The newest is open; the others folded.
    assert page.count('<details class="conversation-item" open>') == 1
    assert page.rindex('<details class="conversation-item" open>') > positions[2]
    # Read once opened, the Inbox's messages of this conversation only.
    imap.select_folder("INBOX", readonly=True)
    assert sorted(imap.search(["UNSEEN"])) == [3, 5, 6, 7]


def test_the_newest_html_body_is_in_the_sandboxed_frame(signed_in_client, mail_account, imap):
    reply = EmailMessage()
    reply["From"] = "Alice <alice@example.org>"
    reply["Subject"] = "Re: Menu"
    reply["Message-ID"] = "<html@example.org>"
    reply["References"] = "<m1@example.org>"
    reply.set_content("<p>Soup<script>alert(1)</script></p>", subtype="html")
    imap.append("INBOX", mail(1, "Menu"))
    imap.append("INBOX", reply.as_bytes())
    page = signed_in_client.get(conversation_url(mail_account, 2)).content.decode()
    assert "alert(1)" not in page
    body_url = reverse("webmail:message-body", args=[mail_account.pk, 2])
    frame = re.search(rf'<iframe [^>]*src="({re.escape(body_url)}[^"]*)"([^>]*)>', page)
    assert frame is not None
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in frame.group(2)
    body = signed_in_client.get(html.unescape(frame.group(1)))
    assert body.status_code == 200
    assert b"Soup" in body.content and b"<script" not in body.content


def test_a_conversation_of_another_folder_or_person_is_not_found(
    signed_in_client, full_account, client, django_user_model
):
    assert signed_in_client.get(conversation_url(full_account, 99)).status_code == 404
    stranger = django_user_model.objects.create_user(username="stranger", password="x-Pass-123!")
    client.force_login(stranger)
    assert client.get(conversation_url(full_account, 1)).status_code == 404


# The list, and the choice of the person ----------------------------------------


def mailbox(client, account, **query) -> str:
    response = client.get(reverse("webmail:mailbox", args=[account.pk]), query)
    assert response.status_code == 200
    return response.content.decode()


def test_the_list_shows_one_row_per_conversation_by_default(signed_in_client, full_account):
    page = mailbox(signed_in_client, full_account)
    assert page.count('class="message-row') == 3
    assert page.count('data-count="3"') == 1 and page.count('data-count="2"') == 2
    assert "Alice Martin, Bruno Petit" in page
    # A conversation opens as a whole; the list of conversations is paged by them.
    assert reverse("webmail:conversation", args=[full_account.pk, 4]) in page
    assert "1\u20133 of 3 conversations" in page  # an en dash between the numbers


def test_conversations_are_paged(signed_in_client, full_account, settings):
    settings.MESSAGES_PER_PAGE = 2
    assert mailbox(signed_in_client, full_account).count('class="message-row') == 2
    second = mailbox(signed_in_client, full_account, page=2)
    assert second.count('class="message-row') == 1 and "Budget 2025" in second


def test_the_person_switches_to_single_messages_and_back(signed_in_client, full_account, person):
    back = reverse("webmail:mailbox", args=[full_account.pk]) + "?folder=INBOX"
    response = signed_in_client.post(
        reverse("webmail:list-mode"), {"conversations": "0", "next": back}
    )
    assert response.status_code == 302 and response["Location"] == back
    assert MailPreferences.objects.get(user=person).conversations is False
    page = mailbox(signed_in_client, full_account)
    assert page.count('class="message-row') == 7 and "data-count" not in page
    assert 'aria-pressed="false"' in page

    signed_in_client.post(reverse("webmail:list-mode"), {"conversations": "1", "next": back})
    assert mailbox(signed_in_client, full_account).count('class="message-row') == 3


def test_the_choice_is_kept_for_the_person_across_sessions(client, full_account, person):
    MailPreferences.objects.create(user=person, conversations=False)
    client.force_login(person)
    assert mailbox(client, full_account).count('class="message-row') == 7


def test_another_order_lists_single_messages(signed_in_client, full_account):
    page = mailbox(signed_in_client, full_account, sort="subject", dir="asc")
    assert page.count('class="message-row') == 7


def test_the_list_mode_never_sends_elsewhere(signed_in_client):
    response = signed_in_client.post(
        reverse("webmail:list-mode"), {"conversations": "0", "next": "https://evil.example/"}
    )
    assert response["Location"] == reverse("webmail:home")


def test_drafts_stay_single_messages(signed_in_client, mail_account, imap):
    imap.append("Drafts", mail(1, "Draft one"), flags=[b"\\Draft"])
    imap.append("Drafts", mail(2, "Draft one"), flags=[b"\\Draft"])
    page = mailbox(signed_in_client, mail_account, folder="Drafts")
    assert page.count('class="message-row') == 2 and "data-count" not in page


# The mail Facteur keeps ------------------------------------------------------


@pytest.fixture
def local_store(person, mail_server, mail_user) -> LocalStore:
    account = make_account(person, mail_server, mail_user, protocol=Protocol.POP3)
    store = LocalStore(account)
    for raw in INBOX:
        store.append("INBOX", raw)
    store.append("Sent", OWN_REPLY, seen=True)
    return store


def test_local_mail_is_threaded_by_its_own_index(local_store):
    assert groups(local_store) == THREADS
    assert local_store.thread_uids("INBOX", 7) == [6, 7]
    page = local_store.conversations("INBOX", 1, per_page=2)
    assert (page.total, [c.latest.uid for c in page.items]) == (3, [7, 5])


def test_local_own_replies_are_found_in_sent(local_store):
    assert local_store.related_uids("Sent", ["<m2@example.org>"], []) == [8]
    assert local_store.related_uids("Sent", [], ["<my-reply@office.test>"]) == [8]
    assert local_store.related_uids("Sent", ["<m6@example.org>"], []) == []


def test_a_local_conversation_opens_with_the_own_reply(signed_in_client, local_store):
    page = signed_in_client.get(conversation_url(local_store.account, 4)).content.decode()
    assert page.count('class="conversation-entry') == 4
    assert page.count("conversation-entry own") == 1
    assert not LocalMessage.objects.filter(uid__in=[1, 2, 4], seen=False).exists()


def test_messages_kept_before_the_index_get_their_references(local_store):
    LocalMessage.objects.update(in_reply_to="", references="")
    migration = importlib.import_module("webmail.migrations.0008_conversations")
    migration.index_references(apps, None)
    reply = LocalMessage.objects.get(folder="Sent")
    assert reply.in_reply_to == "<m2@example.org>"
    assert reply.references == "<budget@example.org> <m2@example.org>"
    assert groups(local_store) == THREADS


def test_the_public_corpus_is_threaded_here_as_dovecot_threads_it(
    mail_account, imap, basic_account, basic_mail_server
):
    require_corpus("mbox")
    messages = [raw for __, raw in corpus_messages()]
    imap.create_folder("Corpus")
    with imap_of(basic_mail_server, basic_account) as client:
        client.create_folder("Corpus")
        for raw in messages:
            imap.append("Corpus", raw)
            client.append("Corpus", raw)
    full = ImapStore(mail_account).conversations("Corpus", 1, per_page=len(messages))
    basic = ImapStore(basic_account).conversations("Corpus", 1, per_page=len(messages))
    assert full.folder.total == basic.folder.total == len(messages)
    assert {c.uids for c in full.items} == {c.uids for c in basic.items}
    assert any(c.count > 2 for c in full.items)
