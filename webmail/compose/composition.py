"""A message being written, as the compose form holds it."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from webmail.mime.build import Attachment
from webmail.mime.headers import Address
from webmail.mime.parse import ParsedMessage, extract_parts

REPLY = "reply"
FORWARD = "forward"
ORIGIN_KINDS = (REPLY, FORWARD)

# A message identifier as it may go into In-Reply-To and References: printable
# ASCII without spaces or angle brackets inside, and of a sensible length.
_MESSAGE_ID_RE = re.compile(r"<[\x21-\x3b\x3d\x3f-\x7e]{1,250}>")
# Characters that make a display name need quotes (RFC 5322, 3.2.3 specials).
_SPECIALS = frozenset('()<>[]:;@\\,."')


@dataclass
class Composition:
    """What a person writes: the fields of the compose form, attachments with their bytes."""

    to: str = ""  # as a person types them
    cc: str = ""
    bcc: str = ""
    subject: str = ""
    html: str = ""  # the editor's HTML (rich text); "" in plain mode
    text: str = ""  # the body in plain mode; unused in rich mode
    rich: bool = True
    in_reply_to: str = ""
    references: list[str] = field(default_factory=list)
    origin_kind: str = ""  # "", REPLY or FORWARD
    origin_folder: str = ""
    origin_uid: int | None = None
    identity_email: str = ""  # the From address, to pick the identity it was written as
    attachments: list[Attachment] = field(default_factory=list)


def format_address(address: Address) -> str:
    """An address as a person would type it: ``Name <email>``, the name quoted when needed."""
    if not address.name:
        return address.email
    name = address.name
    if any(character in _SPECIALS for character in name):
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{name} <{address.email}>"


def format_addresses(addresses: Iterable[Address]) -> str:
    """Addresses for a recipient field, separated by commas."""
    return ", ".join(format_address(address) for address in addresses if address.email)


def message_ids(text: str) -> list[str]:
    """The message identifiers in ``text`` (a References header, a form field), in order."""
    return _MESSAGE_ID_RE.findall(text)


def attachments_of(message: ParsedMessage, raw: bytes) -> list[Attachment]:
    """Every part of ``message`` (``raw`` its bytes) that is not its body, with its bytes,
    in order: attachments and inline parts alike."""
    if not message.attachments:
        return []
    found = extract_parts(raw, [part.part_id for part in message.attachments])
    return [
        Attachment(filename, content, content_type)
        for content_type, filename, content in (
            found[part.part_id] for part in message.attachments if part.part_id in found
        )
    ]
