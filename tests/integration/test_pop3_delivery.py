"""A POP3 account delivering into a folder of an IMAP account, against the suite's real Dovecot.

The POP3 mailbox and the IMAP one are two users of the same Dovecot, both
accounts of the same person in Facteur.
"""

from __future__ import annotations

import html
import secrets
import subprocess
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage

import pytest
from django.urls import reverse
from django.utils import timezone
from imapclient import IMAPClient

from accounts.models import MailAccount, Protocol
from tests.conftest import MailUser
from tests.support.accounts import make_account
from tests.support.concurrency import in_thread
from webmail import pop3fetch, tasks
from webmail.mailstore.base import MailStoreError
from webmail.mailstore.imap import ImapStore
from webmail.models import LocalMailbox, Pop3Uidl
from webmail.pop3fetch import FetchError, FetchResult, message_bytes
from webmail.pop3sink import ImapSink
from webmail.transport.imap import close_quietly as close_imap
from webmail.transport.imap import open_imap
from webmail.transport.pop3 import close_quietly, open_pop3

pytestmark = pytest.mark.integration

State = Pop3Uidl.State


def message(number: int, *, message_id: bool = True) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Sender {number} <sender{number}@elsewhere.example>"
    msg["To"] = "Léa Martin <lea@office.test>"
    msg["Subject"] = f"Message n° {number}"
    msg["Date"] = "Tue, 04 Mar 2025 10:15:00 +0100"
    if message_id:
        msg["Message-ID"] = f"<delivered-{number}@elsewhere.example>"
    msg.set_content(f"Body of message {number}.\n")
    return msg.as_bytes()


@pytest.fixture
def target_mailbox(mail_server) -> MailUser:
    mailbox = MailUser(
        address=f"target-{uuid.uuid4().hex[:12]}@{mail_server.domain}",
        password=secrets.token_urlsafe(12),
    )
    mail_server.add_user(mailbox.address, mailbox.password)
    return mailbox


@pytest.fixture
def imap_account(person, mail_server, target_mailbox) -> MailAccount:
    return make_account(person, mail_server, target_mailbox)


@pytest.fixture
def pop3_account(person, mail_server, mail_user, imap_account) -> MailAccount:
    account = make_account(person, mail_server, mail_user, protocol=Protocol.POP3)
    account.pop3_deliver_to = imap_account
    account.save()
    return account


@pytest.fixture
def deliver(mail_server, mail_user):
    def deliver(*numbers: int, **options) -> None:
        for number in numbers:
            mail_server.deliver(mail_user.address, message(number, **options))

    return deliver


@pytest.fixture
def target(imap_account) -> Iterator[IMAPClient]:
    """A connection of its own to the IMAP mailbox delivered into, to look at it."""
    client = open_imap(imap_account.incoming_endpoint())
    yield client
    close_imap(client)


def folder_messages(client: IMAPClient, folder: str = "INBOX") -> list[tuple[bytes, tuple]]:
    """(bytes, flags) of every message of ``folder``, in the order they were appended."""
    client.select_folder(folder, readonly=True)
    uids = sorted(client.search("ALL"))
    data = client.fetch(uids, ["BODY.PEEK[]", "FLAGS"]) if uids else {}
    return [(data[uid][b"BODY[]"], data[uid][b"FLAGS"]) for uid in uids]


def folder_bytes(client: IMAPClient, folder: str = "INBOX") -> list[bytes]:
    return [raw for raw, _flags in folder_messages(client, folder)]


def delivered_ids(client: IMAPClient, folder: str = "INBOX") -> list[str]:
    ids = []
    for raw in folder_bytes(client, folder):
        header = next(line for line in raw.split(b"\r\n") if line.startswith(b"Message-ID:"))
        ids.append(header.split(b"<")[1].split(b"@")[0].decode())
    return ids


def on_server(account: MailAccount) -> list[bytes]:
    """Each message of the POP3 mailbox, as RETR gives it."""
    client = open_pop3(account.incoming_endpoint())
    try:
        count = client.stat()[0]
        return [message_bytes(client.retr(number)[1]) for number in range(1, count + 1)]
    finally:
        close_quietly(client)


