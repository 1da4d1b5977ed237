"""The editor's HTML as it is sent, and the text version that goes with it.

The editor (Trix) writes ``<div>`` blocks with ``<br>``, ``<strong>``,
``<em>``, ``<del>``, links, ``<h1>``, quotes, ``<pre>`` and lists; a reply adds
the quoted message, sanitised when it was written. What is sent keeps only
that much: ``clean_editor_html`` parses with the reading sanitiser's bounded
parser, cuts out what the reading sanitiser cuts out with its content
(scripts, styles, forms, frames, SVG, ...) and keeps a small allowlist of the
rest. Cleaning its own output again changes nothing, so a quote that goes
through it when the reply is prefilled and again when it is sent stays as it
was.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from html import unescape
from typing import Any
from urllib.parse import unquote

from bleach import html5lib_shim
from bleach.sanitizer import BleachSanitizerFilter, Cleaner

from webmail.sanitize import DROPPED_WITH_CONTENT, plain_text_to_html
from webmail.sanitize.parser import BoundedParser, TreeWalker
from webmail.sanitize.urls import browser_url, normalise_url, url_scheme

ALLOWED_TAGS = frozenset(
    (
        "a", "b", "blockquote", "br", "caption", "code", "del", "div", "em", "h1", "h2",
        "h3", "hr", "i", "li", "ol", "p", "pre", "s", "span", "strong", "table", "tbody",
        "td", "tfoot", "th", "thead", "tr", "u", "ul",
    )
)  # fmt: skip

# Blocks of quoted messages that the allowlist has no room for: kept as blocks,
# so that their text does not run into the text around them.
_RENAMED = {
    "h4": "h3",
    "h5": "h3",
    "h6": "h3",
    "strike": "s",
    **{
        tag: "div"
        for tag in (
            "address", "article", "aside", "center", "dd", "details", "dl", "dt", "figcaption",
            "figure", "footer", "header", "hgroup", "main", "nav", "section", "summary",
        )
    },
}  # fmt: skip

_ATTRIBUTES = {
    "*": frozenset(("dir",)),
    "a": frozenset(("href",)),
    "blockquote": frozenset(("type",)),
    "ol": frozenset(("start",)),
    "td": frozenset(("colspan", "rowspan")),
    "th": frozenset(("colspan", "rowspan")),
}
_LINK_SCHEMES = frozenset(("http", "https", "mailto"))
_NUMBER_RE = re.compile(r"[0-9]{1,4}")
# Whitespace at the edges of the fragment means nothing in HTML.
_EDGE_WHITESPACE = " \t\n\r\f"
#: Cleaning passes at most: stripping a tag can leave a tree the parser would
#: build differently; the second pass rarely changes anything.
_MAX_PASSES = 4


def _allow_attribute(tag: str, name: str, value: str) -> bool:
    """bleach's attribute callable; ``value`` still holds its character references."""
    if name not in _ATTRIBUTES.get(tag, ()) and name not in _ATTRIBUTES["*"]:
        return False
    if name == "href":
        return url_scheme(browser_url(value)) in _LINK_SCHEMES
    if name == "type":
        return value.strip().lower() == "cite"
    if name == "dir":
        return value.strip().lower() in ("ltr", "rtl", "auto")
    return _NUMBER_RE.fullmatch(value.strip()) is not None


class _DropWithContent(html5lib_shim.Filter):
    """Leaves out ``DROPPED_WITH_CONTENT`` and foreign (SVG, MathML) elements whole."""

    def __iter__(self) -> Iterator[dict[str, Any]]:
        depth = 0  # inside an element left out
        for token in super().__iter__():
            kind = token["type"]
            if depth:
                depth += {"StartTag": 1, "EndTag": -1}.get(kind, 0)
                continue
            if kind in ("StartTag", "EmptyTag") and _dropped(token["name"]):
                depth = 1 if kind == "StartTag" else 0
                continue
            yield token


