"""Trusting a sender in a real browser, seeing it on the trusted senders page, and revoking it."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from tests.e2e.helpers import artifact_path, build_message, sign_in

pytestmark = pytest.mark.e2e

OWN = "mx.office.test"


def vouched_newsletter(base_url: str, sender: str, domain: str) -> bytes:
    raw = build_message(
        "Weekly news",
        sender=sender,
        html=f'<h2>This week</h2><img src="{base_url}/news/banner.png" alt="banner">',
    )
    field = f"Authentication-Results: {OWN}; dmarc=pass header.from={domain}\r\n"
    return field.encode() + raw


@pytest.mark.parametrize("device", ["desktop", "phone"], indirect=True)
def test_a_trusted_sender_is_listed_and_revoked(
    page, make_person, mail_server, mail_user, listener, settings, device
):
    settings.AUTHSERV_ID = OWN
    person = make_person(mail_user)
    news = vouched_newsletter(listener.base_url, "Zoé Martin <zoe@example.org>", "example.org")
    mail_server.deliver(mail_user.address, news)
    account = person.accounts[0]
    sign_in(page, person.username, person.password)
    message = reverse("webmail:message", args=[account.pk, 1]) + "?folder=INBOX"

    page.goto(message)
    page.get_by_role("button", name="Always show remote content from zoe@example.org").click()
    expect(page.locator(".remote-notice")).to_have_count(0)
    body = page.frame_locator("iframe.message-body")
    expect(body.locator("img")).to_have_js_property("naturalWidth", 24)

    page.goto(reverse("webmail:mailbox", args=[account.pk]))
    link = page.get_by_role("link", name="Trusted senders")
    if not link.is_visible():  # on a phone the folder pane opens first
        page.locator("[data-toggle-nav]").click()
    link.click()
    expect(page).to_have_url(re.compile(re.escape(reverse("webmail:trusted-senders")) + "$"))
    entry = page.locator(".trusted-sender")
    expect(entry).to_have_count(1)
    expect(entry.locator(".trusted-sender-address")).to_have_text("zoe@example.org")
    page.screenshot(path=artifact_path(f"trusted-senders-{device}"), full_page=True)

    entry.get_by_role("button", name="Revoke zoe@example.org").click()
    expect(
        page.get_by_text("Remote content from zoe@example.org is blocked again.")
    ).to_be_visible()
    expect(page.locator(".trusted-sender")).to_have_count(0)
    expect(page.locator(".trusted-senders .empty")).to_be_visible()
    page.screenshot(path=artifact_path(f"trusted-senders-revoked-{device}"), full_page=True)

    requests_before = len(listener.requests)
    page.goto(message)
    expect(page.locator(".remote-notice")).to_be_visible()
    expect(body.locator("h2")).to_have_text("This week")
    assert len(listener.requests) == requests_before, "remote content loaded after revoking"
