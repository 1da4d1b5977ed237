"""Reading mail in a real browser: signing in, the list, a message, its parts, phones."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest
from django.urls import reverse
from playwright.sync_api import Frame, Page, expect

from tests.e2e.helpers import (
    CONTRACT,
    FIRST_DATE,
    OFFICE_PHOTO,
    OFFICE_PHOTO_WIDTH,
    PLAIN_LINK,
    UNICODE_SENDER,
    UNICODE_SUBJECT,
    artifact_path,
    build_message,
    sign_in,
)

pytestmark = pytest.mark.e2e


def mailbox_url(account) -> str:
    return reverse("webmail:mailbox", args=[account.pk])


def message_url(account, uid: int) -> str:
    return reverse("webmail:message", args=[account.pk, uid]) + "?folder=INBOX"


def uid_of(inbox, key: str) -> int:
    """Mail delivered to a fresh mailbox gets UIDs 1, 2, ... in order."""
    return next(index for index, sample in enumerate(inbox, start=1) if sample.key == key)


def body_frame(page: Page) -> Frame:
    frame = page.locator("iframe.message-body").element_handle().content_frame()
    assert frame is not None
    return frame


def rows(page: Page):
    return page.locator("tr.message-row")


@pytest.mark.parametrize("login_with", ["username", "email"])
def test_sign_in_with_username_or_email_address(page, make_person, mail_user, login_with):
    person = make_person(mail_user)
    sign_in(page, getattr(person, login_with), person.password)
    expect(page).to_have_url(re.compile(re.escape(mailbox_url(person.accounts[0])) + "$"))
    expect(page.locator(".account-email")).to_have_text(mail_user.address)


def test_wrong_password_is_refused_without_saying_which_part(page, make_person, mail_user):
    person = make_person(mail_user)
    page.goto("/accounts/login/")
    page.fill("input[name=username]", person.username)
    page.fill("input[name=password]", "not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".errorlist")).to_contain_text("not right")
    expect(page).to_have_url(re.compile(r"/accounts/login/$"))


def test_inbox_lists_newest_first_with_sender_subject_and_date(signed_in_page, inbox):
    page, _account, _mail_user = signed_in_page
    expect(rows(page)).to_have_count(len(inbox))
    for row_index, sample in enumerate(reversed(inbox)):
        row = rows(page).nth(row_index)
        expect(row.locator("td.subject")).to_contain_text(sample.subject)
        expect(row.locator("td.from")).to_contain_text(sample.sender_name)
        shown = row.locator("td.date time")
        expect(shown).not_to_be_empty()
        assert datetime.fromisoformat(shown.get_attribute("datetime")) == sample.date
    expect(page.locator(".pager-count")).to_contain_text(
        f"1\N{EN DASH}{len(inbox)} of {len(inbox)}"
    )


def test_unread_mail_is_bold_until_opened(signed_in_page, inbox):
    page, account, _mail_user = signed_in_page
    subject = inbox[0].subject
    row = rows(page).filter(has_text=subject)
    expect(row).to_have_class(re.compile(r"\bunread\b"))
    expect(row.locator("td.subject a")).to_have_css("font-weight", "700")

    row.locator("td.subject a").click()
    expect(page.locator("#message-subject")).to_have_text(subject)
    page.get_by_role("link", name="Back to the list").click()

    expect(page).to_have_url(re.compile(re.escape(mailbox_url(account))))
    row = rows(page).filter(has_text=subject)
    expect(row).not_to_have_class(re.compile(r"\bunread\b"))
    expect(row.locator("td.subject a")).to_have_css("font-weight", "400")
    expect(page.locator("tr.message-row.unread")).to_have_count(len(inbox) - 1)


def test_html_body_renders_in_a_sandboxed_frame(signed_in_page, inbox):
    page, account, _mail_user = signed_in_page
    page.goto(message_url(account, uid_of(inbox, "html")))
    frame_element = page.locator("iframe.message-body")
    sandbox = frame_element.get_attribute("sandbox").split()
    assert "allow-scripts" not in sandbox
    assert "allow-same-origin" not in sandbox

    body = page.frame_locator("iframe.message-body")
    expect(body.locator("h1")).to_have_text("Lunch menu")
    expect(body.locator("td", has_text="Soup")).to_be_visible()
    link = body.locator("a", has_text="menu online")
    expect(link).to_have_attribute("href", "https://example.org/menu")
    expect(link).to_have_attribute("target", "_blank")
    expect(link).to_have_attribute("rel", re.compile(r"\bnoopener\b"))
    # The sanitised body reaches the frame, and only there: not the page itself.
    expect(page.locator("main").get_by_text("Lunch menu", exact=True)).to_have_count(0)
    # The folders stay beside the message.
    expect(
        page.locator("#folder-nav").get_by_role("link", name=re.compile("Inbox"))
    ).to_be_visible()


def test_plain_text_is_escaped_and_its_links_clickable(signed_in_page, inbox):
    page, account, _mail_user = signed_in_page
    page.goto(message_url(account, uid_of(inbox, "plain")))
    body = page.locator(".plain-body")
    expect(body).to_contain_text("<b>not bold</b> & <script>alert(1)</script>")
    expect(body.locator("b, script")).to_have_count(0)
    link = body.locator("a")
    expect(link).to_have_count(1)
    expect(link).to_have_attribute("href", PLAIN_LINK)
    expect(link).to_have_text(PLAIN_LINK)
    expect(link).to_have_attribute("target", "_blank")
    expect(link).to_have_attribute("rel", re.compile(r"\bnoopener\b"))


def test_attachment_is_listed_and_downloads_identical_bytes(signed_in_page, inbox):
    page, account, _mail_user = signed_in_page
    page.goto(message_url(account, uid_of(inbox, "attachment")))
    link = page.locator(".attachments a.attachment")
    expect(link).to_have_count(1)
    expect(link).to_contain_text(CONTRACT.filename)
    with page.expect_download() as download_info:
        link.click()
    download = download_info.value
    assert download.suggested_filename == CONTRACT.filename
    assert Path(download.path()).read_bytes() == CONTRACT.data


def test_inline_cid_image_shows_in_the_body(signed_in_page, inbox):
    page, account, _mail_user = signed_in_page
    page.goto(message_url(account, uid_of(inbox, "inline")))
    image = page.frame_locator("iframe.message-body").locator("img")
    expect(image).to_have_count(1)
    expect(image).to_have_js_property("complete", True)
    expect(image).to_have_js_property("naturalWidth", OFFICE_PHOTO_WIDTH)
    assert "cid:" not in image.get_attribute("src")
    # Shown in the body, so not offered again as an attachment.
    expect(page.locator(".attachments")).to_have_count(0)
    assert OFFICE_PHOTO.content_id not in page.content()


def test_remote_images_load_only_after_consent(signed_in_page, inbox, listener):
    page, account, _mail_user = signed_in_page
    page.goto(message_url(account, uid_of(inbox, "remote")))
    notice = page.locator(".remote-notice")
    expect(notice).to_be_visible()
    body = page.frame_locator("iframe.message-body")
    expect(body.locator("h2")).to_have_text("This week")
    assert listener.requests == [], "a remote image loaded before the person allowed it"

    notice.get_by_role("button", name="Show for this message").click()
    expect(page).to_have_url(re.compile(r"[?&]remote=1\b"))
    expect(page.locator(".remote-notice")).to_have_count(0)
    expect(body.locator("img")).to_have_js_property("naturalWidth", 24)
    assert listener.paths == ["/newsletter/banner.png"]
    leaked = {name.lower() for name in listener.requests[0].headers} & {"referer", "cookie"}
    assert not leaked, f"the remote request carried {leaked}"


def test_mail_that_arrives_after_the_list_opens_from_its_link(
    page, make_person, mail_server, mail_user
):
    person = make_person(mail_user)
    sign_in(page, person.username, person.password)
    expect(page.locator(".empty")).to_be_visible()
    mail_server.deliver(mail_user.address, build_message("Arrived later", text="Hello."))
    response = page.goto(message_url(person.accounts[0], 1))
    assert response.status == 200
    expect(page.locator("#message-subject")).to_have_text("Arrived later")


def test_pages_of_a_large_folder(page, make_person, mail_server, mail_user):
    for number in range(1, 61):
        mail_server.deliver(
            mail_user.address,
            build_message(f"Message {number:02d}", date=FIRST_DATE, text=f"Number {number}."),
        )
    person = make_person(mail_user)
    sign_in(page, person.username, person.password)
    expect(rows(page)).to_have_count(50)
    expect(rows(page).first).to_contain_text("Message 60")
    expect(page.locator(".pager-count")).to_contain_text("1\N{EN DASH}50 of 60")
    expect(page.locator("a[rel=prev]")).to_have_count(0)

    page.locator("a[rel=next]").click()
    expect(page.locator(".pager-count")).to_contain_text("51\N{EN DASH}60 of 60")
    expect(rows(page)).to_have_count(10)
    expect(rows(page).first).to_contain_text("Message 10")
    expect(rows(page).last).to_contain_text("Message 01")
    expect(page).to_have_url(re.compile(r"[?&]page=2\b"))
    expect(page.locator("a[rel=next]")).to_have_count(0)

    # The address the list pushed is a real page: reloading it gives the same list.
    page.reload()
    expect(rows(page)).to_have_count(10)


def test_non_ascii_subject_and_sender_are_decoded(signed_in_page, inbox):
    page, _account, _mail_user = signed_in_page
    row = rows(page).first
    expect(row.locator("td.subject")).to_contain_text(UNICODE_SUBJECT)
    expect(row.locator("td.from")).to_contain_text(UNICODE_SENDER)
    row.locator("td.subject a").click()
    expect(page.locator("#message-subject")).to_have_text(UNICODE_SUBJECT)
    expect(page.locator(".header-from")).to_contain_text(f"{UNICODE_SENDER} <zoe@example.org>")
    expect(page).to_have_title(re.compile(re.escape(UNICODE_SUBJECT)))
    expect(page.locator(".plain-body")).to_contain_text("À tout à l'heure.")


def test_the_other_account_is_in_the_switcher(
    page, make_person, mail_server, mail_user, new_mailbox
):
    second = new_mailbox()
    mail_server.deliver(mail_user.address, build_message("For the first account", text="1"))
    mail_server.deliver(second.address, build_message("For the second account", text="2"))
    person = make_person(mail_user, second)
    sign_in(page, person.username, person.password)
    expect(rows(page)).to_have_text([re.compile("For the first account")])

    switcher = page.locator(".account-switcher")
    expect(switcher.locator("summary")).to_have_text(mail_user.address)
    switcher.locator("summary").click()
    switcher.get_by_role("link", name=second.address).click()
    expect(page).to_have_url(re.compile(re.escape(mailbox_url(person.accounts[1])) + "$"))
    expect(rows(page)).to_have_text([re.compile("For the second account")])
    expect(page.locator(".account-switcher summary")).to_have_text(second.address)


def test_another_persons_account_and_mail_are_404(
    browser, page, make_person, mail_server, mail_user, new_mailbox, live_server
):
    mail_server.deliver(mail_user.address, build_message("Private", html="<p>Secret plan</p>"))
    owner = make_person(mail_user)
    account = owner.accounts[0]
    # The owner reads the message first, so that everything about it is cached.
    sign_in(page, owner.username, owner.password)
    page.goto(message_url(account, 1))
    expect(page.frame_locator("iframe.message-body").locator("p")).to_have_text("Secret plan")
    body_url = page.locator("iframe.message-body").get_attribute("src")
    source_url = page.get_by_role("link", name="View source").get_attribute("href")

    intruder = make_person(new_mailbox())
    other = browser.new_context(base_url=live_server.url)
    try:
        intruder_page = other.new_page()
        sign_in(intruder_page, intruder.username, intruder.password)
        own = intruder.accounts[0]
        for url in (
            mailbox_url(account),
            message_url(account, 1),
            body_url,
            source_url,
            reverse("webmail:attachment", args=[account.pk, 1, "1"]) + "?folder=INBOX&v=1",
            # An id that exists nowhere, and a message missing from one's own account.
            mailbox_url(account).replace(f"/{account.pk}/", f"/{account.pk + own.pk + 100}/"),
            message_url(own, 1),
        ):
            response = intruder_page.goto(url)
            assert response.status == 404, url
            assert "Secret plan" not in intruder_page.content(), url
            assert "Traceback" not in intruder_page.content(), url
    finally:
        other.close()


@pytest.mark.parametrize("device", ["phone"], indirect=True)
def test_phone_folder_drawer_and_readable_list(signed_in_page, inbox):
    page, _account, _mail_user = signed_in_page
    toggle = page.locator("[data-toggle-nav]")
    folders = page.locator("#folder-nav")
    expect(toggle).to_be_visible()
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(folders).not_to_be_in_viewport()

    toggle.tap()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(folders).to_be_in_viewport(ratio=0.9)
    expect(folders.get_by_role("link", name=re.compile("Inbox"))).to_be_visible()
    page.screenshot(path=artifact_path("inbox-phone-drawer"))

    toggle.tap()
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(folders).not_to_be_in_viewport()

    width = page.viewport_size["width"]
    assert page.evaluate("document.scrollingElement.scrollWidth") <= width
    for index in range(len(inbox)):
        subject = rows(page).nth(index).locator("td.subject a")
        expect(subject).to_be_in_viewport()
        box = subject.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width
        size = float(subject.evaluate("el => getComputedStyle(el).fontSize").removesuffix("px"))
        assert size >= 13


@pytest.mark.parametrize("device", ["desktop", "phone"], indirect=True)
def test_screenshots_of_the_inbox_and_a_message(signed_in_page, inbox, device):
    """Kept in test-artifacts/ on every run, to look at the layout."""
    page, account, _mail_user = signed_in_page
    expect(rows(page)).to_have_count(len(inbox))
    page.screenshot(path=artifact_path(f"inbox-{device}"))

    page.goto(message_url(account, uid_of(inbox, "inline")))
    expect(page.frame_locator("iframe.message-body").locator("img")).to_have_js_property(
        "naturalWidth", OFFICE_PHOTO_WIDTH
    )
    page.screenshot(path=artifact_path(f"message-html-{device}"))

    page.goto(message_url(account, uid_of(inbox, "attachment")))
    expect(page.locator(".attachments")).to_be_visible()
    page.screenshot(path=artifact_path(f"message-attachment-{device}"))
