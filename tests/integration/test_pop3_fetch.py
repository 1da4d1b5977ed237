"""Fetching POP3 accounts against the suite's real Dovecot: each message exactly once."""

from __future__ import annotations

import subprocess
import threading
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from types import SimpleNamespace

import pytest
from django.utils import timezone

from accounts.models import MailAccount, Protocol, Security
from tests.support.accounts import make_account
from tests.support.concurrency import in_thread
from webmail import pop3fetch, tasks
from webmail.models import LocalMailbox, Pop3Uidl
from webmail.transport.imap import Cause, ConnectionProblem
from webmail.transport.pop3 import close_quietly, open_pop3

pytestmark = pytest.mark.integration


def message(number: int, *, body: str = "", attachment: bool = False) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Sender {number} <sender{number}@elsewhere.example>"
    msg["To"] = "Léa Martin <lea@office.test>"
    msg["Cc"] = "cc@office.test"
    msg["Subject"] = f"Message n° {number}"
    msg["Date"] = "Tue, 04 Mar 2025 10:15:00 +0100"
    msg["Message-ID"] = f"<message-{number}@elsewhere.example>"
    msg.set_content(body or f"Body of message {number}.\n")
    if attachment:
        msg.add_attachment(b"%PDF-1.4\n", maintype="application", subtype="pdf", filename="a.pdf")
    return msg.as_bytes()


@pytest.fixture
def pop3_account(person, mail_server, mail_user) -> MailAccount:
    return make_account(person, mail_server, mail_user, protocol=Protocol.POP3)


@pytest.fixture
def deliver(mail_server, mail_user):
    def deliver(*numbers: int, **options) -> None:
        for number in numbers:
            mail_server.deliver(mail_user.address, message(number, **options))

    return deliver


def on_server(account: MailAccount) -> int:
    client = open_pop3(account.incoming_endpoint())
    try:
        return client.stat()[0]
    finally:
        close_quietly(client)


def stored_ids(account: MailAccount) -> list[str]:
    return list(account.local_messages.order_by("uid").values_list("message_id", flat=True))


def fresh(account: MailAccount) -> MailAccount:
    return MailAccount.objects.get(pk=account.pk)


def fetching(account: MailAccount) -> bool:
    return LocalMailbox.objects.filter(account=account, fetching_until__isnull=False).exists()


# Opening a connection ---------------------------------------------------------


@pytest.mark.parametrize("security", [Security.TLS, Security.STARTTLS, Security.NONE])
def test_open_pop3_signs_in_over_each_kind_of_connection(person, mail_server, mail_user, security):
    account = make_account(person, mail_server, mail_user, security=security, protocol="pop3")
    client = open_pop3(account.incoming_endpoint())
    try:
        assert client.stat() == (0, 0)
    finally:
        close_quietly(client)


def test_open_pop3_says_when_the_password_is_wrong(pop3_account):
    pop3_account.set_password("not-the-password")
    with pytest.raises(ConnectionProblem) as raised:
        open_pop3(pop3_account.incoming_endpoint())
    assert raised.value.cause == Cause.LOGIN


def test_open_pop3_says_when_tls_is_spoken_to_a_plain_port(pop3_account, mail_server):
    pop3_account.incoming_security = Security.TLS
    with pytest.raises(ConnectionProblem) as raised:
        open_pop3(pop3_account.incoming_endpoint())
    assert raised.value.cause == Cause.TLS


# Fetching ---------------------------------------------------------------------


