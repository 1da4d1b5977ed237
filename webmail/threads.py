"""Conversations: a folder's messages grouped into threads (RFC 5256, REFERENCES).

Servers with THREAD=REFERENCES group them themselves (``UID THREAD``); for the
others, and for the mail Facteur keeps, ``thread`` does the same from each
message's Message-ID, In-Reply-To, References, Subject and Date: Jamie
Zawinski's algorithm as RFC 5256 words it, subject grouping included.

It needs those headers of every message of the folder: a fallback's cost grows
with the folder, which is why its callers cache the result by the folder's
exact contents. Everything here is pure: no server, no database.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from webmail.compose.composition import message_ids
from webmail.mime.headers import decode_header

#: The headers threading reads, for a FETCH of just them.
THREAD_HEADERS = ("MESSAGE-ID", "IN-REPLY-TO", "REFERENCES", "SUBJECT", "DATE")

#: References kept of one message: the thread's first and its latest ones. A
#: longer list says nothing more about where the message belongs, and each one
#: costs work for every message of the folder.
MAX_REFERENCES = 100

#: Characters of a subject compared when threading by subject.
MAX_SUBJECT_CHARS = 1_000

#: The header block read of one message; a References longer than this is cut.
_MAX_HEADER_BYTES = 64 * 1024
_HEADER_END_RE = re.compile(rb"\r?\n\r?\n")
_FIELD_NAMES = frozenset(name.lower() for name in THREAD_HEADERS)
_EARLIEST = datetime.min.replace(tzinfo=UTC)

# RFC 5256, 2.1: what base-subject extraction removes.
_WSP_RE = re.compile(r"\s+")
_TRAILER_RE = re.compile(r"(?:\s|\(fwd\))+$", re.IGNORECASE)
_BLOB = r"\[[^\[\]]*\]\s*"
_LEADER_RE = re.compile(rf"^(?:(?:{_BLOB})*(?:re|fwd?)\s*(?:{_BLOB})?:|\s+)", re.IGNORECASE)
_BLOB_RE = re.compile(rf"^{_BLOB}")
_FWD_HEADER, _FWD_TRAILER = "[fwd:", "]"


@dataclass(frozen=True)
class ThreadHeaders:
    """What threading needs of one message."""

    uid: int
    message_id: str | None  # the first valid one, with its <>
    references: tuple[str, ...]  # its parents, the nearest last (RFC 5256, step 1)
    subject: str  # decoded
    date: datetime | None  # sent (Date), or when it arrived if that cannot be read


def reference_ids(references: str, in_reply_to: str) -> tuple[str, ...]:
    """A message's parents as RFC 5256 reads them.

    The identifiers of References; without any, the first one of In-Reply-To.
    """
    ids = message_ids(references)
    if not ids:
        ids = message_ids(in_reply_to)[:1]
    if len(ids) > MAX_REFERENCES:
        ids = [ids[0], *ids[1 - MAX_REFERENCES :]]
    return tuple(ids)


def reference_fields(raw: bytes) -> tuple[str, str]:
    """The identifiers of a message's In-Reply-To and of its References, each space-separated,
    the References bounded as ``reference_ids`` bounds them; never raises."""
    fields = _fields(raw)
    references = _ids(fields.get("references"))
    if len(references) > MAX_REFERENCES:
        references = [references[0], *references[1 - MAX_REFERENCES :]]
    return " ".join(_ids(fields.get("in-reply-to"))), " ".join(references)


def read_headers(uid: int, raw: bytes, arrival: datetime | None = None) -> ThreadHeaders:
    """The threading headers of a message, or of a reply to ``HEADER.FIELDS``; never raises.

    Only the header block is read. ``arrival`` stands for a Date that cannot be read.
    """
    fields = _fields(raw)
    ids = _ids(fields.get("message-id"))
    return ThreadHeaders(
        uid=uid,
        message_id=ids[0] if ids else None,
        references=reference_ids(
            " ".join(_ids(fields.get("references"))), " ".join(_ids(fields.get("in-reply-to")))
        ),
        subject=decode_header(fields.get("subject")),
        date=_date(fields.get("date")) or _aware(arrival),
    )


def _fields(raw: bytes) -> dict[str, bytes]:
    """The first value of each threading header, unfolded.

    As lenient as mail servers are: RFC 5322's obsolete syntax allows white space
    before the colon ("Subject  : ..."), which the ``email`` package does not read.
    """
    end = _HEADER_END_RE.search(raw, 0, _MAX_HEADER_BYTES)
    fields: dict[str, bytes] = {}
    current: str | None = None
    for line in raw[: end.start() if end else _MAX_HEADER_BYTES].splitlines():
        if line[:1] in (b" ", b"\t"):
            if current is not None:
                fields[current] += b" " + line.strip()
            continue
        name, colon, value = line.partition(b":")
        key = name.strip().decode("ascii", "replace").lower()
        current = key if colon and key in _FIELD_NAMES and key not in fields else None
        if current is not None:
            fields[current] = value.strip()
    return fields


def _ids(value: bytes | None) -> list[str]:
    """The message identifiers of a field; comments and white space inside one, which the
    obsolete syntax allows ("<1234 @ local(home) .example>"), are left out."""
    text = decode_header(value, max_chars=_MAX_HEADER_BYTES)
    return message_ids("".join(_without_comments(text).split()))


def _without_comments(text: str) -> str:
    """``text`` without its RFC 5322 comments, nested or not, in one pass."""
    if "(" not in text:
        return text
    kept: list[str] = []
    depth = 0
    escaped = False
    for character in text:
        if escaped:
            escaped = False
        elif character == "\\":
            escaped = True
        elif character == "(":
            depth += 1
            continue
        elif character == ")" and depth:
            depth -= 1
            continue
        if not depth:
            kept.append(character)
    return "".join(kept)


def _date(value: bytes | None) -> datetime | None:
    if not value:
        return None
    try:
        date = parsedate_to_datetime(_without_comments(decode_header(value, max_chars=200)))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return date if date.tzinfo is not None else date.replace(tzinfo=UTC)


def _aware(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def base_subject(subject: str) -> tuple[str, bool]:
    """The subject without reply and forward marks (RFC 5256, 2.1), casefolded, and
    whether any such mark was removed."""
    # Marks are taken off one at a time from the front: the cap keeps that
    # cheap. Subjects that agree on so many characters are one subject.
    text = _WSP_RE.sub(" ", subject[:MAX_SUBJECT_CHARS]).strip()
    marked = False
    while True:
        # (2) trailers: "(fwd)" and white space at the end.
        trimmed = _TRAILER_RE.sub("", text)
        marked |= trimmed.rstrip() != text.rstrip()
        text = trimmed
        # (3)-(5) leaders "Re:", "Fwd:", "[list] Re[2]:" and lone blobs, as long as any is left.
        while True:
            leader = _LEADER_RE.match(text)
            if leader and leader.group(0).strip():
                marked = True
            if leader:
                text = text[leader.end() :]
                continue
            blob = _BLOB_RE.match(text)
            if blob and text[blob.end() :].strip():
                text = text[blob.end() :]
                continue
            break
        # (6) "[fwd: ...]" around the whole subject.
        lowered = text.casefold()
        if lowered.startswith(_FWD_HEADER) and lowered.endswith(_FWD_TRAILER):
            text = text[len(_FWD_HEADER) : -len(_FWD_TRAILER)].strip()
            marked = True
            continue
        return text.casefold(), marked


class _Container:
    """A node of the thread tree: a message, or a message only referred to (a dummy)."""

    __slots__ = ("children", "message", "parent")

    def __init__(self, message: ThreadHeaders | None = None) -> None:
        self.message = message
        self.parent: _Container | None = None
        self.children: list[_Container] = []

    def adopt(self, child: _Container) -> None:
        child.parent = self
        self.children.append(child)

    def orphan(self) -> None:
        if self.parent is not None:
            self.parent.children.remove(self)
            self.parent = None

    def has_ancestor(self, other: _Container) -> bool:
        node: _Container | None = self
        while node is not None:
            if node is other:
                return True
            node = node.parent
        return False

    def date(self) -> datetime:
        """The sent date of the message, or of a dummy's first child (RFC 5256, step 5)."""
        node: _Container | None = self
        while node is not None and node.message is None:
            node = node.children[0] if node.children else None
        return (node.message.date if node and node.message else None) or _EARLIEST

    def sort_key(self) -> tuple[datetime, int]:
        first = self
        while first.message is None and first.children:
            first = first.children[0]
        return (self.date(), first.message.uid if first.message else 0)

    def subject(self) -> ThreadHeaders | None:
        """The message whose subject names this container: its own, or its first child's."""
        if self.message is not None:
            return self.message
        return self.children[0].message if self.children else None

    def walk(self) -> Iterator[_Container]:
        """This container and all below it, depth first, without recursion."""
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))


