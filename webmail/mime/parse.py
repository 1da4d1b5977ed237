"""A message's bytes as the message screen shows them.

A thin layer on the standard library's ``email`` package (policy ``default``):
the stdlib builds the tree of parts; this module bounds the work that a
message may cost, chooses the body the way Thunderbird does, and turns each
part into plain values. Nothing here raises, whatever the bytes.

Parts are numbered like IMAP BODY sections (RFC 3501): the parts of a
multipart are 1, 2, ...; the parts of a nested multipart 2.1, 2.2, ...; the
body of a single-part message is 1.
"""

from __future__ import annotations

import functools
import html
import logging
import mimetypes
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import errors
from email import utils as email_utils
from email.feedparser import BytesFeedParser
from email.generator import BytesGenerator
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import EmailPolicy
from io import BytesIO
from typing import Any
from urllib.parse import unquote

from django.utils.translation import gettext_lazy as _

from webmail.mime.headers import Address, decode_header, decode_text, parse_addresses

logger = logging.getLogger(__name__)

# What the person is told when a message is not shown in full, most serious first.
_PROBLEMS = {
    "too_large": _("This message is too large to display; only its headers are shown."),
    "too_complex": _("This message is too complex to display in full; showing what could be read."),
    "encrypted": _("This message is encrypted; it cannot be read here."),
    "opaque_signed": _(
        "This message is signed in a form that cannot be displayed; its content is in the "
        "attached file."
    ),
    "damaged": _("This message's structure is damaged; showing what could be read."),
    "truncated": _("This message is very long; only its beginning is shown."),
}

_BODY_TEXT_TYPES = frozenset({"text/plain", "text/html", "text/enriched", "text/richtext"})
_MESSAGE_TYPES = frozenset({"message/rfc822", "message/global"})
_SMIME_TYPES = frozenset({"application/pkcs7-mime", "application/x-pkcs7-mime"})
# A multipart whose parts could not be found: its raw text is shown instead.
_STRUCTURE_DEFECTS = (errors.NoBoundaryInMultipartDefect, errors.StartBoundaryNotFoundDefect)

#: Extensions for a nameless part where the stdlib's built-in table has none.
_EXTENSIONS = {
    "text/calendar": ".ics",
    "application/ms-tnef": ".dat",
    "application/pgp-signature": ".asc",
    "application/pgp-encrypted": ".asc",
    "application/pgp-keys": ".asc",
    "application/pkcs7-signature": ".p7s",
    "application/x-pkcs7-signature": ".p7s",
    "application/pkcs7-mime": ".p7m",
    "application/x-pkcs7-mime": ".p7m",
    "message/global": ".eml",
    "message/delivery-status": ".txt",
    "message/global-delivery-status": ".txt",
    "message/disposition-notification": ".txt",
    "message/global-disposition-notification": ".txt",
    "message/feedback-report": ".txt",
    "message/global-headers": ".txt",
    "text/markdown": ".md",
}
# Built-in defaults only, so that names do not depend on the machine's /etc/mime.types.
_MIME_TYPES = mimetypes.MimeTypes()

_CHUNK_BYTES = 64 * 1024
_MAX_HEADER_BLOCK = 1024 * 1024
# Bounds on a header value as read: the stdlib's parameter parser rescans the
# value for each ";" inside quotes. A 255-byte file name in RFC 2231 form takes
# about 1,000 characters and 20 parameters.
_MAX_HEADER_READ = 2_048
_MAX_PARAMETERS = 64
_MAX_FILENAME_BYTES = 255

_LINE_BREAK_RE = re.compile(r"[\r\n]")
_CONTENT_TYPE_RE = re.compile(r"[a-z0-9!#$&^_.+-]{1,63}/[a-z0-9!#$&^_.+-]{1,63}")
_PART_ID_RE = re.compile(r"[1-9][0-9]{0,5}(?:\.[1-9][0-9]{0,5}){0,99}")
_MESSAGE_ID_RE = re.compile(r"<[^<>\s]+>")
_META_CHARSET_RE = re.compile(rb"<meta[^>]{0,200}?charset=[\"']?([a-zA-Z0-9_.:-]{1,40})", re.I)
_CID_REFERENCE_RE = re.compile(r"cid:([^\s\"'<>()\\]+)", re.IGNORECASE)
_PATH_SEPARATOR_RE = re.compile(r"[/\\]")
# Control characters, and the invisible format characters that can disguise an
# extension ("invoice\u202efdp.exe" shows as "invoiceexe.pdf").
_FILENAME_JUNK_RE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u00ad\u061c\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]"
)
# Characters that Windows refuses in a name, and quotes that a header written
# carelessly from the name would end on.
_FILENAME_RESERVED_RE = re.compile(r'[:*?"<>|]')


