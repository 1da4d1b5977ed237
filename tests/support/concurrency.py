"""Running test code beside the test, as a second worker would."""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.db import connection


def in_thread(function: Callable[[], object]) -> tuple[threading.Thread, dict]:
    """Run ``function`` in a thread of its own, with its own database connection.

    Returns the started thread and a dict that gets "result" or "error" once it ends.
    """
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["result"] = function()
        except Exception as exc:
            outcome["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome
