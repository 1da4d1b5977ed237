"""The send path end to end: queue(), a real Celery worker, Redis, Postfix and Dovecot.

Each fault of the issue is a test: SMTP down, Redis down, a worker killed, a
5xx reply. "Exactly once" is checked by counting the Message-ID in the
recipient's INBOX. Waits are bounded polls, never timed assertions.
"""

from __future__ import annotations

import email
import secrets
import uuid
from collections.abc import Iterator
from datetime import timedelta
from email import policy
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from accounts.models import MailAccount, SendAsGrant
from tests.integration.celery_worker import (
    CeleryWorker,
    RedisServer,
    free_port,
    published_redis,
    wait_for,
)
from tests.support.accounts import make_account
from tests.support.mailboxes import DELIVERY_TIMEOUT, arrived, count, imap, with_message_id
from webmail import outbox
from webmail.mailstore.imap import ImapStore
from webmail.mime import Address, Attachment, build_message
from webmail.mime.build import as_bytes
from webmail.models import OutgoingMessage
from webmail.tasks import sweep_outbox
from webmail.transport import smtp
from webmail.transport.endpoint import STARTTLS, Endpoint

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

Status = OutgoingMessage.Status


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("send-path-logs")


@pytest.fixture(scope="module")
def redis_server(logs: Path) -> Iterator[RedisServer]:
    with published_redis(logs / "redis.log") as server:
        yield server


@pytest.fixture(scope="module")
def worker(
    redis_server: RedisServer, logs: Path, django_db_setup, django_db_blocker
) -> Iterator[CeleryWorker]:
    process = CeleryWorker(
        broker_url=redis_server.url,
        log=logs / "worker.log",
        # Short waits between attempts, so that a retry happens within a test.
        environment={"FACTEUR_SEND_RETRY_DELAYS": "2,3,5,10,20"},
    )
    with django_db_blocker.unblock():
        process.start()
    yield process
    process.stop()


@pytest.fixture
def new_mailbox(mail_server):
    def create():
        address = f"user-{uuid.uuid4().hex[:12]}@{mail_server.domain}"
        mailbox = type("Mailbox", (), {"address": address, "password": secrets.token_urlsafe(12)})
        mail_server.add_user(mailbox.address, mailbox.password)
        return mailbox

    return create


@pytest.fixture
def alice(django_user_model, mail_server, new_mailbox) -> MailAccount:
    person = django_user_model.objects.create_user(username=f"alice-{uuid.uuid4().hex[:6]}")
    return make_account(person, mail_server, new_mailbox())


def row_in(pk: int, *statuses: str) -> OutgoingMessage | None:
    row = OutgoingMessage.objects.get(pk=pk)
    return row if row.status in statuses else None


def until(pk: int, *statuses: str) -> OutgoingMessage:
    return wait_for(
        lambda: row_in(pk, *statuses),
        timeout=DELIVERY_TIMEOUT,
        what=f"outgoing message {pk} to be {' or '.join(statuses)}",
    )


def compose(account: MailAccount, *, to, **fields):
    fields.setdefault("subject", "Hello")
    fields.setdefault("text", "Hello there")
    return build_message(
        sender=Address("Alice", account.email),
        to=to,
        message_id_domain=account.email.rpartition("@")[2],
        **fields,
    )


def send(account: MailAccount, *, to, **fields) -> OutgoingMessage:
    message, recipients = compose(account, to=to, **fields)
    return outbox.queue(account, message, recipients)


def a_while_ago(*rows: OutgoingMessage) -> None:
    """Make rows look as if minutes had passed since anyone touched them."""
    past = timezone.now() - timedelta(seconds=max(settings.SEND_LEASE, settings.SEND_SWEEP_GRACE))
    OutgoingMessage.objects.filter(pk__in=[r.pk for r in rows]).update(
        updated=past - timedelta(minutes=1), send_after=past - timedelta(minutes=1)
    )


# The store's part ---------------------------------------------------------------


