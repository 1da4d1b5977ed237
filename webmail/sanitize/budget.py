"""A CPU budget for sanitising one message.

The sanitiser's work is linear in its input, but bleach is pure Python: a
message built to be as expensive as its size allows still costs seconds. The
budget is the thread's CPU time, so that a busy machine does not push honest
mail over it, and it is checked every few hundred tokens.
"""

from __future__ import annotations

import time

#: Tokens between two readings of the clock.
_STRIDE = 256


class OverBudget(Exception):
    """Sanitising took more CPU time than its budget."""


class Budget:
    """``seconds`` of this thread's CPU time from now on; None for no limit."""

    def __init__(self, seconds: float | None = None) -> None:
        self._end = None if seconds is None else time.thread_time() + seconds
        self._count = 0

    def spend(self) -> None:
        """Count one step; raise ``OverBudget`` once the time is spent."""
        if self._end is None:
            return
        # The first step reads the clock too, so that a zero budget stops at once.
        if self._count % _STRIDE == 0 and time.thread_time() >= self._end:
            raise OverBudget
        self._count += 1


UNLIMITED = Budget()
