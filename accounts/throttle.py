"""Brute-force protection for sign-in.

Attempts are counted in the cache per person and per client address over a
fixed window (``settings.LOGIN_FAILURE_WINDOW`` seconds, from the first
attempt). The person is resolved first, so a username and an e-mail address of
one person, in any spelling the database takes for them, share one counter; a
name that is nobody's is counted by its normalised form.

An attempt is counted *before* the password is checked, with the cache's
atomic increment: of any number of requests sent at once, only as many as the
limit allows reach the password check. A successful sign-in gives its attempt
back. Once a counter is over its limit, attempts are refused without the
password being checked, whether the person exists or not.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import unicodedata

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

from accounts.backends import find_person

logger = logging.getLogger("accounts.signin")

# A whole office usually reaches Facteur from one address, so the address may
# fail as often as this many people before everyone behind it is locked out.
ADDRESS_LIMIT_FACTOR = 10


def normalise_username(username: str) -> str:
    """One key for the spellings of a name: compatibility forms and case folded alike."""
    folded = unicodedata.normalize("NFKC", username.strip()).casefold()
    return unicodedata.normalize("NFKC", folded)


def client_address(request: HttpRequest | None) -> str:
    """The address a sign-in comes from.

    Behind a trusted proxy, ``webmail.proxies.TrustedProxyMiddleware`` has
    already put the client's address in REMOTE_ADDR; forwarded headers from
    anyone else are never read.
    """
    if request is None:
        return ""
    return request.META.get("REMOTE_ADDR", "")


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def person_key(username: str) -> str:
    """What the counter of ``username`` is kept under: the normal form of the username of
    the person it names, or of the name itself when it names nobody."""
    person = find_person(username.strip())
    return normalise_username(person.get_username() if person is not None else username)


class SignInThrottle:
    """The counters of one sign-in attempt: its person (or name) and its address."""

    def __init__(self, username: str, address: str) -> None:
        self.username_digest = _digest(person_key(username))
        self.address = address
        self._username_key = f"accounts:signin-attempts:user:{self.username_digest}"
        self._address_key = f"accounts:signin-attempts:addr:{_digest(address)}"

    @classmethod
    def for_request(cls, request: HttpRequest | None, username: str) -> SignInThrottle:
        return cls(username, client_address(request))

    def is_locked(self) -> bool:
        """Whether the next attempt would be refused; counts nothing."""
        limit = settings.LOGIN_FAILURE_LIMIT
        counts = cache.get_many([self._username_key, self._address_key])
        return (
            counts.get(self._username_key, 0) >= limit
            or counts.get(self._address_key, 0) >= limit * ADDRESS_LIMIT_FACTOR
        )

    def begin(self) -> bool:
        """Count this attempt; False when it is over a limit and must be refused unchecked."""
        limit = settings.LOGIN_FAILURE_LIMIT
        attempts = _increment(self._username_key)
        from_address = _increment(self._address_key)
        return attempts <= limit and from_address <= limit * ADDRESS_LIMIT_FACTOR

    def record_failure(self) -> None:
        # The username may be a mistyped password: log only its digest.
        logger.warning(
            "sign-in failed: user digest %s, address %s, failure %d",
            self.username_digest,
            self.address,
            cache.get(self._username_key, 0),
        )

    def record_refusal(self) -> None:
        logger.warning(
            "sign-in refused while locked: user digest %s, address %s",
            self.username_digest,
            self.address,
        )

    def clear(self) -> None:
        """After a successful sign-in: the person starts afresh, the address gets its attempt back.

        The address keeps its failures: other people share it.
        """
        cache.delete(self._username_key)
        # The address's window may have passed meanwhile.
        with contextlib.suppress(ValueError):
            cache.decr(self._address_key)


def _increment(key: str) -> int:
    window = settings.LOGIN_FAILURE_WINDOW
    if cache.add(key, 1, window):
        return 1
    try:
        count = cache.incr(key)
    except ValueError:
        # The key expired between add() and incr(): this attempt starts a new window.
        return 1 if cache.add(key, 1, window) else cache.incr(key)
    if count == 1:
        # Some backends recreate an expired key on incr() without an expiry.
        cache.touch(key, window)
    return count
