"""The outbox's state machine, with a stand-in SMTP server and Sent folder."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.utils import timezone
from kombu.exceptions import OperationalError

from accounts.models import MailAccount
from tests.support.accounts import unreachable_account
from webmail import outbox, tasks
from webmail.mailstore.base import MailStoreError
from webmail.mime import Address, build_message
from webmail.models import OutgoingMessage
from webmail.transport.smtp import PermanentFailure, TemporaryFailure, Unconfirmed

Status = OutgoingMessage.Status
SECRET_WORDS = "the secret plans for Tuesday"


class FakeSmtp:
    def __init__(self, *failures: Exception, refused: dict[str, str] | None = None) -> None:
        self.failures = list(failures)
        self.refused = refused or {}
        self.sent: list[tuple[str, list[str], bytes]] = []

    def __call__(self, endpoint, envelope_from, recipients, raw, *, on_handover):
        failure = self.failures.pop(0) if self.failures else None
        if isinstance(failure, TemporaryFailure | PermanentFailure):
            raise failure  # before the message is handed over, as connections and RCPT fail
        on_handover()
        if failure is not None:
            raise failure
        self.sent.append((envelope_from, list(recipients), bytes(raw)))
        return self.refused


class FakeStore:
    def __init__(self, *, holds: set[str] = (), sent_folder: bool = True, broken: bool = False):
        self.holds = set(holds)
        self.sent_folder = sent_folder
        self.broken = broken
        self.appended: list[tuple[str, bytes, bool]] = []

    def special_folder(self, use):
        if self.broken:
            raise MailStoreError("server gone")
        return "Sent" if use == "\\Sent" and self.sent_folder else None

    def find_message_id(self, folder, message_id):
        return message_id in self.holds

    def append(self, folder, raw, *, seen=False):
        self.appended.append((folder, raw, seen))


@pytest.fixture
def dispatched(monkeypatch) -> list[tuple[int, object]]:
    calls = []

    class Task:
        id = "task-1"

    def apply_async(args, eta=None, **kwargs):
        calls.append((args[0], eta))
        return Task()

    monkeypatch.setattr(tasks.send_outgoing, "apply_async", apply_async)
    return calls


@pytest.fixture
def account(db, django_user_model) -> MailAccount:
    user = django_user_model.objects.create_user(username="alice", password="x")
    return unreachable_account(user)


def message():
    return build_message(
        sender=Address("Alice", "alice@example.test"),
        to="bob@example.test",
        bcc="carol@example.test",
        subject="Plans",
        text=SECRET_WORDS,
        message_id_domain="example.test",
    )


def queued(account, **kwargs) -> OutgoingMessage:
    built, recipients = message()
    return outbox.queue(account, built, recipients, **kwargs)


def backdate(row: OutgoingMessage, **ago: timedelta) -> None:
    now = timezone.now()
    OutgoingMessage.objects.filter(pk=row.pk).update(
        **{field: now - delta for field, delta in ago.items()}
    )


def reload(row: OutgoingMessage) -> OutgoingMessage:
    return OutgoingMessage.objects.get(pk=row.pk)


# Queueing ---------------------------------------------------------------------


def test_queue_keeps_the_bytes_and_asks_for_the_task_only_after_commit(
    account, dispatched, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        row = queued(account)
        assert dispatched == []
    assert len(callbacks) == 1
    assert dispatched == [(row.pk, None)]
    row = reload(row)
    assert row.status == Status.QUEUED
    assert row.task_id == "task-1"
    assert row.envelope_from == "alice@example.test"
    assert row.envelope_to == ["bob@example.test", "carol@example.test"]
    assert row.message_id.startswith("<") and row.message_id.endswith("@example.test>")
    raw = bytes(row.raw)
    assert SECRET_WORDS.encode() in raw
    assert b"carol" not in raw


def test_send_later_is_passed_as_the_task_eta(
    account, dispatched, django_capture_on_commit_callbacks
):
    later = timezone.now() + timedelta(minutes=20)
    with django_capture_on_commit_callbacks(execute=True):
        row = queued(account, send_after=later)
    assert reload(row).send_after == later
    assert dispatched == [(row.pk, later)]


def test_a_broker_that_is_down_leaves_the_row_queued_and_logs_no_content(
    account, monkeypatch, django_capture_on_commit_callbacks, caplog
):
    def down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6399. Connection refused.")

    monkeypatch.setattr(tasks.send_outgoing, "apply_async", down)
    with caplog.at_level(logging.WARNING), django_capture_on_commit_callbacks(execute=True):
        row = queued(account)
    assert reload(row).status == Status.QUEUED
    assert "not handed to the broker" in caplog.text
    assert SECRET_WORDS not in caplog.text
    assert "bob@example.test" not in caplog.text


def test_the_rate_limit_refuses_with_a_clear_message(account, dispatched, settings):
    settings.SEND_RATE_LIMIT = 2
    queued(account)
    queued(account)
    with pytest.raises(outbox.RateLimited, match="2 messages in the last hour"):
        queued(account)
    assert OutgoingMessage.objects.count() == 2


def test_cancelled_messages_do_not_count_towards_the_rate_limit(account, dispatched, settings):
    settings.SEND_RATE_LIMIT = 1
    row = queued(account)
    assert outbox.cancel(account.user, row.pk)
    queued(account)


# Sending ----------------------------------------------------------------------


def test_a_queued_message_is_sent_once(account, dispatched):
    row = queued(account)
    smtp = FakeSmtp()
    assert outbox.deliver(row.pk, submit=smtp, store_for=lambda a: FakeStore()).outcome is (
        outbox.Outcome.SENT
    )
    assert outbox.deliver(row.pk, submit=smtp, store_for=lambda a: FakeStore()).outcome is (
        outbox.Outcome.NOTHING
    )
    assert len(smtp.sent) == 1
    assert smtp.sent[0][:2] == ("alice@example.test", ["bob@example.test", "carol@example.test"])
    row = reload(row)
    assert (row.status, row.attempts, row.last_error) == (Status.SENT, 1, "")
    assert row.sent_at is not None


def test_a_message_not_yet_due_is_left_alone(account, dispatched):
    row = queued(account, send_after=timezone.now() + timedelta(minutes=5))
    smtp = FakeSmtp()
    assert outbox.deliver(row.pk, submit=smtp).outcome is outbox.Outcome.NOTHING
    assert smtp.sent == []
    assert reload(row).status == Status.QUEUED


def test_a_message_being_sent_by_a_live_worker_is_not_sent_again(account, dispatched):
    row = queued(account)
    OutgoingMessage.objects.filter(pk=row.pk).update(status=Status.SENDING, attempts=1)
    smtp = FakeSmtp()
    assert outbox.deliver(row.pk, submit=smtp).outcome is outbox.Outcome.NOTHING
    assert smtp.sent == []


def test_a_temporary_failure_queues_it_again_later(account, dispatched, settings):
    settings.SEND_RETRY_DELAYS = [30, 120]
    row = queued(account)
    before = timezone.now()
    result = outbox.deliver(row.pk, submit=FakeSmtp(TemporaryFailure("451 4.3.0 try later")))
    assert result.outcome is outbox.Outcome.RETRY
    row = reload(row)
    assert (row.status, row.attempts, row.last_error) == (Status.QUEUED, 1, "451 4.3.0 try later")
    assert row.send_after == result.retry_at
    assert before + timedelta(seconds=30) <= row.send_after


def test_retries_wait_longer_each_time_then_fail(account, dispatched, settings):
    settings.SEND_RETRY_DELAYS = [30, 120]
    row = queued(account)
    smtp = FakeSmtp(*[TemporaryFailure("connection refused")] * 3)
    waits = []
    for __ in range(3):
        start = timezone.now()
        result = outbox.deliver(row.pk, submit=smtp)
        if result.retry_at:
            waits.append(result.retry_at - start)
            backdate(row, send_after=timedelta(0))
    assert result.outcome is outbox.Outcome.FAILED
    assert waits[0] < waits[1]
    row = reload(row)
    assert (row.status, row.attempts, row.last_error) == (Status.FAILED, 3, "connection refused")


def test_a_permanent_failure_fails_with_the_servers_reply(account, dispatched):
    row = queued(account)
    reply = "550 5.1.1 <bob@example.test>: Recipient address rejected"
    assert outbox.deliver(row.pk, submit=FakeSmtp(PermanentFailure(reply))).outcome is (
        outbox.Outcome.FAILED
    )
    row = reload(row)
    assert (row.status, row.last_error) == (Status.FAILED, reply)
    assert bytes(row.raw)  # kept, for the person to edit and send again


def test_some_recipients_refused_is_sent_with_their_replies(account, dispatched):
    row = queued(account)
    smtp = FakeSmtp(refused={"carol@example.test": "550 no such user"})
    assert outbox.deliver(row.pk, submit=smtp).outcome is outbox.Outcome.SENT
    row = reload(row)
    assert row.status == Status.SENT
    assert row.last_error == "carol@example.test: 550 no such user"


def test_a_cancelled_message_is_never_sent(account, dispatched):
    row = queued(account)
    assert outbox.cancel(account.user, row.pk)
    smtp = FakeSmtp()
    assert outbox.deliver(row.pk, submit=smtp).outcome is outbox.Outcome.NOTHING
    assert smtp.sent == []
    assert reload(row).status == Status.CANCELLED


def test_only_its_owner_cancels_a_message_and_only_while_queued(
    account, dispatched, django_user_model
):
    row = queued(account)
    mallory = django_user_model.objects.create_user(username="mallory")
    assert not outbox.cancel(mallory, row.pk)
    OutgoingMessage.objects.filter(pk=row.pk).update(status=Status.SENDING)
    assert not outbox.cancel(account.user, row.pk)
    assert reload(row).status == Status.SENDING


# A worker that died while sending ---------------------------------------------


def abandoned(account, *, handed_over: bool) -> OutgoingMessage:
    row = queued(account)
    OutgoingMessage.objects.filter(pk=row.pk).update(
        status=Status.SENDING, attempts=1, handed_over=handed_over
    )
    backdate(row, updated=timedelta(hours=1))
    return reload(row)


def test_a_send_handed_over_and_found_in_sent_is_marked_sent_without_sending(account, dispatched):
    row = abandoned(account, handed_over=True)
    smtp = FakeSmtp()
    store = FakeStore(holds={row.message_id})
    assert outbox.deliver(row.pk, submit=smtp, store_for=lambda a: store).outcome is (
        outbox.Outcome.FOUND_IN_SENT
    )
    assert smtp.sent == []
    row = reload(row)
    assert (row.status, row.attempts, row.last_error) == (Status.SENT, 1, "")


@pytest.mark.parametrize(
    "store", [FakeStore(), FakeStore(sent_folder=False), FakeStore(broken=True)]
)
def test_a_send_handed_over_but_not_in_sent_is_never_sent_again(account, dispatched, store):
    row = abandoned(account, handed_over=True)
    smtp = FakeSmtp()
    # SENT: the message still has to be copied to the Sent folder.
    assert outbox.deliver(row.pk, submit=smtp, store_for=lambda a: store).outcome is (
        outbox.Outcome.SENT
    )
    assert smtp.sent == []
    row = reload(row)
    assert row.status == Status.SENT
    assert "did not confirm" in row.last_error


def test_a_send_abandoned_before_the_handover_is_sent_once(account, dispatched):
    row = abandoned(account, handed_over=False)
    smtp = FakeSmtp()
    result = outbox.deliver(row.pk, submit=smtp, store_for=lambda a: FakeStore())
    assert result.outcome is outbox.Outcome.SENT
    assert len(smtp.sent) == 1
    row = reload(row)
    assert (row.status, row.attempts, row.handed_over) == (Status.SENT, 2, True)


def test_an_abandoned_send_is_left_alone_within_its_lease(account, dispatched, settings):
    settings.SEND_LEASE = 2 * 3600
    row = abandoned(account, handed_over=False)
    smtp = FakeSmtp()
    assert outbox.deliver(row.pk, submit=smtp, store_for=lambda a: FakeStore()).outcome is (
        outbox.Outcome.NOTHING
    )
    assert smtp.sent == []


def test_a_connection_lost_after_the_handover_is_not_retried(account, dispatched):
    row = queued(account)
    smtp = FakeSmtp(Unconfirmed("Connection unexpectedly closed"))
    assert outbox.deliver(row.pk, submit=smtp).outcome is outbox.Outcome.SENT
    row = reload(row)
    assert (row.status, row.attempts) == (Status.SENT, 1)
    assert "did not confirm" in row.last_error


def test_a_temporary_failure_clears_the_handover(account, dispatched):
    row = queued(account)
    outbox.deliver(row.pk, submit=FakeSmtp(TemporaryFailure("451 4.3.0 queue full")))
    assert not reload(row).handed_over


def test_a_worker_that_lost_its_lease_does_not_hand_the_message_over(account, dispatched):
    row = queued(account)

    def submit(endpoint, envelope_from, recipients, raw, *, on_handover):
        # Another worker takes the row over while this one transmits.
        OutgoingMessage.objects.filter(pk=row.pk).update(updated=timezone.now())
        on_handover()
        raise AssertionError("the final dot must not be sent")

    assert outbox.deliver(row.pk, submit=submit).outcome is outbox.Outcome.NOTHING
    assert not reload(row).handed_over


def test_a_worker_whose_lease_was_taken_over_cannot_change_the_row(account, dispatched):
    row = queued(account)
    now = timezone.now()
    first = outbox._claim_due(row.pk, now)
    backdate(row, updated=timedelta(hours=1))
    second = outbox._claim_abandoned(row.pk, timezone.now())
    assert second is not None
    assert not first.finish(Status.FAILED, last_error="late")
    assert second.finish(Status.SENT)
    assert reload(row).status == Status.SENT


# Copy to Sent -----------------------------------------------------------------


def test_a_sent_message_is_copied_to_sent_as_read_once(account, dispatched):
    row = queued(account)
    outbox.deliver(row.pk, submit=FakeSmtp())
    store = FakeStore()
    outbox.copy_to_sent(row.pk, store_for=lambda a: store)
    assert store.appended == [("Sent", bytes(reload(row).raw), True)]
    store.holds.add(row.message_id)
    outbox.copy_to_sent(row.pk, store_for=lambda a: store)
    assert len(store.appended) == 1


def test_a_failed_copy_to_sent_leaves_the_message_sent(account, dispatched, monkeypatch):
    row = queued(account)
    monkeypatch.setattr(outbox, "deliver", lambda pk: outbox.Result(outbox.Outcome.SENT))
    OutgoingMessage.objects.filter(pk=row.pk).update(status=Status.SENT)

    def broken(pk):
        raise MailStoreError("server gone")

    later = []
    monkeypatch.setattr(outbox, "copy_to_sent", broken)
    monkeypatch.setattr(tasks.after_sent, "apply_async", lambda *a, **k: later.append(a))
    tasks.send_outgoing(row.pk)
    assert reload(row).status == Status.SENT
    assert later == [((row.pk,),)]


# The sweep --------------------------------------------------------------------


def test_a_message_for_later_gets_its_task_from_the_sweep_once_close_to_due(
    account, dispatched, django_capture_on_commit_callbacks
):
    send_after = timezone.now() + timedelta(days=2)
    with django_capture_on_commit_callbacks(execute=True):
        row = queued(account, send_after=send_after)
    assert dispatched == []
    assert outbox.sweep(now=send_after - outbox.DISPATCH_HORIZON * 2) == []
    assert outbox.sweep(now=send_after - outbox.DISPATCH_HORIZON / 2) == [row.pk]
    assert dispatched == [(row.pk, send_after)]
    # Its task is known now: later sweeps leave it to that task.
    assert outbox.sweep(now=send_after - outbox.DISPATCH_HORIZON / 4) == []


def test_the_sweep_queues_again_what_lost_its_task(account, dispatched, settings):
    settings.SEND_SWEEP_GRACE = 120
    lost = queued(account)
    backdate(lost, send_after=timedelta(minutes=5), updated=timedelta(minutes=5))
    fresh = queued(account)
    later = queued(account, send_after=timezone.now() + timedelta(hours=1))
    backdate(later, updated=timedelta(minutes=5))
    stale = abandoned(account, handed_over=False)
    live = queued(account)
    OutgoingMessage.objects.filter(pk=live.pk).update(status=Status.SENDING)
    done = queued(account)
    OutgoingMessage.objects.filter(pk=done.pk).update(status=Status.SENT)

    assert sorted(outbox.sweep()) == sorted([lost.pk, stale.pk])
    assert sorted(pk for pk, __ in dispatched) == sorted([lost.pk, stale.pk])
    assert fresh.pk and later.pk
    # The row it queued again was touched: the next sweep leaves it to its new task.
    assert outbox.sweep() == [stale.pk]
