"""A composition as a message to send or a draft, and a draft or outbox row read back."""

from __future__ import annotations

import email
from dataclasses import replace
from email import policy

import pytest

from webmail.compose.composition import Composition
from webmail.compose.message import restore, to_message
from webmail.mime import Address, Attachment, HeaderInjection, InvalidAddress
from webmail.mime.build import WIRE_POLICY, as_bytes

ME = Address("Zoë Martin", "zoe@example.test")

RICH_HTML = (
    "<div>Hello <strong>Bob</strong>,<br><br>see <em>this</em> "
    '<a href="https://example.test/a?b=1&amp;c=2">page</a></div>'
    "<ul><li>one</li><li>two</li></ul><blockquote>quoted</blockquote><div><br></div>"
)


def send(comp: Composition, **kwargs):
    return to_message(comp, sender=ME, message_id_domain="example.test", **kwargs)


def draft_bytes(comp: Composition) -> bytes:
    message, __ = send(comp, draft=True)
    return message.as_bytes(policy=WIRE_POLICY)


def reparsed(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=policy.default)


def content(part) -> str:
    return part.get_content().replace("\r\n", "\n")


# --- sending ----------------------------------------------------------------------------


def test_rich_text_goes_out_as_cleaned_html_with_its_text():
    comp = Composition(
        to="bob@example.test",
        bcc="Hidden <hidden@example.test>",
        subject="Hi",
        html=RICH_HTML + "<script>alert(1)</script>",
    )
    message, envelope = send(comp)
    assert envelope == ["bob@example.test", "hidden@example.test"]
    sent = reparsed(as_bytes(message))
    assert sent.get_content_type() == "multipart/alternative"
    assert sent.get_body(("html",)).get_content().strip() == RICH_HTML
    assert content(sent.get_body(("plain",))) == (
        "Hello Bob,\n\nsee this page <https://example.test/a?b=1&c=2>\n- one\n- two\n\n> quoted\n"
    )
    for header in ("Bcc", "X-Facteur-Format", "X-Facteur-Origin", "X-Facteur-Draft-To"):
        assert sent[header] is None


def test_plain_text_goes_out_as_text_only():
    comp = Composition(to="bob@example.test", subject="Hi", rich=False, text="Hi Bob,\r\n\r\nBye")
    sent = reparsed(as_bytes(send(comp)[0]))
    assert sent.get_content_type() == "text/plain"
    assert content(sent) == "Hi Bob,\n\nBye\n"


def test_a_signature_written_in_the_editor_keeps_its_separator():
    html = "<div>Hi</div><div><br></div><div>-- <br>Zoë<br>Sales</div>"
    message, __ = send(Composition(to="b@example.test", html=html))
    assert content(reparsed(as_bytes(message)).get_body(("plain",))) == ("Hi\n\n-- \nZoë\nSales\n")


def test_thread_headers_keep_only_message_identifiers():
    comp = Composition(
        to="bob@example.test",
        in_reply_to="<b@example.test>",
        references=["<a@example.test>", "junk", "<b@example.test>\r\nBcc: x@example.test"],
    )
    sent = reparsed(as_bytes(send(comp)[0]))
    assert sent["In-Reply-To"] == "<b@example.test>"
    assert sent["References"] == "<a@example.test> <b@example.test>"


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"to": "bob@"}, InvalidAddress),
        ({"to": "Ann <"}, InvalidAddress),
        ({"to": ""}, InvalidAddress),
        ({"cc": "bob@example.test\r\nBcc: x@example.test"}, HeaderInjection),
        ({"subject": "Hi\nBcc: x@example.test"}, HeaderInjection),
    ],
)
def test_what_cannot_be_sent_is_refused(fields, error):
    comp = Composition(**{"to": "bob@example.test", **fields})
    with pytest.raises(error):
        send(comp)


def test_an_attachment_name_on_several_lines_is_made_one_line():
    comp = Composition(
        to="bob@example.test", attachments=[Attachment("a\r\nb.txt", b"x", "text/plain\nX: y")]
    )
    (attachment,) = reparsed(as_bytes(send(comp)[0])).iter_attachments()
    assert attachment.get_filename() == "a b.txt"
    assert attachment.get_content_type() == "application/octet-stream"


# --- drafts -----------------------------------------------------------------------------


FULL_DRAFT = Composition(
    to="bob@, Ann <",
    cc='"Martin, Bob" <bob@example.test>, Jürgen <j@bücher.example>',
    bcc="Secret Person <secret@example.test>",
    subject="Réunion d'été — 会議",
    html=RICH_HTML,
    in_reply_to="<parent@example.test>",
    references=["<root@example.test>", "<parent@example.test>"],
    origin_kind="reply",
    origin_folder="Boîte de réception/Été 2024 +archives",
    origin_uid=4294967295,
    identity_email="zoe@example.test",
    attachments=[
        Attachment("résumé 日本.pdf", bytes(range(256)) * 3, "application/pdf"),
        Attachment("notes.txt", "Œuvre\n".encode(), "text/plain"),
    ],
)


def test_a_draft_comes_back_as_it_was_written():
    raw = draft_bytes(FULL_DRAFT)
    assert b"filename*=utf-8''r%C3%A9sum%C3%A9%20%E6%97%A5%E6%9C%AC.pdf" in raw
    assert restore(raw) == FULL_DRAFT


