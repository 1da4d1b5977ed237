"""Managing folders, the quota and keyboard shortcuts in a real browser, desktop and phone."""

from __future__ import annotations

import re
import uuid

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Mailbox
from tests.e2e.helpers import artifact_path, sign_in
from tests.support.mailboxes import imap
from webmail import sync

pytestmark = pytest.mark.e2e


def show_folders(page: Page, device: str) -> None:
    """On a phone the folder pane is a drawer: open it."""
    toggle = page.locator("[data-toggle-nav]")
    if device == "phone" and toggle.get_attribute("aria-expanded") != "true":
        toggle.tap()
        expect(page.locator("#folder-nav")).to_be_in_viewport(ratio=0.9)


def rows(page: Page):
    return page.locator("#message-list tr.message-row")


def current_row(page: Page):
    return page.locator("#message-list tr.message-row.is-keyboard-current")


def press(page: Page, key: str) -> None:
    """Press a key once the page's scripts listen: a new page shows before they run."""
    page.wait_for_load_state("domcontentloaded")
    page.keyboard.press(key)


@pytest.mark.parametrize("device", ["desktop", "phone"], indirect=True)
def test_create_a_nested_folder_from_the_folder_pane(signed_in_page, mail_server, device):
    page, _account, mail_user = signed_in_page
    show_folders(page, device)
    page.locator("#folder-nav").get_by_role("link", name="Manage folders").click()
    expect(page.get_by_role("heading", name="Manage folders")).to_be_visible()

    page.get_by_label("Name", exact=True).fill("Réunions")
    page.get_by_role("button", name="Create folder").click()
    expect(page.locator(".flash")).to_contain_text("The folder Réunions was created.")

    # A slash in a name is explained under the field, and nothing is made.
    page.get_by_label("Name", exact=True).fill("Été/2025")
    page.get_by_role("button", name="Create folder").click()
    error = page.locator("#id_name_errors")
    expect(error).to_contain_text("A folder name cannot contain “/”.")
    expect(page.get_by_label("Name", exact=True)).to_have_attribute("aria-invalid", "true")
    page.screenshot(path=artifact_path(f"folders-error-{device}"))

    page.get_by_label("Name", exact=True).fill("Été 2025")
    page.get_by_label("Inside").select_option(label="Réunions")
    page.get_by_role("button", name="Create folder").click()
    expect(page.locator(".flash")).to_contain_text("The folder Réunions / Été 2025 was created.")
    row = page.locator('.folder-admin-row[data-folder="Réunions/Été 2025"]')
    expect(row).to_contain_text("Été 2025")
    expect(row.get_by_role("link", name=re.compile("Rename or move"))).to_be_visible()
    expect(
        page.locator('.folder-admin-row[data-folder="Trash"]').get_by_role(
            "link", name=re.compile("Delete")
        )
    ).to_have_count(0)
    width = page.viewport_size["width"]
    assert page.evaluate("document.scrollingElement.scrollWidth") <= width
    page.screenshot(path=artifact_path(f"folders-manage-{device}"))

    show_folders(page, device)
    pane = page.locator("#folder-list")
    expect(pane.get_by_role("link", name="Été 2025")).to_be_visible()
    page.screenshot(path=artifact_path(f"folders-pane-{device}"))
    with imap(mail_server, mail_user) as client:
        names = {name for __, __, name in client.list_sub_folders()}
    assert {"Réunions", "Réunions/Été 2025"} <= names

    # Moved out of its parent under a new name, then the parent deleted once confirmed.
    show_folders(page, device)
    page.locator("#folder-nav").get_by_role("link", name="Manage folders").click()
    row.get_by_role("link", name=re.compile("Rename or move")).click()
    expect(page.get_by_label("Name", exact=True)).to_have_value("Été 2025")
    page.get_by_label("Name", exact=True).fill("Été 2025 (fini)")
    page.get_by_label("Inside").select_option(value="")
    page.screenshot(path=artifact_path(f"folders-rename-{device}"))
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".flash")).to_contain_text(
        "The folder Réunions / Été 2025 is now Été 2025 (fini)."
    )
    page.locator('.folder-admin-row[data-folder="Réunions"]').get_by_role(
        "link", name=re.compile("Delete")
    ).click()
    expect(page.get_by_role("heading", name="Delete the folder “Réunions”?")).to_be_visible()
    page.screenshot(path=artifact_path(f"folders-delete-{device}"))
    page.get_by_role("button", name="Delete the folder").click()
    expect(page.locator(".flash")).to_contain_text("The folder Réunions was deleted.")
    with imap(mail_server, mail_user) as client:
        names = {name for __, __, name in client.list_folders()}
    assert "Été 2025 (fini)" in names and "Réunions" not in names


def test_j_k_and_o_move_through_the_list_and_into_messages(signed_in_page, inbox):
    page, account, _mail_user = signed_in_page
    newest_first = [sample.subject for sample in reversed(inbox)]
    expect(rows(page)).to_have_count(len(inbox))
    expect(current_row(page)).to_have_count(0)

    press(page, "j")
    expect(current_row(page)).to_contain_text(newest_first[0])
    press(page, "j")
    press(page, "j")
    expect(current_row(page)).to_contain_text(newest_first[2])
    press(page, "k")
    expect(current_row(page)).to_contain_text(newest_first[1])
    expect(current_row(page)).to_have_attribute("aria-current", "true")
    page.screenshot(path=artifact_path("shortcuts-list-desktop"))

    press(page, "o")
    expect(page.locator("#message-subject")).to_have_text(newest_first[1])

    # On a message, j and k go to the next and previous message of the list.
    press(page, "j")
    expect(page.locator("#message-subject")).to_have_text(newest_first[2])
    press(page, "k")
    expect(page.locator("#message-subject")).to_have_text(newest_first[1])
    press(page, "k")
    expect(page.locator("#message-subject")).to_have_text(newest_first[0])

    press(page, "u")
    expect(rows(page)).to_have_count(len(inbox))
    press(page, "j")
    press(page, "Enter")
    expect(page.locator("#message-subject")).to_have_text(newest_first[0])

    # r follows the page's own Reply link; keys typed in a field stay in the field.
    press(page, "r")
    expect(page).to_have_url(re.compile(r"/compose/\?.*reply="))
    subject = page.locator("input[name=subject]")
    subject.fill("")
    subject.type("jk")
    expect(subject).to_have_value("jk")
    expect(page).to_have_url(re.compile(r"/compose/"))
    press(page, "Control+j")
    expect(page).to_have_url(re.compile(r"/compose/"))

    page.goto(reverse("webmail:mailbox", args=[account.pk]))
    press(page, "c")
    expect(page).to_have_url(re.compile(r"/compose/$"))


@pytest.mark.parametrize("device", ["desktop", "phone"], indirect=True)
def test_question_mark_shows_what_the_page_offers(signed_in_page, inbox, device):
    page, _account, _mail_user = signed_in_page
    expect(rows(page)).to_have_count(len(inbox))
    dialog = page.locator("#shortcuts-help")
    expect(dialog).to_be_hidden()

    press(page, "?")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("heading", name="Keyboard shortcuts")).to_be_visible()
    expect(dialog.locator("[data-shortcut-keys='j k']")).to_be_visible()
    expect(dialog.locator("[data-shortcut-keys='c']")).to_be_visible()
    # Nothing to answer on a list.
    expect(dialog.locator("[data-shortcut-keys='r']")).to_be_hidden()
    box = dialog.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= page.viewport_size["width"]
    page.screenshot(path=artifact_path(f"shortcuts-help-list-{device}"))
    press(page, "Escape")
    expect(dialog).to_be_hidden()

    rows(page).first.locator("td.subject a").click()
    expect(page.locator("#message-subject")).to_be_visible()
    press(page, "?")
    expect(dialog.locator("[data-shortcut-keys='r']")).to_be_visible()
    expect(dialog.locator("[data-shortcut-keys='e']")).to_be_visible()
    expect(dialog.locator("[data-shortcut-keys='#']")).to_be_visible()
    page.screenshot(path=artifact_path(f"shortcuts-help-message-{device}"))
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()


@pytest.mark.parametrize("device", ["desktop", "phone"], indirect=True)
def test_the_quota_bar_warns_when_the_mailbox_is_nearly_full(
    page, make_person, mail_server, device
):
    mailbox = Mailbox(f"e2e-{uuid.uuid4().hex[:12]}@{mail_server.domain}", uuid.uuid4().hex)
    mail_server.add_user(mailbox.address, mailbox.password, quota_rule="*:storage=1M")
    person = make_person(mailbox)
    with imap(mail_server, mailbox) as client:
        client.append("INBOX", b"Subject: Archives 2019\r\n\r\n" + b"x" * 76 * 12_500)
    sync.check(person.accounts[0])

    sign_in(page, person.username, person.password)
    show_folders(page, device)
    quota = page.locator("#folder-nav .quota")
    expect(quota).to_contain_text(re.compile(r"of 1\.0\s+MB used"))
    expect(quota).to_have_class(re.compile("is-nearly-full"))
    expect(quota).to_contain_text("Your mailbox is nearly full.")
    quota.scroll_into_view_if_needed()
    page.screenshot(path=artifact_path(f"quota-nearly-full-{device}"))


def test_s_flags_and_e_archives_the_highlighted_message(signed_in_page, inbox, mail_server):
    page, _account, mail_user = signed_in_page
    newest = inbox[-1].subject
    # Single messages, not conversations: the list's actions are for messages.
    grouping = page.get_by_role("button", name="Group by conversation")
    if grouping.get_attribute("aria-pressed") == "true":
        grouping.click()
        expect(grouping).to_have_attribute("aria-pressed", "false")
    expect(rows(page)).to_have_count(len(inbox))

    press(page, "j")
    expect(current_row(page)).to_contain_text(newest)
    press(page, "s")
    expect(rows(page).filter(has_text=newest)).to_have_class(re.compile(r"\bflagged\b"))

    press(page, "j")
    press(page, "e")
    expect(rows(page)).to_have_count(len(inbox) - 1)
    expect(rows(page).filter(has_text=newest)).to_have_count(0)
    with imap(mail_server, mail_user) as client:
        client.select_folder("Archive", readonly=True)
        archived = client.fetch(client.search(["ALL"]), ["FLAGS"])
    [flags] = [data[b"FLAGS"] for data in archived.values()]
    assert b"\\Flagged" in flags
