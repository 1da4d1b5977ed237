"""Turning a text/plain body into HTML."""

from __future__ import annotations

import re
from html import escape, unescape

#: Deeper quoting is shown at this depth.
MAX_QUOTE_DEPTH = 16

_LINE_BREAK_RE = re.compile(r"\r\n|\r|\n")
_QUOTE_RE = re.compile(r"(?:> ?)+")
_LINK_RE = re.compile(
    r"(?P<url>\b(?:https?://|www\.)[^\s<>\"]+)"
    r"|(?P<mailto>\bmailto:[^\s<>\"]+)"
    r"|(?P<email>\b[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}\b)",
    re.IGNORECASE,
)
# A tag holds no "<", so that a run of "<" without ">" is scanned once, not
# once per "<"; its name is read apart. (The standard library's HTMLParser is
# quadratic on unclosed attributes and comments: 120 kB took it half a minute.)
_TAG_RE = re.compile(r"<[^<>]*>")
_TAG_NAME_RE = re.compile(r"<(/?)\s*([A-Za-z][A-Za-z0-9-]{0,31})")
#: Elements whose content a browser does not show.
_HIDDEN = frozenset({"script", "style", "head", "title", "template"})
_TRAILING_PUNCTUATION = ".,;:!?'\"*"
_BRACKETS = (("(", ")"), ("[", "]"), ("{", "}"))


def plain_text_to_html(text: str) -> str:
    """HTML for a text/plain body.

    Text is escaped; http(s), ``www.`` and ``mailto:`` links and bare e-mail
    addresses become links that open in a new tab. Line breaks stay newline
    characters: show the result in an element styled ``white-space:
    pre-wrap``. Quoted lines (``> ``) become ``<blockquote type="cite">``
    without their markers.
    """
    parts: list[str] = []
    depth = 0
    for line in _LINE_BREAK_RE.split(text):
        marker = _QUOTE_RE.match(line)
        level = 0
        if marker:
            level = min(marker.group().count(">"), MAX_QUOTE_DEPTH)
            line = line[marker.end() :]
        if level > depth:
            parts.append('<blockquote type="cite">' * (level - depth))
        elif level < depth:
            parts.append("</blockquote>" * (depth - level))
        elif parts:
            # A blockquote boundary already breaks the line.
            parts.append("\n")
        depth = level
        parts.append(_linkify(line))
    parts.append("</blockquote>" * depth)
    return "".join(parts)


def markup_text(html: str) -> str:
    """The text of HTML, roughly, in one pass: tags and what a browser does not
    show (scripts, style sheets, the head) left out, character references decoded.

    For showing a message whose HTML cannot be sanitised in time, and for
    searching; never HTML itself.
    """
    pieces: list[str] = []
    hidden = 0
    position = 0
    for tag in _TAG_RE.finditer(html):
        if not hidden:
            pieces.append(html[position : tag.start()])
        position = tag.end()
        name = _TAG_NAME_RE.match(tag.group())
        element = name.group(2).lower() if name else ""
        if element in _HIDDEN:
            hidden = max(hidden - 1, 0) if name.group(1) else hidden + 1
        elif element == "body":
            hidden = 0  # whatever was left open before it, as browsers read it
    if not hidden:
        pieces.append(html[position:])
    return unescape("".join(pieces))


def _linkify(line: str) -> str:
    parts = []
    position = 0
    for match in _LINK_RE.finditer(line):
        start = match.start()
        label = _trim_link(match.group())
        if match.lastgroup == "url":
            href = label if "://" in label else f"http://{label}"
        elif match.lastgroup == "mailto":
            href = label
        else:
            href = f"mailto:{label}"
        parts.append(escape(line[position:start]))
        parts.append(
            f'<a href="{escape(href)}" target="_blank" rel="noopener noreferrer">'
            f"{escape(label)}</a>"
        )
        position = start + len(label)
    parts.append(escape(line[position:]))
    return "".join(parts)


def _trim_link(link: str) -> str:
    """Leave out punctuation that ends the sentence rather than the link.

    One pass from the end: sentence punctuation goes, and so does a closing
    bracket that has no opening one left in the link.
    """
    unmatched = {
        closing: link.count(closing) - link.count(opening) for opening, closing in _BRACKETS
    }
    end = len(link)
    while end:
        character = link[end - 1]
        if character in _TRAILING_PUNCTUATION:
            end -= 1
        elif unmatched.get(character, 0) > 0:
            unmatched[character] -= 1
            end -= 1
        else:
            break
    return link[:end]