def test_the_store_appends_and_finds_a_message_by_its_message_id(alice, new_mailbox):
    message, __ = compose(alice, to="bob@example.test")
    store = ImapStore(alice)
    message_id = message["Message-ID"]
    assert not store.find_message_id("Sent", message_id)
    store.append("Sent", as_bytes(message), seen=True)
    assert store.find_message_id("Sent", message_id)
    assert not store.find_message_id("INBOX", message_id)


# SMTP ---------------------------------------------------------------------------


def test_submit_dot_stuffs_and_marks_the_handover_once_the_dot_is_sent(
    mail_server, alice, new_mailbox
):
    bob = new_mailbox()
    message, recipients = compose(alice, to=bob.address)
    raw = as_bytes(message).replace(b"\r\n\r\n", b"\r\n\r\n.\r\n..two\r\n.three\r\n", 1)
    handed_over = []
    refused = smtp.submit(
        alice.smtp_endpoint(),
        alice.email,
        recipients,
        raw,
        on_handover=lambda: handed_over.append(1),
    )
    assert (refused, handed_over) == ({}, [1])
    (copy,) = arrived(mail_server, bob, message["Message-ID"]).values()
    assert copy[1].endswith(raw.split(b"\r\n\r\n", 1)[1])


def test_a_send_abandoned_at_the_handover_has_already_reached_the_server(
    mail_server, alice, new_mailbox
):
    """A worker that dies while marking the handover leaves a message the server has."""
    bob = new_mailbox()
    message, recipients = compose(alice, to=bob.address)

    class Killed(Exception):
        pass

    def die():
        raise Killed

    with pytest.raises(Killed):
        smtp.submit(
            alice.smtp_endpoint(), alice.email, recipients, as_bytes(message), on_handover=die
        )
    assert len(arrived(mail_server, bob, message["Message-ID"])) == 1


def test_submit_sorts_failures(mail_server, alice):
    message, recipients = compose(alice, to="someone@elsewhere.invalid")
    with pytest.raises(smtp.PermanentFailure, match="550"):
        smtp.submit(alice.smtp_endpoint(), alice.email, recipients, as_bytes(message))
    closed = Endpoint(host="127.0.0.1", port=free_port(), security=STARTTLS, login="", password="")
    with pytest.raises(smtp.TemporaryFailure, match="could not be reached"):
        smtp.submit(closed, alice.email, recipients, as_bytes(message))


# Sending ------------------------------------------------------------------------


def test_alice_sends_to_bob_with_an_attachment(worker, mail_server, alice, new_mailbox):
    bob, carol = new_mailbox(), new_mailbox()
    attachment = bytes(range(256)) * 300 + b"\r\n\x00end"
    row = send(
        alice,
        to=f"Bob <{bob.address}>",
        bcc=carol.address,
        subject="Compte rendu de la réunion — 会議",
        text="Voici le compte rendu.",
        html="<p>Voici le <b>compte rendu</b>.</p>",
        attachments=[Attachment("compte rendu é.bin", attachment, "application/octet-stream")],
    )

    sent = until(row.pk, Status.SENT, Status.FAILED)
    assert (sent.status, sent.attempts, sent.last_error) == (Status.SENT, 1, "")

    (flags, raw), *others = arrived(mail_server, bob, row.message_id).values()
    assert others == []
    received = email.message_from_bytes(raw, policy=policy.default)
    assert received["Subject"] == "Compte rendu de la réunion — 会議"
    assert received["Bcc"] is None and carol.address.encode() not in raw
    (part,) = received.iter_attachments()
    assert part.get_filename() == "compte rendu é.bin"
    assert part.get_content() == attachment

    assert len(arrived(mail_server, carol, row.message_id)) == 1
    ((flags, copy),) = arrived(mail_server, alice, row.message_id, "Sent").values()
    assert b"\\Seen" in flags
    assert b"Bcc" not in copy


