"""Brute-force protection for sign-in.

Failures are counted in the cache per normalised username and per client
address over a fixed window (``settings.LOGIN_FAILURE_WINDOW`` seconds, from
the first failure). Once a counter reaches its limit, further attempts are
refused without the password being checked, whether the username exists or
not, until the window has passed.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

logger = logging.getLogger("accounts.signin")

# A whole office usually reaches Facteur from one address, so the address may
# fail as often as this many people before everyone behind it is locked out.
ADDRESS_LIMIT_FACTOR = 10


def normalise_username(username: str) -> str:
    return username.strip().casefold()


def client_address(request: HttpRequest | None) -> str:
    """The address a sign-in comes from.

    Behind the TLS proxy that the settings trust for ``X-Forwarded-Proto``,
    every request reaches Facteur from the proxy's address, so one address
    counter would let anyone lock everybody out: there the client is the last
    ``X-Forwarded-For`` entry, the one the proxy itself added (entries before it
    are the client's own and spoofable). Without such a proxy, forwarded
    headers are spoofable and deliberately ignored.
    """
    if request is None:
        return ""
    if settings.SECURE_PROXY_SSL_HEADER:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "").rpartition(",")[2].strip()
        try:
            return str(ipaddress.ip_address(forwarded))
        except ValueError:
            pass
    return request.META.get("REMOTE_ADDR", "")


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]


class SignInThrottle:
    """The failure counters of one sign-in attempt: its username and its address."""

    def __init__(self, username: str, address: str) -> None:
        self.username_digest = _digest(normalise_username(username))
        self.address = address
        self._username_key = f"accounts:signin-failures:user:{self.username_digest}"
        self._address_key = f"accounts:signin-failures:addr:{_digest(address)}"

    @classmethod
    def for_request(cls, request: HttpRequest | None, username: str) -> SignInThrottle:
        return cls(username, client_address(request))

    def is_locked(self) -> bool:
        limit = settings.LOGIN_FAILURE_LIMIT
        counts = cache.get_many([self._username_key, self._address_key])
        return (
            counts.get(self._username_key, 0) >= limit
            or counts.get(self._address_key, 0) >= limit * ADDRESS_LIMIT_FACTOR
        )

    def record_failure(self) -> None:
        failures = _increment(self._username_key)
        _increment(self._address_key)
        # The username may be a mistyped password: log only its digest.
        logger.warning(
            "sign-in failed: user digest %s, address %s, failure %d",
            self.username_digest,
            self.address,
            failures,
        )

    def record_refusal(self) -> None:
        logger.warning(
            "sign-in refused while locked: user digest %s, address %s",
            self.username_digest,
            self.address,
        )

    def clear(self) -> None:
        """After a successful sign-in; the address keeps its count, other people share it."""
        cache.delete(self._username_key)


def _increment(key: str) -> int:
    window = settings.LOGIN_FAILURE_WINDOW
    if cache.add(key, 1, window):
        return 1
    try:
        count = cache.incr(key)
    except ValueError:
        # The key expired between add() and incr(): this failure starts a new window.
        cache.set(key, 1, window)
        return 1
    if count == 1:
        # Some backends recreate an expired key on incr() without an expiry.
        cache.touch(key, window)
    return count
