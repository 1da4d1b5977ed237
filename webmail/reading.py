"""Opening a message: fetch, parse and sanitise once, then serve from the cache.

Parsed messages and sanitised bodies are cached by (account, folder,
UIDVALIDITY, UID): a message's bytes never change under that key, so nothing
here needs invalidating.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.urls import reverse
from django.utils.crypto import constant_time_compare, salted_hmac

from accounts.models import MailAccount
from webmail.mailstore.base import MailStore, RawMessage
from webmail.mime import ParsedMessage, ParseLimits, extract_parts, parse_message
from webmail.sanitize import (
    Budget,
    OverBudget,
    SanitizedHtml,
    markup_text,
    plain_text_to_html,
    sanitize_html,
)

logger = logging.getLogger(__name__)

CACHE_SECONDS = 3600

#: Inline parts a browser may show itself; anything else is downloaded.
INLINE_IMAGE_TYPES = frozenset(
    {"image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp", "image/x-icon"}
)
RAW_CACHE_SECONDS = 300
INLINE_SALT = "webmail.inline-part"
REMOTE_SALT = "webmail.remote-content"
# A token needs to outlive only the cached body that holds it; it is a bearer
# credential (it may end up in access logs), so it lives no longer than that.
INLINE_MAX_AGE = 2 * CACHE_SECONDS


def _scope(account: MailAccount) -> tuple:
    # The owner, server and login decide what mail an account id stands for: an
    # account given to someone else, or pointed elsewhere, shares nothing cached
    # or signed with what it was before.
    return (
        account.pk,
        account.user_id,
        account.incoming_host,
        account.incoming_port,
        account.login,
    )


def _digest(*parts) -> str:
    return hashlib.sha256("\x00".join(map(str, parts)).encode()).hexdigest()


def _scope_digest(account: MailAccount) -> str:
    # Half a digest is plenty inside a signed token, and keeps image URLs short.
    return _digest(*_scope(account))[:32]


def _key(kind: str, account: MailAccount, folder: str, uidvalidity: int, uid: int, *extra) -> str:
    # Hashing keeps any folder name safe as a key.
    return f"facteur:{kind}:{_digest(*_scope(account), folder, uidvalidity, uid, *extra)}"


def fetch_raw(store: MailStore, account: MailAccount, folder: str, uid: int) -> RawMessage:
    """The message's bytes; kept briefly so that its inline images cost no refetch."""
    message = store.message(folder, uid)
    if len(message.raw) <= settings.MAIL_MAX_RENDER_BYTES:
        cache.set(
            _key("raw", account, folder, message.uidvalidity, uid),
            message,
            RAW_CACHE_SECONDS,
        )
    return message


def cached_raw(
    store: MailStore, account: MailAccount, folder: str, uidvalidity: int, uid: int
) -> RawMessage | None:
    """The message if it still has ``uidvalidity``, from the cache when possible."""
    message = cache.get(_key("raw", account, folder, uidvalidity, uid))
    if message is None:
        message = fetch_raw(store, account, folder, uid)
    return message if message.uidvalidity == uidvalidity else None


def parse_limits() -> ParseLimits:
    """One set of limits for listing parts and for giving them back."""
    return ParseLimits(max_message_bytes=settings.MAIL_MAX_MESSAGE_BYTES)


def parsed(account: MailAccount, message: RawMessage) -> ParsedMessage:
    key = _key("parsed", account, message.folder, message.uidvalidity, message.uid)
    result = cache.get(key)
    if result is None:
        result = parse_message(message.raw, limits=parse_limits())
        cache.set(key, result, CACHE_SECONDS)
    return result


def inline_image(
    store: MailStore, account: MailAccount, folder: str, uidvalidity: int, uid: int, part_id: str
) -> tuple | None:
    """``(content_type, filename, payload)`` of one inline image of the body, or None.

    A body shows all its images at once: the first request takes every one of
    them from a single fetch and parse, and keeps them, whatever the size of
    the message, up to ``INLINE_CACHE_BYTES``; the requests that arrive
    meanwhile wait for it rather than fetch the message again.
    """
    key = _key("inline", account, folder, uidvalidity, uid)
    images = cache.get(key)
    if images is None:
        with _one_at_a_time(key):
            images = cache.get(key)
            if images is None:
                raw = cached_raw(store, account, folder, uidvalidity, uid)
                if raw is None:
                    return None
                images = _inline_images(account, raw)
                cache.set(key, images, RAW_CACHE_SECONDS)
    if part_id in images.get(_UNCACHED, ()):
        raw = cached_raw(store, account, folder, uidvalidity, uid)
        if raw is None:
            return None
        return extract_parts(raw.raw, [part_id], limits=parse_limits()).get(part_id)
    return images.get(part_id)


#: Bytes of one message's inline images kept in the cache; images beyond are
#: fetched again when asked for.
INLINE_CACHE_BYTES = 10 * 1024 * 1024
#: How long a request waits for another one that is fetching the same images.
INLINE_WAIT_SECONDS = 30
_UNCACHED = "uncached"


def _inline_images(account: MailAccount, message: RawMessage) -> dict:
    wanted = [
        part.part_id
        for part in parsed(account, message).attachments
        if part.content_id and part.content_type in INLINE_IMAGE_TYPES
    ]
    images: dict = {}
    uncached = []
    room = INLINE_CACHE_BYTES
    for part_id, image in extract_parts(message.raw, wanted, limits=parse_limits()).items():
        size = len(image[2])
        if size <= room:
            images[part_id] = image
            room -= size
        else:
            uncached.append(part_id)
    images[_UNCACHED] = tuple(uncached)
    return images


