"""Parsing messages into what the message screen shows, one shape at a time."""

import base64
import pickle
import random
import textwrap
from datetime import UTC, datetime, timedelta, timezone

import pytest

from webmail.mime import (
    Address,
    ParseLimits,
    extract_part,
    extract_parts,
    parse_message,
)
from webmail.mime.parse import _PROBLEMS


def message(text: str) -> bytes:
    return textwrap.dedent(text).lstrip("\n").encode()


def problem(key: str) -> str:
    return str(_PROBLEMS[key])


PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(range(40))).decode()

ALTERNATIVE_RELATED = message(
    f"""
    From: =?utf-8?q?Ren=C3=A9?= <rene@example.org>
    To: a@example.org, "B, C" <b@example.org>
    Cc: team: d@example.org;
    Reply-To: r@example.org
    Subject: =?utf-8?q?Caf=C3=A9?= menu
    Date: Fri, 03 Nov 2017 12:00:00 -0800
    Message-ID: <menu-1@example.org>
    MIME-Version: 1.0
    Content-Type: multipart/mixed; boundary="outer"

    --outer
    Content-Type: multipart/alternative; boundary="alt"

    --alt
    Content-Type: text/plain; charset=utf-8

    Today: café.
    --alt
    Content-Type: multipart/related; boundary="rel"

    --rel
    Content-Type: text/html; charset=utf-8

    <p>Today: café.</p><img src="cid:logo@example.org">
    --rel
    Content-Type: image/png
    Content-ID: <logo@example.org>
    Content-Transfer-Encoding: base64

    {PNG}
    --rel
    Content-Type: image/gif; name=unused.gif
    Content-ID: <unused@example.org>
    Content-Transfer-Encoding: base64

    R0lGODlhAQABAAAAACw=
    --rel--
    --alt--
    --outer
    Content-Type: application/pdf; name="menu.pdf"
    Content-Disposition: attachment; filename="menu.pdf"
    Content-Transfer-Encoding: base64

    JVBERi0xLjQK
    --outer--
    """
)


def test_headers_are_decoded():
    parsed = parse_message(ALTERNATIVE_RELATED)
    assert parsed.subject == "Café menu"
    assert parsed.sender == (Address("René", "rene@example.org"),)
    assert parsed.to == (Address("", "a@example.org"), Address("B, C", "b@example.org"))
    assert parsed.cc == (Address("", "d@example.org"),)
    assert parsed.reply_to == (Address("", "r@example.org"),)
    assert parsed.date == datetime(2017, 11, 3, 12, tzinfo=timezone(timedelta(hours=-8)))
    assert parsed.message_id == "<menu-1@example.org>"
    assert ("Subject", "Café menu") in parsed.headers
    assert parsed.problem is None


def test_alternative_keeps_both_versions_and_related_images_are_inline():
    parsed = parse_message(ALTERNATIVE_RELATED)
    assert parsed.text == "Today: café."
    assert parsed.html == '<p>Today: café.</p><img src="cid:logo@example.org">'
    logo, unused, pdf = parsed.attachments
    assert (logo.part_id, logo.content_type, logo.content_id) == (
        "1.2.2",
        "image/png",
        "logo@example.org",
    )
    assert logo.inline and logo.filename == "attachment.png"
    assert logo.size == len(base64.b64decode(PNG))
    # In multipart/related but not referenced: shown as an attachment.
    assert unused.part_id == "1.2.3" and not unused.inline
    assert (pdf.part_id, pdf.filename, pdf.inline, pdf.size) == ("2", "menu.pdf", False, 9)


def test_extract_part_and_extract_parts():
    assert extract_part(ALTERNATIVE_RELATED, "2") == ("application/pdf", "menu.pdf", b"%PDF-1.4\n")
    content_type, filename, payload = extract_part(ALTERNATIVE_RELATED, "1.2.2")
    assert (content_type, filename) == ("image/png", "attachment.png")
    assert payload == base64.b64decode(PNG)
    assert extract_part(ALTERNATIVE_RELATED, "1.1")[2] == "Today: café.".encode()
    several = extract_parts(ALTERNATIVE_RELATED, ["1.2.2", "2", "9", "1"])
    assert several == {
        "1.2.2": ("image/png", "attachment.png", base64.b64decode(PNG)),
        "2": ("application/pdf", "menu.pdf", b"%PDF-1.4\n"),
    }