def _link(parent: _Container, child: _Container) -> bool:
    """Make ``child`` a child of ``parent`` unless that would close a loop."""
    if parent is child:
        return False
    # A container without children has no descendant: no loop without a walk.
    if child.children and parent.has_ancestor(child):
        return False
    parent.adopt(child)
    return True


def thread(messages: Iterable[ThreadHeaders]) -> list[list[int]]:
    """The threads of ``messages``, each as its UIDs in tree order (a parent before its
    replies), the threads in the order of their first message's date."""
    table: dict[str, _Container] = {}
    containers: list[_Container] = []

    def container(message_id: str) -> _Container:
        found = table.get(message_id)
        if found is None:
            found = table[message_id] = _Container()
            containers.append(found)
        return found

    # (1) Link each message to its references. The first of two messages with one
    # Message-ID (by UID, as RFC 5256 says by sequence) keeps it.
    for message in sorted(messages, key=lambda m: m.uid):
        own = table.get(message.message_id) if message.message_id else None
        if own is not None and own.message is None:
            own.message = message
        else:
            own = _Container(message)
            containers.append(own)
            if message.message_id and message.message_id not in table:
                table[message.message_id] = own
        chain = [container(ref) for ref in message.references]
        for parent, child in itertools.pairwise(chain):
            if child.parent is None:
                _link(parent, child)
        own.orphan()
        if chain:
            _link(chain[-1], own)

    # (2)-(4) The roots, with dummies pruned, and (5) in date order.
    roots = _prune([c for c in containers if c.parent is None])
    _sort(roots)
    # (6) Roots with one base subject are one conversation.
    roots = _merge_subjects(roots)
    _sort(roots)
    return [uids for root in roots if (uids := [n.message.uid for n in root.walk() if n.message])]


