"""Conversations and all inboxes in a real browser, on a desktop and on a phone."""

from __future__ import annotations

import re
from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.helpers import FIRST_DATE, artifact_path, sign_in
from tests.support.mailboxes import imap

pytestmark = pytest.mark.e2e


def mail(
    hour: int,
    subject: str,
    text: str,
    *,
    sender: str = "Alice Martin <alice@example.org>",
    message_id: str,
    references: tuple[str, ...] = (),
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "me@example.test"
    msg["Subject"] = subject
    msg["Date"] = format_datetime(FIRST_DATE + timedelta(hours=hour))
    msg["Message-ID"] = message_id
    if references:
        msg["In-Reply-To"] = references[-1]
        msg["References"] = " ".join(references)
    msg.set_content(text)
    return msg.as_bytes()


QUESTION = "<move-1@example.org>"
MY_REPLY = "<move-2@office.test>"


def open_folders(page: Page, device: str) -> None:
    if device == "phone":
        page.get_by_role("button", name="Folders").click()


@pytest.mark.parametrize("device", ["desktop", "phone"], indirect=True)
def test_a_conversation_with_the_own_reply_is_one_row_and_opens_whole(
    page, make_person, mail_server, mail_user, device
):
    person = make_person(mail_user)
    with imap(mail_server, mail_user) as client:
        client.append(
            "INBOX", mail(0, "Moving day", "Shall we move on Friday?", message_id=QUESTION)
        )
        client.append(
            "Sent",
            mail(
                1,
                "Re: Moving day",
                "Friday suits me; I will bring boxes.",
                sender="Me <me@example.test>",
                message_id=MY_REPLY,
                references=(QUESTION,),
            ),
            flags=[b"\\Seen"],
        )
        client.append(
            "INBOX",
            mail(
                2,
                "Re: Moving day",
                "Perfect, see you at nine.",
                message_id="<move-3@example.org>",
                references=(QUESTION, MY_REPLY),
            ),
        )
        client.append(
            "INBOX",
            mail(
                3,
                "Parking permits",
                "The permits are ready.",
                sender="Bruno Petit <bruno@example.org>",
                message_id="<parking@example.org>",
            ),
        )

    sign_in(page, person.username, person.password)
    rows = page.locator("#message-list tr.message-row")
    expect(rows).to_have_count(2)
    conversation = rows.filter(has_text="Moving day")
    expect(conversation).to_have_class(re.compile(r"\bunread\b"))
    expect(conversation.locator(".thread-count")).to_have_text("2")
    expect(rows.first).to_contain_text("Parking permits")
    page.screenshot(path=artifact_path(f"conversations-list-{device}"), full_page=True)

    conversation.locator("td.date").click()  # anywhere on the row opens it
    expect(page).to_have_url(re.compile(r"/t/\d+/"))
    entries = page.locator(".conversation-entry")
    expect(entries).to_have_count(3)
    expect(entries.nth(1)).to_have_class(re.compile(r"\bown\b"))
    expect(entries.nth(1).locator(".own-mark")).to_be_visible()
    # The newest is open, the older ones folded until asked for.
    expect(entries.nth(2).locator(".plain-body")).to_have_text(re.compile("see you at nine"))
    expect(entries.nth(0).locator(".plain-body")).to_be_hidden()
    entries.nth(1).locator("summary").click()
    expect(entries.nth(1).locator(".plain-body")).to_have_text(re.compile("bring boxes"))
    page.screenshot(path=artifact_path(f"conversation-{device}"), full_page=True)

    page.get_by_role("link", name="← Back to the list").click()
    expect(page.locator("#message-list tr.message-row.unread")).to_have_count(1)


@pytest.mark.parametrize("device", ["desktop", "phone"], indirect=True)
def test_all_inboxes_list_two_accounts_together(
    page, make_person, new_mailbox, mail_server, device
):
    work, home = new_mailbox(), new_mailbox()
    person = make_person(work, home)
    for mailbox, hours, name in ((work, (0, 2), "Work"), (home, (1, 3), "Home")):
        with imap(mail_server, mailbox) as client:
            for hour in hours:
                client.append(
                    "INBOX",
                    mail(
                        hour,
                        f"{name} news {hour}",
                        f"{name} text.",
                        message_id=f"<{name}-{hour}@example.org>",
                    ),
                )

    sign_in(page, person.username, person.password)
    open_folders(page, device)
    page.get_by_role("link", name="All inboxes").click()
    expect(page).to_have_url(re.compile(r"/all/$"))
    rows = page.locator("#message-list tr.message-row")
    expect(rows).to_have_count(4)
    expect(rows.locator("td.subject")).to_have_text(
        ["Home news 3", "Work news 2", "Home news 1", "Work news 0"]
    )
    expect(rows.nth(0)).to_have_attribute("data-account", home.address)
    expect(rows.nth(1).locator(".account-chip")).to_be_visible()
    page.screenshot(path=artifact_path(f"all-inboxes-{device}"), full_page=True)

    rows.nth(0).locator("td.subject a").click()
    home_account = person.accounts[1]
    expect(page).to_have_url(re.compile(rf"/a/{home_account.pk}/m/2/\?folder=INBOX"))
    expect(page.locator(".plain-body")).to_contain_text("Home text.")