@pytest.mark.parametrize("part_id", ["", "0", "3", "1.9", "2.1", "1.", "a", "1..2", "1" * 50, "1"])
def test_extract_part_raises_key_error_for_what_is_no_attachment(part_id):
    # "1" is the multipart/alternative: a container, not an attachment.
    with pytest.raises(KeyError):
        extract_part(ALTERNATIVE_RELATED, part_id)


def test_related_root_named_by_start():
    parsed = parse_message(
        message(
            """
            Content-Type: multipart/related; boundary="r"; start="<root@x>"

            --r
            Content-Type: image/png
            Content-ID: <img@x>

            png
            --r
            Content-Type: text/html
            Content-ID: <root@x>

            <img src="cid:img@x">
            --r--
            """
        )
    )
    assert parsed.html == '<img src="cid:img@x">'
    assert [(part.part_id, part.inline) for part in parsed.attachments] == [("1", True)]


def test_mixed_text_parts_follow_each_other():
    parsed = parse_message(
        message(
            """
            Content-Type: multipart/mixed; boundary="m"

            --m
            Content-Type: text/plain

            First.
            --m
            Content-Type: image/jpeg
            Content-Disposition: inline; filename=photo.jpg

            jpeg
            --m
            Content-Type: text/plain

            Second.
            --m
            Content-Type: text/plain; name=notes.txt
            Content-Disposition: attachment

            Not body.
            --m--
            """
        )
    )
    assert parsed.text == "First.\n\nSecond."
    assert parsed.html is None
    assert [(part.filename, part.inline) for part in parsed.attachments] == [
        ("photo.jpg", True),
        ("notes.txt", False),
    ]


def test_a_text_footer_after_an_alternative_joins_both_versions():
    parsed = parse_message(
        message(
            """
            Content-Type: multipart/mixed; boundary="m"

            --m
            Content-Type: multipart/alternative; boundary="a"

            --a
            Content-Type: text/plain

            Hello
            --a
            Content-Type: text/html

            <b>Hello</b>
            --a--
            --m
            Content-Type: text/plain

            List footer <unsubscribe>
            --m--
            """
        )
    )
    assert parsed.text == "Hello\n\nList footer <unsubscribe>"
    assert parsed.html == (
        '<b>Hello</b><pre style="white-space: pre-wrap">List footer &lt;unsubscribe&gt;</pre>'
    )


def test_alternative_drops_other_renderings_but_keeps_a_calendar():
    parsed = parse_message(
        message(
            """
            Content-Type: multipart/alternative; boundary="a"

            --a
            Content-Type: text/plain

            Plain
            --a
            Content-Type: text/watch-html

            <b>Watch</b>
            --a
            Content-Type: text/html

            <b>Rich</b>
            --a
            Content-Type: text/calendar; method=REQUEST

            BEGIN:VCALENDAR
            END:VCALENDAR
            --a--
            """
        )
    )
    assert (parsed.text, parsed.html) == ("Plain", "<b>Rich</b>")
    assert [(part.part_id, part.filename) for part in parsed.attachments] == [
        ("4", "attachment.ics")
    ]


NESTED = message(
    """
    Subject: Outer
    Content-Type: multipart/mixed; boundary="m"

    --m
    Content-Type: text/plain

    See the forwarded message.
    --m
    Content-Type: message/rfc822

    Subject: =?utf-8?q?Inner_=C3=A9?=
    From: inner@example.org
    Content-Type: multipart/mixed; boundary="i"

    --i
    Content-Type: text/plain

    Inner text.
    --i
    Content-Type: application/zip; name=inner.zip

    zip
    --i--
    --m--
    """
)


def test_attached_messages_are_attachments_named_after_their_subject():
    parsed = parse_message(NESTED)
    assert parsed.text == "See the forwarded message."
    (attached,) = parsed.attachments
    assert (attached.part_id, attached.content_type, attached.filename) == (
        "2",
        "message/rfc822",
        "Inner é.eml",
    )
    content_type, filename, source = extract_part(NESTED, "2")
    assert (content_type, filename) == ("message/rfc822", "Inner é.eml")
    inner = parse_message(source)
    assert (inner.subject, inner.text) == ("Inner é", "Inner text.")
    assert [part.filename for part in inner.attachments] == ["inner.zip"]
    # Numbered like IMAP: the parts of an attached multipart are 2.1, 2.2.
    assert extract_part(NESTED, "2.2") == ("application/zip", "inner.zip", b"zip")


def test_single_part_message_body_is_part_one():
    raw = message(
        """
        Content-Type: application/pdf; name=a.pdf

        pdf
        """
    )
    parsed = parse_message(raw)
    assert parsed.text is None and parsed.html is None
    assert [(part.part_id, part.filename) for part in parsed.attachments] == [("1", "a.pdf")]
    assert extract_part(raw, "1") == ("application/pdf", "a.pdf", b"pdf\n")