@dataclass(frozen=True)
class ParseLimits:
    """Bounds on the work that one message may cost.

    Beyond them the message is shown in part and ``ParsedMessage.problem`` says so.
    """

    #: Larger messages are not parsed beyond their headers.
    max_message_bytes: int = 50 * 1024 * 1024
    #: Nor are messages of more lines: the parser keeps an object per line.
    max_lines: int = 1_000_000
    #: Nesting of multiparts and attached messages; parts deeper are left out.
    max_depth: int = 20
    #: Parts (multiparts included); parsing stops at the first part beyond.
    max_parts: int = 500
    #: Characters of text, and of HTML, in the body; the rest is cut.
    max_text_chars: int = 2_000_000
    #: Characters of each decoded header value.
    max_header_chars: int = 2_000
    #: Headers kept for the "all headers" view.
    max_headers: int = 500

    def __post_init__(self) -> None:
        # The body is chosen recursively, one level of recursion per level of nesting.
        if not 1 <= self.max_depth <= 100:
            raise ValueError("max_depth must be between 1 and 100.")


DEFAULT_LIMITS = ParseLimits()


@dataclass(frozen=True)
class Part:
    """An attachment or an inline part of a message."""

    part_id: str  # IMAP BODY section number: "1", "2.1", ...
    filename: str  # safe to serve: no path, no control character, never empty
    content_type: str  # lowercase "main/sub"
    # Decoded bytes; for base64 computed from the encoded length, for an
    # attached message the length of its source, approximately.
    size: int
    content_id: str | None  # without <>
    inline: bool  # Content-Disposition inline, or referenced by cid: from the HTML body


@dataclass(frozen=True)
class ParsedMessage:
    subject: str
    sender: tuple[Address, ...]  # From
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    reply_to: tuple[Address, ...]
    date: datetime | None  # aware
    message_id: str | None  # with its <>
    text: str | None  # the text/plain body
    html: str | None  # the text/html body, not sanitised
    attachments: tuple[Part, ...]  # every part not shown as the body, inline images included
    # None when the message is shown in full; otherwise a short explanation for
    # the person (a lazy translation, rendered in the reader's language).
    problem: str | None
    headers: tuple[tuple[str, str], ...]  # every header, decoded, for "all headers"


class _ReadPolicy(EmailPolicy):
    """``policy.default``, except that a header is read as its plain, unfolded text.

    ``policy.default`` parses a structured header into an object on every read,
    with a parser that raises on the headers of some real messages, recurses
    once per nested comment and costs milliseconds per kilobyte. ``Message``'s
    own methods (content type, parameters, boundary) work on the plain text;
    addresses are parsed apart, within bounds (see ``webmail.mime.headers``).
    """

    def header_fetch_parse(self, name: str, value: Any) -> Any:
        if hasattr(value, "name"):
            return value  # set by a program, already an object
        value = value[:_MAX_HEADER_READ]
        if value.count(";") > _MAX_PARAMETERS:
            value = ";".join(value.split(";", _MAX_PARAMETERS + 1)[:_MAX_PARAMETERS])
        return _LINE_BREAK_RE.sub("", value)


_POLICY = _ReadPolicy()
# Writes headers back exactly as read: refolding would parse them again.
_SOURCE_POLICY = _POLICY.clone(refold_source="none", linesep="\r\n")


class _TooComplex(Exception):
    pass


@dataclass
class _Budget:
    limits: ParseLimits
    parts: int = 0
    root: _Node | None = None


class _Node(EmailMessage):
    """A part that counts itself against the parse's budget when it joins the tree.

    The stdlib's parser recurses once per level of nesting: stopping it here
    keeps absurd nesting or part counts from exhausting the stack or the clock.
    """

    def __init__(self, policy: EmailPolicy | None = None, *, budget: _Budget | None = None):
        super().__init__(policy)
        self.budget = budget
        self.depth = 0
        self._params: dict[str, dict[str, str]] = {}

    def params(self, header: str) -> dict[str, str]:
        """A header's parameters, decoded (RFC 2231), read once.

        ``get_param`` parses the whole header again on each call.
        """
        if header not in self._params:
            params: dict[str, str] = {}
            for name, value in (self.get_params(header=header) or [])[1:]:
                params.setdefault(name.lower(), _param_text(value))
            self._params[header] = params
        return self._params[header]

    def attach(self, payload: Any) -> None:
        budget = self.budget
        if budget is not None:
            if budget.root is None:
                # The parser's first attachment is always to the root.
                budget.root = self
            budget.parts += 1
            payload.depth = self.depth + 1
            if payload.depth > budget.limits.max_depth or budget.parts > budget.limits.max_parts:
                raise _TooComplex
        super().attach(payload)


