"""Celery tasks: sending mail, what follows a send, and the periodic sweep."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from webmail import outbox
from webmail.mailstore.base import MailStoreError
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
    return len(outbox.sweep())