@pytest.mark.parametrize(
    ("disposition", "expected"),
    [
        # RFC 2231 with a charset, a language and continuations.
        (
            "attachment; filename*0*=utf-8'de'Ma%C3%9Fnahmen%20; filename*1*=Okt.%20; "
            'filename*2="2020.pdf"',
            "Maßnahmen Okt. 2020.pdf",
        ),
        ("attachment; filename*=Cp1252''Auftragsbest%E4tigung.pdf", "Auftragsbestätigung.pdf"),
        ("attachment; filename*=windows-1251''%EF%F0%E8%E2%E5%F2.txt", "привет.txt"),
        ("attachment; filename*=x-unknown''caf%C3%A9.txt", "café.txt"),
        # RFC 2047 where RFC 2231 belongs.
        ('attachment; filename="=?utf-8?B?w6nDqS5wZGY=?="', "éé.pdf"),
        (
            'attachment; filename="file =?Windows-1251?B?1/LuIO3u4u7j7g==?= 2020.pdf"',
            "file Что нового 2020.pdf",
        ),
        # Paths, leading dots, control and invisible characters.
        ('attachment; filename="../../etc/passwd"', "passwd"),
        ('attachment; filename="C:\\\\Users\\\\x\\\\evil.exe"', "evil.exe"),
        ('attachment; filename="..hidden.txt"', "hidden.txt"),
        ('attachment; filename=".eml"', "attachment.eml"),
        ('attachment; filename="invoice\u202efdp.exe"', "invoicefdp.exe"),
        ('attachment; filename="a=?utf-8?q?=00=07=0A?=b.txt"', "a b.txt"),
        ('attachment; filename="   "', "attachment.pdf"),
        ("attachment", "attachment.pdf"),
    ],
)
def test_attachment_file_names(disposition, expected):
    raw = f"Content-Type: application/pdf\nContent-Disposition: {disposition}\n\nx\n".encode()
    (part,) = parse_message(raw).attachments
    assert part.filename == expected
    assert extract_part(raw, "1")[1] == expected


def test_long_file_names_keep_their_extension_within_255_bytes():
    raw = f'Content-Type: application/pdf; name="{"é" * 300}.pdf"\n\nx\n'.encode()
    (part,) = parse_message(raw).attachments
    assert part.filename.endswith("é.pdf")
    assert len(part.filename.encode()) <= 255


def test_raw_8bit_file_name_and_subject():
    raw = (
        b"Subject: Pr\xc3\xbcfung\nContent-Type: text/plain\n"
        b'Content-Disposition: attachment; filename="Pr\xfcfung.txt"\n\nx\n'
    )
    parsed = parse_message(raw)
    assert parsed.subject == "Prüfung"
    assert parsed.attachments[0].filename == "Prüfung.txt"


def test_body_charsets():
    def text_of(charset: str, data: bytes) -> str | None:
        header = f"Content-Type: text/plain; charset={charset}\n\n".encode()
        return parse_message(header + data).text

    assert text_of("koi8-r", "Привет".encode("koi8-r")) == "Привет"
    assert text_of("iso-2022-jp", "日本語".encode("iso2022_jp")) == "日本語"
    assert text_of("gb2312", "你好".encode("gb2312")) == "你好"
    assert text_of("windows-1252", b"\x80 5") == "€ 5"
    # Mislabelled or unknown.
    assert text_of("us-ascii", "café".encode()) == "café"
    assert text_of("x-unknown", b"caf\xe9") == "café"
    assert text_of('"utf-8"', "café".encode()) == "café"
    assert text_of("utf-16", "café".encode("utf-16")) == "café"


def test_html_without_a_mime_charset_may_name_its_own():
    html = '<html><head><meta http-equiv="Content-Type" content="text/html; charset=koi8-r">'
    raw = b"Content-Type: text/html\n\n" + html.encode() + "Привет".encode("koi8-r")
    assert parse_message(raw).html.endswith("Привет")


def test_transfer_encodings_bad_and_good():
    def text_of(encoding: str, body: str) -> str | None:
        raw = f"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: {encoding}\n\n"
        return parse_message((raw + body).encode()).text

    assert text_of("quoted-printable", "caf=C3=A9 soft=\nbreak") == "café softbreak"
    assert text_of("base64", "Y2Fmw6k=") == "café"
    assert text_of("base64", "Y2Fmw6k") == "café"  # padding missing
    assert text_of("base64", "Y2Fm!!w6k=") == "café"  # junk characters
    assert text_of("7-bit", "plain") == "plain"  # unknown encoding: taken as is
    assert text_of("x-uuencode", "begin 644 a\n$8V%F90``\n`\nend") == "cafe"


