"""Replies and forwards, prefilled from the original message."""

from __future__ import annotations

import email
from email import policy

import pytest
from django.utils import timezone

from tests.support.corpus import corpus_dir, corpus_messages, require_corpus
from webmail.compose import prefill
from webmail.compose.editor_html import clean_editor_html
from webmail.compose.message import restore, to_message
from webmail.mime import Address, HeaderInjection, InvalidAddress, parse_message
from webmail.mime.build import WIRE_POLICY, as_bytes

OWN = {"me@example.test", "me.too@example.test"}
ME = Address("Me", "me@example.test")


def raw_message(headers: str, body: str = "Hello\n", content_type: str = "text/plain") -> bytes:
    text = headers.strip("\n") + f"\nMIME-Version: 1.0\nContent-Type: {content_type}\n\n" + body
    return text.replace("\n", "\r\n").encode()


ORIGINAL = raw_message(
    """
From: Alice Martin <alice@example.test>
To: Bob <bob@example.test>, "Carol, C." <carol@example.test>, ME@Example.test
Cc: dave@example.test, alice@example.test, Bob Again <BOB@example.test>, me.too@example.test
Subject: Re: RE: Lunch
Date: Mon, 15 Jan 2024 10:30:00 +0000
Message-ID: <m3@example.test>
References: <m1@example.test>
 <m2@example.test>
""",
    "Are you coming?\n> Earlier words\n\nAlice\n",
)


def reply(raw: bytes = ORIGINAL, **kwargs):
    kwargs.setdefault("own_addresses", OWN)
    kwargs.setdefault("reply_all", False)
    return prefill.reply(parse_message(raw), folder="INBOX", uid=42, **kwargs)


# --- recipients -------------------------------------------------------------------------


def test_a_reply_goes_to_the_sender():
    composition = reply()
    assert composition.to == "Alice Martin <alice@example.test>"
    assert composition.cc == ""
    assert composition.subject == "Re: Lunch"
    assert (composition.origin_kind, composition.origin_folder, composition.origin_uid) == (
        "reply",
        "INBOX",
        42,
    )


def test_reply_to_wins_over_from():
    raw = raw_message(
        "From: alice@example.test\nReply-To: List <list@example.test>\nTo: me@example.test"
    )
    assert reply(raw).to == "List <list@example.test>"


def test_reply_all_adds_everyone_but_the_person_and_nobody_twice():
    composition = reply(reply_all=True)
    assert composition.to == "Alice Martin <alice@example.test>"
    assert composition.cc == ('Bob <bob@example.test>, "Carol, C." <carol@example.test>, '
                              "dave@example.test")  # fmt: skip


def test_a_reply_to_the_persons_own_message_goes_to_its_recipients():
    raw = raw_message(
        "From: Me <me@example.test>\nTo: Bob <bob@example.test>, me.too@example.test\n"
        "Cc: carol@example.test, Me <ME@example.test>\nSubject: Plans"
    )
    assert reply(raw).to == "Bob <bob@example.test>"
    composition = reply(raw, reply_all=True)
    assert (composition.to, composition.cc) == ("Bob <bob@example.test>", "carol@example.test")
    assert composition.identity_email == "me@example.test"


def test_a_note_to_self_is_answered_to_self():
    raw = raw_message("From: me@example.test\nTo: me@example.test")
    assert reply(raw).to == "me@example.test"


def test_the_identity_is_the_address_the_message_came_to():
    assert reply().identity_email == "ME@Example.test"
    raw = raw_message("From: alice@example.test\nTo: x@example.test\nCc: me.too@example.test")
    assert reply(raw).identity_email == "me.too@example.test"
    assert reply(raw_message("From: alice@example.test")).identity_email == ""


# --- thread headers ---------------------------------------------------------------------


def test_in_reply_to_and_references():
    composition = reply()
    assert composition.in_reply_to == "<m3@example.test>"
    assert composition.references == ["<m1@example.test>", "<m2@example.test>", "<m3@example.test>"]


def test_without_references_the_single_parent_stands_for_them():
    raw = raw_message("From: a@example.test\nMessage-ID: <b@x.test>\nIn-Reply-To: <a@x.test>")
    assert reply(raw).references == ["<a@x.test>", "<b@x.test>"]
    raw = raw_message("From: a@example.test\nMessage-ID: <c@x.test>\nIn-Reply-To: <a@x> <b@x>")
    assert reply(raw).references == ["<c@x.test>"]


def test_long_references_keep_the_first_and_the_latest():
    ids = [f"<m{n}@example.test>" for n in range(40)]
    raw = raw_message(
        f"From: a@example.test\nMessage-ID: <new@example.test>\nReferences: {' '.join(ids)}"
    )
    references = reply(raw).references
    assert len(references) == prefill.MAX_REFERENCES
    assert references[0] == "<m0@example.test>"
    assert references[1:] == [*ids[-(prefill.MAX_REFERENCES - 2) :], "<new@example.test>"]


