"""Which senders may show remote content: a person's trust, applied only to mail whose From
the office's own server vouches for.

A From is only words in a message: anyone can write "bank@example.org". A sender
trusted by a person counts for a message only when the topmost Authentication-
Results field of the server named by ``FACTEUR_AUTHSERV_ID`` says DMARC passed
for the From domain (or a DKIM signature of it passed). Without that setting no
trust applies automatically: remote content is then shown one message at a time.
"""

from __future__ import annotations

from email import policy
from email.parser import BytesHeaderParser

from django.conf import settings

from webmail.mime import ParsedMessage
from webmail.mime.authresults import MAX_FIELDS, own_server_vouches
from webmail.models import TrustedSender

#: Bytes of a message in which its header fields are looked for.
_MAX_HEADER_BYTES = 256 * 1024


def _authentication_results(raw: bytes) -> list[str]:
    headers = BytesHeaderParser(policy=policy.compat32).parsebytes(raw[:_MAX_HEADER_BYTES])
    values = headers.get_all("Authentication-Results") or []
    return [str(value) for value in values[:MAX_FIELDS]]


def _domain(address: str) -> str:
    domain = address.rpartition("@")[2].lower()
    if domain.isascii():
        return domain
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return ""


def verified_sender(raw: bytes, message: ParsedMessage) -> str | None:
    """The From address of ``message`` (``raw`` its bytes), lowercased, when the office's
    server vouches for its domain; None otherwise, and always without FACTEUR_AUTHSERV_ID."""
    if not settings.AUTHSERV_ID or len(message.sender) != 1 or not message.sender[0].email:
        return None
    email = message.sender[0].email.lower()
    vouched = own_server_vouches(_authentication_results(raw), settings.AUTHSERV_ID, _domain(email))
    return email if vouched else None


def remote_content_trusted(user, raw: bytes, message: ParsedMessage) -> bool:
    """Whether ``user`` trusts the sender of ``message``, and that sender is verified."""
    sender = verified_sender(raw, message)
    return sender is not None and TrustedSender.is_trusted(user, sender)
