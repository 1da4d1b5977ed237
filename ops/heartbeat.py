"""The worker heartbeat: beat queues it, a worker records it, the readiness probe reads it."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from ops.models import Heartbeat

#: The row's name: one heartbeat for the whole deployment.
WORKER = "worker"


def record(now: datetime | None = None) -> None:
    Heartbeat.objects.update_or_create(name=WORKER, defaults={"seen_at": now or timezone.now()})


def age(now: datetime | None = None) -> float | None:
    """Seconds since a worker last recorded the heartbeat; None if none ever did."""
    seen = Heartbeat.objects.filter(name=WORKER).values_list("seen_at", flat=True).first()
    if seen is None:
        return None
    return ((now or timezone.now()) - seen).total_seconds()