@contextmanager
def _one_at_a_time(key: str) -> Iterator[None]:
    """Lets one request (of any process) do the work for ``key`` while the others wait
    up to ``INLINE_WAIT_SECONDS`` for its result, then try it themselves."""
    lock = f"{key}:lock"
    if cache.add(lock, True, INLINE_WAIT_SECONDS):
        try:
            yield
        finally:
            cache.delete(lock)
        return
    deadline = time.monotonic() + INLINE_WAIT_SECONDS
    while time.monotonic() < deadline and cache.get(key) is None and cache.get(lock):
        time.sleep(0.05)
    yield


def body_cache_key(
    account: MailAccount, folder: str, uidvalidity: int, uid: int, remote: bool
) -> str:
    return _key("body", account, folder, uidvalidity, uid, remote)


def sanitised_body(
    account: MailAccount,
    message: RawMessage,
    parsed_message: ParsedMessage,
    *,
    allow_remote: bool,
    cid_url: Callable[[str], str | None],
) -> SanitizedHtml | None:
    if parsed_message.html is None:
        return None
    key = body_cache_key(account, message.folder, message.uidvalidity, message.uid, allow_remote)
    result = cache.get(key)
    if result is None:
        result = safe_body(parsed_message, cid_url=cid_url, allow_remote=allow_remote)
        cache.set(key, result, CACHE_SECONDS)
    return result


def safe_body(
    message: ParsedMessage, *, cid_url: Callable[[str], str | None], allow_remote: bool
) -> SanitizedHtml:
    """The message's HTML sanitised within ``MAIL_SANITIZE_SECONDS`` of CPU time, or
    else its text, so that no message holds a web thread or a worker for longer."""
    try:
        return sanitize_html(
            message.html or "",
            cid_url=cid_url,
            allow_remote=allow_remote,
            max_bytes=settings.MAIL_MAX_RENDER_BYTES,
            budget=Budget(settings.MAIL_SANITIZE_SECONDS),
        )
    except OverBudget:
        logger.warning("A message's HTML went over its sanitising budget; shown as text.")
    text = message.text if message.text and message.text.strip() else markup_text(message.html)
    # plain_text_to_html escapes everything it does not itself produce.
    return SanitizedHtml(
        html=f'<div style="white-space: pre-wrap">{plain_text_to_html(text)}</div>',
        remote_blocked=False,
        over_budget=True,
    )


def cid_url_resolver(
    account: MailAccount, raw: RawMessage, message: ParsedMessage
) -> Callable[[str], str | None]:
    """Maps a ``cid:`` reference of the body to the signed URL of that inline image."""
    by_cid = {part.content_id: part for part in message.attachments if part.content_id}
    # A body may name one image thousands of times: one signature for each part.
    made: dict[str, str] = {}

    def cid_url(content_id: str) -> str | None:
        part = by_cid.get(content_id)
        if part is None or part.content_type not in INLINE_IMAGE_TYPES:
            return None
        if part.part_id not in made:
            token = inline_token(account, raw.folder, raw.uidvalidity, raw.uid, part.part_id)
            made[part.part_id] = reverse("webmail:inline-part", args=[token])
        return made[part.part_id]

    return cid_url


def cached_body(
    account: MailAccount, folder: str, uidvalidity: int, uid: int, remote: bool
) -> SanitizedHtml | None:
    return cache.get(body_cache_key(account, folder, uidvalidity, uid, remote))


def remote_content_grant(account: MailAccount, folder: str, uidvalidity: int, uid: int) -> str:
    """Proof that the person let one message load remote content.

    Links carry it rather than a bare flag, so that a page elsewhere cannot send
    the person to one of their messages with its remote content let through
    (which would tell that page who they are, and that they read it).
    """
    value = _digest(*_scope(account), folder, uidvalidity, uid)
    return salted_hmac(REMOTE_SALT, value).hexdigest()[:32]


def is_remote_content_granted(
    account: MailAccount, folder: str, uidvalidity: int, uid: int, grant: str | None
) -> bool:
    expected = remote_content_grant(account, folder, uidvalidity, uid)
    return bool(grant) and constant_time_compare(grant, expected)


@dataclass(frozen=True)
class InlinePart:
    """What an inline image's token names: one part of one message of one account."""

    account_id: int
    scope: str  # the digest of the account's scope when the token was made
    folder: str
    uidvalidity: int
    uid: int
    part_id: str

    def belongs_to(self, account: MailAccount) -> bool:
        return account.pk == self.account_id and self.scope == _scope_digest(account)


def inline_token(
    account: MailAccount, folder: str, uidvalidity: int, uid: int, part_id: str
) -> str:
    """A signed, expiring name for one inline part.

    The sanitised body lives in a sandboxed, opaque-origin frame whose requests
    carry no session cookie, so its images are authorised by this token instead.
    It holds the account's scope, so that it stops working once the account
    changes owner, server or login.
    """
    return signing.dumps(
        [account.pk, _scope_digest(account), folder, uidvalidity, uid, part_id],
        salt=INLINE_SALT,
        compress=True,
    )


def read_inline_token(token: str) -> InlinePart | None:
    """The part a token names; None when it is forged, malformed or expired."""
    try:
        claims = signing.loads(token, salt=INLINE_SALT, max_age=INLINE_MAX_AGE)
        account_id, scope, folder, uidvalidity, uid, part_id = claims
        return InlinePart(
            int(account_id), str(scope), str(folder), int(uidvalidity), int(uid), str(part_id)
        )
    except (signing.BadSignature, ValueError, TypeError):
        return None
