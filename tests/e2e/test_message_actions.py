"""Moving a message from its page in a real browser, on a desktop and on a phone."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from tests.e2e.helpers import artifact_path
from tests.support.mailboxes import imap

pytestmark = pytest.mark.e2e

FOLDER = "Projets 2025"


@pytest.fixture
def projects_folder(mail_server, mail_user) -> str:
    """A folder of the person's own, made before they sign in and the folders are listed."""
    with imap(mail_server, mail_user) as client:
        client.create_folder(FOLDER)
    return FOLDER


@pytest.mark.parametrize("device", ["desktop", "phone"], indirect=True)
def test_move_a_message_to_another_folder_from_its_page(
    projects_folder, signed_in_page, inbox, mail_server, device
):
    page, account, mail_user = signed_in_page
    sample = inbox[0]
    page.locator("tr.message-row").filter(has_text=sample.subject).get_by_role("link").click()
    expect(page.locator("#message-subject")).to_have_text(sample.subject)
    toolbar = page.locator(".message-toolbar")
    expect(toolbar.get_by_role("button", name="Archive")).to_be_visible()
    expect(toolbar.get_by_role("button", name="Delete")).to_be_visible()
    # Every control of the toolbar fits the screen, wrapped as it needs.
    width = page.viewport_size["width"]
    assert page.evaluate("document.scrollingElement.scrollWidth") <= width
    for control in toolbar.locator("a, button, select").all():
        box = control.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width
    page.screenshot(path=artifact_path(f"message-toolbar-{device}"))

    toolbar.get_by_label("Folder to move the message to").select_option(label=projects_folder)
    toolbar.get_by_role("button", name="Move", exact=True).click()

    list_url = reverse("webmail:mailbox", args=[account.pk]) + "?folder=INBOX"
    expect(page).to_have_url(re.compile(re.escape(list_url) + "$"))
    expect(page.locator(".flash")).to_contain_text(f"The message was moved to {projects_folder}.")
    expect(page.locator("tr.message-row")).to_have_count(len(inbox) - 1)
    expect(page.locator("tr.message-row").filter(has_text=sample.subject)).to_have_count(0)
    page.screenshot(path=artifact_path(f"message-moved-{device}"))

    with imap(mail_server, mail_user) as client:
        client.select_folder(projects_folder, readonly=True)
        moved = client.fetch(client.search(["ALL"]), ["ENVELOPE"])
        assert [data[b"ENVELOPE"].subject.decode() for data in moved.values()] == [sample.subject]
        assert client.select_folder("INBOX", readonly=True)[b"EXISTS"] == len(inbox) - 1
