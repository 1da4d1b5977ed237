"""Header decoding: RFC 2047 in many charsets, broken words, addresses, envelopes."""

from dataclasses import dataclass

import pytest

from webmail.mime import Address, decode_header, envelope_addresses, parse_addresses
from webmail.mime.headers import decode_text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=?ISO-2022-JP?B?GyRCRnxLXDhsGyhC?=", "日本語"),
        ("=?iso-2022-jp?B?GyRCJF4kXyRgJGEkYhsoQg==?=", "まみむめも"),
        ("=?gb2312?B?xOO6ww==?=", "你好"),
        ("=?GB2312?Q?=C4=E3=BA=C3?=", "你好"),
        ("=?windows-1252?Q?=80_price?=", "€ price"),
        ("=?koi8-r?B?8NLJ18XU?=", "Привет"),
        ("=?utf-8?q?caf=C3=A9?=", "café"),
        ("=?UTF-8?B?Y2Fmw6k=?=", "café"),
        ("=?iso-8859-1?q?Andr=E9?= Pirard", "André Pirard"),
        ("=?ks_c_5601-1987?B?x9Gxub7u?=", "한국어"),
    ],
)
def test_encoded_words_in_many_charsets(value, expected):
    assert decode_header(value) == expected


def test_whitespace_between_encoded_words_is_dropped_but_not_around_text():
    assert decode_header("=?utf-8?q?a?= =?utf-8?q?b?=") == "ab"
    assert decode_header("=?utf-8?q?a?=\r\n =?iso-8859-1?q?b?=") == "ab"
    assert decode_header("x =?utf-8?q?a?= y") == "x a y"


def test_a_character_split_across_two_words_survives():
    # "é" is C3 A9 in UTF-8; some mailers cut between the two bytes.
    assert decode_header("=?utf-8?q?caf=C3?= =?utf-8?q?=A9?=") == "café"
    assert decode_header("=?utf-8?b?w6k=?==?utf-8?b?w6k=?=") == "éé"


def test_words_without_delimiting_spaces_are_still_decoded():
    assert decode_header("=?utf-8?q?foo?=.bar") == "foo.bar"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # Unknown charset: UTF-8 if it fits, else windows-1252.
        ("=?x-unknown?q?caf=C3=A9?=", "café"),
        ("=?x-unknown?q?caf=E9?=", "café"),
        # A Python codec that is no charset is not used.
        ("=?rot13?q?abc?=", "abc"),
        ("=?undefined?q?abc?=", "abc"),
        # RFC 2231 language suffix.
        ("=?utf-8*en?q?abc?=", "abc"),
        # Base64 without padding, or with junk.
        ("=?utf-8?b?Y2Fmw6k?=", "café"),
        ("=?utf-8?b?Y2Fm w6k*?=", "café"),
        # Not encoded words: left as they are.
        ("=?utf-8?x?abc?=", "=?utf-8?x?abc?="),
        ("=?utf-8?q?unterminated", "=?utf-8?q?unterminated"),
        # A declared charset that does not fit: replacement characters, no error.
        ("=?utf-8?q?a=FFb?=", "a\ufffdb"),
    ],
)
def test_broken_words_decode_best_effort(value, expected):
    assert decode_header(value) == expected


def test_line_breaks_and_control_characters_never_survive():
    value = decode_header("a\r\n b\r\nBcc: x@y\x00\x07 =?utf-8?q?c=0D=0Ad?=")
    assert "\r" not in value and "\n" not in value
    assert "\x00" not in value and "\x07" not in value
    assert value.startswith("a b")


def test_length_is_bounded():
    value = decode_header("x" * 100_000)
    assert len(value) == 2_000 and value.endswith("…")
    assert len(decode_header("y" * 50, max_chars=10)) == 10


def test_bytes_and_surrogate_escaped_text():
    assert decode_header(b"caf\xc3\xa9") == "café"
    assert decode_header(b"caf\xe9") == "café"
    # What the stdlib gives for 8-bit header bytes parsed from bytes.
    assert decode_header("caf\udcc3\udca9") == "café"
    assert decode_header(None) == ""


