"""Finding mail: the query a person asks for, read from a URL, and its IMAP SEARCH criteria.

The quick search looks for each word (or "quoted phrase") in the sender, the
recipients, the subject and the body, as an OR chain of FROM, TO, CC, SUBJECT
and BODY rather than TEXT: TEXT also searches every other header (Received,
Message-ID, DKIM-Signature, ...), so a search for the office's domain or a
mail provider's name would find nearly every message. Each word must be found
somewhere; the advanced fields narrow further.

Text goes to the server as quoted strings, or as UTF-8 literals with
``CHARSET UTF-8`` when it is not ASCII (RFC 3501, 6.4.4). The pieces here are
pure: the stores send and cache (webmail.mailstore).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import astuple, dataclass
from datetime import date

from django import forms
from django.core.exceptions import ValidationError
from django.utils.formats import date_format
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from webmail.sanitize.text import markup_text

#: Characters of one text field; words in one field.
MAX_TEXT_CHARS = 200
MAX_WORDS = 10
#: RFC 3501 sizes are 32-bit numbers of bytes: the largest size in KiB that fits.
MAX_SIZE_KB = (2**32 - 1) // 1024
#: Characters of a body kept for searching the mail Facteur stores itself.
BODY_TEXT_CHARS = 100_000
#: The longest header value looked for: one line of a message (RFC 5322, 2.1.1).
MAX_HEADER_SEARCH_CHARS = 998

#: Where each word of the quick search is looked for.
QUICK_SEARCH_KEYS = (b"FROM", b"TO", b"CC", b"SUBJECT", b"BODY")
#: Where "to" looks: every kind of recipient.
RECIPIENT_KEYS = (b"TO", b"CC", b"BCC")
#: IMAP has no criterion for attachments. Mail programs send a message with
#: attachments as multipart/mixed, so that is what is looked for: a message whose
#: only extra parts are inline pictures may be found, and one made otherwise
#: (a lone PDF as the whole message, say) is missed.
ATTACHMENT_KEYS = (b"HEADER", b"Content-Type", b'"multipart/mixed"')

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_WORD_RE = re.compile(r'"([^"]*)(?:"|$)|([^\s"]+)')
_CONTROL_RE = re.compile("[\x00-\x1f\x7f]")
#: The tag correlator that opens an ESEARCH response (RFC 4731): (TAG "A12")
_CORRELATOR_RE = re.compile(rb'^\s*\(TAG\s+"(?:[^"\\]|\\.)*"\)\s*', re.IGNORECASE)


@dataclass(frozen=True)
class SearchQuery:
    """What a person looks for; every criterion given must hold.

    Text criteria are tuples of words, each to be found (as a substring, in any
    case) in its place. Sizes are in bytes; ``after`` is inclusive and ``before``
    exclusive, as IMAP's SENTSINCE and SENTBEFORE.
    """

    words: tuple[str, ...] = ()
    sender: tuple[str, ...] = ()
    recipient: tuple[str, ...] = ()
    subject: tuple[str, ...] = ()
    body: tuple[str, ...] = ()
    after: date | None = None
    before: date | None = None
    has_attachment: bool = False
    unread: bool = False
    flagged: bool = False
    larger: int | None = None
    smaller: int | None = None
    #: In every folder rather than one; then Trash and Junk only when asked.
    everywhere: bool = False
    include_trash: bool = False

    @property
    def is_empty(self) -> bool:
        """Whether nothing at all is asked for: no search is made then."""
        criteria = astuple(self)[:-2]  # the scope is no criterion
        return all(value is None or value is False or value == () for value in criteria)

    @property
    def is_advanced(self) -> bool:
        """Whether anything beyond the quick search's words is asked for."""
        return self != SearchQuery(words=self.words)

    @property
    def digest(self) -> str:
        """A short name of the whole query, for cache keys."""
        return hashlib.sha256(repr(astuple(self)).encode()).hexdigest()[:24]

    def describe(self) -> str:
        """The query in words, for "12 results for …"."""
        parts = [f"“{word}”" for word in self.words]
        labelled = (
            (gettext("from"), self.sender),
            (gettext("to"), self.recipient),
            (gettext("subject"), self.subject),
            (gettext("body"), self.body),
        )
        parts += [f"{label}: {' '.join(words)}" for label, words in labelled if words]
        if self.after:
            parts.append(gettext("since %(date)s") % {"date": date_format(self.after)})
        if self.before:
            parts.append(gettext("before %(date)s") % {"date": date_format(self.before)})
        if self.has_attachment:
            parts.append(gettext("with attachments"))
        if self.unread:
            parts.append(gettext("unread"))
        if self.flagged:
            parts.append(gettext("flagged"))
        if self.larger is not None:
            parts.append(gettext("larger than %(kb)s KB") % {"kb": self.larger // 1024})
        if self.smaller is not None:
            parts.append(gettext("smaller than %(kb)s KB") % {"kb": self.smaller // 1024})
        return ", ".join(parts)


def split_words(text: str) -> tuple[str, ...]:
    """The words of ``text``; a "quoted phrase" is one word, its spaces made single."""
    words = []
    for phrase, word in _WORD_RE.findall(text):
        value = " ".join((phrase or word).split())
        if value:
            words.append(value)
    return tuple(words)


def _searchable(value: str) -> None:
    # Nothing in a mail server's search takes a line break, and a CR/LF in an IMAP
    # string would end the command.
    if _CONTROL_RE.search(value):
        raise ValidationError(
            _("Line breaks and control characters cannot be searched for."), code="control"
        )
    if len(split_words(value)) > MAX_WORDS:
        raise ValidationError(
            _("Search for at most %(count)d words at once."),
            code="words",
            params={"count": MAX_WORDS},
        )


def _text_field(label: str) -> forms.CharField:
    return forms.CharField(
        label=label, required=False, max_length=MAX_TEXT_CHARS, validators=[_searchable]
    )


def _date_field(label: str) -> forms.DateField:
    # What a browser's date input sends, whatever the person's language.
    return forms.DateField(label=label, required=False, input_formats=["%Y-%m-%d"])


def _size_field(label: str) -> forms.IntegerField:
    return forms.IntegerField(label=label, required=False, min_value=0, max_value=MAX_SIZE_KB)


class SearchForm(forms.Form):
    """The search as the URL gives it (GET), validated; ``query()`` once it is valid."""

    SCOPE_FOLDER = "folder"
    SCOPE_ALL = "all"

    q = _text_field(_("Search"))
    sender = _text_field(_("From"))
    recipient = _text_field(_("To"))
    subject = _text_field(_("Subject"))
    body = _text_field(_("Words in the body"))
    after = _date_field(_("Sent on or after"))
    before = _date_field(_("Sent before"))
    attachment = forms.BooleanField(label=_("Has attachments"), required=False)
    unread = forms.BooleanField(label=_("Unread"), required=False)
    flagged = forms.BooleanField(label=_("Flagged"), required=False)
    larger = _size_field(_("Larger than (KB)"))
    smaller = _size_field(_("Smaller than (KB)"))
    scope = forms.ChoiceField(
        label=_("Where"),
        required=False,
        choices=[(SCOPE_FOLDER, _("In this folder")), (SCOPE_ALL, _("In all folders"))],
    )
    trash = forms.BooleanField(label=_("Include Trash and Junk"), required=False)

    def clean(self) -> dict:
        data = super().clean()
        after, before = data.get("after"), data.get("before")
        if after and before and after >= before:
            self.add_error("before", _("This date must come after the first one."))
        larger, smaller = data.get("larger"), data.get("smaller")
        if larger is not None and smaller is not None and smaller <= larger:
            self.add_error("smaller", _("No message can be both larger and smaller than that."))
        return data

    def query(self) -> SearchQuery:
        data = self.cleaned_data
        return SearchQuery(
            words=split_words(data["q"]),
            sender=split_words(data["sender"]),
            recipient=split_words(data["recipient"]),
            subject=split_words(data["subject"]),
            body=split_words(data["body"]),
            after=data["after"],
            before=data["before"],
            has_attachment=data["attachment"],
            unread=data["unread"],
            flagged=data["flagged"],
            larger=None if data["larger"] is None else data["larger"] * 1024,
            smaller=None if data["smaller"] is None else data["smaller"] * 1024,
            everywhere=data["scope"] == self.SCOPE_ALL,
            include_trash=data["trash"],
        )


# IMAP -------------------------------------------------------------------------


def imap_string(text: str) -> bytes:
    """``text`` as an IMAP string argument.

    ASCII goes quoted; anything else as its UTF-8 bytes, which imapclient sends
    as a literal (it sends every 8-bit argument so), under ``CHARSET UTF-8``.
    A line break would end the command: it is refused, whatever let it through.
    """
    if _CONTROL_RE.search(text):
        raise ValueError("control characters in a search string")
    if text.isascii():
        return b'"' + text.replace("\\", "\\\\").replace('"', '\\"').encode("ascii") + b'"'
    return text.encode("utf-8")


def header_keys(terms: Iterable[tuple[str, str]]) -> list[bytes]:
    """One search key, true when any header ``name`` holds its ``value``; [] when none can be.

    Values come from mail (Message-IDs, References) and may hold anything: each
    goes as an IMAP string, so no quote, bracket or backslash is read as syntax.
    One with a control character or longer than a header line cannot be found
    as written and is left out. OR takes two keys: they are paired as a balanced
    tree in prefix form, which needs no parentheses and stays shallow.
    """
    keys = [
        [b"HEADER", name.encode("ascii"), imap_string(value)]
        for name, value in terms
        if len(value) <= MAX_HEADER_SEARCH_CHARS and not _CONTROL_RE.search(value)
    ]
    return _balanced(keys) if keys else []


def _balanced(keys: list[list[bytes]]) -> list[bytes]:
    if len(keys) == 1:
        return keys[0]
    middle = len(keys) // 2
    return [b"OR", *_balanced(keys[:middle]), *_balanced(keys[middle:])]


def imap_date(day: date) -> bytes:
    """A date as SEARCH takes it (RFC 3501 date): 4-Mar-2025."""
    return f"{day.day}-{_MONTHS[day.month - 1]}-{day.year:04d}".encode("ascii")


def _any_of(keys: list[list[bytes]]) -> list[bytes]:
    """One search key true when any of ``keys`` is: OR takes two, so they are chained."""
    if len(keys) == 1:
        return keys[0]
    return [b"OR", *keys[0], *_any_of(keys[1:])]


def imap_criteria(query: SearchQuery) -> list[bytes]:
    """The search keys of ``query`` (RFC 3501, 6.4.4), all of which must hold."""
    keys: list[bytes] = []
    for word in query.words:
        keys += _any_of([[key, imap_string(word)] for key in QUICK_SEARCH_KEYS])
    for word in query.sender:
        keys += [b"FROM", imap_string(word)]
    for word in query.recipient:
        keys += _any_of([[key, imap_string(word)] for key in RECIPIENT_KEYS])
    for word in query.subject:
        keys += [b"SUBJECT", imap_string(word)]
    for word in query.body:
        keys += [b"BODY", imap_string(word)]
    # By the Date header, as the list shows each message's date.
    if query.after:
        keys += [b"SENTSINCE", imap_date(query.after)]
    if query.before:
        keys += [b"SENTBEFORE", imap_date(query.before)]
    if query.has_attachment:
        keys += ATTACHMENT_KEYS
    if query.unread:
        keys.append(b"UNSEEN")
    if query.flagged:
        keys.append(b"FLAGGED")
    if query.larger is not None:
        keys += [b"LARGER", str(query.larger).encode("ascii")]
    if query.smaller is not None:
        keys += [b"SMALLER", str(query.smaller).encode("ascii")]
    return keys or [b"ALL"]


def imap_charset(keys: list[bytes]) -> bytes | None:
    """The CHARSET the keys need: UTF-8 when any is not ASCII, else none at all.

    Only US-ASCII must be understood by every server (RFC 3501), so UTF-8 is
    named only when it is needed.
    """
    return b"UTF-8" if any(not key.isascii() for key in keys) else None


def sequence_set(text: bytes, *, limit: int) -> list[int]:
    """The numbers of an RFC 3501 sequence set without "*" ("1:3,7"), ascending.

    More than ``limit`` numbers is an error: a folder's search finds at most as
    many messages as it holds.
    """
    numbers: set[int] = set()
    for part in text.split(b","):
        if not part:
            continue
        low, __, high = part.partition(b":")
        first, last = int(low), int(high or low)
        if first > last:
            first, last = last, first
        if len(numbers) + last - first + 1 > limit:
            raise ValueError("more numbers than the folder has messages")
        numbers.update(range(first, last + 1))
    return sorted(numbers)


def parse_esearch(line: bytes | None, *, limit: int) -> list[int]:
    """The UIDs of an ESEARCH response (RFC 4731) to RETURN (ALL), ascending.

    ``* ESEARCH (TAG "A5") UID ALL 4:7,9`` gives [4, 5, 6, 7, 9]; without a
    match, the server leaves ALL out.
    """
    if not line:
        return []
    tokens = _CORRELATOR_RE.sub(b"", line, count=1).split()
    if tokens and tokens[0].upper() == b"UID":
        tokens = tokens[1:]
    values = {name.upper(): value for name, value in zip(tokens[::2], tokens[1::2], strict=False)}
    return sequence_set(values.get(b"ALL", b""), limit=limit)


# The mail Facteur keeps -------------------------------------------------------


def body_text(text: str | None, html: str | None) -> str:
    """What a body search looks through: the plain text (or the HTML's text), casefolded.

    Runs of spaces and line breaks become one space, so that a phrase matches
    across a line break; casefolding lets any database compare it in any case.
    """
    if text is None and html:
        # Words on either side of a tag stay apart.
        text = markup_text(html[: 4 * BODY_TEXT_CHARS].replace("<", " <"))
    return " ".join((text or "").split())[:BODY_TEXT_CHARS].casefold()