def _dropped(tag: str) -> bool:
    # Foreign elements keep their namespace in their name: "{http://www.w3.org/2000/svg}svg".
    return tag in DROPPED_WITH_CONTENT or tag.startswith("{")


class _Rename(html5lib_shim.Filter):
    def __iter__(self) -> Iterator[dict[str, Any]]:
        for token in super().__iter__():
            if token["type"] in ("StartTag", "EndTag") and token["name"] in _RENAMED:
                token["name"] = _RENAMED[token["name"]]
            yield token


class _LineBreaks(html5lib_shim.Filter):
    """Line breaks in text become ``<br>``, outside ``<pre>``: for text made into HTML."""

    def __iter__(self) -> Iterator[dict[str, Any]]:
        pre = 0
        for token in super().__iter__():
            kind = token["type"]
            if kind in ("StartTag", "EndTag") and token["name"] == "pre":
                pre += 1 if kind == "StartTag" else -1
            if pre or kind not in ("Characters", "SpaceCharacters") or "\n" not in token["data"]:
                yield token
                continue
            for number, line in enumerate(token["data"].split("\n")):
                if number:
                    yield {"type": "EmptyTag", "name": "br", "namespace": None, "data": {}}
                if line:
                    yield {"type": "Characters", "data": line}


class _QuoteGreaterThan(html5lib_shim.Filter):
    """bleach's serializer takes a ">" in an attribute value for the end of the tag and
    stops repairing "&" in the values after it (as in webmail.sanitize.html)."""

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for token in super().__iter__():
            if token["type"] in ("StartTag", "EmptyTag"):
                attributes = token.get("data") or {}
                for key, value in attributes.items():
                    if ">" in value:
                        attributes[key] = value.replace(">", "&gt;")
            yield token


class _EditorCleaner(Cleaner):
    """The allowlist for what is sent, on the reading sanitiser's bounded parser.

    Not thread-safe (the parser keeps state): use one per thread.
    """

    def __init__(self) -> None:
        super().__init__(
            tags=ALLOWED_TAGS,
            attributes=_allow_attribute,
            protocols=_LINK_SCHEMES,
            strip=True,
            strip_comments=True,
        )
        self.parser = BoundedParser()
        self.serializer.use_best_quote_char = False

    def clean(self, text: str, *, line_breaks: bool = False) -> str:
        if not text:
            return ""
        source: Any = _Rename(_DropWithContent(TreeWalker(self.parser.parse(text))))
        if line_breaks:
            source = _LineBreaks(source)
        stream = BleachSanitizerFilter(
            source=source,
            allowed_tags=self.tags,
            attributes=self.attributes,
            allowed_protocols=self.protocols,
            strip_disallowed_tags=True,
            strip_html_comments=True,
        )
        return self.serializer.render(_QuoteGreaterThan(stream))


_local = threading.local()


def _cleaner() -> _EditorCleaner:
    try:
        return _local.cleaner
    except AttributeError:
        _local.cleaner = _EditorCleaner()
        return _local.cleaner


def clean_editor_html(html: str) -> str:
    """The HTML to send for what the editor holds.

    Only ``ALLOWED_TAGS``; links only to http, https and mailto URLs; no
    images, styles, scripts or forms. Idempotent.
    """
    cleaner = _cleaner()
    before, cleaned = html, cleaner.clean(html)
    # Until nothing changes: HTML already clean (a draft saved again) takes one pass.
    for _ in range(_MAX_PASSES - 1):
        if cleaned == before:
            break
        before, cleaned = cleaned, cleaner.clean(cleaned)
    return cleaned.strip(_EDGE_WHITESPACE)


def text_to_editor_html(text: str) -> str:
    """A plain text as editor HTML: lines kept, quoted lines as quotes, links made links."""
    return clean_editor_html(
        "<div>" + _cleaner().clean(plain_text_to_html(text), line_breaks=True) + "</div>"
    )


# html_to_text -------------------------------------------------------------------------------