def test_the_first_fetch_stores_every_message_with_its_headers(pop3_account, deliver):
    deliver(1, 2)
    deliver(3, attachment=True)
    seen = []

    result = pop3fetch.fetch(pop3_account, progress=lambda done, total: seen.append((done, total)))

    assert result == pop3fetch.FetchResult(new=3, deleted=0, total_on_server=3)
    assert seen == [(0, 3), (1, 3), (2, 3), (3, 3)]
    first, second, third = pop3_account.local_messages.order_by("uid")
    assert [first.uid, second.uid, third.uid] == [1, 2, 3]
    assert first.folder == "INBOX"
    assert first.subject == "Message n° 1"
    assert first.sender == "Sender 1"
    assert first.sender_email == "sender1@elsewhere.example"
    assert first.recipients == "Léa Martin <lea@office.test>, cc@office.test"
    assert first.date == datetime(2025, 3, 4, 9, 15, tzinfo=UTC)
    assert first.message_id == "<message-1@elsewhere.example>"
    assert not first.has_attachments and third.has_attachments
    assert not (first.seen or first.flagged or first.answered or first.partial)
    raw = bytes(first.raw)
    assert raw.endswith(b"\r\n\r\nBody of message 1.\r\n")
    assert first.size == len(raw)
    assert Pop3Uidl.objects.filter(account=pop3_account).count() == 3
    assert fresh(pop3_account).pop3_last_fetch is not None
    assert not fetching(pop3_account)
    assert on_server(pop3_account) == 3  # mail is left on the server by default


def test_repeated_fetches_add_nothing_and_new_mail_is_fetched_once(pop3_account, deliver):
    deliver(1, 2)
    assert pop3fetch.fetch(pop3_account).new == 2
    assert pop3fetch.fetch(pop3_account) == pop3fetch.FetchResult(0, 0, 2)

    deliver(3)
    assert pop3fetch.fetch(pop3_account).new == 1
    assert pop3fetch.fetch(pop3_account).new == 0

    assert stored_ids(pop3_account) == [f"<message-{n}@elsewhere.example>" for n in (1, 2, 3)]


def test_a_message_deleted_in_facteur_is_not_fetched_again(pop3_account, deliver):
    deliver(1)
    pop3fetch.fetch(pop3_account)
    pop3_account.local_messages.all().delete()

    assert pop3fetch.fetch(pop3_account).new == 0
    assert not pop3_account.local_messages.exists()


def test_uids_keep_growing_after_the_newest_message_is_deleted(pop3_account, deliver):
    deliver(1, 2)
    pop3fetch.fetch(pop3_account)
    pop3_account.local_messages.get(uid=2).delete()
    deliver(3)

    pop3fetch.fetch(pop3_account)

    assert list(pop3_account.local_messages.values_list("uid", flat=True)) == [3, 1]


def test_old_messages_are_deleted_from_the_server_after_the_days_set(pop3_account, deliver):
    deliver(1, 2, 3)
    pop3fetch.fetch(pop3_account)
    old = ["<message-1@elsewhere.example>", "<message-2@elsewhere.example>"]
    uidls = Pop3Uidl.objects.filter(account=pop3_account).order_by("pk")
    old_uidls = [row.uidl for row in uidls[:2]]
    Pop3Uidl.objects.filter(uidl__in=old_uidls).update(
        first_seen=timezone.now() - timedelta(days=8)
    )
    pop3_account.pop3_delete_after_days = 7
    pop3_account.save()
    deliver(4)

    result = pop3fetch.fetch(pop3_account)

    assert result == pop3fetch.FetchResult(new=1, deleted=2, total_on_server=4)
    assert on_server(pop3_account) == 2
    assert set(uidls.filter(deleted_from_server=True).values_list("uidl", flat=True)) == set(
        old_uidls
    )
    assert set(old) <= set(stored_ids(pop3_account))  # still kept by Facteur
    assert pop3fetch.fetch(pop3_account) == pop3fetch.FetchResult(0, 0, 2)
    assert len(stored_ids(pop3_account)) == 4


