"""Turning a text/plain body into HTML."""

from __future__ import annotations

import re
from html import escape

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
    """Leave out punctuation that ends the sentence rather than the link."""
    while True:
        trimmed = link.rstrip(_TRAILING_PUNCTUATION)
        for opening, closing in _BRACKETS:
            while trimmed.endswith(closing) and trimmed.count(closing) > trimmed.count(opening):
                trimmed = trimmed[:-1]
        if trimmed == link:
            return link
        link = trimmed
