"""The ``style`` attribute policy."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from html import escape
from typing import Any

import tinycss2
from bleach import html5lib_shim
from bleach.css_sanitizer import CSSSanitizer

from .urls import is_remote_url

#: Properties kept in ``style`` attributes. Nothing that positions a box
#: outside the flow, and nothing whose value is a URL or an image.
ALLOWED_CSS_PROPERTIES = frozenset(
    (
        "background", "background-color",
        "border", "border-bottom", "border-bottom-color", "border-bottom-left-radius",
        "border-bottom-right-radius", "border-bottom-style", "border-bottom-width",
        "border-collapse", "border-color", "border-left", "border-left-color",
        "border-left-style", "border-left-width", "border-radius", "border-right",
        "border-right-color", "border-right-style", "border-right-width", "border-spacing",
        "border-style", "border-top", "border-top-color", "border-top-left-radius",
        "border-top-right-radius", "border-top-style", "border-top-width", "border-width",
        "box-sizing", "caption-side", "clear", "color", "direction", "display",
        "empty-cells", "float", "font", "font-family", "font-size", "font-stretch",
        "font-style", "font-variant", "font-weight", "height", "letter-spacing",
        "line-height", "list-style-position", "list-style-type", "margin", "margin-bottom",
        "margin-left", "margin-right", "margin-top", "max-height", "max-width",
        "min-height", "min-width", "overflow", "overflow-wrap", "padding",
        "padding-bottom", "padding-left", "padding-right", "padding-top", "table-layout",
        "text-align", "text-decoration", "text-decoration-color", "text-decoration-line",
        "text-decoration-style", "text-indent", "text-overflow", "text-transform",
        "unicode-bidi", "vertical-align", "visibility", "white-space", "width",
        "word-break", "word-spacing", "word-wrap",
    )
)  # fmt: skip

_DISPLAY_VALUES = frozenset(
    (
        "block", "inline", "inline-block", "inline-table", "list-item", "none", "table",
        "table-caption", "table-cell", "table-column", "table-column-group",
        "table-footer-group", "table-header-group", "table-row", "table-row-group",
    )
)  # fmt: skip

_FUNCTIONS = frozenset(("rgb", "rgba", "hsl", "hsla"))
_PLAIN_TOKENS = frozenset(
    ("whitespace", "ident", "number", "percentage", "dimension", "hash", "string")
)
_URL_FUNCTIONS = frozenset(("url", "src", "image", "image-set", "-webkit-image-set"))
_SUSPICIOUS_RE = re.compile(
    r"url\(|image-set|expression|@import|var\(|javascript:|behavior|binding", re.IGNORECASE
)


class MailCSSSanitizer(CSSSanitizer):
    """Rebuilds a ``style`` attribute from the declarations it allows.

    bleach's own CSSSanitizer only filters property names; this one also
    requires every value to be made of plain tokens (keywords, numbers,
    lengths, colours, strings, ``rgb()``/``hsl()``) and writes the
    declarations out again, so escapes and comments disappear and no
    ``url()``, ``image-set()``, ``var()``, ``expression()`` or at-rule
    survives. ``on_remote_url`` is called for each style attribute that
    refers to a remote URL.
    """

    def __init__(self, on_remote_url: Callable[[], None] = lambda: None) -> None:
        super().__init__(
            allowed_css_properties=ALLOWED_CSS_PROPERTIES, allowed_svg_properties=frozenset()
        )
        self._on_remote_url = on_remote_url

    def sanitize_css(self, style: str) -> str:
        if len(style) <= _CACHED_LENGTH:
            cleaned, remote = _sanitize_cached(style)
        else:
            cleaned, remote = _sanitize(style)
        if remote:
            self._on_remote_url()
        return cleaned


#: Longer style attributes are dropped whole: honest mail writes a few
#: declarations per element, and a long one is only work for the sanitiser.
MAX_STYLE_CHARS = 16_384

#: Functions nested deeper than this (rgb() inside rgb()...) make a value junk.
_MAX_NESTING = 4

_BRACKET_RE = re.compile(r"[()\[\]{}]")
_MAX_BRACKET_DEPTH = 16

#: Style attributes up to this long are remembered: mail repeats the same few
#: many times, and sanitising the output again repeats them all.
_CACHED_LENGTH = 2048


def _sanitize(style: str) -> tuple[str, bool]:
    """The rebuilt style, and whether it referred to a remote URL."""
    if len(style) > MAX_STYLE_CHARS or _too_deep(style):
        return "", False
    # bleach hands over the attribute as written; the browser decodes
    # character references before the CSS parser sees them.
    css = html5lib_shim.convert_entities(style)
    kept = []
    remote = False
    for node in tinycss2.parse_declaration_list(css, skip_comments=True, skip_whitespace=True):
        if node.type != "declaration":
            continue
        remote = remote or any(is_remote_url(url) for url in _urls(node.value))
        if node.lower_name not in ALLOWED_CSS_PROPERTIES:
            continue
        value = _clean_value(node.lower_name, node.value)
        if value is not None:
            kept.append(f"{node.lower_name}: {value}{' !important' if node.important else ''}")
    # Back to markup, as bleach expects: an "&" written out as it is would be
    # decoded by the browser (&#59; is a ";").
    return escape("; ".join(kept), quote=False), remote


_sanitize_cached = functools.lru_cache(maxsize=1024)(_sanitize)


def _too_deep(css: str) -> bool:
    """Whether brackets nest beyond what honest CSS uses; tinycss2 slows down on deep ones."""
    depth = 0
    for match in _BRACKET_RE.finditer(css):
        depth += 1 if match.group() in "([{" else -1
        if depth > _MAX_BRACKET_DEPTH:
            return True
    return False


def _clean_value(name: str, tokens: list[Any]) -> str | None:
    if not _plain(tokens):
        return None
    value = tinycss2.serialize(tokens).strip()
    if name == "display" and value.lower() not in _DISPLAY_VALUES:
        return None
    # The serializer escapes odd identifiers and separates tokens that would
    # merge with an empty comment; neither is needed by honest mail, nor are
    # strings that spell out what the tokens above could not hold.
    if not value or "\\" in value or "/*" in value or _SUSPICIOUS_RE.search(value):
        return None
    return value


def _plain(tokens: list[Any]) -> bool:
    # Iterative, and with a bound on nesting: rgb() inside rgb() is already junk.
    stack = [(iter(tokens), 0)]
    while stack:
        children, depth = stack[-1]
        token = next(children, None)
        if token is None:
            stack.pop()
        elif token.type == "literal":
            if token.value not in (",", "/", "%"):
                return False
        elif token.type == "function":
            if token.lower_name not in _FUNCTIONS or depth >= _MAX_NESTING:
                return False
            stack.append((iter(token.arguments), depth + 1))
        elif token.type not in _PLAIN_TOKENS:
            return False
    return True


def _urls(tokens: list[Any]) -> Iterator[str]:
    """Every URL the value refers to, however deep (iteratively: nesting is the sender's)."""
    stack = [iter(tokens)]
    while stack:
        token = next(stack[-1], None)
        if token is None:
            stack.pop()
        elif token.type == "url":
            yield token.value
        elif token.type in ("function", "() block", "[] block", "{} block"):
            children = token.arguments if token.type == "function" else token.content
            if token.type == "function" and token.lower_name in _URL_FUNCTIONS:
                yield from (child.value for child in children if child.type == "string")
            stack.append(iter(children))