def _prune(roots: list[_Container]) -> list[_Container]:
    """Drop dummies without children; put a dummy's children in its place (RFC 5256, 4).

    At the top a dummy stays when it holds more than one child: they are one
    conversation. Each container's children are pruned before it, without recursion.
    """
    order = [node for root in roots for node in root.walk()]
    for node in reversed(order):
        node.children = _pruned(node.children, node)
    return _pruned(roots, None)


def _pruned(siblings: list[_Container], parent: _Container | None) -> list[_Container]:
    kept: list[_Container] = []
    for node in siblings:
        if node.message is not None:
            kept.append(node)
        elif node.children and (parent is not None or len(node.children) == 1):
            for child in node.children:
                child.parent = parent
            kept.extend(node.children)
        elif node.children:
            kept.append(node)
    return kept


def _sort(roots: list[_Container]) -> None:
    for root in roots:
        for node in root.walk():
            node.children.sort(key=_Container.sort_key)
    roots.sort(key=_Container.sort_key)


def _merge_subjects(roots: list[_Container]) -> list[_Container]:
    """RFC 5256, step 6: group the roots whose messages share a base subject."""
    table: dict[str, _Container] = {}
    for root in roots:
        message = root.subject()
        subject, marked = base_subject(message.subject) if message else ("", False)
        if not subject:
            continue
        current = table.get(subject)
        if (
            current is None
            or (current.message is not None and root.message is None)
            or (_is_reply(current) and not marked)
        ):
            table[subject] = root

    made: list[_Container] = []
    for root in roots:
        if root.parent is not None:
            continue  # already merged into another root
        message = root.subject()
        subject, marked = base_subject(message.subject) if message else ("", False)
        target = table.get(subject) if subject else None
        if target is None or target is root:
            continue
        if target.message is None and root.message is None:
            for child in root.children:
                target.adopt(child)
            root.children = []
        elif target.message is None:
            target.adopt(root)
        elif root.message is None:
            root.adopt(target)
            table[subject] = root
        elif marked and not _is_reply(target):
            target.adopt(root)
        else:
            holder = _Container()
            holder.adopt(target)
            holder.adopt(root)
            table[subject] = holder
            made.append(holder)
    # A root merged into another is no root any more; a dummy emptied is dropped later.
    return [node for node in (*roots, *made) if node.parent is None]


def _is_reply(container: _Container) -> bool:
    message = container.subject()
    return bool(message) and base_subject(message.subject)[1]