def states(account: MailAccount) -> list[str]:
    return list(
        Pop3Uidl.objects.filter(account=account).order_by("pk").values_list("state", flat=True)
    )


def fetching(account: MailAccount) -> bool:
    return LocalMailbox.objects.filter(account=account, fetching_until__isnull=False).exists()


def fresh(account: MailAccount) -> MailAccount:
    return MailAccount.objects.get(pk=account.pk)


def kick(mail_server, address: str) -> None:
    """Drop the connections of ``address``, as a server restart or a network failure would."""
    config = mail_server._dovecot_conf
    subprocess.run(["doveadm", "-c", str(config), "kick", address], check=True)


def failing_once(monkeypatch, owner, name: str, error: BaseException, *, after: bool = False):
    """Make method ``name`` of ``owner`` raise ``error`` on its first call.

    ``after``: raise once it has done its work, as when the reply to it is lost.
    """
    original = getattr(owner, name)
    calls = []

    def once(self, *args, **kwargs):
        calls.append(args)
        if len(calls) > 1:
            return original(self, *args, **kwargs)
        if after:
            original(self, *args, **kwargs)
        raise error

    monkeypatch.setattr(owner, name, once)


# Delivering ---------------------------------------------------------------------


def test_messages_land_in_the_imap_inbox_byte_for_byte(pop3_account, deliver, target):
    deliver(1, 2, 3)
    seen = []

    result = pop3fetch.fetch(pop3_account, progress=lambda done, total: seen.append((done, total)))

    assert result == FetchResult(new=3, deleted=0, total_on_server=3)
    assert seen == [(0, 3), (1, 3), (2, 3), (3, 3)]
    delivered = folder_messages(target)
    assert [raw for raw, _flags in delivered] == on_server(pop3_account)
    assert all(b"\\Seen" not in flags for _raw, flags in delivered)  # new mail, unread
    assert not pop3_account.local_messages.exists()
    assert states(pop3_account) == [State.DELIVERED] * 3
    assert not fetching(pop3_account)
    assert len(on_server(pop3_account)) == 3  # left on the server by default


def test_messages_go_into_the_folder_named(pop3_account, deliver, target):
    target.create_folder("Old mailbox")
    pop3_account.pop3_deliver_folder = "Old mailbox"
    pop3_account.save()
    deliver(1, 2)

    assert pop3fetch.fetch(pop3_account).new == 2

    assert folder_bytes(target, "Old mailbox") == on_server(pop3_account)
    assert folder_bytes(target) == []


def test_repeated_fetches_add_nothing_and_new_mail_is_delivered_once(pop3_account, deliver, target):
    deliver(1, 2)
    assert pop3fetch.fetch(pop3_account).new == 2
    assert pop3fetch.fetch(pop3_account) == FetchResult(0, 0, 2)

    deliver(3)
    assert pop3fetch.fetch(pop3_account).new == 1
    assert pop3fetch.fetch(pop3_account).new == 0

    assert delivered_ids(target) == ["delivered-1", "delivered-2", "delivered-3"]


def test_a_large_message_is_delivered_whole(pop3_account, mail_server, mail_user, target, settings):
    settings.POP3_MAX_MESSAGE_BYTES = 1_000
    head = b"Subject: large\r\nMessage-ID: <large@elsewhere.example>\r\n\r\n"
    mail_server.deliver(mail_user.address, head + b"line\r\n" * 1_000)

    assert pop3fetch.fetch(pop3_account).new == 1

    assert folder_bytes(target) == on_server(pop3_account)
    assert folder_bytes(target)[0].endswith(b"line\r\n" * 1_000)