def test_a_message_that_does_not_parse_is_kept(pop3_account, mail_server, mail_user):
    hostile = (
        b"From: <<<@@@>>> =?x-unknown?B?////?=\r\n"
        b"Subject: =?utf-8?Q?broken=FF=FE?= \xff\xfe\r\n"
        b"Date: the day after tomorrow\r\n"
        b"Content-Type: multipart/mixed\r\n"
        b"\r\n"
        b"--no boundary was declared\r\n\xc3\x28 binary \xff\r\n"
    )
    mail_server.deliver(mail_user.address, hostile)

    assert pop3fetch.fetch(pop3_account).new == 1

    kept = pop3_account.local_messages.get()
    assert bytes(kept.raw).endswith(hostile)
    assert kept.date is None
    assert "broken" in kept.subject


def test_an_oversized_message_is_kept_as_its_headers(pop3_account, deliver, settings):
    settings.POP3_MAX_MESSAGE_BYTES = 4_000
    deliver(1)
    deliver(2, body="A long line of text.\n" * 1_000)

    assert pop3fetch.fetch(pop3_account).new == 2

    small, large = pop3_account.local_messages.order_by("uid")
    assert not small.partial
    assert large.partial
    assert large.subject == "Message n° 2"
    assert b"A long line" not in bytes(large.raw)
    assert bytes(large.raw).endswith(b"\r\n\r\n")
    assert large.size > 20_000


def test_a_message_with_lines_longer_than_poplib_allows_is_fetched(
    pop3_account, mail_server, mail_user
):
    long_line = b"x" * 100_000
    mail_server.deliver(mail_user.address, b"Subject: one long line\r\n\r\n" + long_line + b"\r\n")

    assert pop3fetch.fetch(pop3_account).new == 1
    assert bytes(pop3_account.local_messages.get().raw).endswith(b"\r\n\r\n" + long_line + b"\r\n")


def kick(mail_server, mail_user) -> None:
    """Drop the user's connections, as a server restart or a network failure would.

    Stopping Dovecot leaves the sessions already signed in running.
    """
    config = mail_server._dovecot_conf
    subprocess.run(["doveadm", "-c", str(config), "kick", mail_user.address], check=True)


def test_a_connection_dropped_mid_fetch_keeps_what_was_stored_and_resumes(
    pop3_account, deliver, mail_server, mail_user
):
    deliver(*range(1, 13))

    def drop_after_five(done: int, total: int) -> None:
        if done == 5:
            kick(mail_server, mail_user)
            mail_server.stop_dovecot()

    try:
        with pytest.raises(ConnectionProblem):
            pop3fetch.fetch(pop3_account, progress=drop_after_five)
        assert len(stored_ids(pop3_account)) == 5
        with pytest.raises(ConnectionProblem) as raised:
            pop3fetch.fetch(pop3_account)
        assert raised.value.cause == Cause.REFUSED
    finally:
        mail_server.start_dovecot()
    assert not fetching(pop3_account)

    result = pop3fetch.fetch(pop3_account)

    assert result == pop3fetch.FetchResult(new=7, deleted=0, total_on_server=12)
    assert stored_ids(pop3_account) == [f"<message-{n}@elsewhere.example>" for n in range(1, 13)]
    assert Pop3Uidl.objects.filter(account=pop3_account).count() == 12


def test_deletions_count_only_once_the_server_confirmed_them_at_quit(
    pop3_account, deliver, mail_server, mail_user, monkeypatch
):
    deliver(1, 2)
    pop3fetch.fetch(pop3_account)
    Pop3Uidl.objects.update(first_seen=timezone.now() - timedelta(days=2))
    pop3_account.pop3_delete_after_days = 1
    pop3_account.save()
    original = pop3fetch._Fetch.delete_old

    def dropped_before_quit(self, listing):
        doomed = original(self, listing)
        kick(mail_server, mail_user)
        return doomed

    monkeypatch.setattr(pop3fetch._Fetch, "delete_old", dropped_before_quit)
    with pytest.raises(ConnectionProblem):
        pop3fetch.fetch(pop3_account)
    assert not Pop3Uidl.objects.filter(deleted_from_server=True).exists()
    assert on_server(pop3_account) == 2
    monkeypatch.undo()

    assert pop3fetch.fetch(pop3_account).deleted == 2
    assert on_server(pop3_account) == 0
    assert Pop3Uidl.objects.filter(deleted_from_server=True).count() == 2


