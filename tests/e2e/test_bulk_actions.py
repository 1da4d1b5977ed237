"""Selecting messages in the list and acting on them in a real browser: shift-click, the
toolbar, Undo in the notice, every message of the folder, dragging onto a folder, the
trash; on a desktop and on a phone."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect

from tests.e2e.helpers import artifact_path, build_message, sign_in
from tests.support.mailboxes import imap
from webmail.mime.headers import decode_header
from webmail.models import MailPreferences

pytestmark = pytest.mark.e2e

FOLDER = "Projets 2025"


@pytest.fixture
def listing(page, make_person, mail_server, mail_user, inbox):
    """A person signed in on their Inbox's list of single messages, newest first.

    Yields (page, account); the standard mail is delivered first (UIDs 1 to 6) and
    ``FOLDER`` exists besides the special-use folders.
    """
    person = make_person(mail_user)
    MailPreferences.objects.create(user=person.user, conversations=False)
    for sample in inbox:
        mail_server.deliver(mail_user.address, sample.raw)
    with imap(mail_server, mail_user) as client:
        client.create_folder(FOLDER)
        client.subscribe_folder(FOLDER)  # the folder pane lists subscribed folders
    sign_in(page, person.username, person.password)
    expect(rows(page)).to_have_count(len(inbox))
    yield page, person.accounts[0]


def list_url(account, folder: str = "INBOX") -> str:
    return reverse("webmail:mailbox", args=[account.pk]) + f"?folder={folder}"


def rows(page: Page):
    return page.locator("tr.message-row")


def row(page: Page, subject: str):
    return rows(page).filter(has_text=subject)


def box_of(page: Page, subject: str):
    return row(page, subject).locator("input[name=uid]")


def subjects_in(mail_server, mail_user, folder: str) -> list[str]:
    with imap(mail_server, mail_user) as client:
        client.select_folder(folder, readonly=True)
        fetched = client.fetch(client.search(["ALL"]), ["ENVELOPE"])
        return sorted(decode_header(data[b"ENVELOPE"].subject) for data in fetched.values())


def fits_the_screen(page: Page) -> None:
    width = page.viewport_size["width"]
    assert page.evaluate("document.scrollingElement.scrollWidth") <= width
    for control in page.locator(".selection-actions > .button, .selection-menu summary").all():
        box = control.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width


@pytest.mark.parametrize("device", ["desktop", "phone"], indirect=True)
def test_check_three_rows_archive_them_and_undo(listing, inbox, mail_server, mail_user, device):
    page, __ = listing
    actions = page.locator(".selection-actions")
    expect(actions).to_be_hidden()
    # Newest first: the three in the middle of the list.
    chosen = [sample.subject for sample in inbox[1:4]]
    if device == "desktop":
        box_of(page, chosen[2]).click()
        box_of(page, chosen[0]).click(modifiers=["Shift"])  # and everything between
    else:
        for subject in chosen:
            box_of(page, subject).tap()
    for sample in inbox:
        expect(box_of(page, sample.subject)).to_be_checked(checked=sample.subject in chosen)
    expect(page.locator("[data-selection-count]")).to_have_text("3 selected")
    expect(page.locator("[data-select-page]")).to_have_js_property("indeterminate", True)
    expect(actions).to_be_visible()
    fits_the_screen(page)
    page.screenshot(path=artifact_path(f"bulk-selected-{device}"))
    menu = actions.locator("details", has_text="Move to…")
    menu.locator("summary").click()
    expect(menu.get_by_role("button", name=FOLDER)).to_be_visible()
    page.screenshot(path=artifact_path(f"bulk-move-menu-{device}"))
    menu.locator("summary").click()

    actions.get_by_role("button", name="Archive").click()
    flash = page.locator(".flash")
    expect(flash).to_contain_text("3 messages were moved to Archive.")
    expect(rows(page)).to_have_count(len(inbox) - 3)
    expect(actions).to_be_hidden()
    page.screenshot(path=artifact_path(f"bulk-archived-{device}"))
    assert subjects_in(mail_server, mail_user, "Archive") == sorted(chosen)

    flash.get_by_role("button", name="Undo").click()
    expect(page.locator(".flash")).to_contain_text("3 messages were moved back to Inbox.")
    expect(rows(page)).to_have_count(len(inbox))
    for subject in chosen:
        expect(row(page, subject)).to_have_count(1)
    assert subjects_in(mail_server, mail_user, "Archive") == []
    page.screenshot(path=artifact_path(f"bulk-undone-{device}"))


def test_select_every_message_of_the_folder_then_mark_them_read(
    listing, inbox, mail_server, mail_user, settings
):
    page, account = listing
    settings.MESSAGES_PER_PAGE = 4
    page.goto(list_url(account))
    expect(rows(page)).to_have_count(4)
    offer = page.locator("[data-select-folder]")
    expect(offer).to_be_hidden()

    page.locator("[data-select-page]").check()
    expect(page.locator("[data-selection-count]")).to_have_text("4 selected")
    expect(offer).to_be_visible()
    page.get_by_text(f"Select all {len(inbox)} messages in this folder").click()
    expect(
        page.get_by_text(f"All {len(inbox)} messages in this folder are selected.")
    ).to_be_visible()
    page.screenshot(path=artifact_path("bulk-every-message"))

    # Unchecking one row is no longer "every message".
    box_of(page, inbox[-1].subject).uncheck()
    expect(offer).to_be_hidden()
    box_of(page, inbox[-1].subject).check()
    page.get_by_text(f"Select all {len(inbox)} messages in this folder").click()

    page.locator(".selection-actions").get_by_role("button", name="Mark read").click()
    expect(page.locator(".flash")).to_contain_text(
        "Every message of this folder was marked as read."
    )
    expect(page.locator("tr.message-row.unread")).to_have_count(0)
    with imap(mail_server, mail_user) as client:
        client.select_folder("INBOX", readonly=True)
        assert client.search(["UNSEEN"]) == []


def test_drag_a_row_and_then_a_selection_onto_folders(listing, inbox, mail_server, mail_user):
    page, __ = listing
    folders = page.locator("#folder-list")
    # A row dragged alone goes alone, even while others are checked.
    box_of(page, inbox[0].subject).check()
    row(page, inbox[5].subject).drag_to(folders.get_by_role("link", name=FOLDER))
    expect(page.locator(".flash")).to_contain_text(f"1 message was moved to {FOLDER}.")
    assert subjects_in(mail_server, mail_user, FOLDER) == [inbox[5].subject]

    box_of(page, inbox[0].subject).check()
    box_of(page, inbox[1].subject).check()
    row(page, inbox[1].subject).drag_to(folders.get_by_role("link", name="Junk"))
    expect(page.locator(".flash")).to_contain_text("2 messages were moved to Junk.")
    expect(rows(page)).to_have_count(len(inbox) - 3)
    assert subjects_in(mail_server, mail_user, "Junk") == sorted(
        [inbox[0].subject, inbox[1].subject]
    )


def test_in_the_trash_deleting_for_good_and_emptying_are_confirmed(
    listing, inbox, mail_server, mail_user
):
    page, account = listing
    page.locator("[data-select-page]").check()
    page.locator(".selection-actions").get_by_role("button", name="Delete").click()
    expect(page.locator(".flash")).to_contain_text(f"{len(inbox)} messages were moved to Trash.")
    page.goto(list_url(account, "Trash"))
    expect(rows(page)).to_have_count(len(inbox))

    questions = []

    def answer(dialog) -> None:
        questions.append(dialog.message)
        if len(questions) == 1:
            dialog.dismiss()
        else:
            dialog.accept()

    page.on("dialog", answer)
    box_of(page, inbox[0].subject).check()
    delete = page.locator(".selection-actions").get_by_role("button", name="Delete permanently…")
    page.screenshot(path=artifact_path("bulk-trash"))
    delete.click()  # dismissed: nothing happens
    expect(rows(page)).to_have_count(len(inbox))
    delete.click()
    expect(page.locator(".flash")).to_contain_text("1 message was deleted permanently.")
    expect(rows(page)).to_have_count(len(inbox) - 1)
    assert "cannot be undone" in questions[0]

    page.get_by_role("button", name="Empty Trash").click()
    expect(page.locator(".flash")).to_contain_text("The trash was emptied.")
    expect(page.locator(".empty")).to_have_text("This folder is empty.")
    assert "Every message in it will be deleted permanently" in questions[-1]
    assert subjects_in(mail_server, mail_user, "Trash") == []
    assert subjects_in(mail_server, mail_user, "INBOX") == []


@pytest.fixture
def quick_checks(settings):
    settings.MAIL_POLL_SECONDS = 1
    settings.MAIL_CHECK_SECONDS = 1


def test_new_mail_does_not_wipe_a_selection_in_progress(
    listing, inbox, mail_server, mail_user, send_worker, quick_checks
):
    page, __ = listing
    page.reload()
    expect(page.locator("#sync-status[data-token]:not([data-token=''])")).to_have_count(1)
    box_of(page, inbox[2].subject).check()

    mail_server.deliver(mail_user.address, build_message("Arrivé pendant la sélection"))
    expect(page).to_have_title(re.compile(rf"^\({len(inbox) + 1}\) "), timeout=30_000)
    expect(box_of(page, inbox[2].subject)).to_be_checked()
    expect(row(page, "Arrivé pendant la sélection")).to_have_count(0)

    box_of(page, inbox[2].subject).uncheck()
    mail_server.deliver(mail_user.address, build_message("Et une autre"))
    expect(row(page, "Arrivé pendant la sélection")).to_be_visible(timeout=30_000)