def test_decode_text_tries_declared_then_utf8_then_windows_1252():
    assert decode_text("Привет".encode("koi8-r"), "koi8-r") == "Привет"
    assert decode_text("é".encode(), "us-ascii") == "é"
    assert decode_text(b"\xe9", "us-ascii") == "é"
    assert decode_text(b"\x81\xe9", None) == "\ufffdé"
    # A known charset that does not fit every byte beats windows-1252.
    assert decode_text("日本".encode("shift_jis") + b"\x81", "shift_jis") == "日本\ufffd"
    assert decode_text(b"abc", "no-such-charset") == "abc"


def test_parse_addresses_flattens_groups_and_decodes_names():
    addresses = parse_addresses(
        'Undisclosed:;, "Doe, J" <j@x.org>, team: a@b.c, =?utf-8?q?Ren=C3=A9?= <r@d.e>;'
    )
    assert addresses == (
        Address("Doe, J", "j@x.org"),
        Address("", "a@b.c"),
        Address("René", "r@d.e"),
    )


@pytest.mark.parametrize(
    ("address", "shown"),
    [
        ("a@xn--bcher-kva.de", "a@bücher.de"),
        ("a@xn--wgv71a119e.xn--eckwd4c7cu47r2wf.jp", "a@日本語.ドメイン名例.jp"),
        # Not valid IDNA: left as it is.
        ("a@xn--.de", "a@xn--.de"),
        # Latin and Cyrillic in one label: the ASCII form gives the look-alike away.
        ("a@xn--pypal-4ve.com", "a@xn--pypal-4ve.com"),
        ("a@\u0420aypal.com", "a@xn--aypal-uye.com"),
        ("a@пример.рф", "a@пример.рф"),
    ],
)
def test_parse_addresses_shows_idna_domains_in_unicode_unless_scripts_mix(address, shown):
    assert parse_addresses(address) == (Address("", shown),)


def test_parse_addresses_survives_what_breaks_the_stdlib():
    # An encoded CR LF in a display name makes policy.default raise.
    assert parse_addresses("=?utf-8?q?a=0D=0Ab?= <a@b.c>") == (Address("a  b", "a@b.c"),)
    # Nested comments make both stdlib parsers recurse until the stack runs out.
    assert isinstance(parse_addresses("(" * 5_000 + "a@b.c"), tuple)
    assert isinstance(parse_addresses("a@b.c, " + "x:" * 3_000), tuple)
    assert parse_addresses(None) == () and parse_addresses("  ") == ()
    assert parse_addresses(b"J\xc3\xa9 <j@x.org>") == (Address("Jé", "j@x.org"),)


def test_parse_addresses_bounds_long_headers_at_an_address():
    value = ", ".join(f"Person {i} <p{i}@example.com>" for i in range(5_000))
    addresses = parse_addresses(value, max_chars=1_000)
    assert 0 < len(addresses) < 50
    assert addresses[-1].email.endswith("@example.com")


@dataclass
class EnvelopeAddress:
    """The shape of imapclient's Address."""

    name: bytes | None
    route: bytes | None
    mailbox: bytes | None
    host: bytes | None


def test_envelope_addresses_decode_bytes_and_skip_group_markers():
    addresses = envelope_addresses(
        [
            EnvelopeAddress(None, None, b"team", None),  # group start
            EnvelopeAddress(b"=?utf-8?q?Ren=C3=A9?=", None, b"rene", b"xn--bcher-kva.de"),
            EnvelopeAddress(b"J\xc3\xa9", None, b"j\xc3\xa9", b"example.org"),
            EnvelopeAddress(None, None, None, None),  # group end
            EnvelopeAddress(None, None, b"x", b"example.org"),
        ]
    )
    assert addresses == (
        Address("René", "rene@bücher.de"),
        Address("Jé", "jé@example.org"),
        Address("", "x@example.org"),
    )
    assert envelope_addresses(None) == ()
