"""Opening a message: fetch, parse and sanitise once, then serve from the cache.

Parsed messages and sanitised bodies are cached by (account, folder,
UIDVALIDITY, UID): a message's bytes never change under that key, so nothing
here needs invalidating.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from django.conf import settings
from django.core import signing
from django.core.cache import cache

from accounts.models import MailAccount
from webmail.mailstore.base import MailStore, RawMessage
from webmail.mime import ParsedMessage, ParseLimits, parse_message
from webmail.sanitize import SanitizedHtml, sanitize_html

CACHE_SECONDS = 3600
RAW_CACHE_SECONDS = 300
INLINE_SALT = "webmail.inline-part"
INLINE_MAX_AGE = 24 * 3600


def _key(kind: str, account: MailAccount, folder: str, uidvalidity: int, uid: int, *extra) -> str:
    # The server and login are part of the key: an account pointed elsewhere sees
    # other mail under the same UIDs. Hashing keeps any folder name safe as a key.
    scope = (account.pk, account.incoming_host, account.incoming_port, account.login)
    digest = hashlib.sha256(
        "\x00".join(map(str, (*scope, folder, uidvalidity, uid, *extra))).encode()
    ).hexdigest()
    return f"facteur:{kind}:{digest}"


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
        result = sanitize_html(
            parsed_message.html,
            cid_url=cid_url,
            allow_remote=allow_remote,
            max_bytes=settings.MAIL_MAX_RENDER_BYTES,
        )
        cache.set(key, result, CACHE_SECONDS)
    return result


def cached_body(
    account: MailAccount, folder: str, uidvalidity: int, uid: int, remote: bool
) -> SanitizedHtml | None:
    return cache.get(body_cache_key(account, folder, uidvalidity, uid, remote))


def inline_token(
    user_id: int, account_id: int, folder: str, uidvalidity: int, uid: int, part_id: str
) -> str:
    """A signed, expiring name for one inline part.

    The sanitised body lives in a sandboxed, opaque-origin frame whose requests
    carry no session cookie, so its images are authorised by this token instead.
    """
    return signing.dumps(
        [user_id, account_id, folder, uidvalidity, uid, part_id], salt=INLINE_SALT, compress=True
    )


def read_inline_token(token: str) -> tuple[int, int, str, int, int, str] | None:
    try:
        user_id, account_id, folder, uidvalidity, uid, part_id = signing.loads(
            token, salt=INLINE_SALT, max_age=INLINE_MAX_AGE
        )
    except (signing.BadSignature, ValueError, TypeError):
        return None
    return int(user_id), int(account_id), str(folder), int(uidvalidity), int(uid), str(part_id)
