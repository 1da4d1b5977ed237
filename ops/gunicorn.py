"""Gunicorn hooks and logging for Facteur's operators, read by ``webmail/gunicorn_conf.py``.

A web process that exits takes its live gauges (IMAP connections) with it, in
the metrics' multi-process mode; with ``FACTEUR_LOG_FORMAT=json`` Gunicorn's own
lines are JSON too.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import multiprocess


def child_exit(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)


def json_logconfig() -> dict[str, Any] | None:
    """Gunicorn's ``logconfig_dict`` for JSON lines, or None for its plain lines."""
    if os.environ.get("FACTEUR_LOG_FORMAT", "").strip().lower() != "json":
        return None
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "ops.logs.JsonFormatter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": "INFO", "handlers": ["stderr"]},
        "loggers": {
            name: {"handlers": ["stderr"], "level": "INFO", "propagate": False}
            for name in ("gunicorn.error", "gunicorn.access")
        },
    }