def test_a_server_refusing_the_password_stops_the_fetch(pop3_account):
    pop3_account.set_password("not-the-password")
    pop3_account.save()

    with pytest.raises(ConnectionProblem):
        pop3fetch.fetch(pop3_account)
    assert not fetching(pop3_account)


def test_an_imap_account_is_not_fetched(mail_account):
    with pytest.raises(ValueError):
        pop3fetch.fetch(mail_account)


# Two fetches at once ------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_second_fetch_while_one_runs_is_refused(pop3_account, deliver):
    deliver(1, 2, 3, 4)
    outcomes = []

    def fetch_again(done: int, total: int) -> None:
        if done == 2:
            thread, outcome = in_thread(lambda: pop3fetch.fetch(fresh(pop3_account)))
            thread.join()
            outcomes.append(outcome)

    assert pop3fetch.fetch(pop3_account, progress=fetch_again).new == 4

    assert isinstance(outcomes[0]["error"], pop3fetch.FetchInProgress)
    assert len(stored_ids(pop3_account)) == 4


@pytest.mark.django_db(transaction=True)
def test_fetches_racing_each_other_store_each_message_once(pop3_account, deliver):
    deliver(*range(1, 9))
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
    assert sum(outcome["result"].new for outcome in outcomes if "result" in outcome) == 8
    assert stored_ids(pop3_account) == [f"<message-{n}@elsewhere.example>" for n in range(1, 9)]


@pytest.mark.django_db(transaction=True)
def test_a_fetch_that_outlived_its_lease_stops_without_duplicating(pop3_account, deliver):
    deliver(1, 2, 3)
    outcomes = []

    def lease_taken_over(done: int, total: int) -> None:
        if done == 1:
            # As if this fetch had hung past its lease and another one had started.
            LocalMailbox.objects.filter(pk=pop3_account.pk).update(fetching_until=None)
            thread, outcome = in_thread(lambda: pop3fetch.fetch(fresh(pop3_account)))
            thread.join()
            outcomes.append(outcome)

    with pytest.raises(pop3fetch.FetchInProgress):
        pop3fetch.fetch(pop3_account, progress=lease_taken_over)

    assert outcomes[0]["result"].new == 2
    assert len(stored_ids(pop3_account)) == 3


# Tasks --------------------------------------------------------------------------


def test_the_fetch_task_fetches_and_survives_a_refused_login(pop3_account, deliver):
    deliver(1)
    tasks.fetch_pop3(pop3_account.pk)
    assert len(stored_ids(pop3_account)) == 1

    pop3_account.set_password("not-the-password")
    pop3_account.save()
    tasks.fetch_pop3(pop3_account.pk)  # logged, not raised
    assert fresh(pop3_account).pop3_last_fetch is not None


def test_beat_queues_the_pop3_accounts_that_are_due(
    person, mail_server, mail_account, monkeypatch, settings
):
    settings.POP3_FETCH_INTERVAL = 300
    now = timezone.now()
    numbers = iter(range(100))

    def pop3(**fields) -> MailAccount:
        mailbox = SimpleNamespace(address=f"box{next(numbers)}@office.test", password="secret")
        account = make_account(person, mail_server, mailbox, protocol=Protocol.POP3)
        for name, value in fields.items():
            setattr(account, name, value)
        account.save()
        return account

    never = pop3()
    stale = pop3(pop3_last_fetch=now - timedelta(seconds=301))
    pop3(pop3_last_fetch=now - timedelta(seconds=60))  # recent
    running = pop3()
    LocalMailbox.objects.create(account=running, fetching_until=now + timedelta(minutes=5))
    queued = []
    monkeypatch.setattr(tasks.fetch_pop3, "delay", queued.append)

    assert tasks.fetch_due_pop3() == 2

    assert sorted(queued) == sorted([never.pk, stale.pk])
