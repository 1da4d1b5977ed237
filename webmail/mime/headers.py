"""Header decoding that never raises on hostile input.

Everything here takes what a message or a server says (text, bytes, or
``None``) and returns clean, bounded text: no CR, LF or other control
characters, no lone surrogates, whatever the charset label claimed.
"""

from __future__ import annotations

import binascii
import codecs
import functools
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from email import utils as email_utils
from email.policy import default as default_policy
from typing import Any

#: Longest decoded header value, in characters, unless the caller asks otherwise.
MAX_HEADER_CHARS = 2_000

#: Longest address header given to the address parser, which is pure Python and
#: slows down on long input (about 5 ms per kilobyte); 20,000 characters hold
#: several hundred addresses.
MAX_ADDRESS_CHARS = 20_000

#: Encoded words decode to fewer characters than they take, so more input than
#: the bound on the output is read; beyond this, the input is cut first.
_INPUT_FACTOR = 16

# Labels in use in mail that Python does not know. ``None``: the label says
# nothing about the bytes.
_LABELS: dict[str, str | None] = {
    "unknown-8bit": None,
    "x-unknown": None,
    "x-user-defined": None,
    "default": None,
    "iso-8859-8-i": "iso8859-8",
    "iso-8859-6-i": "iso8859-6",
    "x-gbk": "gbk",
    "x-sjis": "shift_jis",
    "windows-31j": "cp932",
    "windows-874": "cp874",
    "x-euc-jp": "euc_jp",
    "x-mac-roman": "mac-roman",
}

# Codecs that mail software means as a wider one, as browsers do (WHATWG
# Encoding Standard): decoding with the superset reads what the sender wrote.
# 8-bit text marked "us-ascii" is UTF-8 or windows-1252 far more often than
# anything else, so ASCII says nothing.
_WIDER: dict[str, str | None] = {
    "ascii": None,
    "iso8859-1": "cp1252",
    "tis-620": "cp874",
    "iso8859-11": "cp874",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "euc_kr": "cp949",
    "shift_jis": "cp932",
    "iso2022_jp": "iso2022_jp_ext",
    "big5": "big5hkscs",
}

# Python codecs that are not character sets: a charset label naming one of them
# is treated as unknown.
_NOT_CHARSETS = frozenset({"undefined", "unicode-escape", "raw-unicode-escape", "idna", "punycode"})

_FOLD_RE = re.compile(r"\r?\n(?=[ \t])")
# Controls, and the two separators beyond them that end a line for str.splitlines()
# and for the email package, which refuses them in a header.
_CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
#: Every character that ends a line (those str.splitlines() splits at).
LINE_BREAKS_RE = re.compile("[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]+")
_ENCODED_WORD_RE = re.compile(r"=\?([^?\s]{1,75})\?([QqBb])\?([^?]*)\?=")
_BASE64_JUNK_RE = re.compile(rb"[^A-Za-z0-9+/]")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
_EAST_ASIAN_SCRIPTS = frozenset({"CJK", "HIRAGANA", "KATAKANA", "HANGUL"})


@dataclass(frozen=True)
class Address:
    name: str
    email: str

    def __str__(self) -> str:
        return self.name or self.email


@functools.lru_cache(maxsize=256)
def _codec(label: str | None) -> str | None:
    """The Python codec to read text labelled ``label``, or ``None`` for none."""
    if not label:
        return None
    # RFC 2231 lets a language follow the charset: "utf-8*en".
    name = label.strip().strip("\"'").split("*", 1)[0].lower()
    name = _LABELS.get(name, name)
    if name is None:
        return None
    try:
        codec = codecs.lookup(name).name
    except (LookupError, ValueError, TypeError):
        return None
    if codec in _NOT_CHARSETS:
        return None
    return _WIDER.get(codec, codec)


def _try_decode(data: bytes, codec: str, errors: str = "strict") -> str | None:
    try:
        return data.decode(codec, errors)
    except (LookupError, ValueError, TypeError):
        # LookupError: not a text encoding; ValueError covers UnicodeDecodeError.
        return None


def decode_text(data: bytes, charset: str | None = None) -> str:
    """Text from ``data`` labelled ``charset``; never raises.

    The declared charset is tried first, then UTF-8; a known charset that does
    not fit every byte is then used with replacement characters (better than
    windows-1252 for a multi-byte text with one bad sequence), and windows-1252
    with replacement is the last resort.
    """
    codec = _codec(charset)
    if codec is not None:
        text = _try_decode(data, codec)
        if text is not None:
            return text
    text = _try_decode(data, "utf-8")
    if text is not None:
        return text
    if codec is not None:
        text = _try_decode(data, codec, "replace")
        if text is not None:
            return text
    return data.decode("cp1252", "replace")


def _unescape(value: str) -> str:
    """Turn the surrogate escapes of undecoded 8-bit header bytes into text."""
    if not _SURROGATE_RE.search(value):
        return value
    try:
        raw = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return _SURROGATE_RE.sub("\ufffd", value)
    return decode_text(raw)


def one_line(text: str) -> str:
    """``text`` with each run of line breaks, of any kind, made one space."""
    return LINE_BREAKS_RE.sub(" ", text).strip()


def _as_text(value: str | bytes | Any, max_chars: int) -> str:
    if isinstance(value, bytes):
        return decode_text(value[:max_chars])
    return _unescape(str(value)[:max_chars])


def _clean(text: str, max_chars: int) -> str:
    """One line of displayable text of at most ``max_chars`` characters."""
    text = _CONTROL_RE.sub(" ", text.replace("\x00", "")).strip()
    if len(text) > max_chars:
        text = text[: max_chars - 1].rstrip() + "…"
    return text