def _param_text(value: str | tuple[str, str, str]) -> str:
    if not isinstance(value, tuple):
        return value
    # RFC 2231: (charset, language, text whose characters are the bytes).
    charset, _language, text = value
    try:
        data = text.encode("latin-1", "surrogateescape")
    except UnicodeEncodeError:
        return text
    return decode_text(data, charset or None)


def _read_headers(raw: bytes) -> _Node:
    head = raw[:_MAX_HEADER_BLOCK]
    end = re.search(rb"\r?\n\r?\n", head)
    if end is not None:
        head = head[: end.end()]
    return BytesParser(_Node, policy=_POLICY).parsebytes(head, headersonly=True)


def _read(raw: bytes, limits: ParseLimits) -> tuple[_Node, str | None]:
    """The tree of parts, and the key of the problem that left part of it out."""
    if len(raw) > limits.max_message_bytes or raw.count(b"\n") > limits.max_lines:
        return _read_headers(raw), "too_large"
    budget = _Budget(limits)
    parser = BytesFeedParser(_factory=functools.partial(_Node, budget=budget), policy=_POLICY)
    try:
        # Fed in chunks: the whole message is never held a second time as text.
        for start in range(0, len(raw), _CHUNK_BYTES):
            parser.feed(raw[start : start + _CHUNK_BYTES])
        return parser.close(), None
    except _TooComplex:
        return budget.root, "too_complex"
    finally:
        # No reference cycle, so that a large tree is freed as soon as it is dropped.
        budget.root = None


def _raw_header(node: _Node, name: str) -> str | None:
    name = name.lower()
    for key, value in node.raw_items():
        if key.lower() == name:
            return value
    return None


def _is_container(node: _Node) -> bool:
    return node.get_content_maintype() == "multipart" and isinstance(node.get_payload(), list)


def _children(node: _Node, part_id: str) -> list[tuple[str, _Node]]:
    return [
        (f"{part_id}.{number}" if part_id else str(number), child)
        for number, child in enumerate(node.get_payload(), 1)
    ]


def _leaves(node: _Node, part_id: str = "") -> Iterator[tuple[str, _Node]]:
    """Every part below ``node`` that is not a multipart, in order, with its number."""
    if not _is_container(node):
        yield part_id or "1", node
        return
    stack = [iter(_children(node, part_id))]
    while stack:
        for child_id, child in stack[-1]:
            if _is_container(child):
                stack.append(iter(_children(child, child_id)))
                break
            yield child_id, child
        else:
            stack.pop()


def _find(root: _Node, part_id: str) -> _Node:
    """The part numbered ``part_id``, the way an IMAP server numbers it."""
    if not _PART_ID_RE.fullmatch(part_id):
        raise KeyError(part_id)
    node, in_message = root, True
    for number in map(int, part_id.split(".")):
        if not in_message and _content_type(node) in _MESSAGE_TYPES:
            inner = node.get_payload()
            if not isinstance(inner, list) or not inner:
                raise KeyError(part_id)
            node, in_message = inner[0], True
        if _is_container(node):
            children = node.get_payload()
            if number > len(children):
                raise KeyError(part_id)
            node = children[number - 1]
        elif not (in_message and number == 1):
            # Only a single-part message has a part 1 that is itself.
            raise KeyError(part_id)
        in_message = False
    return node


def _content_type(node: _Node) -> str:
    content_type = node.get_content_type()
    return content_type if _CONTENT_TYPE_RE.fullmatch(content_type) else "application/octet-stream"


def _content_id(node: _Node) -> str | None:
    value = decode_header(_raw_header(node, "content-id"), max_chars=998)
    value = value.strip().removeprefix("<").removesuffix(">").strip()
    return value or None


def _attachment_name(node: _Node) -> str:
    name = node.params("content-disposition").get("filename")
    name = name or node.params("content-type").get("name")
    # Many mailers put RFC 2047 words where RFC 2231 belongs; decode those too.
    return decode_header(name) if name else ""