def test_smtp_down_the_message_waits_then_goes_once(worker, mail_server, alice, new_mailbox):
    bob = new_mailbox()
    mail_server.stop_postfix()
    try:
        row = send(alice, to=bob.address)
        waiting = wait_for(
            lambda: OutgoingMessage.objects.filter(
                pk=row.pk, status=Status.QUEUED, attempts__gte=1
            ).first(),
            what="a failed first attempt",
        )
        assert waiting.last_error
        assert "Hello there" not in waiting.last_error
    finally:
        mail_server.start_postfix()
    sent = until(row.pk, Status.SENT, Status.FAILED)
    assert sent.status == Status.SENT
    assert sent.attempts >= 2
    assert len(arrived(mail_server, bob, row.message_id)) == 1


def test_redis_down_the_row_survives_and_the_sweep_sends_it_once(
    worker, redis_server, mail_server, alice, new_mailbox
):
    bob = new_mailbox()
    redis_server.stop()
    try:
        row = send(alice, to=bob.address)
        assert OutgoingMessage.objects.get(pk=row.pk).status == Status.QUEUED
    finally:
        redis_server.start()
    a_while_ago(row)
    assert sweep_outbox() == 1
    assert until(row.pk, Status.SENT, Status.FAILED).status == Status.SENT
    assert len(arrived(mail_server, bob, row.message_id)) == 1


def test_a_5xx_rejection_fails_with_the_servers_reply(worker, mail_server, alice):
    row = send(alice, to="someone@elsewhere.invalid")
    failed = until(row.pk, Status.SENT, Status.FAILED)
    assert failed.status == Status.FAILED
    assert "550 5.1.1 <someone@elsewhere.invalid>" in failed.last_error
    assert bytes(failed.raw)


# A worker that died ---------------------------------------------------------------


def abandoned(account: MailAccount, to: str, *, handed_over: bool) -> OutgoingMessage:
    """A row as a worker leaves it when it dies while sending."""
    message, recipients = compose(account, to=to)
    past = timezone.now() - timedelta(seconds=settings.SEND_LEASE, minutes=1)
    return OutgoingMessage.objects.create(
        user=account.user,
        account=account,
        message_id=message["Message-ID"],
        raw=as_bytes(message),
        envelope_from=account.email,
        envelope_to=recipients,
        status=Status.SENDING,
        attempts=1,
        handed_over=handed_over,
        send_after=past,
        updated=past,
    )


def test_a_dead_workers_send_found_in_sent_is_not_sent_again(
    worker, mail_server, alice, new_mailbox
):
    bob = new_mailbox()
    row = abandoned(alice, bob.address, handed_over=True)
    ImapStore(alice).append("Sent", bytes(row.raw), seen=True)
    assert sweep_outbox() == 1
    done = until(row.pk, Status.SENT, Status.FAILED)
    assert (done.status, done.attempts, done.last_error) == (Status.SENT, 1, "")
    assert count(mail_server, bob, row.message_id) == 0
    assert count(mail_server, alice, row.message_id, "Sent") == 1


def test_a_dead_workers_handed_over_send_is_not_sent_again_but_copied_to_sent(
    worker, mail_server, alice, new_mailbox
):
    bob = new_mailbox()
    row = abandoned(alice, bob.address, handed_over=True)
    assert sweep_outbox() == 1
    done = until(row.pk, Status.SENT, Status.FAILED)
    assert (done.status, done.attempts) == (Status.SENT, 1)
    assert done.last_error
    assert len(arrived(mail_server, alice, row.message_id, "Sent")) == 1
    assert count(mail_server, bob, row.message_id) == 0


def test_a_dead_workers_send_not_handed_over_is_sent_once(worker, mail_server, alice, new_mailbox):
    bob = new_mailbox()
    row = abandoned(alice, bob.address, handed_over=False)
    assert sweep_outbox() == 1
    done = until(row.pk, Status.SENT, Status.FAILED)
    assert (done.status, done.attempts) == (Status.SENT, 2)
    assert len(arrived(mail_server, bob, row.message_id)) == 1
    assert len(arrived(mail_server, alice, row.message_id, "Sent")) == 1


