"""Attachments a message being written takes from another one, fetched only when posted.

Forwarding a message, or reopening a draft or an outgoing message, carries
that message's attachments into the editor. Opening the editor is a GET, which
writes nothing: the page holds a signed reference to each part (where it is,
its name, type and size) and the parts' bytes are fetched from their message
when the form is posted, to send or to save. A reference is signed for one
account, so it cannot be turned against another person's mail.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from django.core import signing
from django.utils.translation import gettext as _

from webmail import reading
from webmail.compose import drafts
from webmail.mailstore.base import MailStore, MailStoreError
from webmail.mime import Attachment, ParsedMessage, extract_parts
from webmail.models import OutgoingMessage

if TYPE_CHECKING:
    from accounts.models import MailAccount

#: Where a carried part comes from: a message of a folder, a draft, an outgoing message.
MESSAGE, DRAFT, OUTGOING = "message", "draft", "outgoing"
#: The part_id of a message carried whole (forwarded as an attachment).
WHOLE = ""
#: More references than this in one post are refused.
MAX_CARRIED = 100


class CarriedPartGone(Exception):
    """A carried part's message, or the part, is no longer there."""


@dataclass(frozen=True)
class CarriedPart:
    source: str  # MESSAGE, DRAFT or OUTGOING
    folder: str  # MESSAGE only
    number: int  # the message's UID, or the outgoing message's id
    part_id: str  # WHOLE for the message itself
    filename: str
    content_type: str
    size: int


def _salt(account: MailAccount) -> str:
    return f"webmail.compose.carried:{account.pk}"


def sign(account: MailAccount, part: CarriedPart) -> str:
    return signing.dumps(asdict(part), salt=_salt(account), compress=True)


def read(account: MailAccount, token: str) -> CarriedPart | None:
    """The part ``token`` names for ``account``; None when it was not made for it."""
    try:
        return CarriedPart(**signing.loads(token, salt=_salt(account)))
    except (signing.BadSignature, TypeError, ValueError):
        return None


def parts_of(
    message: ParsedMessage, *, source: str, number: int, folder: str = ""
) -> list[CarriedPart]:
    """Every part of ``message`` that is not its body, as ``attachments_of`` gives them."""
    return [
        CarriedPart(source, folder, number, p.part_id, p.filename, p.content_type, p.size)
        for p in message.attachments
    ]


def whole(filename: str, size: int, *, folder: str, uid: int) -> CarriedPart:
    """Message ``uid`` of ``folder`` attached whole, as message/rfc822."""
    return CarriedPart(MESSAGE, folder, uid, WHOLE, filename, "message/rfc822", size)


def _source_bytes(account: MailAccount, store: MailStore, part: CarriedPart) -> bytes:
    if part.source == MESSAGE:
        return reading.fetch_raw(store, account, part.folder, part.number).raw
    if part.source == DRAFT:
        return drafts.load_draft(account, part.number)
    row = OutgoingMessage.objects.filter(pk=part.number, account=account).first()
    if row is None:
        raise CarriedPartGone
    return bytes(row.raw)


def fetch(account: MailAccount, store: MailStore, parts: Sequence[CarriedPart]) -> list[Attachment]:
    """The parts with their bytes, in order; each source message is read once.

    Raises CarriedPartGone when a message or a part is no longer there.
    """
    by_source: dict[tuple[str, str, int], list[CarriedPart]] = {}
    for part in parts:
        by_source.setdefault((part.source, part.folder, part.number), []).append(part)
    found: dict[CarriedPart, Attachment] = {}
    for group in by_source.values():
        try:
            raw = _source_bytes(account, store, group[0])
        except MailStoreError as exc:
            raise CarriedPartGone from exc
        ids = [part.part_id for part in group if part.part_id != WHOLE]
        extracted = extract_parts(raw, ids, limits=reading.parse_limits()) if ids else {}
        for part in group:
            if part.part_id == WHOLE:
                found[part] = Attachment(part.filename, raw, part.content_type)
            elif part.part_id in extracted:
                content_type, _name, content = extracted[part.part_id]
                found[part] = Attachment(part.filename, content, content_type)
            else:
                raise CarriedPartGone
    return [found[part] for part in parts]


def gone_message() -> str:
    return _(
        "An attachment of the original message is no longer there: it was moved or "
        "deleted. Remove it from this message, or attach it again."
    )


def read_all(account: MailAccount, tokens: Iterable[str]) -> list[tuple[str, CarriedPart]]:
    """The valid references among ``tokens``, each with its token; others are dropped."""
    found = []
    for token in tokens:
        part = read(account, token)
        if part is not None:
            found.append((token, part))
    return found
