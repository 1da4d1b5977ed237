"""The outbox: every message a person sends reaches the SMTP server once.

A message is queued as an OutgoingMessage row holding its exact bytes; the
Celery task is asked for only once that row is committed. From then on the
row's ``status`` changes only by compare-and-set updates (``UPDATE ... WHERE
status = ...``, checking the count of rows changed), which work the same on
SQLite and PostgreSQL and let exactly one worker own a send:

    queued --claim--> sending --accepted, or handed over and unconfirmed--> sent
       ^                 |  \\--5xx, or retries used up--> failed
       +--4xx, network---+
    queued --cancel--> cancelled
    queued or failed --reopen (to edit it again)--> cancelled
    failed --retry now (the administrator, with a new round of attempts)--> queued

A worker owns a "sending" row for ``settings.SEND_LEASE`` seconds from its
claim; the claim's time is its token, so a worker whose lease was taken over
cannot change the row any more. A row left "sending" past its lease belongs to
a worker that died. As soon as the final dot of the SMTP DATA is sent, the
moment from which the server may hold the message, and before its reply is
read, the row is marked ``handed_over`` (RFC 1047's window lies between that
dot and the server's reply). A dead worker's row that was not handed over is
submitted again: the server dropped the unfinished message. One that was is
never submitted again: it is sent if its Message-ID is in the Sent folder, and
otherwise most likely sent, which the person is told. The one instant left
open is a worker dying between sending the dot and marking the row: that
message goes twice. Marking before the dot would close it by opening another,
where a message the server never took is taken as sent, and a lost message is
worse than a message received twice. A sent message is marked sent before anything else is done
with it (``after_sent``: the copy to Sent, the flag on the message it answers
or forwards, the deletion of its draft), so a failure there never causes a
second send; each of those steps can run again without doing anything twice.

The periodic sweep queues a new task for rows whose task was lost (Redis
emptied, a worker gone, the broker down when the row was queued).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.utils import getaddresses
from functools import partial
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, PositiveSmallIntegerField, Q, QuerySet, When
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from kombu.exceptions import OperationalError as BrokerError

from webmail import mailstore
from webmail.compose.drafts import DRAFTS
from webmail.mailstore.base import FolderNotFound, MailStore, MailStoreError
from webmail.mime.build import as_bytes
from webmail.mime.headers import Address
from webmail.models import Contact, OutgoingMessage
from webmail.transport import smtp
from webmail.transport.imap import ConnectionProblem

if TYPE_CHECKING:
    from accounts.models import MailAccount

logger = logging.getLogger(__name__)

Status = OutgoingMessage.Status
Origin = OutgoingMessage.Origin

#: The special use (RFC 6154) of the folder sent mail is copied into.
SENT = "\\Sent"

#: What a sent message sets on the message it answers or forwards.
ORIGIN_FLAGS = {Origin.REPLY: "\\Answered", Origin.FORWARD: "$Forwarded"}

#: A message to be sent later than this gets its task from the sweep once it is
#: this close: Redis hands a task held back longer than its visibility timeout
#: (an hour) to the workers again, every hour, until it is due.
DISPATCH_HORIZON = timedelta(minutes=30)

#: What submits a message: ``smtp.submit`` or, in tests, a stand-in with its signature.
Submit = Callable[..., dict[str, str]]

NOT_GRANTED = _lazy(
    "This account may not send as this From address; your administrator has not allowed it."
)


class OutboxError(Exception):
    """A message cannot be queued; the text says why, for the person."""


class RateLimited(OutboxError):
    pass


class LeaseLost(Exception):
    """Another worker took the row over: this one must not hand the message over."""


#: Why a sent message is marked sent without the server's word.
UNCONFIRMED = _lazy(
    "The connection broke as the server was taking the message: it was most likely "
    "sent, but the server did not confirm it."
)


class Outcome(enum.Enum):
    SENT = "sent"  # accepted by the server now: copy it to Sent
    FOUND_IN_SENT = "found-in-sent"  # a dead worker's send had gone through
    RETRY = "retry"  # a temporary failure: queued again for ``retry_at``
    FAILED = "failed"
    NOTHING = "nothing"  # not due, already handled, or owned by a live worker


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    retry_at: datetime | None = None


def sent_in_last_hour(user) -> int:
    since = timezone.now() - timedelta(hours=1)
    return (
        OutgoingMessage.objects.filter(user=user, created__gte=since)
        .exclude(status=Status.CANCELLED)
        .count()
    )


def queue(
    account: MailAccount,
    message: EmailMessage,
    recipients: Sequence[str],
    *,
    send_after: datetime | None = None,
    origin_kind: str = "",
    origin_folder: str = "",
    origin_uid: int | None = None,
    draft_uid: int | None = None,
) -> OutgoingMessage:
    """Keep ``message`` for sending to ``recipients`` from ``account``, at ``send_after`` or now.

    ``origin_*`` name the message it answers or forwards, and ``draft_uid`` the
    draft it was written in: both are seen to once it is sent. Every recipient
    becomes a contact of the person. The task is asked for after the row is
    committed; if the broker cannot take it then, the row stays queued and the
    sweep sends it.
    """
    if not recipients:
        raise OutboxError(_("Add at least one recipient."))
    if origin_kind not in Origin.values:
        raise ValueError(f"Unknown origin {origin_kind!r}")
    message_id = str(message["Message-ID"] or "").strip()
    if not message_id:
        # Without it, a send interrupted after the handover could not be found in Sent.
        raise ValueError("An outgoing message needs a Message-ID.")
    raw = as_bytes(message)
    if not may_send_from(account, raw):
        raise OutboxError(str(NOT_GRANTED))
    if sent_in_last_hour(account.user) >= settings.SEND_RATE_LIMIT:
        raise RateLimited(
            _(
                "You have sent %(count)s messages in the last hour, the most allowed. "
                "Please try again later."
            )
            % {"count": settings.SEND_RATE_LIMIT}
        )
    now = timezone.now()
    addressed = _addressed(message, recipients)
    with transaction.atomic():
        row = OutgoingMessage.objects.create(
            user=account.user,
            account=account,
            message_id=message_id,
            subject=str(message["Subject"] or ""),
            raw=raw,
            envelope_from=account.email,
            envelope_to=list(recipients),
            send_after=max(send_after or now, now),
            updated=now,
            origin_kind=origin_kind,
            origin_folder=origin_folder if origin_kind else "",
            origin_uid=origin_uid if origin_kind else None,
            draft_uid=draft_uid,
        )
        Contact.remember(account.user, addressed)
        if row.send_after - now <= DISPATCH_HORIZON:
            transaction.on_commit(partial(dispatch, row.pk, row.send_after))
    return row


def may_send_from(account: MailAccount, raw: bytes) -> bool:
    """Whether every From address of message ``raw`` is one ``account`` may send as."""
    headers = BytesHeaderParser(policy=policy.default).parsebytes(raw)
    try:
        addresses = [a.addr_spec for value in headers.get_all("From", []) for a in value.addresses]
    except (AttributeError, ValueError):
        return False
    return bool(addresses) and all(account.may_send_as(address) for address in addresses)


def _addressed(message: EmailMessage, recipients: Sequence[str]) -> list[Address]:
    """Everyone a message goes to: To and Cc with their names, then the Bcc (envelope only)."""
    fields = [str(value) for name in ("To", "Cc") for value in message.get_all(name, [])]
    shown = [Address(name=name, email=email) for name, email in getaddresses(fields) if email]
    listed = {address.email.lower() for address in shown}
    hidden = [Address(name="", email=r) for r in recipients if r.lower() not in listed]
    return shown + hidden


def dispatch(pk: int, eta: datetime | None = None) -> None:
    """Ask a worker to send row ``pk`` at ``eta``; a broker that is down is left to the sweep."""
    from webmail.tasks import send_outgoing

    try:
        task = send_outgoing.apply_async((pk,), eta=eta if eta and eta > timezone.now() else None)
    except BrokerError as exc:
        logger.warning("Outgoing message %s not handed to the broker (%s)", pk, exc)
        return
    OutgoingMessage.objects.filter(pk=pk).update(task_id=task.id)


def cancel(user, pk: int) -> bool:
    """Stop a queued message of ``user`` from being sent; False if it is already on its way."""
    changed = OutgoingMessage.objects.filter(pk=pk, user=user, status=Status.QUEUED).update(
        status=Status.CANCELLED, updated=timezone.now()
    )
    return changed == 1


def reopen(user, pk: int) -> OutgoingMessage | None:
    """Take back a queued or failed message of ``user`` to edit it: it is cancelled, and returned.

    None when it can no longer be taken back: being sent, sent, or cancelled already.
    """
    changed = OutgoingMessage.objects.filter(
        pk=pk, user=user, status__in=(Status.QUEUED, Status.FAILED)
    ).update(status=Status.CANCELLED, updated=timezone.now())
    if not changed:
        return None
    return OutgoingMessage.objects.select_related("account").get(pk=pk)


def retry_now(pks: Sequence[int]) -> list[int]:
    """Send queued or failed messages ``pks`` now, failed ones with their retries anew.

    For the administrator, once what made them fail is mended. A message being
    sent, sent or cancelled is left alone. Returns the ids of those queued.
    """
    now = timezone.now()
    retried = []
    for pk in pks:
        changed = OutgoingMessage.objects.filter(
            pk=pk, status__in=(Status.QUEUED, Status.FAILED)
        ).update(
            status=Status.QUEUED,
            send_after=now,
            updated=now,
            attempts=Case(
                When(status=Status.FAILED, then=0),
                default=F("attempts"),
                output_field=PositiveSmallIntegerField(),
            ),
        )
        if changed:
            retried.append(pk)
            transaction.on_commit(partial(dispatch, pk))
    return retried


def pending(user) -> QuerySet[OutgoingMessage]:
    """What the person's outbox shows: messages on their way or failed, and the last day's sent."""
    since = timezone.now() - timedelta(days=1)
    return (
        OutgoingMessage.objects.filter(user=user)
        .filter(
            Q(status__in=(Status.QUEUED, Status.SENDING, Status.FAILED))
            | Q(status=Status.SENT, sent_at__gte=since)
        )
        .defer("raw")
        .select_related("account")
        .order_by("-created", "-pk")
    )


def _lease() -> timedelta:
    return timedelta(seconds=settings.SEND_LEASE)


def _store(account: MailAccount) -> MailStore:
    return mailstore.for_account(account)


class _Claim:
    """One worker's hold on a "sending" row: every change it makes is conditional on it."""

    def __init__(self, row: OutgoingMessage, since: datetime) -> None:
        self.row = row
        self.since = since

    def mark_handed_over(self) -> bool:
        changed = OutgoingMessage.objects.filter(
            pk=self.row.pk, status=Status.SENDING, updated=self.since
        ).update(handed_over=True)
        return changed == 1

    def finish(self, status: str, **fields) -> bool:
        now = timezone.now()
        changed = OutgoingMessage.objects.filter(
            pk=self.row.pk, status=Status.SENDING, updated=self.since
        ).update(status=status, updated=now, **fields)
        return changed == 1


