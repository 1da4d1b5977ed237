"""Celery's signals: the task a log line belongs to, and failed tasks counted."""

from __future__ import annotations

from typing import Any

from celery import signals

from ops import logs
from ops.metrics import TASK_FAILURES


@signals.task_prerun.connect
def _task_started(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    logs.task_name.set(getattr(task, "name", None))
    logs.task_id.set(task_id)


@signals.task_postrun.connect
def _task_ended(**_: Any) -> None:
    logs.task_name.set(None)
    logs.task_id.set(None)


@signals.task_failure.connect
def _task_failed(sender: Any = None, **_: Any) -> None:
    TASK_FAILURES.labels(getattr(sender, "name", "unknown")).inc()
