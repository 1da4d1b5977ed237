"""Sanitising message HTML: the policy, applied with bleach."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html import escape
from typing import Any
from urllib.parse import unquote

from bleach import html5lib_shim
from bleach.sanitizer import BleachSanitizerFilter, Cleaner

from .budget import UNLIMITED, Budget
from .css import MailCSSSanitizer
from .parser import BoundedParser, TreeWalker
from .urls import REMOTE_SCHEMES, browser_url, url_scheme

#: Input beyond this many UTF-8 bytes is cut off before parsing.
MAX_BYTES = 2_000_000

ALLOWED_TAGS = frozenset(
    (
        # text
        "a", "abbr", "acronym", "address", "b", "bdi", "bdo", "big", "blockquote",
        "br", "center", "cite", "code", "dd", "del", "details", "dfn", "div", "dl",
        "dt", "em", "figcaption", "figure", "font", "h1", "h2", "h3", "h4", "h5", "h6",
        "hr", "i", "img", "ins", "kbd", "li", "mark", "nobr", "ol", "p", "pre", "q",
        "rp", "rt", "ruby", "s", "samp", "small", "span", "strike", "strong", "sub",
        "summary", "sup", "time", "tt", "u", "ul", "var", "wbr",
        # sectioning
        "article", "aside", "footer", "header", "hgroup", "main", "nav", "section",
        # tables
        "caption", "col", "colgroup", "table", "tbody", "td", "tfoot", "th", "thead",
        "tr",
    )
)  # fmt: skip

#: Elements removed together with everything inside them: showing their
#: content as text would leak code, and some of them change how the rest of
#: the markup parses.
DROPPED_WITH_CONTENT = frozenset(
    (
        "applet", "audio", "base", "basefont", "bgsound", "button", "canvas",
        "datalist", "dialog", "embed", "frame", "frameset", "iframe", "input",
        "keygen", "link", "math", "meta", "noembed", "noframes", "noscript",
        "object", "option", "optgroup", "param", "picture", "portal", "script",
        "select", "slot", "source", "style", "svg", "template", "textarea",
        "title", "track", "video",
    )
)  # fmt: skip

_TABLE = ("align", "background", "bgcolor", "border", "cellpadding", "cellspacing", "height",
          "summary", "width")  # fmt: skip
_TABLE_CELL = ("align", "valign", "bgcolor", "width", "height", "colspan", "rowspan",
               "nowrap", "background", "abbr", "scope", "headers")  # fmt: skip

ALLOWED_ATTRIBUTES: dict[str, frozenset[str]] = {
    "*": frozenset(("style", "title", "dir", "lang")),
    "a": frozenset(("href",)),
    "blockquote": frozenset(("type",)),
    "caption": frozenset(("align",)),
    "col": frozenset(("align", "valign", "span", "width")),
    "colgroup": frozenset(("align", "valign", "span", "width")),
    "del": frozenset(("datetime",)),
    "details": frozenset(("open",)),
    "div": frozenset(("align",)),
    "font": frozenset(("color", "face", "size")),
    "h1": frozenset(("align",)),
    "h2": frozenset(("align",)),
    "h3": frozenset(("align",)),
    "h4": frozenset(("align",)),
    "h5": frozenset(("align",)),
    "h6": frozenset(("align",)),
    "hr": frozenset(("align", "color", "noshade", "size", "width")),
    "img": frozenset(("src", "alt", "width", "height", "align", "border", "hspace", "vspace")),
    "ins": frozenset(("datetime",)),
    "li": frozenset(("type", "value")),
    "ol": frozenset(("reversed", "start", "type")),
    "p": frozenset(("align",)),
    "table": frozenset(_TABLE),
    "tbody": frozenset(("align", "valign", "bgcolor")),
    "td": frozenset(_TABLE_CELL),
    "tfoot": frozenset(("align", "valign", "bgcolor")),
    "th": frozenset(_TABLE_CELL),
    "thead": frozenset(("align", "valign", "bgcolor")),
    "time": frozenset(("datetime",)),
    "tr": frozenset(("align", "valign", "bgcolor", "background", "height")),
    "ul": frozenset(("type",)),
}


#: Sanitising passes at most (see sanitize_html); the second rarely changes anything.
_MAX_PASSES = 4

_LINK_SCHEMES = frozenset(("http", "https", "mailto"))
_URL_ATTRIBUTES = ("src", "background")
_SQUEEZE_RE = re.compile(r"[\x00-\x20\x7f-\xa0\s]+")
_SCRIPT_LIKE_RE = re.compile(r"(?:javascript|vbscript|livescript|data):", re.IGNORECASE)
# Raster images only: an SVG image could carry its own markup. After the
# data, only "=" can follow, so no blank is ever tried by two quantifiers.
_DATA_IMAGE_RE = re.compile(
    r"data:image/(?:png|jpeg|jpg|gif|webp);base64,[A-Za-z0-9+/\s]*(?:=\s*){0,2}",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class SanitizedHtml:
    """The result of ``sanitize_html``."""

    #: A fragment for the ``<body>`` of the sandboxed iframe.
    html: str
    #: Remote content (images, backgrounds) was left out because
    #: ``allow_remote`` was false.
    remote_blocked: bool
    #: The input was longer than ``max_bytes`` or made more than
    #: ``MAX_ELEMENTS`` elements: only its beginning is shown, or only the
    #: text of what follows.
    truncated: bool = False
    #: Sanitising went over its budget: ``html`` is the message's text.
    over_budget: bool = False


def sanitize_html(
    html: str,
    *,
    cid_url: Callable[[str], str | None] = lambda cid: None,
    allow_remote: bool = False,
    max_bytes: int = MAX_BYTES,
    budget: Budget = UNLIMITED,
) -> SanitizedHtml:
    """Sanitise message HTML for display.

    ``cid_url`` maps a Content-ID (without angle brackets) to the URL of that
    inline part of the same message, or None when there is no such part.
    ``allow_remote`` keeps http(s) images and table backgrounds; URLs inside
    CSS are never kept. Input beyond ``max_bytes`` (UTF-8) is cut off.
    Raises ``OverBudget`` once sanitising has spent ``budget``.

    Sanitising the result again gives the same HTML, for input within the
    limits; URLs made by ``cid_url`` are not ``cid:`` URLs any more, so a
    second call drops them.
    """
    truncated = False
    if len(html) > max_bytes // 4:
        data = html.encode("utf-8", "surrogatepass")
        if len(data) > max_bytes:
            html = data[:max_bytes].decode("utf-8", "ignore")
            truncated = True
    policy = _Policy(cid_url=cid_url, allow_remote=allow_remote)
    cleaner = _cleaner()
    cleaned = cleaner.clean(html, policy, budget)
    # HTML does not round-trip: with an element stripped, the tree can hold
    # what the parser never builds (a <p> directly in a <p>), and the
    # browser would build another tree from the output. Sanitise again until
    # nothing changes, so that the browser builds the tree that was checked.
    # (Output swollen past max_bytes by escaping is left as it is: it would
    # be truncated by another call anyway.)
    for _ in range(_MAX_PASSES - 1):
        if len(cleaned) > max_bytes:
            break
        again = cleaner.clean(cleaned, policy.for_output(), budget)
        if again == cleaned:
            break
        cleaned = again
    return SanitizedHtml(
        html=cleaned,
        remote_blocked=policy.remote_blocked,
        truncated=truncated or policy.truncated,
    )


class _Policy:
    """The per-message part of sanitising: remote content and ``cid:`` URLs."""

    def __init__(
        self,
        cid_url: Callable[[str], str | None] = lambda cid: None,
        allow_remote: bool = False,
        own_urls: frozenset[str] = frozenset(),
    ) -> None:
        self.cid_url = cid_url
        self.allow_remote = allow_remote
        self.remote_blocked = False
        self.truncated = False
        self.css_sanitizer = MailCSSSanitizer(on_remote_url=self.note_remote)
        # URLs this policy made from cid: URLs, as the browser reads them.
        self.own_urls = own_urls
        self.made_urls: set[str] = set()

    def for_output(self) -> _Policy:
        """The policy for sanitising this policy's output again."""
        return _Policy(allow_remote=self.allow_remote, own_urls=frozenset(self.made_urls))

    def note_remote(self) -> None:
        if not self.allow_remote:
            self.remote_blocked = True

    def allow_attribute(self, tag: str, name: str, value: str) -> bool:
        """bleach's attribute callable; ``value`` still holds its character references."""
        allowed = ALLOWED_ATTRIBUTES.get(tag, frozenset())
        if name not in allowed and name not in ALLOWED_ATTRIBUTES["*"]:
            return False
        url = browser_url(value)
        if name == "href":
            return url_scheme(url) in _LINK_SCHEMES
        if name not in _URL_ATTRIBUTES:
            # Not a URL to today's browsers, but nothing honest needs this.
            return not _SCRIPT_LIKE_RE.match(_SQUEEZE_RE.sub("", url))
        if url in self.own_urls:
            return True
        scheme = url_scheme(url)
        if scheme in REMOTE_SCHEMES:
            self.note_remote()
            return self.allow_remote
        if scheme == "data":
            return tag == "img" and _DATA_IMAGE_RE.fullmatch(url) is not None
        return scheme == "cid"

    def resolve_cid(self, value: str) -> str | None:
        """The URL of the part a ``cid:`` attribute value names, ready for bleach."""
        content_id = unquote(browser_url(value)[len("cid:") :]).strip().strip("<>")
        url = self.cid_url(content_id) if content_id else None
        if url is None:
            return None
        self.made_urls.add(url)
        # bleach's serializer expects attribute values with their "&" escaped.
        return escape(url, quote=False)


