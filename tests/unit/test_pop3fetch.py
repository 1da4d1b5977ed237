"""The pure parts of POP3 fetching: listings, message bytes, indexing, errors."""

from __future__ import annotations

import poplib
from datetime import UTC, datetime

import pytest

from webmail.models import LocalMessage
from webmail.pop3fetch import (
    FetchError,
    _Fetch,
    message_bytes,
    parse_scan_listing,
    parse_uidl_listing,
)
from webmail.transport.endpoint import Endpoint
from webmail.transport.imap import Cause
from webmail.transport.pop3 import pop3_problem

ENDPOINT = Endpoint("pop.example.org", 995, "tls", "someone", "secret")


def test_uidl_listing_keeps_valid_lines_in_order():
    lines = [b"1 whqtswO00WBw418f9t5JxYwZ", b"2 QhdPYR:00WBw1Ph7x7", b"10 a"]
    assert parse_uidl_listing(lines) == [
        (1, "whqtswO00WBw418f9t5JxYwZ"),
        (2, "QhdPYR:00WBw1Ph7x7"),
        (10, "a"),
    ]


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"1",
        b"1 ",
        b"x abc",
        b"-1 abc",
        b"1 " + b"a" * 71,  # RFC 1939: at most 70 characters
        b"1 caf\xc3\xa9",  # outside 0x21-0x7E
        b"1 a\x00b",
    ],
)
def test_uidl_listing_leaves_out_lines_outside_rfc_1939(line):
    assert parse_uidl_listing([line, b"2 ok"]) == [(2, "ok")]


def test_uidl_listing_fetches_a_repeated_uidl_once():
    assert parse_uidl_listing([b"1 same", b"2 same", b"3 other"]) == [(1, "same"), (3, "other")]


def test_uidl_listing_takes_a_uidl_of_seventy_characters():
    assert parse_uidl_listing([b"1 " + b"a" * 70]) == [(1, "a" * 70)]


def test_scan_listing_gives_sizes_and_skips_junk():
    assert parse_scan_listing([b"1 120", b"2 4096 extra", b"junk", b"3 x"]) == {1: 120, 2: 4096}


def test_message_bytes_ends_every_line_with_crlf():
    assert message_bytes([b"Subject: a", b"", b"body", b".dot"]) == (
        b"Subject: a\r\n\r\nbody\r\n.dot\r\n"
    )
    assert message_bytes([]) == b""


def test_a_message_is_indexed_from_its_headers():
    raw = (
        b"From: =?utf-8?Q?Andr=C3=A9?= <andre@example.org>\r\n"
        b"To: a@example.org, B <b@example.org>\r\n"
        b"Cc: c@example.org\r\n"
        b"Subject: =?utf-8?B?w4l0w6k=?=\r\n"
        b"Date: Tue, 04 Mar 2025 10:15:00 +0100\r\n"
        b"Message-ID: <id@example.org>\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n'
        b"\r\n--b\r\nContent-Type: text/plain\r\n\r\nHello\r\n"
        b"--b\r\nContent-Type: application/pdf\r\n"
        b'Content-Disposition: attachment; filename="x.pdf"\r\n\r\n%PDF\r\n--b--\r\n'
    )
    message = LocalMessage.from_bytes(None, raw, uid=7)
    assert (message.uid, message.folder, message.size, message.partial) == (
        7,
        "INBOX",
        len(raw),
        False,
    )
    assert message.subject == "Été"
    assert (message.sender, message.sender_email) == ("André", "andre@example.org")
    assert message.recipients == "a@example.org, B <b@example.org>, c@example.org"
    assert message.date == datetime(2025, 3, 4, 9, 15, tzinfo=UTC)
    assert message.message_id == "<id@example.org>"
    assert message.has_attachments
    assert bytes(message.raw) == raw


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff" * 1000,
        b"no headers at all",
        b"Subject: " + b"\xff" * 5000 + b"\r\nFrom: <<<>>>\r\n\r\n",
        b"Content-Type: multipart/mixed\r\n\r\n--x\r\n",
        b"From: " + b"a@b, " * 10000 + b"\r\n\r\n",
    ],
)
def test_a_message_that_does_not_parse_is_still_indexed(raw):
    message = LocalMessage.from_bytes(None, raw, uid=1, size=123, partial=True)
    assert bytes(message.raw) == raw
    assert message.size == 123
    assert message.partial
    assert "\x00" not in message.subject + message.sender + message.recipients
    assert len(message.sender) <= 500 and len(message.sender_email) <= 320


class NoUidl:
    def uidl(self):
        raise poplib.error_proto(b"-ERR Unknown command: UIDL")


def test_a_server_without_uidl_is_refused():
    fetch = _Fetch(None, NoUidl(), ENDPOINT, lease=None, progress=None)
    with pytest.raises(FetchError) as raised:
        fetch.listing()
    assert "UIDL" in raised.value.message


def test_pop3_problems_say_what_happened():
    assert pop3_problem(poplib.error_proto(b"-ERR EOF"), ENDPOINT).cause == Cause.NETWORK
    assert pop3_problem(EOFError(), ENDPOINT).cause == Cause.NETWORK
    assert pop3_problem(ConnectionRefusedError(), ENDPOINT).cause == Cause.REFUSED
    problem = pop3_problem(poplib.error_proto(b"-ERR [SYS/TEMP] Server shutting down."), ENDPOINT)
    assert problem.cause == Cause.SERVER
    assert "[SYS/TEMP] Server shutting down." in problem.message