def test_a_worker_killed_during_a_burst_delivers_each_message_once(
    worker, mail_server, alice, new_mailbox
):
    bob = new_mailbox()
    rows = [send(alice, to=bob.address, subject=f"Burst {n}") for n in range(30)]
    pks = [row.pk for row in rows]
    wait_for(
        lambda: OutgoingMessage.objects.filter(pk__in=pks, status=Status.SENT).count() >= 3,
        what="the first sends of the burst",
        interval=0.02,
    )
    worker.kill()
    left = OutgoingMessage.objects.filter(pk__in=pks).exclude(status=Status.SENT)
    assert left.exists(), "the worker finished the burst before it was killed"
    # A send the worker died in the middle of, before marking it handed over: the
    # one that may have gone as the worker died, between the final dot and the mark.
    unmarked = set(
        OutgoingMessage.objects.filter(
            pk__in=pks, status=Status.SENDING, handed_over=False
        ).values_list("message_id", flat=True)
    )

    # Minutes later: the dead worker's leases have run out, and beat sweeps.
    a_while_ago(*left)
    worker.start()
    sweep_outbox()
    wait_for(
        lambda: OutgoingMessage.objects.filter(pk__in=pks, status=Status.SENT).count() == len(pks),
        timeout=DELIVERY_TIMEOUT,
        what="every message of the burst to be sent",
    )
    with imap(mail_server, bob) as client:
        wait_for(
            lambda: client.select_folder("INBOX", readonly=True)[b"EXISTS"] >= len(pks),
            timeout=DELIVERY_TIMEOUT,
            what="the burst in bob's INBOX",
        )
        copies = {r.message_id: len(with_message_id(client, "INBOX", r.message_id)) for r in rows}
    # None lost; none twice, but for a send cut in that instant (at most one per
    # worker process: the test worker has two).
    assert min(copies.values()) == 1
    twice = {message_id for message_id, number in copies.items() if number > 1}
    assert twice <= unmarked
    assert max(copies.values()) <= 2


# Who a message may be from ---------------------------------------------------------


def send_as(account: MailAccount, sender: Address, *, to, **options) -> OutgoingMessage:
    message, recipients = build_message(
        sender=sender,
        to=to,
        subject="Signed",
        text="Hello",
        message_id_domain=sender.email.rpartition("@")[2],
    )
    return outbox.queue(account, message, recipients, **options)


def test_a_granted_domain_sends_through_postfix(worker, mail_server, alice, new_mailbox):
    bob = new_mailbox()
    alice.send_as_grants.create(kind=SendAsGrant.Kind.DOMAIN, value="sales.example.test")
    row = send_as(alice, Address("Sales", "team@sales.example.test"), to=bob.address)
    until(row.pk, Status.SENT)
    (copy,) = arrived(mail_server, bob, row.message_id).values()
    parsed = email.message_from_bytes(copy[1], policy=policy.default)
    assert parsed["From"].addresses[0].addr_spec == "team@sales.example.test"


def test_an_address_nobody_granted_is_refused_when_queued(alice):
    with pytest.raises(outbox.OutboxError, match="may not send as"):
        send_as(alice, Address("Director", "director@office.example"), to="bob@example.test")
    assert not OutgoingMessage.objects.exists()


def test_the_worker_refuses_a_from_no_longer_granted(worker, mail_server, alice, new_mailbox):
    """Queued while granted, the grant withdrawn before the worker sends: it never leaves."""
    bob = new_mailbox()
    grant = alice.send_as_grants.create(kind=SendAsGrant.Kind.ADDRESS, value="boss@example.test")
    # Due tomorrow: no task is asked for yet.
    tomorrow = timezone.now() + timedelta(days=1)
    row = send_as(alice, Address("Boss", "boss@example.test"), to=bob.address, send_after=tomorrow)
    grant.delete()
    OutgoingMessage.objects.filter(pk=row.pk).update(send_after=timezone.now())
    outbox.dispatch(row.pk)
    failed = until(row.pk, Status.FAILED)
    assert "may not send as" in failed.last_error
    # A message the worker would have sent to Bob meanwhile arrives; the refused one never does.
    control = send(alice, to=bob.address)
    until(control.pk, Status.SENT)
    arrived(mail_server, bob, control.message_id)
    assert count(mail_server, bob, row.message_id) == 0
