"""The original message inside a reply (quoted) or a forward (shown whole), as HTML or text.

An HTML original is quoted as the reading sanitiser makes it: remote content
blocked, and images of the message's own parts left out (no ``cid:`` URL
leads anywhere from the editor); a text original is quoted line by line.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from html import escape

from django.utils import formats, timezone
from django.utils.translation import gettext as _

from webmail.compose.composition import format_addresses
from webmail.compose.editor_html import html_to_text, text_to_editor_html
from webmail.mime import ParsedMessage
from webmail.sanitize import sanitize_html

#: Room to write above what is quoted.
EMPTY_LINE_HTML = "<div><br></div>"

#: Bound on the original's body made into editor HTML, or turned from HTML into
#: text: the editor and every draft save handle the whole of it again. Plain
#: text quoted as plain text costs little and is kept whole.
MAX_QUOTE_CHARS = 100_000


def _when(date: datetime) -> str:
    # A date at the end of time cannot move to another zone: shown in its own.
    with contextlib.suppress(OverflowError, ValueError):
        date = timezone.localtime(date)
    return formats.date_format(date, "DATETIME_FORMAT")


def attribution(message: ParsedMessage) -> str:
    """The line above a quote: "On <date>, <name> wrote:"."""
    name = str(message.sender[0]) if message.sender else _("an unknown sender")
    if message.date is None:
        return _("%(name)s wrote:") % {"name": name}
    return _("On %(date)s, %(name)s wrote:") % {"date": _when(message.date), "name": name}


def _left_out() -> str:
    return _("[The rest of the message is left out: it is too long to quote.]")


def body_html(message: ParsedMessage) -> str:
    """The original's body as editor HTML, sanitised, at most about MAX_QUOTE_CHARS long."""
    if message.html is not None:
        sanitized = sanitize_html(message.html, max_bytes=MAX_QUOTE_CHARS)
        html, cut = sanitized.html, sanitized.truncated
    else:
        text = (message.text or "").rstrip()
        cut = len(text) > MAX_QUOTE_CHARS
        if cut:
            text = text[: text.rfind("\n", 0, MAX_QUOTE_CHARS) + 1 or MAX_QUOTE_CHARS]
        html = text_to_editor_html(text)
    return html + f"<div>{escape(_left_out())}</div>" if cut else html


def body_text(message: ParsedMessage) -> str:
    """The original's body as text: its text part, or the text of its HTML."""
    if message.text is not None:
        return message.text
    html = message.html or ""
    if len(html) <= MAX_QUOTE_CHARS:
        return html_to_text(html)
    return html_to_text(html[:MAX_QUOTE_CHARS]) + "\n\n" + _left_out()


def quote_html(message: ParsedMessage) -> str:
    """The attribution and the original in a ``<blockquote type="cite">``."""
    return (
        f"<div>{escape(attribution(message))}</div>"
        f'<blockquote type="cite">{body_html(message)}</blockquote>'
    )


def quote_text(message: ParsedMessage) -> str:
    """The attribution and the original, each line after "> "."""
    lines = [attribution(message)]
    for line in body_text(message).rstrip("\n").split("\n"):
        # Quoted lines stay compact: ">> " rather than "> > ".
        lines.append(">" + line if not line or line.startswith(">") else "> " + line)
    return "\n".join(lines)


def _forward_header(message: ParsedMessage) -> list[str]:
    lines = [_("---------- Forwarded message ---------")]
    fields = [
        (_("From:"), format_addresses(message.sender)),
        (_("Date:"), _when(message.date) if message.date is not None else ""),
        (_("Subject:"), message.subject),
        (_("To:"), format_addresses(message.to)),
        (_("Cc:"), format_addresses(message.cc)),
    ]
    lines += [f"{label} {value}" for label, value in fields if value]
    return lines


def forward_html(message: ParsedMessage) -> str:
    """The "Forwarded message" block, then the original's body."""
    header = "<br>".join(escape(line) for line in _forward_header(message))
    return f"<div>{header}</div>{EMPTY_LINE_HTML}{body_html(message)}"


def forward_text(message: ParsedMessage) -> str:
    return "\n".join(_forward_header(message)) + "\n\n" + body_text(message).rstrip("\n")