def _claim_due(pk: int, now: datetime) -> _Claim | None:
    changed = OutgoingMessage.objects.filter(
        pk=pk, status=Status.QUEUED, send_after__lte=now
    ).update(status=Status.SENDING, attempts=F("attempts") + 1, updated=now)
    if not changed:
        return None
    return _Claim(OutgoingMessage.objects.select_related("account").get(pk=pk), now)


def _claim_abandoned(pk: int, now: datetime) -> _Claim | None:
    changed = OutgoingMessage.objects.filter(
        pk=pk, status=Status.SENDING, updated__lte=now - _lease()
    ).update(updated=now)
    if not changed:
        return None
    return _Claim(OutgoingMessage.objects.select_related("account").get(pk=pk), now)


def deliver(
    pk: int,
    *,
    submit: Submit = smtp.submit,
    store_for: Callable[[MailAccount], MailStore] = _store,
) -> Result:
    """Send row ``pk`` if it is due and nobody else is sending it; say what became of it."""
    now = timezone.now()
    claim = _claim_due(pk, now)
    if claim is None:
        claim = _claim_abandoned(pk, now)
        if claim is None:
            return Result(Outcome.NOTHING)
        if claim.row.handed_over:
            return _settle_abandoned(claim, store_for)
        # The dead worker never sent the final dot: the server has nothing of it.
        OutgoingMessage.objects.filter(pk=pk, status=Status.SENDING, updated=now).update(
            attempts=F("attempts") + 1
        )
        claim.row.attempts += 1
    return _submit(claim, submit)