def _extension(content_type: str) -> str:
    extension = _EXTENSIONS.get(content_type) or _MIME_TYPES.guess_extension(content_type)
    return extension or (".txt" if content_type.startswith("text/") else "")


def _safe_filename(name: str, content_type: str) -> str:
    """A name a browser can save as is: last path component only, no control or
    format characters, none that Windows refuses (each becomes "_"), no leading
    dot, at most 255 bytes, never empty."""
    components = [part for part in _PATH_SEPARATOR_RE.split(name) if part.strip()]
    name = _FILENAME_JUNK_RE.sub("", components[-1] if components else "")
    name = " ".join(_FILENAME_RESERVED_RE.sub("_", name).split())
    stripped = name.strip(". ")
    if not stripped:
        name = "attachment" + _extension(content_type)
    elif name.startswith(".") and "." not in stripped:
        name = f"attachment.{stripped}"  # ".eml" names only an extension
    else:
        name = stripped
    if len(name.encode()) <= _MAX_FILENAME_BYTES:
        return name
    stem, dot, extension = name.rpartition(".")
    if not (dot and stem and len(extension) <= 16):
        stem, extension = name, ""
    suffix = f".{extension}" if extension else ""
    room = _MAX_FILENAME_BYTES - len(suffix.encode())
    return stem.encode()[:room].decode("utf-8", "ignore").rstrip(" .") + suffix


def _filename(node: _Node, content_type: str) -> str:
    name = _attachment_name(node)
    if not name and content_type in _MESSAGE_TYPES:
        inner = node.get_payload()
        if isinstance(inner, list) and inner:
            subject = decode_header(_raw_header(inner[0], "subject"))
            name = f"{subject}.eml" if subject else ""
    return _safe_filename(name, content_type)


def _is_rendering(node: _Node) -> bool:
    """Whether an unchosen part of a multipart/alternative is another rendering of the body."""
    content_type = _content_type(node)
    return content_type.startswith("text/") and content_type != "text/calendar"


def _complete(node: _Node) -> bool:
    """Whether parsing read all of ``node``: it stops inside a part when a limit is hit."""
    stack = [node]
    while stack:
        part = stack.pop()
        payload = part.get_payload()
        if payload is None or (part.get_content_maintype() == "message" and not payload):
            return False
        if isinstance(payload, list):
            stack.extend(payload)
    return True


def _source_size(node: _Node) -> int:
    """About the length of a subtree's source, without writing it out."""
    size, stack = 0, [node]
    while stack:
        part = stack.pop()
        size += sum(len(name) + len(value) + 4 for name, value in part.raw_items()) + 2
        payload = part.get_payload()
        if isinstance(payload, list):
            stack.extend(payload)
        elif isinstance(payload, str):
            size += len(payload)
    return size