def test_multipart_without_boundary_shows_its_text():
    parsed = parse_message(
        message(
            """
            Subject: no boundary
            Content-Type: multipart/mixed

            --xyz
            Content-Type: text/plain

            Hello
            --xyz--
            """
        )
    )
    assert parsed.subject == "no boundary"
    assert "Hello" in parsed.text
    assert parsed.problem == problem("damaged")


def test_boundary_that_never_shows():
    parsed = parse_message(b'Content-Type: multipart/mixed; boundary="b"\n\nJust text.\n')
    assert parsed.text == "Just text.\n"
    assert parsed.problem == problem("damaged")


def test_missing_close_boundary_is_no_problem():
    parsed = parse_message(b'Content-Type: multipart/mixed; boundary="b"\n\n--b\n\nHello\n')
    assert parsed.text == "Hello"
    assert parsed.problem is None


def nested_multiparts(depth: int) -> bytes:
    opening = b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n" % (level, level)
        for level in range(depth)
    )
    closing = b"".join(b"\n--b%d--" % level for level in reversed(range(depth)))
    return b"Subject: deep\n" + opening + b"Content-Type: text/plain\n\ndeepest" + closing


def test_deep_nesting_stops_with_a_problem():
    parsed = parse_message(nested_multiparts(10_000))
    assert parsed.subject == "deep"
    assert parsed.problem == problem("too_complex")
    assert parse_message(nested_multiparts(10_000), limits=ParseLimits(max_depth=100)).problem
    with pytest.raises(KeyError):
        extract_part(nested_multiparts(10_000), "1" + ".1" * 30)


def test_nesting_within_the_limit_is_read():
    parsed = parse_message(nested_multiparts(19))
    assert (parsed.text, parsed.problem) == ("deepest", None)
    assert extract_part(nested_multiparts(19), ".".join(["1"] * 19))[2] == b"deepest"


def test_deeply_nested_attached_messages():
    raw = b"Subject: outer\n" + b"Content-Type: message/rfc822\n\n" * 10_000 + b"\nhello\n"
    parsed = parse_message(raw)
    assert (parsed.subject, parsed.problem) == ("outer", problem("too_complex"))
    # Parsing stopped inside it: it cannot be given whole, so it is not offered.
    assert parsed.attachments == ()
    with pytest.raises(KeyError):
        extract_part(raw, "1")


def many_parts(count: int) -> bytes:
    parts = b"".join(b"--p\nContent-Type: text/plain\n\npart %d\n" % i for i in range(count))
    return b'Subject: many\nContent-Type: multipart/mixed; boundary="p"\n\n' + parts + b"--p--\n"


def test_too_many_parts_shows_the_first_ones():
    parsed = parse_message(many_parts(100_000))
    assert parsed.problem == problem("too_complex")
    assert parsed.text.startswith("part 0\n\npart 1\n")
    assert parsed.text.count("part") <= ParseLimits().max_parts
    assert parse_message(many_parts(400)).problem is None


def test_too_large_messages_show_headers_only():
    raw = b"Subject: big\nContent-Type: text/plain\n\n" + b"x" * 1_000
    parsed = parse_message(raw, limits=ParseLimits(max_message_bytes=500))
    assert parsed.subject == "big"
    assert (parsed.text, parsed.attachments) == (None, ())
    assert parsed.problem == problem("too_large")
    with pytest.raises(KeyError):
        extract_part(raw, "1", limits=ParseLimits(max_message_bytes=500))
    lines = b"Subject: lines\n\n" + b"x\n" * 1_000
    assert parse_message(lines, limits=ParseLimits(max_lines=100)).problem == problem("too_large")


def test_long_text_is_cut():
    raw = b"Content-Type: text/html\n\n" + b"<p>" + b"a" * 5_000
    parsed = parse_message(raw, limits=ParseLimits(max_text_chars=1_000))
    assert len(parsed.html) == 1_000
    assert parsed.problem == problem("truncated")


def test_limits_are_checked():
    with pytest.raises(ValueError, match="max_depth"):
        ParseLimits(max_depth=10_000)


