"""Celery's signals: the task a log line belongs to, and failed tasks counted."""

from __future__ import annotations

import os
from typing import Any

from celery import signals
from prometheus_client import multiprocess

from ops import logs
from webmail.metrics import TASK_FAILURES


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


@signals.worker_process_shutdown.connect
def _worker_process_gone(pid: int | None = None, **_: Any) -> None:
    # Its live gauges (IMAP connections) go with it, in multi-process mode.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid or os.getpid())
