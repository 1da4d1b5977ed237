"""Celery tasks: sending mail and the outbox's periodic sweep."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from webmail import outbox
from webmail.mailstore.base import MailStoreError
from webmail.transport.imap import ConnectionProblem

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def send_outgoing(pk: int) -> str:
    """Send outgoing message ``pk`` if it is due; a no-op for one already handled."""
    result = outbox.deliver(pk)
    if result.outcome is outbox.Outcome.RETRY:
        outbox.dispatch(pk, result.retry_at)
    elif result.outcome is outbox.Outcome.SENT:
        try:
            outbox.copy_to_sent(pk)
        except (MailStoreError, ConnectionProblem, OSError) as exc:
            logger.warning("Outgoing message %s sent but not copied to Sent (%s)", pk, exc)
            copy_to_sent.apply_async((pk,), countdown=settings.SENT_COPY_RETRY_DELAY)
    logger.info("Outgoing message %s: %s", pk, result.outcome.value)
    return result.outcome.value


@shared_task(bind=True, ignore_result=True)
def copy_to_sent(self, pk: int) -> None:
    """Copy sent message ``pk`` to its account's Sent folder, retrying while the server fails."""
    try:
        outbox.copy_to_sent(pk)
    except (MailStoreError, ConnectionProblem, OSError) as exc:
        raise self.retry(
            exc=exc,
            countdown=settings.SENT_COPY_RETRY_DELAY,
            max_retries=settings.SENT_COPY_RETRIES,
        ) from exc


@shared_task(ignore_result=True)
def sweep_outbox() -> int:
    """Queue again the messages whose task was lost; run by beat every minute."""
    return len(outbox.sweep())