def test_a_crash_between_append_and_the_delivered_mark_does_not_duplicate(
    pop3_account, deliver, target, monkeypatch
):
    deliver(1, 2, 3)
    failing_once(monkeypatch, ImapSink, "mark_delivered", SystemExit("worker killed"))

    with pytest.raises(SystemExit):
        pop3fetch.fetch(pop3_account)
    assert delivered_ids(target) == ["delivered-1"]
    assert states(pop3_account) == [State.DELIVERING]
    assert not fetching(pop3_account)

    result = pop3fetch.fetch(pop3_account)

    assert result.new == 2  # the first one was found in the folder, not appended again
    assert delivered_ids(target) == ["delivered-1", "delivered-2", "delivered-3"]
    assert folder_bytes(target) == on_server(pop3_account)
    assert states(pop3_account) == [State.DELIVERED] * 3


def test_an_append_lost_before_it_reached_the_server_is_made_by_the_next_fetch(
    pop3_account, mail_server, mail_user, target, monkeypatch
):
    # Without a Message-ID, the folder cannot be searched: the UIDL's state alone tells.
    mail_server.deliver(mail_user.address, message(1, message_id=False))
    failing_once(monkeypatch, ImapStore, "append", MailStoreError("connection lost"))

    with pytest.raises(FetchError) as raised:
        pop3fetch.fetch(pop3_account)
    assert "connection lost" in raised.value.message
    assert folder_bytes(target) == []
    assert states(pop3_account) == [State.DELIVERING]

    assert pop3fetch.fetch(pop3_account).new == 1
    assert folder_bytes(target) == on_server(pop3_account)
    assert states(pop3_account) == [State.DELIVERED]


def test_an_append_whose_reply_was_lost_is_not_made_again(
    pop3_account, deliver, target, monkeypatch
):
    deliver(1, 2)
    failing_once(monkeypatch, ImapStore, "append", MailStoreError("connection lost"), after=True)

    with pytest.raises(FetchError):
        pop3fetch.fetch(pop3_account)
    assert delivered_ids(target) == ["delivered-1"]

    assert pop3fetch.fetch(pop3_account).new == 1
    assert delivered_ids(target) == ["delivered-1", "delivered-2"]
    assert states(pop3_account) == [State.DELIVERED] * 2


def test_an_imap_target_that_is_down_stops_the_fetch_and_the_next_one_resumes(
    pop3_account, imap_account, deliver, target
):
    deliver(1, 2, 3)
    port = imap_account.incoming_port
    imap_account.incoming_port = 9  # discard: nothing listens there
    imap_account.save()

    with pytest.raises(FetchError) as raised:
        pop3fetch.fetch(fresh(pop3_account))
    assert imap_account.email in raised.value.message
    assert not Pop3Uidl.objects.filter(account=pop3_account, state=State.DELIVERED).exists()
    assert not pop3_account.local_messages.exists()
    assert not fetching(pop3_account)
    assert folder_bytes(target) == []

    imap_account.incoming_port = port
    imap_account.save()
    result = pop3fetch.fetch(fresh(pop3_account))

    assert result == FetchResult(new=3, deleted=0, total_on_server=3)
    assert delivered_ids(target) == ["delivered-1", "delivered-2", "delivered-3"]


def test_a_dropped_imap_connection_neither_loses_nor_duplicates(
    pop3_account, imap_account, deliver, mail_server, target_mailbox
):
    deliver(*range(1, 7))

    def drop_after_two(done: int, total: int) -> None:
        if done == 2:
            kick(mail_server, target_mailbox.address)

    # The pool may notice the dropped connection and carry on over a new one, or
    # lose an APPEND to it: then the fetch stops and the next one resumes.
    try:
        pop3fetch.fetch(pop3_account, progress=drop_after_two)
    except FetchError:
        pop3fetch.fetch(pop3_account)

    # Looked at over a connection of its own, opened after the drop.
    target = open_imap(imap_account.incoming_endpoint())
    try:
        assert delivered_ids(target) == [f"delivered-{n}" for n in range(1, 7)]
    finally:
        close_imap(target)
    assert states(pop3_account) == [State.DELIVERED] * 6