def _size(node: _Node) -> int:
    payload = node.get_payload()
    if isinstance(payload, list):
        return _source_size(node)
    if not isinstance(payload, str):
        return 0
    encoding = str(node.get("content-transfer-encoding", "")).strip().lower()
    if encoding == "base64":
        # Computed, not decoded: an attachment list should not decode every attachment.
        characters = len(payload) - sum(map(payload.count, "\r\n\t "))
        padding = payload[-80:].rstrip()[-2:].count("=")
        return max(characters * 3 // 4 - padding, 0)
    if encoding in {"", "7bit", "8bit", "binary"}:
        return len(payload)
    return len(_decoded(node))


def _decoded(node: _Node) -> bytes:
    """A leaf part's payload, its Content-Transfer-Encoding undone."""
    if not isinstance(node.get_payload(), str):
        # No payload at all: parsing stopped inside this part.
        return b""
    data = node.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def _serialize(message: _Node) -> bytes:
    buffer = BytesIO()
    BytesGenerator(buffer, policy=_SOURCE_POLICY).flatten(message)
    return buffer.getvalue()


def _payload(node: _Node) -> bytes:
    """A leaf part's decoded bytes, or an attached message's source."""
    if _is_container(node):
        raise KeyError("a multipart is not an attachment")
    if not _complete(node):
        raise KeyError("this part was not read in full")
    payload = node.get_payload()
    if isinstance(payload, list):
        return b"".join(_serialize(inner) for inner in payload)
    return _decoded(node)


def _normalise(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "\ufffd")


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        date = email_utils.parsedate_to_datetime(decode_header(value, max_chars=200))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return date if date.tzinfo is not None else date.replace(tzinfo=UTC)


def _message_id(value: str | None) -> str | None:
    text = decode_header(value, max_chars=998)
    match = _MESSAGE_ID_RE.search(text)
    return match.group(0) if match else (text or None)


@dataclass(frozen=True)
class _Section:
    """One stretch of the body, as text, as HTML, or both (an alternative)."""

    text: str | None
    html: str | None


@dataclass
class _Found:
    """What a subtree gives: its body sections in order, and its other parts."""

    sections: list[_Section] = field(default_factory=list)
    parts: list[tuple[str, _Node]] = field(default_factory=list)

    def extend(self, other: _Found) -> None:
        self.sections += other.sections
        self.parts += other.parts

    @property
    def has_html(self) -> bool:
        return any(section.html is not None for section in self.sections)

    def text(self) -> str | None:
        texts = [section.text for section in self.sections if section.text is not None]
        if not texts:
            return None
        # Blank stretches (empty parts, stray preambles) would only add space.
        return "\n\n".join(text for text in texts if text.strip())

    def html(self) -> str | None:
        if not self.has_html:
            return None
        return "".join(
            section.html
            if section.html is not None
            else f'<pre style="white-space: pre-wrap">{html.escape(section.text)}</pre>'
            for section in self.sections
            if section.html is not None or (section.text and section.text.strip())
        )


class _Reader:
    """Chooses the body among the parts, like Thunderbird.

    In multipart/alternative the last HTML and the last plain text versions are
    kept; in multipart/related the root part is the body and the others are its
    inline parts; elsewhere every text part that is not an attachment is body,
    in order. Recursion follows nesting, which parsing bounded.
    """

    def __init__(self, limits: ParseLimits):
        self.limits = limits
        self.problems: set[str] = set()

    def read(self, root: _Node, problem: str | None) -> ParsedMessage:
        if problem is not None:
            self.problems.add(problem)
        # A message too large to read has only its headers.
        found = _Found() if problem == "too_large" else self.visit(root, "")
        text = self.bounded(found.text())
        body_html = self.bounded(found.html())
        referenced = {unquote(cid) for cid in _CID_REFERENCE_RE.findall(body_html or "")}
        max_chars = self.limits.max_header_chars
        return ParsedMessage(
            subject=decode_header(_raw_header(root, "subject"), max_chars=max_chars),
            sender=parse_addresses(_raw_header(root, "from")),
            to=parse_addresses(_raw_header(root, "to")),
            cc=parse_addresses(_raw_header(root, "cc")),
            reply_to=parse_addresses(_raw_header(root, "reply-to")),
            date=_date(_raw_header(root, "date")),
            message_id=_message_id(_raw_header(root, "message-id")),
            text=text,
            html=body_html,
            attachments=tuple(
                self.part(part_id, node, referenced)
                for part_id, node in found.parts
                if _complete(node)  # what cannot be given whole is not offered
            ),
            problem=next((_PROBLEMS[key] for key in _PROBLEMS if key in self.problems), None),
            headers=tuple(
                (decode_header(name, max_chars=100), decode_header(value, max_chars=max_chars))
                for name, value in list(root.raw_items())[: self.limits.max_headers]
            ),
        )

    def bounded(self, text: str | None) -> str | None:
        if text is not None and len(text) > self.limits.max_text_chars:
            self.problems.add("truncated")
            return text[: self.limits.max_text_chars]
        return text

    def part(self, part_id: str, node: _Node, referenced: set[str]) -> Part:
        content_type = _content_type(node)
        content_id = _content_id(node)
        return Part(
            part_id=part_id,
            filename=_filename(node, content_type),
            content_type=content_type,
            size=_size(node),
            content_id=content_id,
            inline=node.get_content_disposition() == "inline" or content_id in referenced,
        )

    def visit(self, node: _Node, part_id: str) -> _Found:
        if any(isinstance(defect, _STRUCTURE_DEFECTS) for defect in node.defects):
            self.problems.add("damaged")
        content_type = _content_type(node)
        if _is_container(node):
            children = _children(node, part_id)
            if content_type == "multipart/alternative":
                return self.alternative(children)
            if content_type == "multipart/related":
                return self.related(node, children)
            if content_type == "multipart/encrypted":
                self.problems.add("encrypted")
            found = _Found()
            for child_id, child in children:
                found.extend(self.visit(child, child_id))
            return found
        part_id = part_id or "1"
        if content_type.startswith("multipart/"):
            if not isinstance(node.get_payload(), str):
                return _Found()  # parsing stopped before its body
            # Its boundary never showed up: its text is all there is to show.
            return _Found(sections=[_Section(self.text(node), None)])
        if content_type in _BODY_TEXT_TYPES and self.is_body(node):
            body = self.text(node)
            section = _Section(None, body) if content_type == "text/html" else _Section(body, None)
            return _Found(sections=[section])
        if content_type in _SMIME_TYPES:
            signed = node.params("content-type").get("smime-type", "").lower() == "signed-data"
            self.problems.add("opaque_signed" if signed else "encrypted")
        return _Found(parts=[(part_id, node)])

    def is_body(self, node: _Node) -> bool:
        return node.get_content_disposition() != "attachment" and not _attachment_name(node)

    def alternative(self, children: list[tuple[str, _Node]]) -> _Found:
        versions = [self.visit(child, child_id) for child_id, child in children]
        html_version = next((found for found in reversed(versions) if found.has_html), None)
        text_version = next(
            (found for found in reversed(versions) if found.sections and not found.has_html),
            None,
        )
        chosen = [found for found in (text_version, html_version) if found is not None]
        result = _Found()
        if chosen:
            result.sections.append(
                _Section(
                    (text_version or chosen[0]).text(),
                    html_version.html() if html_version is not None else None,
                )
            )
        # Other renderings of the body (text/watch-html, ...) are dropped; what is
        # no rendering (a calendar invitation, a file) stays as a part.
        for (_child_id, child), found in zip(children, versions, strict=True):
            if any(found is version for version in chosen) or not (
                found.sections or _is_rendering(child)
            ):
                result.parts += found.parts
        return result

    def related(self, node: _Node, children: list[tuple[str, _Node]]) -> _Found:
        # The root is named by the "start" parameter, or first (RFC 2387).
        start = node.params("content-type").get("start", "").strip().strip("<>")
        content_ids = [_content_id(child) for _child_id, child in children]
        index = content_ids.index(start) if start and start in content_ids else 0
        root_id, root = children[index]
        result = self.visit(root, root_id)
        for i, (child_id, child) in enumerate(children):
            if i != index:
                result.parts += _leaves(child, child_id)
        return result

    def text(self, node: _Node) -> str:
        data = _decoded(node)
        limit = self.limits.max_text_chars
        # No charset spends more than four bytes on a character.
        if len(data) > 4 * limit:
            data = data[: 4 * limit]
            self.problems.add("truncated")
        charset = node.params("content-type").get("charset")
        if charset is None and _content_type(node) == "text/html":
            # Without a MIME charset, the document may name its own.
            declared = _META_CHARSET_RE.search(data[:2048])
            charset = declared.group(1).decode() if declared else None
        return self.bounded(_normalise(decode_text(data, charset))) or ""


def _unreadable(problem: str) -> ParsedMessage:
    return ParsedMessage(
        subject="",
        sender=(),
        to=(),
        cc=(),
        reply_to=(),
        date=None,
        message_id=None,
        text=None,
        html=None,
        attachments=(),
        problem=_PROBLEMS[problem],
        headers=(),
    )


def parse_message(raw: bytes, *, limits: ParseLimits = DEFAULT_LIMITS) -> ParsedMessage:
    """What the message screen shows of ``raw``; never raises."""
    try:
        root, problem = _read(bytes(raw), limits)
        return _Reader(limits).read(root, problem)
    except Exception as exc:
        # Every shape known is handled above; this keeps the promise for the next
        # one. The exception's text may quote the message: only its type is logged.
        logger.warning("A message could not be parsed (%s).", type(exc).__name__)
        return _unreadable("damaged")


def extract_parts(
    raw: bytes, part_ids: Iterable[str], *, limits: ParseLimits = DEFAULT_LIMITS
) -> dict[str, tuple[str, str, bytes]]:
    """``{part_id: (content_type, filename, payload)}`` for the parts that exist, from
    one parse: payloads are decoded bytes, or an attached message's source."""
    root, problem = _read(bytes(raw), limits)
    if problem == "too_large":
        return {}
    found = {}
    for part_id in part_ids:
        try:
            node = _find(root, part_id)
            content_type = _content_type(node)
            found[part_id] = (content_type, _filename(node, content_type), _payload(node))
        except KeyError:
            continue
    return found


def extract_part(
    raw: bytes, part_id: str, *, limits: ParseLimits = DEFAULT_LIMITS
) -> tuple[str, str, bytes]:
    """``(content_type, filename, payload)`` of one part (see ``extract_parts``).
    Raises ``KeyError`` when there is no such part to give."""
    return extract_parts(raw, [part_id], limits=limits)[part_id]
