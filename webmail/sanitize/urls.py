"""URLs in attribute values and style sheets, read the way browsers read them."""

from __future__ import annotations

import re

from bleach import html5lib_shim

REMOTE_SCHEMES = frozenset(("http", "https"))

# WHATWG URL parsing strips leading and trailing C0 controls and spaces and
# removes tabs and newlines anywhere; a scheme is ASCII.
_C0_AND_SPACE = "".join(map(chr, range(0x21)))
_TAB_AND_NEWLINE = str.maketrans("", "", "\t\n\r")
_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")


def browser_url(value: str) -> str:
    """An attribute value, as written in the markup, as the URL parser receives it."""
    return normalise_url(html5lib_shim.convert_entities(value))


def normalise_url(url: str) -> str:
    return url.strip(_C0_AND_SPACE).translate(_TAB_AND_NEWLINE)


def url_scheme(url: str) -> str | None:
    """The URL's scheme in lower case, or None for a relative URL."""
    match = _SCHEME_RE.match(url)
    return match.group(1).lower() if match else None


def is_remote_url(url: str) -> bool:
    url = normalise_url(url)
    return url.startswith(("//", "\\\\")) or url_scheme(url) in REMOTE_SCHEMES