def test_old_delivered_messages_are_deleted_from_the_server_after_the_days_set(
    pop3_account, deliver, target
):
    deliver(1, 2, 3)
    pop3fetch.fetch(pop3_account)
    first, second, _third = Pop3Uidl.objects.filter(account=pop3_account).order_by("pk")
    long_ago = timezone.now() - timedelta(days=8)
    Pop3Uidl.objects.filter(pk__in=[first.pk, second.pk]).update(first_seen=long_ago)
    # Left half delivered by a fetch that stopped: its days count once it is in the folder.
    Pop3Uidl.objects.filter(pk=second.pk).update(state=State.DELIVERING)
    pop3_account.pop3_delete_after_days = 7
    pop3_account.save()
    deliver(4)

    result = pop3fetch.fetch(pop3_account)

    assert result == FetchResult(new=1, deleted=1, total_on_server=4)
    assert len(on_server(pop3_account)) == 3
    deleted = Pop3Uidl.objects.filter(account=pop3_account, deleted_from_server=True)
    assert list(deleted.values_list("uidl", flat=True)) == [first.uidl]
    assert states(pop3_account) == [State.DELIVERED] * 4
    assert delivered_ids(target) == [f"delivered-{n}" for n in range(1, 5)]
    assert pop3fetch.fetch(pop3_account) == FetchResult(0, 0, 3)


def test_mail_half_delivered_when_delivery_is_turned_off_is_kept_by_facteur(
    pop3_account, deliver, monkeypatch
):
    deliver(1, 2)
    failing_once(monkeypatch, ImapStore, "append", MailStoreError("connection lost"))
    with pytest.raises(FetchError):
        pop3fetch.fetch(pop3_account)
    monkeypatch.undo()
    pop3_account.pop3_deliver_to = None
    pop3_account.save()

    assert pop3fetch.fetch(pop3_account).new == 2

    assert pop3_account.local_messages.count() == 2
    assert states(pop3_account) == [State.STORED] * 2


# Two fetches at once --------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_fetches_racing_each_other_deliver_each_message_once(pop3_account, deliver, target):
    deliver(*range(1, 7))
    start = threading.Barrier(3)

    def fetch():
        start.wait()
        return pop3fetch.fetch(fresh(pop3_account))

    runs = [in_thread(fetch) for _ in range(3)]
    for thread, _outcome in runs:
        thread.join()

    outcomes = [outcome for _thread, outcome in runs]
    for outcome in outcomes:
        assert "result" in outcome or isinstance(outcome["error"], pop3fetch.FetchInProgress)
    assert sum(outcome["result"].new for outcome in outcomes if "result" in outcome) == 6
    assert delivered_ids(target) == [f"delivered-{n}" for n in range(1, 7)]


# A message the IMAP server refuses ----------------------------------------------


@pytest.fixture
def small_target(mail_server, target_mailbox) -> MailUser:
    """The IMAP mailbox with room for small messages only: a large one is over its quota."""
    mail_server.add_user(
        target_mailbox.address, target_mailbox.password, quota_rule="*:storage=64K"
    )
    return target_mailbox


def large_message() -> bytes:
    msg = EmailMessage()
    msg["From"] = "Scanner <scanner@elsewhere.example>"
    msg["To"] = "Léa Martin <lea@office.test>"
    msg["Subject"] = "Scan of the contract"
    msg["Message-ID"] = "<delivered-large@elsewhere.example>"
    msg.set_content("Too large for the quota.\n" + "0123456789abcdef\n" * 8_000)
    return msg.as_bytes()