def test_a_plain_draft_comes_back_as_it_was_written():
    comp = Composition(
        to="bob@example.test, carol@example.test",
        subject="Plain",
        rich=False,
        text="Hi,\n\n  indented\n> not a quote of mine\nBye",
        origin_kind="forward",
        origin_folder="INBOX",
        origin_uid=7,
        identity_email="zoe@example.test",
    )
    assert restore(draft_bytes(comp)) == comp


def test_an_empty_draft_comes_back_empty():
    comp = Composition(identity_email="zoe@example.test")
    assert restore(draft_bytes(comp)) == comp


def test_a_draft_never_fails_on_what_was_typed():
    comp = Composition(to="Ann <", cc=";;; @@", bcc="x\r\ny@", subject="a\r\nb")
    message, envelope = send(comp, draft=True)
    assert envelope == []
    restored = restore(message.as_bytes(policy=WIRE_POLICY))
    assert (restored.to, restored.cc, restored.bcc, restored.subject) == (
        "Ann <",
        ";;; @@",
        "x y@",
        "a b",
    )


def test_a_draft_puts_valid_recipients_in_the_usual_headers():
    comp = Composition(to="Bob <bob@example.test>", cc="x@", bcc="secret@example.test")
    draft = reparsed(draft_bytes(comp))
    assert draft["To"] == "Bob <bob@example.test>"
    assert draft["Bcc"] == "secret@example.test"
    assert draft["Cc"] is None
    assert draft["X-Facteur-Draft-Cc"] == "x@"
    # What reads back the same from the usual header is not written twice.
    assert draft["X-Facteur-Draft-To"] is None
    assert draft["X-Facteur-Format"] == "rich"


def test_recipients_typed_unusually_come_back_as_typed():
    comp = Composition(to="bob@example.test,carol@example.test", cc="Team: a@example.test;")
    restored = restore(draft_bytes(comp))
    assert (restored.to, restored.cc) == (comp.to, comp.cc)


def test_recipients_changed_by_another_program_win_over_the_typed_text():
    raw = draft_bytes(Composition(to="bob@example.test,carol@example.test"))
    changed = raw.replace(b"To: bob@example.test, carol@example.test", b"To: dave@example.test")
    assert changed != raw
    assert restore(changed).to == "dave@example.test"


def test_a_forwarded_message_comes_back_byte_for_byte():
    original = b"From: a@example.test\nSubject: Caf\xe9\n\nCaf\xe9\n"
    comp = Composition(
        subject="Fwd: Café",
        html="<div><br></div>",
        attachments=[Attachment("Café.eml", original, "message/rfc822")],
        identity_email="zoe@example.test",
    )
    (attachment,) = restore(draft_bytes(comp)).attachments
    assert attachment == replace(comp.attachments[0], content=original.replace(b"\n", b"\r\n"))


@pytest.mark.parametrize(
    "origin",
    [b"reply", b"reply x Zm9v", b"bounce 1 Zm9v", b"reply 1 ***", b"reply 1 //79", b"a b c d"],
)
def test_a_malformed_origin_is_no_origin(origin):
    raw = draft_bytes(Composition(to="bob@example.test", origin_kind="reply", origin_uid=1))
    start = raw.index(b"X-Facteur-Origin: ") + len(b"X-Facteur-Origin: ")
    end = raw.index(b"\r\n", start)
    restored = restore(raw[:start] + origin + raw[end:])
    assert (restored.origin_kind, restored.origin_folder, restored.origin_uid) == ("", "", None)


# --- outbox rows and other programs' drafts ---------------------------------------------


def test_an_outbox_row_comes_back_with_its_bcc_from_the_envelope():
    comp = Composition(
        to="Bob <bob@example.test>, Jürgen <j@bücher.example>",
        cc="carol@example.test",
        bcc="Secret <secret@example.test>, BOB@example.test, other@example.test",
        subject="Sent",
        html=RICH_HTML,
    )
    message, envelope = send(comp)
    restored = restore(as_bytes(message), envelope_to=envelope)
    assert restored.to == comp.to
    assert restored.cc == comp.cc
    assert restored.bcc == "secret@example.test, other@example.test"
    assert restored.html == RICH_HTML
    assert restored.rich
    assert restored.identity_email == "zoe@example.test"


def test_a_plain_outbox_row_comes_back_plain():
    comp = Composition(to="bob@example.test", rich=False, text="Just text")
    message, envelope = send(comp)
    restored = restore(as_bytes(message), envelope_to=envelope)
    assert (restored.rich, restored.text, restored.html, restored.bcc) == (
        False,
        "Just text",
        "",
        "",
    )


def test_another_programs_draft_is_read_from_its_headers():
    raw = (
        b"From: Zoe <zoe@example.test>\r\nTo: =?utf-8?q?Bj=C3=B6rn?= <bjorn@example.test>\r\n"
        b"Bcc: hidden@example.test\r\nSubject: Draft\r\nIn-Reply-To: <p@example.test>\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nWritten elsewhere\r\n"
    )
    restored = restore(raw)
    assert (restored.to, restored.bcc, restored.rich, restored.text) == (
        "Björn <bjorn@example.test>",
        "hidden@example.test",
        False,
        "Written elsewhere",
    )
    assert restored.in_reply_to == "<p@example.test>"


def test_an_html_draft_of_another_program_is_cleaned_for_the_editor():
    raw = (
        b"From: zoe@example.test\r\nContent-Type: text/html\r\n\r\n"
        b"<html><head><style>p{}</style></head><body><p style='x'>Hi<img src=x></p></body></html>"
    )
    restored = restore(raw)
    assert (restored.rich, restored.html) == (True, "<p>Hi</p>")