class MailCleaner(Cleaner):
    """bleach's Cleaner set up for e-mail: one pass of ``sanitize_html``.

    Not thread-safe (the parser keeps state): use one per thread.
    """

    def __init__(self) -> None:
        super().__init__(
            tags=ALLOWED_TAGS,
            attributes=ALLOWED_ATTRIBUTES,
            protocols=_LINK_SCHEMES | {"cid", "data"},
            strip=True,
            strip_comments=True,
            css_sanitizer=MailCSSSanitizer(),
        )
        self.parser = BoundedParser()
        # bleach repairs "&" in attribute values only when they are in double
        # quotes; html5lib would switch to single quotes for values with a '"'.
        self.serializer.use_best_quote_char = False

    def clean(self, text: str, policy: _Policy | None = None, budget: Budget = UNLIMITED) -> str:
        if policy is None:
            policy = _Policy()
        if not text:
            return ""
        fragment = self.parser.parse(text, budget)
        if self.parser.over_budget:
            policy.truncated = True
        _drop_with_content(fragment)
        stream = BleachSanitizerFilter(
            source=TreeWalker(fragment),
            allowed_tags=self.tags,
            attributes=policy.allow_attribute,
            allowed_protocols=self.protocols,
            strip_disallowed_tags=True,
            strip_html_comments=True,
            css_sanitizer=policy.css_sanitizer,
        )
        return self.serializer.render(_RewriteFilter(stream, policy, budget))


