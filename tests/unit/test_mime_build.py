"""build_message: correct, safe headers and a faithful MIME structure."""

from __future__ import annotations

import email
from email import policy

import pytest

from webmail.mime import Address, Attachment, HeaderInjection, InvalidAddress, build_message
from webmail.mime.build import as_bytes

ALICE = Address("Alice Martin", "alice@example.test")


def build(**fields):
    fields.setdefault("sender", ALICE)
    fields.setdefault("to", "bob@example.test")
    fields.setdefault("message_id_domain", "example.test")
    return build_message(**fields)


def reparsed(message) -> email.message.EmailMessage:
    return email.message_from_bytes(as_bytes(message), policy=policy.default)


def test_the_standard_headers_are_present():
    message, __ = build(subject="Hello", text="Hi Bob")
    parsed = reparsed(message)
    for name in ("From", "To", "Subject", "Date", "Message-ID", "MIME-Version"):
        assert parsed[name], name
    assert parsed["Message-ID"].endswith("@example.test>")
    assert parsed["From"].addresses[0].display_name == "Alice Martin"


def test_bcc_recipients_are_only_in_the_envelope():
    message, envelope = build(
        to="bob@example.test", cc="carol@example.test", bcc="dave@example.test"
    )
    raw = as_bytes(message)
    assert b"dave" not in raw
    assert b"Bcc" not in raw
    assert envelope == ["bob@example.test", "carol@example.test", "dave@example.test"]


def test_a_recipient_in_several_fields_is_in_the_envelope_once():
    __, envelope = build(to="bob@example.test", cc="Bob <bob@example.test>", bcc="bob@example.test")
    assert envelope == ["bob@example.test"]


def test_non_ascii_subject_and_names_use_rfc_2047_and_read_back():
    message, __ = build(
        sender=Address("Zoë Ünal", "zoe@example.test"), subject="Réunion d'été 会議"
    )
    raw = as_bytes(message)
    header_block = raw.split(b"\r\n\r\n", 1)[0]
    assert header_block.isascii()
    assert b"=?utf-8?" in header_block
    parsed = reparsed(message)
    assert parsed["Subject"] == "Réunion d'été 会議"
    assert parsed["From"].addresses[0].display_name == "Zoë Ünal"


def test_lines_end_with_crlf():
    message, __ = build(text="one\ntwo\n")
    raw = as_bytes(message)
    assert b"\r\n" in raw
    assert b"\n" not in raw.replace(b"\r\n", b"")


@pytest.mark.parametrize(
    "fields",
    [
        {"subject": "Hi\r\nBcc: victim@example.test"},
        {"subject": "Hi\nX-Injected: yes"},
        {"sender": Address("Alice\r\nBcc: x@example.test", "alice@example.test")},
        {"to": "bob@example.test\r\nBcc: victim@example.test"},
        {"cc": ["carol@example.test\n"]},
        {"to": [Address("Bob\nX: y", "bob@example.test")]},
        {"in_reply_to": "<a@example.test>\r\nBcc: x@example.test"},
        {"references": ["<a@example.test>\nX: y"]},
        {"attachments": [Attachment("a\r\nb.txt", b"x", "text/plain")]},
        {"attachments": [Attachment("a.txt", b"x", "text/plain\r\nX: y")]},
    ],
)
def test_a_line_break_in_any_field_is_refused(fields):
    with pytest.raises(HeaderInjection):
        build(**fields)


def test_header_injection_is_a_value_error():
    assert issubclass(HeaderInjection, ValueError)
    assert issubclass(InvalidAddress, ValueError)


@pytest.mark.parametrize(
    "typed", ["bob", "bob@", "@example.test", "bob@example@test", "Bob <bob@example.test", "a@b"]
)
def test_an_invalid_address_is_named_in_the_error(typed):
    with pytest.raises(InvalidAddress) as caught:
        build(to=f"carol@example.test, {typed}")
    assert caught.value.address == typed
    assert typed in str(caught.value)


def test_no_recipient_is_refused():
    with pytest.raises(InvalidAddress):
        build(to="", cc=[], bcc="  ")


def test_display_names_with_commas_and_quotes():
    message, envelope = build(to='"Martin, Bob" <bob@example.test>, "Dr. \\"C\\"" <c@example.test>')
    to = reparsed(message)["To"].addresses
    assert [a.display_name for a in to] == ["Martin, Bob", 'Dr. "C"']
    assert envelope == ["bob@example.test", "c@example.test"]


def test_groups_are_kept_in_the_header_and_flattened_in_the_envelope():
    message, envelope = build(to="Team: bob@example.test, carol@example.test;, dave@example.test")
    header = reparsed(message)["To"]
    assert [g.display_name for g in header.groups] == ["Team", None]
    assert envelope == ["bob@example.test", "carol@example.test", "dave@example.test"]


def test_internationalised_domains_are_written_in_ascii():
    message, envelope = build(to="Jürgen <j@bücher.example>", cc=[Address("", "k@münchen.example")])
    raw = as_bytes(message)
    assert b"j@xn--bcher-kva.example" in raw
    assert envelope == ["j@xn--bcher-kva.example", "k@xn--mnchen-3ya.example"]


def test_a_non_ascii_local_part_is_refused_with_its_address():
    with pytest.raises(InvalidAddress) as caught:
        build(to="jürgen@example.test")
    assert "jürgen@example.test" in str(caught.value)