def test_a_missing_or_malformed_message_id_makes_no_thread_header():
    raw = raw_message("From: a@example.test\nMessage-ID: not an id\nReferences: <ok@x.test> junk")
    composition = reply(raw)
    assert composition.in_reply_to == ""
    assert composition.references == ["<ok@x.test>"]


# --- the quote --------------------------------------------------------------------------


def test_the_attribution_names_the_sender_and_the_local_time():
    with timezone.override("Europe/Paris"):
        html = reply().html
    assert "On Jan. 15, 2024, 11:30 a.m., Alice Martin wrote:" in html


def test_without_a_date_or_a_sender_the_attribution_says_what_it_knows():
    assert "bob@example.test wrote:" in reply(raw_message("From: bob@example.test")).html
    assert "an unknown sender wrote:" in reply(raw_message("To: me@example.test")).html


def test_a_text_message_is_quoted_in_a_cite_blockquote_line_by_line():
    html = reply().html
    assert html.startswith("<div><br></div><div>On ")
    assert (
        '<blockquote type="cite"><div>Are you coming?'
        '<blockquote type="cite">Earlier words</blockquote><br>Alice</div></blockquote>'
    ) in html


def test_an_html_message_is_quoted_sanitised():
    raw = raw_message(
        "From: alice@example.test\nSubject: News",
        '<p onclick="x()">Hi <b>all</b></p><script>alert(1)</script>'
        '<img src="https://tracker.test/p.gif"><img src="cid:logo@x">'
        '<a href="https://example.test/">site</a><style>p{}</style>',
        "text/html; charset=utf-8",
    )
    html = reply(raw).html
    quote = html[html.index('<blockquote type="cite">') :]
    assert quote == (
        '<blockquote type="cite"><p>Hi <b>all</b></p>'
        '<a href="https://example.test/">site</a></blockquote>'
    )


def test_the_quote_goes_through_cleaning_unchanged():
    for raw in (ORIGINAL, raw_message("From: a@x.test", "<p>a<table><tr><td>b", "text/html")):
        html = reply(raw).html
        assert clean_editor_html(html) == html


def test_plain_replies_quote_with_greater_than_signs():
    composition = reply(rich=False)
    assert composition.html == ""
    assert composition.text == (
        "\n\nOn Jan. 15, 2024, 10:30 a.m., Alice Martin wrote:\n"
        "> Are you coming?\n>> Earlier words\n>\n> Alice"
    )


def test_a_plain_reply_to_an_html_message_quotes_its_text():
    raw = raw_message(
        "From: alice@example.test",
        "<div>Hi<br><br><a href='https://example.test/doc'>the doc</a></div>",
        "text/html",
    )
    text = reply(raw, rich=False).text
    assert text.endswith("wrote:\n> Hi\n>\n> the doc <https://example.test/doc>")


# --- forwarding -------------------------------------------------------------------------


WITH_ATTACHMENTS = raw_message(
    """
From: Alice <alice@example.test>
To: bob@example.test
Cc: carol@example.test
Subject: Report
Date: Mon, 15 Jan 2024 10:30:00 +0000
""",
    """--b
Content-Type: text/plain; charset=utf-8

See the files.
--b
Content-Type: application/pdf
Content-Disposition: attachment; filename*=utf-8''r%C3%A9sum%C3%A9.pdf
Content-Transfer-Encoding: base64

JVBERi0xLjQK
--b
Content-Type: message/rfc822

From: someone@example.test
Subject: Inner

Inner text
--b--
""",
    'multipart/mixed; boundary="b"',
)


def forward(raw: bytes = WITH_ATTACHMENTS, **kwargs):
    kwargs.setdefault("as_attachment", False)
    return prefill.forward(parse_message(raw), raw, folder="Archives 2024/Été", uid=9, **kwargs)


def test_forward_inline_shows_the_original_headers_then_its_body():
    with timezone.override("UTC"):
        composition = forward()
    assert composition.subject == "Fwd: Report"
    assert (composition.to, composition.in_reply_to, composition.references) == ("", "", [])
    assert (composition.origin_kind, composition.origin_folder, composition.origin_uid) == (
        "forward",
        "Archives 2024/Été",
        9,
    )
    assert composition.html == (
        "<div><br></div><div>---------- Forwarded message ---------<br>"
        "From: Alice &lt;alice@example.test&gt;<br>Date: Jan. 15, 2024, 10:30 a.m.<br>"
        "Subject: Report<br>To: bob@example.test<br>Cc: carol@example.test</div>"
        "<div><br></div><div>See the files.</div>"
    )


def test_forward_inline_carries_the_attachments_with_their_bytes():
    attachments = forward().attachments
    assert [(a.filename, a.content_type) for a in attachments] == [
        ("résumé.pdf", "application/pdf"),
        ("Inner.eml", "message/rfc822"),
    ]
    assert attachments[0].content == b"%PDF-1.4\n"
    assert b"Inner text" in attachments[1].content


def test_forward_inline_in_plain_text():
    text = forward(rich=False).text
    assert text.startswith("\n\n---------- Forwarded message ---------\nFrom: Alice <alice@")
    assert text.endswith("Cc: carol@example.test\n\nSee the files.")