def _decode_word(encoding: str, encoded: str) -> bytes | None:
    data = encoded.encode("utf-8", "replace")
    if encoding in "Qq":
        return binascii.a2b_qp(data, header=True)
    # Be lenient like other mail readers: drop stray characters, repair padding.
    data = _BASE64_JUNK_RE.sub(b"", data)
    data = data[: len(data) - len(data) % 4] if len(data) % 4 == 1 else data
    try:
        return binascii.a2b_base64(data + b"=" * (-len(data) % 4))
    except binascii.Error:
        return None


def decode_header(value: str | bytes | None, *, max_chars: int = MAX_HEADER_CHARS) -> str:
    """A header value as one line of text, RFC 2047 encoded words decoded.

    Adjacent encoded words in one charset are joined before decoding, so a
    character split across two words survives. Never raises; the result is
    at most ``max_chars`` characters.
    """
    if value is None:
        return ""
    text = _FOLD_RE.sub("", _as_text(value, max_chars * _INPUT_FACTOR))
    if "=?" not in text:
        return _clean(text, max_chars)
    pieces: list[str] = []
    charset: str | None = None  # of the run of encoded words being read
    run = b""
    position = 0
    for match in _ENCODED_WORD_RE.finditer(text):
        word = _decode_word(match.group(2), match.group(3))
        between = text[position : match.start()]
        # Whitespace between two encoded words is not part of the text (RFC 2047, 6.2).
        if word is None or charset is None or between.strip():
            if charset is not None:
                pieces.append(decode_text(run, charset))
                charset, run = None, b""
            pieces.append(between)
        if word is None:
            pieces.append(match.group(0))
        elif charset is not None and charset.lower() == match.group(1).lower():
            run += word
        else:
            if charset is not None:
                pieces.append(decode_text(run, charset))
            charset, run = match.group(1), word
        position = match.end()
    if charset is not None:
        pieces.append(decode_text(run, charset))
    pieces.append(text[position:])
    return _clean("".join(pieces), max_chars)


def _script(character: str) -> str:
    script = unicodedata.name(character, "").partition(" ")[0]
    # Japanese and Korean names mix these by nature.
    return "CJK" if script in _EAST_ASIAN_SCRIPTS else script


def _one_script(label: str) -> bool:
    return len({_script(character) for character in label if character.isalpha()}) <= 1


def _display_label(label: str) -> str:
    """A domain label as a person should see it.

    Unicode when its letters are of one script; otherwise its ASCII form
    ("xn--..."), which gives a look-alike away ("paypal" spelt with a Cyrillic a).
    """
    if label.isascii():
        if not label.lower().startswith("xn--"):
            return label
        try:
            decoded = label.encode("ascii").decode("idna")
        except (UnicodeError, ValueError):
            return label  # not valid IDNA
        return decoded if _one_script(decoded) else label
    if _one_script(label):
        return label
    try:
        return label.encode("idna").decode("ascii")
    except (UnicodeError, ValueError):
        return label


def _display_domain(domain: str) -> str:
    if domain.isascii() and "xn--" not in domain.lower():
        return domain
    return ".".join(_display_label(label) for label in domain.split("."))


def _address(name: str | bytes, email: str) -> Address | None:
    email = _clean(_unescape(email), 320)  # RFC 5321: 64 + 1 + 255
    local, at, domain = email.rpartition("@")
    if at:
        email = f"{local}@{_display_domain(domain)}"
    name = decode_header(name)
    if not name and not email:
        return None
    return Address(name=name, email=email)


def _address_pairs(text: str) -> list[tuple[str, str]]:
    try:
        header = default_policy.header_factory("to", text)
    except Exception:
        # policy.default's RFC 5322 parser fails on some hostile input (CR or LF
        # in an encoded display name, nested comments); the older one is more forgiving.
        return _older_address_pairs(text)
    return [(address.display_name, address.addr_spec) for address in header.addresses]


def _older_address_pairs(text: str) -> list[tuple[str, str]]:
    try:
        return email_utils.getaddresses([text])
    except Exception:
        # It recurses on groups and comments and can exhaust the stack: no structure, then.
        return [(text, "")]


def parse_addresses(
    value: str | bytes | None, *, max_chars: int = MAX_ADDRESS_CHARS
) -> tuple[Address, ...]:
    """Every address of an address header (From, To, ...); groups are flattened.

    Never raises: broken input gives what could be read. Input longer than
    ``max_chars`` is cut after the last whole address that fits.
    """
    if value is None:
        return ()
    text = _as_text(value, max_chars + 1)
    text = _CONTROL_RE.sub(" ", _FOLD_RE.sub("", text).replace("\x00", ""))
    if len(text) > max_chars:
        cut = text.rfind(",", 0, max_chars)
        text = text[: cut if cut > 0 else max_chars]
    if not text.strip():
        return ()
    addresses = (_address(name, email) for name, email in _address_pairs(text))
    return tuple(address for address in addresses if address is not None)


def _envelope_text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return decode_text(value)
    return str(value)


def envelope_addresses(addrs: Iterable[Any] | None) -> tuple[Address, ...]:
    """Addresses from an IMAP ENVELOPE list (imapclient ``Address`` objects).

    Each item has ``name``, ``route``, ``mailbox`` and ``host`` (bytes or
    ``None``). Group markers, which have no host (RFC 3501), are skipped, so
    groups are flattened.
    """
    result = []
    for item in addrs or ():
        host = getattr(item, "host", None)
        if host is None:
            continue
        mailbox = _envelope_text(getattr(item, "mailbox", None))
        domain = _envelope_text(host)
        address = _address(
            getattr(item, "name", None) or "", f"{mailbox}@{domain}" if mailbox else domain
        )
        if address is not None:
            result.append(address)
    return tuple(result)
