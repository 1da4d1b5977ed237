"""The heartbeat task, queued by beat every ``HEARTBEAT_SECONDS``."""

from celery import shared_task

from ops import heartbeat as heartbeats


@shared_task(ignore_result=True)
def heartbeat() -> None:
    heartbeats.record()
