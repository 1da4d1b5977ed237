"""The readiness probe: can this deployment serve people now?

Each check raises when its part is unavailable. The reasons go to the log only;
the probe itself answers no more than ready or not, to anyone who asks.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import redis
from django.conf import settings
from django.core.cache import cache
from django.db import connection

from ops import heartbeat

logger = logging.getLogger(__name__)

#: Seconds a check may wait on Redis before the part counts as down.
REDIS_TIMEOUT = 2.0

_clients: dict[str, redis.Redis] = {}
_clients_lock = threading.Lock()


class NotReady(Exception):
    """A part is up but not doing its work (a stale heartbeat)."""


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def check_broker() -> None:
    _redis(settings.CELERY_BROKER_URL).ping()


def check_cache() -> None:
    # A read: the probe writes nothing. The Redis cache raises when Redis is down.
    cache.get("ops:readiness")


def check_heartbeat() -> None:
    age = heartbeat.age()
    if age is None:
        raise NotReady("no worker has recorded a heartbeat yet")
    if age > settings.HEARTBEAT_MAX_AGE:
        raise NotReady(f"the last heartbeat is {age:.0f} s old (a worker or beat is down)")


CHECKS: dict[str, Callable[[], None]] = {
    "database": check_database,
    "broker": check_broker,
    "cache": check_cache,
    "heartbeat": check_heartbeat,
}


def failures() -> dict[str, str]:
    """The checks that failed, with why; empty when every part is ready."""
    failed: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            check()
        except Exception as exc:
            failed[name] = f"{type(exc).__name__}: {exc}"
            logger.warning("Not ready: %s unavailable (%s)", name, failed[name])
    return failed


def _redis(url: str) -> redis.Redis:
    # One client (and connection pool) per URL, so a probe does not open a new connection.
    with _clients_lock:
        client = _clients.get(url)
        if client is None:
            client = _clients[url] = redis.Redis.from_url(
                url, socket_connect_timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT
            )
        return client
