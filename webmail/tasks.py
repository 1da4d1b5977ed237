"""Celery tasks: sending mail, what follows a send, the periodic sweep, POP3 fetches and
new-mail checks."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import MailAccount, Protocol
from webmail import outbox, pop3fetch, sync
from webmail.mailstore.base import MailStoreError
from webmail.metrics import POP3_FETCH_ERRORS, server_label
from webmail.models import Upload
from webmail.transport.imap import ConnectionProblem

logger = logging.getLogger(__name__)

#: Outcomes after which the message is sent and what follows a send is due.
_SENT = (outbox.Outcome.SENT, outbox.Outcome.FOUND_IN_SENT)


@shared_task(ignore_result=True)
def send_outgoing(pk: int) -> str:
    """Send outgoing message ``pk`` if it is due; a no-op for one already handled."""
    result = outbox.deliver(pk)
    if result.outcome is outbox.Outcome.RETRY:
        outbox.dispatch(pk, result.retry_at)
    elif result.outcome in _SENT:
        try:
            outbox.after_sent(pk)
        except (MailStoreError, ConnectionProblem, OSError) as exc:
            logger.warning("Outgoing message %s sent but not filed (%s)", pk, exc)
            after_sent.apply_async((pk,), countdown=settings.SENT_COPY_RETRY_DELAY)
    logger.info("Outgoing message %s: %s", pk, result.outcome.value)
    return result.outcome.value


@shared_task(bind=True, ignore_result=True)
def after_sent(self, pk: int) -> None:
    """Finish sent message ``pk`` (``outbox.after_sent``: Sent, origin, draft), with retries."""
    try:
        outbox.after_sent(pk)
    except (MailStoreError, ConnectionProblem, OSError) as exc:
        raise self.retry(
            exc=exc,
            countdown=settings.SENT_COPY_RETRY_DELAY,
            max_retries=settings.SENT_COPY_RETRIES,
        ) from exc


@shared_task(ignore_result=True)
def sweep_outbox() -> int:
    """Queue again the messages whose task was lost, and drop stale uploads; run by beat.

    Returns how many messages were queued again.
    """
    Upload.delete_expired()
    requeued = outbox.sweep()
    Upload.delete_orphans()
    return len(requeued)


@shared_task(
    ignore_result=True,
    soft_time_limit=settings.POP3_FETCH_STEP_SECONDS,
    time_limit=settings.POP3_FETCH_STEP_SECONDS + 60,
)
def fetch_pop3(account_id: int) -> None:
    """Fetch POP3 account ``account_id``; a no-op when it is being fetched or is gone.

    A fetch runs for at most ``POP3_FETCH_STEP_SECONDS``: a mailbox that takes
    longer keeps what was stored and goes on in the next step, queued at once.
    """
    account = MailAccount.objects.filter(pk=account_id, protocol=Protocol.POP3).first()
    if account is None:
        return
    try:
        result = pop3fetch.fetch(account, progress=sync.progress_recorder(account))
    except pop3fetch.FetchInProgress:
        logger.info("POP3 account %s is being fetched already.", account_id)
        return
    except SoftTimeLimitExceeded:
        logger.info("POP3 account %s: fetch step over, going on in another.", account_id)
        fetch_pop3.delay(account_id)
        return
    except (pop3fetch.FetchError, ConnectionProblem) as exc:
        # The next fetch is due after the usual interval, not sooner: a server
        # refusing the password is not asked again every minute.
        logger.warning("POP3 account %s not fetched: %s", account_id, exc.message)
        POP3_FETCH_ERRORS.labels(server_label(account)).inc()
        problem = exc.message
    else:
        problem = (
            _("A message could not be delivered into %(account)s: %(reason)s")
            % {"account": account.delivers_into, "reason": result.refusal}
            if result.refusal
            else ""
        )
    # What was stored before a failure is new mail all the same, wherever it went.
    _check(account.delivers_into or account)
    sync.fetch_ended(account, problem)


@shared_task(ignore_result=True)
def fetch_due_pop3() -> int:
    """Queue a fetch of each POP3 account not fetched for the interval; run by beat.

    Returns how many were queued.
    """
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.POP3_FETCH_INTERVAL)
    due = (
        MailAccount.objects.filter(protocol=Protocol.POP3)
        .filter(Q(pop3_last_fetch__isnull=True) | Q(pop3_last_fetch__lte=cutoff))
        .exclude(local_mailbox__fetching_until__gt=now)
        .values_list("pk", flat=True)
    )
    queued = 0
    for account_id in due:
        fetch_pop3.delay(account_id)
        queued += 1
    return queued


@shared_task(ignore_result=True)
def check_mail(account_id: int) -> None:
    """Check account ``account_id`` for new mail and record what changed, for its open pages."""
    account = MailAccount.objects.filter(pk=account_id).select_related("user").first()
    if account is not None:
        _check(account)


@shared_task(ignore_result=True)
def check_due_mail() -> int:
    """Queue a check of each IMAP account not checked for a while; run by beat.

    Returns how many were queued.
    """
    queued = 0
    for account_id in sync.due_for_background_check():
        check_mail.delay(account_id)
        queued += 1
    return queued


def _check(account: MailAccount) -> None:
    try:
        sync.check(account)
    except sync.CheckInProgress:
        logger.info("Account %s is being checked already.", account.pk)