class _RewriteFilter(html5lib_shim.Filter):
    """Points ``cid:`` sources at the message's parts; opens links in a new tab."""

    def __init__(self, source: Any, policy: _Policy, budget: Budget = UNLIMITED) -> None:
        super().__init__(source)
        self.policy = policy
        self.budget = budget

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for token in super().__iter__():
            self.budget.spend()
            if token["type"] in ("StartTag", "EmptyTag"):
                attributes = token.get("data") or {}
                for key, value in attributes.items():
                    # bleach's serializer takes a value of ">" for the end of
                    # the tag and stops repairing "&" in the values after it.
                    if ">" in value:
                        attributes[key] = value.replace(">", "&gt;")
                for name in _URL_ATTRIBUTES:
                    value = attributes.get((None, name))
                    if value is not None and url_scheme(browser_url(value)) == "cid":
                        url = self.policy.resolve_cid(value)
                        if url is None:
                            del attributes[(None, name)]
                        else:
                            attributes[(None, name)] = url
                if token["name"] == "a":
                    attributes[(None, "target")] = "_blank"
                    attributes[(None, "rel")] = "noopener noreferrer"
                token["data"] = attributes
            yield token


def _drop_with_content(root: Any) -> None:
    """Remove ``DROPPED_WITH_CONTENT`` and foreign (SVG, MathML) elements, keeping tails."""
    stack = [root]
    while stack:
        parent = stack.pop()
        kept: list[Any] = []
        # Text after dropped elements, joined once per run of them.
        tails: list[str] = []
        for child in [*parent, None]:
            tag = None if child is None else child.tag
            if isinstance(tag, str) and (tag in DROPPED_WITH_CONTENT or tag.startswith("{")):
                tails.append(child.tail or "")
                continue
            if tails:
                if kept:
                    kept[-1].tail = "".join([kept[-1].tail or "", *tails])
                else:
                    parent.text = "".join([parent.text or "", *tails])
                tails = []
            if child is not None:
                kept.append(child)
                stack.append(child)
        if len(kept) != len(parent):
            parent[:] = kept


_local = threading.local()


def _cleaner() -> MailCleaner:
    try:
        return _local.cleaner
    except AttributeError:
        _local.cleaner = MailCleaner()
        return _local.cleaner