def _settle_abandoned(claim: _Claim, store_for: Callable[[MailAccount], MailStore]) -> Result:
    """A worker died after handing the message over: it is taken as sent, never sent again.

    In the Sent folder, it certainly was. Otherwise the server most likely took it
    (it had the whole message), and the person is told it was not confirmed.
    """
    row = claim.row
    store = store_for(row.account)
    try:
        folder = store.special_folder(SENT)
        found = folder is not None and store.find_message_id(folder, row.message_id)
    except (MailStoreError, ConnectionProblem, OSError) as exc:
        logger.warning("Sent folder of outgoing message %s not searchable (%s)", row.pk, exc)
        found = False
    if found:
        claim.finish(Status.SENT, sent_at=timezone.now(), last_error="")
        return Result(Outcome.FOUND_IN_SENT)
    claim.finish(Status.SENT, sent_at=timezone.now(), last_error=str(UNCONFIRMED))
    return Result(Outcome.SENT)


def _submit(claim: _Claim, submit: Submit) -> Result:
    row = claim.row
    # Checked again at sending: the grant may have gone since the message was queued.
    if not may_send_from(row.account, bytes(row.raw)):
        logger.warning("outgoing message %s refused: From not allowed for its account", row.pk)
        claim.finish(Status.FAILED, handed_over=False, last_error=str(NOT_GRANTED))
        return Result(Outcome.FAILED)

    def handover() -> None:
        if not claim.mark_handed_over():
            raise LeaseLost

    try:
        refused = submit(
            row.account.smtp_endpoint(),
            row.envelope_from,
            row.envelope_to,
            bytes(row.raw),
            on_handover=handover,
        )
    except LeaseLost:
        return Result(Outcome.NOTHING)
    except smtp.Unconfirmed:
        claim.finish(Status.SENT, sent_at=timezone.now(), last_error=str(UNCONFIRMED))
        return Result(Outcome.SENT)
    except smtp.PermanentFailure as exc:
        claim.finish(Status.FAILED, handed_over=False, last_error=exc.reply)
        return Result(Outcome.FAILED)
    except smtp.TemporaryFailure as exc:
        delays = settings.SEND_RETRY_DELAYS
        if row.attempts > len(delays):
            claim.finish(Status.FAILED, handed_over=False, last_error=exc.reply)
            return Result(Outcome.FAILED)
        retry_at = timezone.now() + timedelta(seconds=delays[row.attempts - 1])
        claim.finish(Status.QUEUED, handed_over=False, send_after=retry_at, last_error=exc.reply)
        return Result(Outcome.RETRY, retry_at)
    # Accepted: from here on the message must never be submitted again.
    last_error = "; ".join(f"{rcpt}: {reply}" for rcpt, reply in refused.items())
    claim.finish(Status.SENT, sent_at=timezone.now(), last_error=last_error)
    return Result(Outcome.SENT)