_WHITESPACE_RE = re.compile(r"[ \t\n\r\f]+")
#: Blocks set apart by an empty line.
_PARAGRAPHS = frozenset(
    ("address", "blockquote", "dl", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "p",
     "pre", "table")
)  # fmt: skip
#: Blocks that start and end a line.
_LINES = frozenset(
    ("article", "aside", "body", "caption", "center", "dd", "details", "div", "dt",
     "figcaption", "footer", "form", "header", "hgroup", "html", "li", "main", "nav", "ol",
     "section", "summary", "tbody", "tfoot", "thead", "tr", "ul")
)  # fmt: skip
_SKIPPED = DROPPED_WITH_CONTENT | {"head"}
_RULE = "-" * 20
# The signature separator keeps its space (RFC 3676, 4.3): mail programs look for it.
_SIGNATURE_SEPARATOR = "-- "


class _Segment:
    """What starts the lines of a quote (">") or of a list item ("- " then "  ")."""

    __slots__ = ("first", "quote", "rest", "used")

    def __init__(self, first: str, rest: str, *, quote: bool = False) -> None:
        self.first = first
        self.rest = rest
        self.quote = quote
        self.used = False


class _TextWriter:
    """Lays out text line by line, the way a browser lays out the blocks."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.line_segments: list[tuple[_Segment, ...]] = []
        self.segments: list[_Segment] = []
        self.words: list[str] = []  # of the line being written
        self.space = False  # whitespace seen since the last word
        self.gap = 0  # before the next line: 2 for an empty line
        self.pre = 0
        self.lists: list[list[Any]] = []  # [ordered, next number]
        self.links: list[tuple[str | None, int, int]] = []

    # Text

    def text(self, text: str) -> None:
        if self.pre:
            for number, piece in enumerate(text.split("\n")):
                if number:
                    self.end_line()
                if piece:
                    self.words.append(piece)
            return
        for number, word in enumerate(_WHITESPACE_RE.split(text)):
            if number:
                self.space = True
            if word:
                self.add(word)

    def add(self, word: str) -> None:
        if self.words and self.space:
            self.words.append(" ")
        self.words.append(word)
        self.space = False

    # Lines

    def block(self, gap: int) -> None:
        if self.words:
            self.end_line()
        self.gap = max(self.gap, gap)

    def end_line(self) -> None:
        text = "".join(self.words).replace("\xa0", " ")
        if text == "--" and self.space:
            text = _SIGNATURE_SEPARATOR
        self.words = []
        self.space = False
        if self.lines and self.gap == 2 and not _is_blank(self.lines[-1]):
            self.write(self.prefix(self.common_segments(), "", blank=True), ())
        self.gap = 0
        line = self.prefix(self.segments, text) + text
        if text != _SIGNATURE_SEPARATOR:
            line = line.rstrip()
        self.write(line, tuple(self.segments))
        for segment in self.segments:
            segment.used = True

    def write(self, line: str, segments: tuple[_Segment, ...]) -> None:
        self.lines.append(line)
        self.line_segments.append(segments)

    def common_segments(self) -> list[_Segment]:
        """The segments the last line and the next one share: an empty line between them
        belongs to both."""
        common = []
        for before, now in zip(self.line_segments[-1], self.segments, strict=False):
            if before is not now:
                break
            common.append(now)
        return common

    @staticmethod
    def prefix(segments: list[_Segment], text: str, *, blank: bool = False) -> str:
        prefix = ""
        for segment in segments:
            if segment.quote:
                prefix += ">"
                continue
            if prefix.endswith(">"):
                prefix += " "
            prefix += segment.rest if segment.used or blank else segment.first
        if prefix.endswith(">") and text:
            prefix += " "
        return prefix.rstrip() if blank else prefix

    # Elements

    def start(self, element: Any) -> None:
        tag = element.tag
        if tag == "br":
            self.end_line()
        elif tag == "hr":
            self.block(2)
            self.words.append(_RULE)
            self.block(2)
        elif tag in ("td", "th"):
            self.space = bool(self.words)
        elif tag == "a":
            self.links.append((_link_target(element.get("href")), len(self.lines), len(self.words)))
        elif tag in _PARAGRAPHS:
            self.block(2)
        elif tag in _LINES:
            self.block(1)
        if tag == "blockquote":
            self.segments.append(_Segment(">", ">", quote=True))
        elif tag == "pre":
            self.pre += 1
        elif tag in ("ul", "ol"):
            start = (element.get("start") or "").strip()
            self.lists.append([tag == "ol", int(start) if _NUMBER_RE.fullmatch(start) else 1])
        elif tag == "li":
            marker = "- "
            if self.lists and self.lists[-1][0]:
                marker = f"{self.lists[-1][1]}. "
                self.lists[-1][1] += 1
            self.segments.append(_Segment(marker, " " * len(marker)))

    def end(self, element: Any) -> None:
        tag = element.tag
        if tag == "a":
            self.end_link()
        elif tag in _PARAGRAPHS and tag != "hr":
            self.block(2)
        elif tag in _LINES:
            self.block(1)
        if tag in ("blockquote", "li"):
            self.segments.pop()
        elif tag == "pre":
            self.pre -= 1
        elif tag in ("ul", "ol"):
            self.lists.pop()

    def end_link(self) -> None:
        target, lines, words = self.links.pop()
        if target is None:
            return
        if len(self.lines) == lines:
            label = "".join(self.words[words:]).strip()
            if not label:
                self.add(target)
                return
            if _bare(label) == _bare(target):
                return
        self.space = True
        self.add(f"<{target}>")

    def result(self) -> str:
        self.block(0)
        kept: list[str] = []
        for line in self.lines:
            if _is_blank(line):
                if not kept:
                    continue
                if _is_blank(kept[-1]):
                    # One empty line in a row: the one of the outer quote.
                    if len(line) < len(kept[-1]):
                        kept[-1] = line
                    continue
            kept.append(line)
        while kept and _is_blank(kept[-1]):
            kept.pop()
        return "\n".join(kept)


def _is_blank(line: str) -> bool:
    return not line.replace(">", "").strip()


def _link_target(href: str | None) -> str | None:
    """What a link points to, as the text shows it: its URL, or the address of a mailto."""
    if not href:
        return None
    url = normalise_url(unescape(href))
    scheme = url_scheme(url)
    if scheme not in _LINK_SCHEMES:
        return None
    if scheme == "mailto":
        address = unquote(url[len("mailto:") :])
        return address if address and "?" not in address else url
    return url


def _bare(url: str) -> str:
    url = url.strip().casefold()
    for scheme in ("https://", "http://", "mailto:"):
        url = url.removeprefix(scheme)
    return url.rstrip("/")


def _walk(root: Any, writer: _TextWriter) -> None:
    """Feed the elements and text of a parsed fragment to ``writer``, in document order."""
    if root.text:
        writer.text(unescape(root.text))
    stack: list[tuple[Any, Iterator[Any]]] = [(None, iter(root))]
    while stack:
        parent, children = stack[-1]
        element = next(children, None)
        if element is None:
            stack.pop()
            if parent is not None:
                writer.end(parent)
                if parent.tail:
                    writer.text(unescape(parent.tail))
            continue
        if isinstance(element.tag, str) and element.tag not in _SKIPPED:
            writer.start(element)
            if element.text:
                writer.text(unescape(element.text))
            stack.append((element, iter(element)))
            continue
        # A comment, or an element whose content is never shown.
        if element.tail:
            writer.text(unescape(element.tail))


def html_to_text(html: str) -> str:
    """The text part that goes with ``html``.

    Blocks and ``<br>`` make lines; paragraphs, headings, quotes and ``<pre>``
    are set apart by an empty line; list items start with "- " or "1. ";
    quotes with ">" (nested: ">>"); a link's URL follows its text in angle
    brackets unless the text says it already. ``<pre>`` keeps its spaces;
    no line ends with a space (except the signature separator "-- "), and no
    two empty lines follow each other.
    """
    if not html:
        return ""
    writer = _TextWriter()
    _walk(_cleaner().parser.parse(html), writer)
    return writer.result()
