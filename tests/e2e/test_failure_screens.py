"""What a person sees when the mail server or a message lets Facteur down."""

from __future__ import annotations

import socket

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from accounts.models import MailAccount, Security
from tests.e2e.helpers import build_message, sign_in

pytestmark = pytest.mark.e2e


def closed_port() -> int:
    """A loopback port nothing listens on (it was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def nested_multiparts(depth: int) -> bytes:
    head = (
        "From: Alice Martin <alice@example.org>\r\n"
        "To: me@example.test\r\n"
        "Subject: Nested ten thousand times\r\n"
        "MIME-Version: 1.0\r\n"
    )
    opening = "".join(
        f'Content-Type: multipart/mixed; boundary="level-{level}"\r\n\r\n--level-{level}\r\n'
        for level in range(depth)
    )
    closing = "".join(f"\r\n--level-{level}--\r\n" for level in reversed(range(depth)))
    return (
        head + opening + "Content-Type: text/plain\r\n\r\nThe innermost text.\r\n" + closing
    ).encode()


MISSING_BOUNDARY = (
    b"From: Alice Martin <alice@example.org>\r\n"
    b"To: me@example.test\r\n"
    b"Subject: No boundary at all\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="never-used"\r\n'
    b"\r\n"
    b"This multipart names a boundary it never uses.\r\n"
)


def test_unreachable_mail_server_gives_a_clear_503(page, make_person, mail_server):
    person = make_person()
    port = closed_port()
    account = MailAccount(
        user=person.user,
        email=f"{person.username}@{mail_server.domain}",
        login=f"{person.username}@{mail_server.domain}",
        incoming_host="127.0.0.1",
        incoming_port=port,
        incoming_security=Security.STARTTLS,
        smtp_host="127.0.0.1",
        smtp_port=port,
        ca_file=str(mail_server.ca_file),
    )
    account.set_password("unused-password")
    account.save()
    sign_in(page, person.username, person.password)

    for url in (
        reverse("webmail:mailbox", args=[account.pk]),
        reverse("webmail:message", args=[account.pk, 1]) + "?folder=INBOX",
    ):
        response = page.goto(url)
        assert response.status == 503, url
        expect(page.get_by_role("heading", level=1)).to_have_text(
            "Your mail server is not answering"
        )
        expect(page.get_by_role("link", name="Try again")).to_be_visible()
        assert "Traceback" not in page.content()


@pytest.mark.parametrize(
    "raw", [nested_multiparts(10_000), MISSING_BOUNDARY], ids=["deep-nesting", "no-boundary"]
)
def test_a_message_the_parser_cannot_read_opens_with_a_notice(
    page, make_person, mail_server, mail_user, raw
):
    mail_server.deliver(mail_user.address, raw)
    mail_server.deliver(mail_user.address, build_message("Still readable", text="Fine."))
    person = make_person(mail_user)
    sign_in(page, person.username, person.password)
    # Both are listed: the damaged one does not break its folder.
    expect(page.locator("tr.message-row")).to_have_count(2)

    response = page.goto(
        reverse("webmail:message", args=[person.accounts[0].pk, 1]) + "?folder=INBOX"
    )
    assert response.status == 200
    notice = page.locator(".notice[role=alert]")
    expect(notice).to_be_visible()
    source = notice.get_by_role("link", name="read its source")
    expect(source).to_be_visible()
    assert "Traceback" not in page.content()

    source_response = page.request.get(source.get_attribute("href"))
    assert source_response.status == 200
    # The server adds its own trace headers (Return-Path, Delivered-To, Received) on top.
    assert source_response.body().replace(b"\r\n", b"\n").endswith(raw.replace(b"\r\n", b"\n"))