def copy_to_sent(pk: int, *, store_for: Callable[[MailAccount], MailStore] = _store) -> None:
    """Put sent row ``pk`` into its account's Sent folder, marked read, unless it is there."""
    row = OutgoingMessage.objects.select_related("account").get(pk=pk, status=Status.SENT)
    store = store_for(row.account)
    folder = store.special_folder(SENT)
    if folder is None:
        return
    # A copy whose reply was lost may have been stored: never store it twice.
    if not store.find_message_id(folder, row.message_id):
        store.append(folder, bytes(row.raw), seen=True)


def after_sent(pk: int) -> None:
    """What follows the send of row ``pk``: copy it to Sent, flag its origin, delete its draft.

    Each step can be done again harmlessly (the task is retried when the mail
    server fails); an origin or a draft that is gone meanwhile is no error.
    """
    copy_to_sent(pk)
    row = OutgoingMessage.objects.select_related("account").get(pk=pk, status=Status.SENT)
    store = _store(row.account)
    flag = ORIGIN_FLAGS.get(row.origin_kind)
    if flag and row.origin_folder and row.origin_uid:
        try:
            store.add_flags(row.origin_folder, [row.origin_uid], [flag])
        except FolderNotFound:
            logger.info("Origin folder of outgoing message %s is gone", pk)
    if row.draft_uid:
        folder = store.special_folder(DRAFTS)
        if folder is not None:
            try:
                store.delete(folder, [row.draft_uid])
            except FolderNotFound:
                logger.info("Drafts folder of outgoing message %s is gone", pk)


def sweep(now: datetime | None = None) -> list[int]:
    """Queue a task for each row whose task was lost or is now due; the ids of those rows."""
    now = now or timezone.now()
    # Messages sent later were queued without a task; they get it once close to due.
    scheduled = list(
        OutgoingMessage.objects.filter(
            status=Status.QUEUED,
            task_id="",
            send_after__gt=now,
            send_after__lte=now + DISPATCH_HORIZON,
        ).values_list("pk", "send_after")
    )
    for pk, send_after in scheduled:
        dispatch(pk, send_after)
    cutoff = now - timedelta(seconds=settings.SEND_SWEEP_GRACE)
    lost = OutgoingMessage.objects.filter(
        status=Status.QUEUED, send_after__lte=cutoff, updated__lte=cutoff
    )
    pks = [
        pk
        for pk in lost.values_list("pk", flat=True)
        # Touched, so that the next sweep does not queue it again while this task waits.
        if OutgoingMessage.objects.filter(pk=pk, status=Status.QUEUED, updated__lte=cutoff).update(
            updated=now
        )
    ]
    pks += OutgoingMessage.objects.filter(
        status=Status.SENDING, updated__lte=now - _lease()
    ).values_list("pk", flat=True)
    for pk in pks:
        dispatch(pk)
    return [pk for pk, __ in scheduled] + pks
