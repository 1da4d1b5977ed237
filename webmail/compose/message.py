"""A composition as a message to send or a draft to keep, and a draft back as a composition.

A draft keeps what was typed, even when it is not yet an address ("bob@",
"Ann <"): recipient fields that parse go into the usual headers (so that
other mail programs show them), and any field that would not read back
exactly as typed is also kept as typed in ``X-Facteur-Draft-<field>``. A
draft also keeps its Bcc, the message it answers or forwards
(``X-Facteur-Origin``) and whether it was written as rich or plain text
(``X-Facteur-Format``).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import re
from collections.abc import Sequence
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import compat32

from webmail.compose.composition import (
    ORIGIN_KINDS,
    Composition,
    attachments_of,
    format_addresses,
    message_ids,
)
from webmail.compose.editor_html import clean_editor_html, html_to_text, text_to_editor_html
from webmail.mime import Address, Attachment, parse_message
from webmail.mime.build import (
    WIRE_POLICY,
    HeaderInjection,
    InvalidAddress,
    build_message,
    parse_recipients,
)
from webmail.mime.headers import LINE_BREAKS_RE, decode_header, one_line, parse_addresses

ORIGIN_HEADER = "X-Facteur-Origin"
FORMAT_HEADER = "X-Facteur-Format"
TYPED_HEADER = "X-Facteur-Draft-%s"
RICH = "rich"
PLAIN = "plain"

_HEADER_END_RE = re.compile(rb"\r?\n\r?\n")
_UID_RE = re.compile(r"[0-9]{1,10}")
_MAX_HEADER_BLOCK = 1024 * 1024
# Typed recipient fields are up to 20,000 characters; an origin's folder name
# up to 1,000 characters, in base64 of UTF-8.
_MAX_TYPED_CHARS = 40_000


def _body(comp: Composition) -> tuple[str, str | None]:
    """The text and the HTML (None in plain mode) to send."""
    if comp.rich:
        html = clean_editor_html(comp.html)
        return html_to_text(html), html
    return comp.text.replace("\r\n", "\n"), None


def _attachments(comp: Composition) -> list[Attachment]:
    # A name or a type from the browser that spans lines is made one line
    # rather than refused: the person could do nothing about it.
    return [
        Attachment(
            one_line(attachment.filename),
            attachment.content,
            "application/octet-stream"
            if LINE_BREAKS_RE.search(attachment.content_type)
            else attachment.content_type,
        )
        for attachment in comp.attachments
    ]


def _encode_origin(comp: Composition) -> str | None:
    if comp.origin_kind not in ORIGIN_KINDS or comp.origin_uid is None:
        return None
    folder = base64.urlsafe_b64encode(comp.origin_folder.encode("utf-8")).decode("ascii")
    return f"{comp.origin_kind} {comp.origin_uid} {folder.rstrip('=')}"


def _parses(value: str, field: str) -> bool:
    try:
        parse_recipients(value, field)
    except (InvalidAddress, HeaderInjection):
        return False
    return True


def to_message(
    comp: Composition,
    *,
    sender: Address,
    message_id_domain: str,
    draft: bool = False,
) -> tuple[EmailMessage, list[str]]:
    """The message for ``comp`` and its envelope recipients.

    Rich text is sent as the cleaned editor HTML with its text version; plain
    text as text only (a signature is part of what the person wrote). To send
    (``draft`` false), raises InvalidAddress or HeaderInjection as
    ``build_message`` does. A draft never fails on what was typed in the
    recipient fields and keeps its Bcc: serialise it with ``draft_bytes``.
    """
    text, html = _body(comp)
    fields = {"To": comp.to, "Cc": comp.cc, "Bcc": comp.bcc}
    if draft:
        fields = {name: one_line(value) for name, value in fields.items()}
        kept = {name: value if _parses(value, name) else "" for name, value in fields.items()}
    else:
        kept = fields
    parents = message_ids(comp.in_reply_to)
    message, envelope = build_message(
        sender=sender,
        to=kept["To"],
        cc=kept["Cc"],
        bcc=kept["Bcc"],
        subject=one_line(comp.subject) if draft else comp.subject,
        text=text,
        html=html,
        attachments=_attachments(comp),
        in_reply_to=parents[0] if parents else None,
        references=message_ids(" ".join(comp.references)),
        message_id_domain=message_id_domain,
        require_recipient=not draft,
    )
    if not draft:
        return message, envelope
    if kept["Bcc"]:
        message["Bcc"] = parse_recipients(kept["Bcc"], "Bcc")
    for name, typed in fields.items():
        shown = format_addresses(parse_addresses(str(message[name]))) if message[name] else ""
        if typed != shown:
            message[TYPED_HEADER % name] = typed
    message[FORMAT_HEADER] = RICH if comp.rich else PLAIN
    origin = _encode_origin(comp)
    if origin is not None:
        message[ORIGIN_HEADER] = origin
    return message, envelope


# restore ------------------------------------------------------------------------------------


def _raw_headers(raw: bytes) -> dict[str, str]:
    """The first value of each header of ``raw`` as written (lowercase names)."""
    head = raw[:_MAX_HEADER_BLOCK]
    end = _HEADER_END_RE.search(head)
    if end is not None:
        head = head[: end.end()]
    headers: dict[str, str] = {}
    for name, value in BytesParser(policy=compat32).parsebytes(head, headersonly=True).raw_items():
        headers.setdefault(name.lower(), value)
    return headers


def _address_key(email: str) -> str:
    local, at, domain = email.strip().lower().rpartition("@")
    # A domain that is not a valid name is compared as it is.
    with contextlib.suppress(UnicodeError):
        domain = domain.encode("idna").decode("ascii")
    return f"{local}{at}{domain}"


def _keys(addresses: Sequence[Address]) -> set[str]:
    return {_address_key(address.email) for address in addresses if address.email}


def _recipients(headers: dict[str, str], name: str) -> tuple[str, tuple[Address, ...]]:
    """A recipient field as typed, and the addresses of its header."""
    addresses = parse_addresses(headers.get(name.lower()))
    typed = headers.get((TYPED_HEADER % name).lower())
    if typed is not None:
        typed = decode_header(typed, max_chars=_MAX_TYPED_CHARS)
        # Kept as typed only while it agrees with the header: another mail
        # program may have changed the recipients and left this header alone.
        try:
            agrees = _keys(_typed_addresses(typed, name)) == _keys(addresses)
        except (InvalidAddress, HeaderInjection):
            agrees = not addresses
        if agrees:
            return typed, addresses
    return format_addresses(addresses), addresses


def _typed_addresses(typed: str, name: str) -> list[Address]:
    addresses = []
    for item in parse_recipients(typed, name):
        for address in getattr(item, "addresses", (item,)):
            addresses.append(Address(address.display_name, address.addr_spec))
    return addresses


def _origin(value: str | None) -> tuple[str, str, int | None]:
    """The kind, folder and UID of ``X-Facteur-Origin``; ("", "", None) for none."""
    parts = decode_header(value, max_chars=_MAX_TYPED_CHARS).split(" ")
    if len(parts) not in (2, 3) or parts[0] not in ORIGIN_KINDS or not _UID_RE.fullmatch(parts[1]):
        return "", "", None
    encoded = parts[2] if len(parts) == 3 else ""
    try:
        padded = encoded + "=" * (-len(encoded) % 4)
        folder = base64.b64decode(padded, altchars="-_", validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return "", "", None
    return parts[0], folder, int(parts[1])


def restore(raw: bytes, *, envelope_to: Sequence[str] = ()) -> Composition:
    """A draft, or an outbox row's bytes, back into a composition, attachments included.

    Bcc is the draft's; for an outbox row (no Bcc in the message) the
    ``envelope_to`` recipients that are in neither To nor Cc.
    """
    parsed = parse_message(raw)
    headers = _raw_headers(raw)
    to, to_addresses = _recipients(headers, "To")
    cc, cc_addresses = _recipients(headers, "Cc")
    bcc, __ = _recipients(headers, "Bcc")
    if not bcc and envelope_to:
        shown = _keys((*to_addresses, *cc_addresses))
        bcc = ", ".join(a for a in dict.fromkeys(envelope_to) if _address_key(a) not in shown)
    stated = decode_header(headers.get(FORMAT_HEADER.lower())).lower()
    rich = stated == RICH if stated in (RICH, PLAIN) else parsed.html is not None
    html = text = ""
    if rich:
        if parsed.html is not None:
            html = clean_editor_html(parsed.html)
        else:
            html = text_to_editor_html(parsed.text or "")
    elif parsed.text is not None:
        # The message's text ends with a line break whether or not the person typed one.
        text = parsed.text.removesuffix("\n")
    else:
        text = html_to_text(parsed.html or "")
    parents = message_ids(decode_header(headers.get("in-reply-to"), max_chars=_MAX_TYPED_CHARS))
    kind, folder, uid = _origin(headers.get(ORIGIN_HEADER.lower()))
    return Composition(
        to=to,
        cc=cc,
        bcc=bcc,
        subject=parsed.subject,
        html=html,
        text=text,
        rich=rich,
        in_reply_to=parents[0] if parents else "",
        references=message_ids(
            decode_header(headers.get("references"), max_chars=_MAX_TYPED_CHARS)
        ),
        origin_kind=kind,
        origin_folder=folder,
        origin_uid=uid,
        identity_email=parsed.sender[0].email if parsed.sender else "",
        attachments=attachments_of(parsed, raw),
    )


def draft_bytes(message: EmailMessage) -> bytes:
    """A draft as it is stored in Drafts: unlike what is sent, it keeps its Bcc."""
    return message.as_bytes(policy=WIRE_POLICY)
