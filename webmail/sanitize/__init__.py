"""Turn untrusted message bodies into HTML that is safe to show.

``sanitize_html`` runs message HTML through bleach with an allowlist made for
e-mail; ``plain_text_to_html`` escapes a text/plain body and makes its links
clickable.

The sanitised HTML is meant for an ``<iframe sandbox>`` under a strict
Content-Security-Policy: this package is the first wall, not the only one.
Everything it does happens on the parsed tree or on html5lib's token stream,
never on the serialised string, because editing sanitised markup afterwards
is how other webmails reintroduced the attacks they had just removed.

How a message goes through ``sanitize_html``:

1. html5lib parses it as a fragment (``parser``). The parser is bounded and
   avoids html5lib's quadratic corners, so that hostile markup costs time
   in proportion to its size.
2. Elements whose content must never show are cut out of the tree with
   everything inside them: scripts, style sheets, SVG, MathML, frames,
   plugins, form controls (``DROPPED_WITH_CONTENT``).
3. bleach's sanitizer filter keeps ``ALLOWED_TAGS`` (other tags are removed,
   their text kept) and the attributes the message's policy accepts;
   ``MailCSSSanitizer`` rebuilds each ``style`` attribute from the
   declarations it allows (``css``).
4. A last filter rewrites ``cid:`` sources to the URLs of the message's own
   parts and makes every link open in a new, unrelated tab.
5. The result is sanitised again until it no longer changes, so that the
   tree the browser builds from it is the one that was checked.
"""

from .budget import Budget, OverBudget
from .css import ALLOWED_CSS_PROPERTIES, MailCSSSanitizer
from .html import (
    ALLOWED_ATTRIBUTES,
    ALLOWED_TAGS,
    DROPPED_WITH_CONTENT,
    MAX_BYTES,
    MailCleaner,
    SanitizedHtml,
    sanitize_html,
)
from .parser import MAX_ATTRIBUTES, MAX_DEPTH, MAX_ELEMENTS
from .text import markup_text, plain_text_to_html

__all__ = [
    "ALLOWED_ATTRIBUTES",
    "ALLOWED_CSS_PROPERTIES",
    "ALLOWED_TAGS",
    "DROPPED_WITH_CONTENT",
    "MAX_ATTRIBUTES",
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_ELEMENTS",
    "Budget",
    "MailCSSSanitizer",
    "MailCleaner",
    "OverBudget",
    "SanitizedHtml",
    "markup_text",
    "plain_text_to_html",
    "sanitize_html",
]