def test_html_makes_a_multipart_alternative_with_the_text_first():
    message, __ = build(text="Plain words", html="<p>Rich <b>words</b></p>")
    parsed = reparsed(message)
    assert parsed.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in parsed.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    assert parsed.get_body(("plain",)).get_content().strip() == "Plain words"


def test_only_the_message_itself_has_a_mime_version():
    message, __ = build(text="x", html="<p>x</p>", attachments=[Attachment("a.bin", b"\0\1")])
    parsed = reparsed(message)
    assert parsed["MIME-Version"] == "1.0"
    assert all(part["MIME-Version"] is None for part in parsed.walk() if part is not parsed)


def test_attachments_keep_their_bytes_and_rfc_2231_names():
    data = bytes(range(256)) * 4
    message, __ = build(
        text="See attached",
        attachments=[
            Attachment("résumé 日本.pdf", data, "application/pdf"),
            Attachment("notes.txt", "Œuvre\n".encode(), "text/plain"),
        ],
    )
    raw = as_bytes(message)
    assert b"filename*=utf-8''r%C3%A9sum%C3%A9%20%E6%97%A5%E6%9C%AC.pdf" in raw
    parsed = reparsed(message)
    attachments = list(parsed.iter_attachments())
    assert [a.get_filename() for a in attachments] == ["résumé 日本.pdf", "notes.txt"]
    assert attachments[0].get_content() == data
    assert attachments[0].get_content_type() == "application/pdf"


def test_a_malformed_attachment_type_becomes_octet_stream():
    message, __ = build(attachments=[Attachment("a", b"x", "nonsense")])
    assert next(reparsed(message).iter_attachments()).get_content_type() == (
        "application/octet-stream"
    )


def test_reply_headers():
    message, __ = build(
        in_reply_to="<b@example.test>", references=["<a@example.test>", "<b@example.test>"]
    )
    parsed = reparsed(message)
    assert parsed["In-Reply-To"] == "<b@example.test>"
    assert parsed["References"] == "<a@example.test> <b@example.test>"


def test_a_malformed_message_id_in_references_is_refused():
    with pytest.raises(ValueError):
        build(references=["not an id"])


def test_text_is_quoted_printable_so_no_8bit_is_needed():
    message, __ = build(text="Déjà vu " * 20)
    raw = as_bytes(message)
    assert raw.isascii()
    assert reparsed(message).get_content().startswith("Déjà vu")


FORWARDED = (
    b"From: Alice <alice@example.test>\r\nSubject: Lunch\r\n"
    b"X-Long: " + b"folded " * 20 + b"\r\n  continued\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n\r\nSee you at noon \r\n"
)


def test_a_forwarded_message_is_attached_as_it_was_in_7bit():
    message, __ = build(
        text="See below",
        attachments=[Attachment("Lunch.eml", FORWARDED, "message/rfc822")],
    )
    raw = as_bytes(message)
    assert FORWARDED in raw
    (attached,) = reparsed(message).iter_attachments()
    assert attached.get_content_type() == "message/rfc822"
    assert attached["Content-Transfer-Encoding"] == "7bit"
    assert attached.get_filename() == "Lunch.eml"
    assert attached.get_content()["Subject"] == "Lunch"


def test_a_forwarded_message_with_8bit_bytes_is_attached_in_8bit():
    original = (
        b"From: a@example.test\nSubject: Caf\xe9\n"
        b"Content-Type: text/plain; charset=latin-1\n\n\xe9t\xe9\n"
    )
    message, __ = build(
        html="<p>x</p>",
        attachments=[
            Attachment("Café été.eml", original, "message/rfc822"),
            Attachment("a.bin", b"\0\1"),
        ],
    )
    raw = as_bytes(message)
    # Line endings become the wire's; every byte stays.
    assert original.replace(b"\n", b"\r\n") in raw
    assert b"filename*=utf-8''Caf%C3%A9%20%C3%A9t%C3%A9.eml" in raw
    attached = list(reparsed(message).iter_attachments())
    assert [a.get_content_type() for a in attached] == [
        "message/rfc822",
        "application/octet-stream",
    ]
    assert attached[0]["Content-Transfer-Encoding"] == "8bit"


def test_other_message_types_are_attached_unencoded_too():
    report = (
        b"Reporting-MTA: dns; mx.example.test\r\n\r\nFinal-Recipient: rfc822; b@example.test\r\n"
    )
    message, __ = build(attachments=[Attachment("report.txt", report, "message/delivery-status")])
    raw = as_bytes(message)
    assert report in raw
    assert b"base64" not in raw
    (attached,) = reparsed(message).iter_attachments()
    assert attached.get_content_type() == "message/delivery-status"


def test_a_message_type_that_is_no_type_is_attached_as_bytes():
    message, __ = build(attachments=[Attachment("x", b"data", "message/x y")])
    (attached,) = reparsed(message).iter_attachments()
    assert attached.get_content_type() == "application/octet-stream"
    assert attached.get_content() == b"data"


def test_a_forwarded_message_name_on_two_lines_is_refused():
    with pytest.raises(HeaderInjection):
        build(attachments=[Attachment("a\r\nBcc: x@example.test", FORWARDED, "message/rfc822")])


def test_a_draft_may_have_no_recipient():
    message, envelope = build(to="", require_recipient=False)
    assert envelope == []
    assert message["To"] is None
