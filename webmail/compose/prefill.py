"""A reply or a forward, ready to write: recipients, subject, thread headers, quote.

Nothing here raises on what a message holds: everything comes from the
parser, which never raises, and the sanitiser, which bounds its work.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Set

from django.utils.translation import gettext as _

from webmail.compose.composition import (
    FORWARD,
    REPLY,
    Composition,
    attachments_of,
    format_addresses,
    message_ids,
)
from webmail.compose.editor_html import clean_editor_html
from webmail.compose.quoting import (
    EMPTY_LINE_HTML,
    forward_html,
    forward_text,
    quote_html,
    quote_text,
)
from webmail.compose.subjects import forward_subject, reply_subject
from webmail.mime import Address, Attachment, ParsedMessage

#: Message identifiers kept in References: the thread's first and its latest
#: ones (RFC 5322, 3.6.4; the middle of a long thread says little).
MAX_REFERENCES = 20

_FILENAME_JUNK_RE = re.compile(r'[\\/:*?"<>|\s]+')
_MAX_FILENAME_CHARS = 120


def _unique(addresses: Iterable[Address], exclude: Set[str] = frozenset()) -> list[Address]:
    """Addresses with an e-mail address, each once, none of ``exclude`` (lowercased)."""
    seen = set(exclude)
    kept = []
    for address in addresses:
        key = address.email.lower()
        if address.email and key not in seen:
            seen.add(key)
            kept.append(address)
    return kept


def _header(message: ParsedMessage, name: str) -> str:
    return next((value for key, value in message.headers if key.lower() == name), "")


def references(message: ParsedMessage) -> list[str]:
    """The References of a reply to ``message``: its own, then its Message-ID."""
    ids = message_ids(_header(message, "references"))
    if not ids:
        # Without References, a single parent in In-Reply-To stands for them.
        parents = message_ids(_header(message, "in-reply-to"))
        ids = parents if len(parents) == 1 else []
    ids = list(dict.fromkeys([*ids, *message_ids(message.message_id or "")[:1]]))
    if len(ids) > MAX_REFERENCES:
        ids = [ids[0], *ids[1 - MAX_REFERENCES :]]
    return ids


def reply(
    message: ParsedMessage,
    *,
    own_addresses: set[str],
    reply_all: bool,
    folder: str,
    uid: int,
    rich: bool = True,
) -> Composition:
    """A reply to ``message`` (found at ``uid`` in ``folder``), to its sender or to all.

    A reply goes to Reply-To, or else From; to a message the person sent
    (from one of ``own_addresses``), to its recipients again. Replying to all
    adds the other recipients, but never the person or anyone twice.
    """
    own = {address.lower() for address in own_addresses}
    from_self = any(address.email.lower() in own for address in message.sender)
    if from_self:
        to = _unique(message.to, own) or _unique(message.to) or _unique(message.sender)
        others: tuple[Address, ...] = message.cc
    else:
        to = _unique(message.reply_to or message.sender)
        others = (*message.to, *message.cc)
    cc = _unique(others, own | {address.email.lower() for address in to}) if reply_all else []
    # The address it was sent to picks the identity to answer as.
    received = (*message.sender, *message.to, *message.cc) if from_self else message.to + message.cc
    identity = next((a.email for a in received if a.email.lower() in own), "")
    ids = message_ids(message.message_id or "")[:1]
    composition = Composition(
        to=format_addresses(to),
        cc=format_addresses(cc),
        subject=reply_subject(message.subject),
        rich=rich,
        in_reply_to=ids[0] if ids else "",
        references=references(message),
        origin_kind=REPLY,
        origin_folder=folder,
        origin_uid=uid,
        identity_email=identity,
    )
    if rich:
        composition.html = clean_editor_html(EMPTY_LINE_HTML + quote_html(message))
    else:
        composition.text = "\n\n" + quote_text(message)
    return composition


def _eml_filename(subject: str) -> str:
    # No path separators, nothing a file system refuses, no invisible characters.
    name = "".join(c for c in subject if unicodedata.category(c)[0] != "C")
    name = " ".join(_FILENAME_JUNK_RE.sub(" ", name).split())[:_MAX_FILENAME_CHARS]
    return (name.strip(". ") or _("message")) + ".eml"


def forward(
    message: ParsedMessage,
    raw: bytes,
    *,
    folder: str,
    uid: int,
    as_attachment: bool,
    rich: bool = True,
) -> Composition:
    """``message`` (``raw`` its bytes) forwarded: shown in the body with its
    attachments carried over, or attached whole as message/rfc822."""
    composition = Composition(
        subject=forward_subject(message.subject),
        rich=rich,
        origin_kind=FORWARD,
        origin_folder=folder,
        origin_uid=uid,
    )
    if as_attachment:
        composition.attachments = [
            Attachment(_eml_filename(message.subject), bytes(raw), "message/rfc822")
        ]
        if rich:
            composition.html = EMPTY_LINE_HTML
        return composition
    composition.attachments = attachments_of(message, raw)
    if rich:
        composition.html = clean_editor_html(EMPTY_LINE_HTML + forward_html(message))
    else:
        composition.text = "\n\n" + forward_text(message)
    return composition
