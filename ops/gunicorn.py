"""Gunicorn settings for the metrics in multi-process mode: ``gunicorn -c python:ops.gunicorn``.

A web process that exits takes its live gauges (IMAP connections) with it.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import multiprocess


def child_exit(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
