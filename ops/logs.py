"""Structured logs: one JSON object a line, with the request or the task it belongs to.

Only what the code logs goes out: the message, and for requests the method,
path (without its query string, which may hold search words), view, status and
duration. Nothing here adds message content or passwords; the rule that no log
call passes them holds everywhere else.
"""

from __future__ import annotations

import contextvars
import json
import logging
from datetime import UTC, datetime

#: The request being answered, or the task being run, in this thread or task.
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
task_name: contextvars.ContextVar[str | None] = contextvars.ContextVar("task_name", default=None)
task_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("task_id", default=None)

#: Fields a log call may add with ``extra=``, copied into the JSON object.
EXTRA_FIELDS = ("method", "path", "view", "status", "duration_ms")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, var in (("request_id", request_id), ("task", task_name), ("task_id", task_id)):
            value = var.get()
            if value is not None:
                event[name] = value
        for name in EXTRA_FIELDS:
            if hasattr(record, name):
                event[name] = getattr(record, name)
        if record.exc_info:
            event["exception"] = self.formatException(record.exc_info)
        return json.dumps(event, ensure_ascii=False, default=str)