def test_forward_as_attachment_attaches_the_original_whole():
    composition = forward(as_attachment=True)
    (attachment,) = composition.attachments
    assert attachment.content == WITH_ATTACHMENTS
    assert attachment.content_type == "message/rfc822"
    assert attachment.filename == "Report.eml"
    assert composition.html == "<div><br></div>"
    assert composition.subject == "Fwd: Report"


@pytest.mark.parametrize(
    ("subject", "filename"),
    [("", "message.eml"), ("a/b\\c: d?", "a b c d.eml"), ("...", "message.eml")],
)
def test_the_attached_message_is_named_after_its_subject(subject, filename):
    raw = raw_message(f"From: a@example.test\nSubject: {subject}")
    assert forward(raw, as_attachment=True).attachments[0].filename == filename


def test_the_forwarded_message_goes_out_with_its_attachments():
    composition = forward()
    composition.to = "dave@example.test"
    message, envelope = to_message(composition, sender=ME, message_id_domain="example.test")
    assert envelope == ["dave@example.test"]
    sent = email.message_from_bytes(as_bytes(message), policy=policy.default)
    attached = list(sent.iter_attachments())
    assert [part.get_content_type() for part in attached] == ["application/pdf", "message/rfc822"]
    assert attached[1]["Content-Transfer-Encoding"] == "7bit"
    assert attached[1].get_content()["Subject"] == "Inner"


# --- hostile input ----------------------------------------------------------------------


HOSTILE = [
    b"",
    b"\x00\xff\xfe garbage",
    b"From: \r\n\r\n",
    b"From: =?utf-8?b?AAAA?= <\x00@\xff>\r\nDate: Fri, 31 Dec 9999 23:59:59 -1200\r\n\r\nx",
    b"Date: Mon, 1 Jan 0001 00:00:00 +1400\r\nMessage-ID: <" + b"a" * 5000 + b">\r\n\r\nx",
    b"Content-Type: multipart/mixed; boundary=x\r\n\r\n"
    + b"--x\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n" * 200,
    b"Content-Type: text/html\r\n\r\n" + b"<blockquote>" * 3000 + b"<table><tr><td>" * 3000,
    b"Subject: " + "é".encode() * 3000 + b"\r\nReferences: " + b"<a@b> " * 5000 + b"\r\n\r\n",
]  # fmt: skip


def every_prefill(raw: bytes):
    parsed = parse_message(raw)
    for rich in (True, False):
        yield prefill.reply(parsed, own_addresses=OWN, reply_all=rich, folder="F", uid=1, rich=rich)
        for as_attachment in (True, False):
            yield prefill.forward(
                parsed, raw, folder="F", uid=1, as_attachment=as_attachment, rich=rich
            )


def some_prefills(raw: bytes):
    """The variants that together run every step at the least cost."""
    parsed = parse_message(raw)
    yield prefill.reply(parsed, own_addresses=OWN, reply_all=True, folder="F", uid=1)
    for as_attachment in (True, False):
        yield prefill.forward(
            parsed, raw, folder="F", uid=1, as_attachment=as_attachment, rich=False
        )


def assert_goes_out(compositions) -> None:
    """Each composition saves as a draft that reads back, and goes out if its recipients can."""
    for composition in compositions:
        composition.bcc = "hidden@example.test"
        message, __ = to_message(
            composition, sender=ME, message_id_domain="example.test", draft=True
        )
        restored = restore(message.as_bytes(policy=WIRE_POLICY)).attachments
        assert [(a.filename, a.content_type) for a in restored] == [
            (a.filename, a.content_type) for a in composition.attachments
        ]
        # An attached message (or report) comes back as the parser writes it again.
        assert [a.content for a in restored if not a.content_type.startswith("message/")] == [
            a.content for a in composition.attachments if not a.content_type.startswith("message/")
        ]
        try:
            message, __ = to_message(composition, sender=ME, message_id_domain="example.test")
        except (InvalidAddress, HeaderInjection):
            continue  # what the original says cannot always be sent to
        as_bytes(message)


@pytest.mark.parametrize("raw", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_messages_still_prefill(raw):
    assert_goes_out(every_prefill(raw))


def corpus_params():
    if not corpus_dir().joinpath("mime").is_dir():
        return [pytest.param(None, id="corpus-missing")]
    return [pytest.param(raw, id=name) for name, raw in corpus_messages()]


@pytest.mark.parametrize("raw", corpus_params())
def test_corpus_message_prefills_and_goes_out(raw):
    require_corpus("mime")
    assert_goes_out(some_prefills(raw))


def test_a_very_long_original_is_quoted_in_part_in_rich_text():
    body = "".join(f"Line {n} of a long message.\n" for n in range(20_000))
    raw = raw_message("From: alice@example.test", body)
    html = reply(raw).html
    assert "Line 100 of" in html
    assert "Line 19999 of" not in html
    assert html.endswith(
        "<div>[The rest of the message is left out: it is too long to quote.]</div></blockquote>"
    )
    assert reply(raw, rich=False).text.endswith("> Line 19999 of a long message.")