def test_multipart_signed_shows_the_signed_content():
    parsed = parse_message(
        message(
            """
            Content-Type: multipart/signed; protocol="application/pgp-signature"; boundary="s"

            --s
            Content-Type: text/plain

            Signed words.
            --s
            Content-Type: application/pgp-signature; name="signature.asc"

            -----BEGIN PGP SIGNATURE-----
            --s--
            """
        )
    )
    assert parsed.text == "Signed words."
    assert parsed.problem is None
    assert [part.filename for part in parsed.attachments] == ["signature.asc"]


def test_encrypted_messages_say_so():
    pgp = parse_message(
        message(
            """
            Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="e"

            --e
            Content-Type: application/pgp-encrypted

            Version: 1
            --e
            Content-Type: application/octet-stream; name="encrypted.asc"

            -----BEGIN PGP MESSAGE-----
            --e--
            """
        )
    )
    assert pgp.problem == problem("encrypted")
    assert [part.filename for part in pgp.attachments] == ["attachment.asc", "encrypted.asc"]
    smime = b"Content-Type: application/pkcs7-mime; smime-type=enveloped-data\n\nMIAG\n"
    assert parse_message(smime).problem == problem("encrypted")
    opaque = b"Content-Type: application/pkcs7-mime; smime-type=signed-data\n\nMIAG\n"
    assert parse_message(opaque).problem == problem("opaque_signed")


def test_tnef_is_an_attachment():
    raw = b"Content-Type: application/ms-tnef\nContent-Transfer-Encoding: base64\n\neJ8+IgAA\n"
    (part,) = parse_message(raw).attachments
    assert (part.filename, part.size) == ("attachment.dat", 6)


def test_dates():
    def date_of(value: str) -> datetime | None:
        return parse_message(f"Date: {value}\n\n".encode()).date

    assert date_of("Thu, 17 Dec 2020 15:38:45 +0100").utcoffset() == timedelta(hours=1)
    assert date_of("Thu, 17 Dec 2020 15:38:45 -0000") == datetime(
        2020, 12, 17, 15, 38, 45, tzinfo=UTC
    )
    assert date_of("yesterday") is None
    assert date_of("Thu, 17 Dec 99999 15:38:45 +0100") is None


def test_all_headers_are_bounded():
    raw = b"".join(b"X-H%d: %s\n" % (i, b"v" * 5_000) for i in range(600)) + b"\nbody\n"
    headers = parse_message(raw).headers
    assert len(headers) == ParseLimits().max_headers
    assert all(len(value) <= ParseLimits().max_header_chars for _, value in headers)


def test_headers_that_make_the_stdlib_raise():
    # str(msg["from"]) raises ValueError with policy.default for this one.
    parsed = parse_message(b"From: =?utf-8?q?a=0D=0Ab?= <a@b.c>\nSubject: s\n\nbody\n")
    assert parsed.sender == (Address("a  b", "a@b.c"),)
    # Nested comments exhaust the stack of the stdlib's header parsers.
    nested = b"(" * 5_000
    parsed = parse_message(
        b"To: " + nested + b"\nContent-Type: text/plain; a=" + nested + b"\n\nok\n"
    )
    assert parsed.text == "ok\n"


def test_problem_is_translated_text_and_the_result_can_be_cached():
    parsed = parse_message(b"Content-Type: multipart/mixed\n\nx")
    assert isinstance(str(parsed.problem), str)
    assert pickle.loads(pickle.dumps(parsed)) == parsed


def test_enriched_text_is_shown_as_text():
    parsed = parse_message(b"Content-Type: text/enriched\n\n<bold>Hi</bold>\n")
    assert (parsed.text, parsed.html) == ("<bold>Hi</bold>\n", None)


def test_line_endings_do_not_matter():
    crlf = parse_message(ALTERNATIVE_RELATED.replace(b"\n", b"\r\n"))
    lf = parse_message(ALTERNATIVE_RELATED)
    assert (crlf.subject, crlf.text, crlf.html) == (lf.subject, lf.text, lf.html)
    assert crlf.attachments == lf.attachments


@pytest.mark.parametrize("seed", range(20))
def test_garbage_never_raises(seed):
    generator = random.Random(seed)
    pieces = [
        b"--b\n",
        b"Content-Type: multipart/mixed; boundary=b\n",
        b"\n",
        b"=?utf-8?b?",
        b":",
        b"\xff",
    ]
    raw = b"".join(
        generator.choice(pieces) if generator.random() < 0.5 else generator.randbytes(8)
        for _ in range(300)
    )
    parsed = parse_message(raw)
    for part in parsed.attachments:
        assert extract_part(raw, part.part_id)[1] == part.filename