def test_a_refused_message_is_kept_aside_after_the_tries_and_never_holds_up_later_mail(
    pop3_account, imap_account, small_target, mail_server, mail_user, deliver, target, settings
):
    settings.POP3_DELIVERY_MAX_TRIES = 3
    deliver(1)
    mail_server.deliver(mail_user.address, large_message())
    deliver(2)

    first = pop3fetch.fetch(fresh(pop3_account))

    # Refused by the real Dovecot (over quota): offered again, and the rest went on.
    assert (first.new, first.kept_aside) == (2, 0)
    assert "quota" in first.refusal.lower()
    assert delivered_ids(target) == ["delivered-1", "delivered-2"]
    refused = Pop3Uidl.objects.get(account=pop3_account, state=State.DELIVERING)
    assert refused.refusals == 1

    deliver(3)
    second = pop3fetch.fetch(fresh(pop3_account))
    assert (second.new, second.kept_aside, bool(second.refusal)) == (1, 0, True)
    assert not pop3_account.local_messages.exists()

    deliver(4)
    third = pop3fetch.fetch(fresh(pop3_account))

    assert (third.new, third.kept_aside, third.refusal) == (1, 1, "")
    assert delivered_ids(target) == [f"delivered-{n}" for n in (1, 2, 3, 4)]
    refused.refresh_from_db()
    assert (refused.state, refused.refusals) == (State.REFUSED, 3)
    kept = pop3_account.local_messages.get()
    assert kept.uid == refused.kept_uid
    assert bytes(kept.raw) == next(raw for raw in on_server(pop3_account) if b"Scan of" in raw)

    # Kept aside for good: not offered again.
    deliver(5)
    fourth = pop3fetch.fetch(fresh(pop3_account))
    assert (fourth.new, fourth.kept_aside, fourth.refusal) == (1, 0, "")
    refused.refresh_from_db()
    assert refused.refusals == 3


def test_the_target_folder_page_names_the_messages_kept_aside(
    pop3_account, imap_account, small_target, mail_server, mail_user, deliver, client, settings
):
    settings.POP3_DELIVERY_MAX_TRIES = 1
    mail_server.deliver(mail_user.address, large_message())
    deliver(1)
    client.force_login(pop3_account.user)
    mailbox = reverse("webmail:mailbox", args=[imap_account.pk]) + "?folder=INBOX"

    tasks.fetch_pop3(pop3_account.pk)

    page = client.get(mailbox).content.decode()
    assert "Facteur keeps them aside" in page
    assert "Scan of the contract" in page
    kept = pop3_account.local_messages.get()
    link = reverse("webmail:message", args=[pop3_account.pk, kept.uid]) + "?folder=INBOX"
    assert f'href="{html.escape(link)}"' in page
    opened = client.get(link)
    assert opened.status_code == 200
    assert "Too large for the quota." in opened.content.decode()
    # Another folder of the account does not name them.
    assert (
        "Scan of the contract"
        not in client.get(mailbox.replace("INBOX", "Archive")).content.decode()
    )


def test_a_refusal_not_yet_kept_aside_is_said_on_the_page(
    pop3_account, imap_account, small_target, mail_server, mail_user, client, settings
):
    settings.POP3_DELIVERY_MAX_TRIES = 3
    mail_server.deliver(mail_user.address, large_message())
    client.force_login(pop3_account.user)

    tasks.fetch_pop3(pop3_account.pk)

    page = client.get(reverse("webmail:mailbox", args=[imap_account.pk])).content.decode()
    assert f"A message could not be delivered into {imap_account.email}" in page
    assert "Facteur keeps them aside" not in page


@pytest.mark.parametrize(
    "message_id", ["<close)only@elsewhere.example>", "<{5}@elsewhere.example>", "<a*%@b>"]
)
def test_a_hostile_message_id_is_looked_up_when_delivery_resumes(
    pop3_account, mail_server, mail_user, target, monkeypatch, message_id
):
    raw = message(1, message_id=False).replace(
        b"\nTo:", f"\nMessage-ID: {message_id}\nTo:".encode(), 1
    )
    mail_server.deliver(mail_user.address, raw)
    failing_once(monkeypatch, ImapSink, "mark_delivered", SystemExit("worker killed"))
    with pytest.raises(SystemExit):
        pop3fetch.fetch(pop3_account)

    result = pop3fetch.fetch(pop3_account)

    # Found in the folder by its Message-ID, so not appended a second time.
    assert result.new == 0
    assert len(folder_bytes(target)) == 1
    assert states(pop3_account) == [State.DELIVERED]
