"""Finding mail in a real browser: the quick search box, the advanced search, going back."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from tests.e2e.helpers import UNICODE_SUBJECT, artifact_path

pytestmark = pytest.mark.e2e


def rows(page):
    return page.locator("#message-list tr.message-row")


@pytest.mark.parametrize("device", ["desktop", "phone"], indirect=True)
def test_search_from_the_box_open_a_result_and_come_back(signed_in_page, inbox, device):
    page, account, _mail_user = signed_in_page
    expect(rows(page)).to_have_count(len(inbox))
    page.screenshot(path=artifact_path(f"search-box-{device}"))
    box = page.locator("#search-input")
    box.fill("contract")
    box.press("Enter")
    expect(page).to_have_url(re.compile(r"/search/\?(.+&)?q=contract(&|$)"))
    expect(page.locator(".search-count")).to_have_text("1 result for “contract” in Inbox")
    expect(rows(page)).to_have_count(1)
    expect(rows(page).first.locator("td.subject")).to_contain_text("Signed contract")
    page.screenshot(path=artifact_path(f"search-results-{device}"), full_page=True)

    rows(page).first.locator("td.subject a").click()
    uid = next(i for i, sample in enumerate(inbox, start=1) if sample.key == "attachment")
    expect(page).to_have_url(
        re.compile(re.escape(reverse("webmail:message", args=[account.pk, uid])))
    )
    expect(page.get_by_role("heading", name="Signed contract")).to_be_visible()

    page.go_back()
    expect(page).to_have_url(re.compile(r"q=contract"))
    expect(page.locator("#search-input")).to_have_value("contract")
    expect(rows(page)).to_have_count(1)

    page.get_by_role("link", name="Clear search").click()
    expect(rows(page)).to_have_count(len(inbox))
    expect(page.locator("#search-input")).to_have_value("")


@pytest.mark.parametrize("device", ["desktop", "phone"], indirect=True)
def test_advanced_search_and_a_search_with_nothing_found(signed_in_page, device):
    page, _account, _mail_user = signed_in_page
    page.locator(".advanced-search summary").click()
    advanced = page.locator(".advanced-fields")
    expect(advanced).to_be_visible()
    advanced.get_by_label("Subject").fill("réunion")
    advanced.get_by_label("Sent on or after").fill("2024-03-04")
    page.screenshot(path=artifact_path(f"search-advanced-{device}"), full_page=True)
    advanced.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"subject=r%C3%A9union"))
    expect(rows(page)).to_have_count(1)
    expect(rows(page).first.locator("td.subject")).to_contain_text(UNICODE_SUBJECT)
    # The criteria stay where they were set, to be changed.
    expect(page.locator(".advanced-search")).to_have_attribute("open", "")
    expect(page.get_by_label("Subject")).to_have_value("réunion")

    box = page.locator("#search-input")
    box.fill("zebra")
    box.press("Enter")
    expect(page.locator(".empty")).to_contain_text("No message matches.")
    page.get_by_role("link", name="Search all folders").click()
    expect(page.locator(".search-count")).to_contain_text("0 results for “zebra”")
    expect(page.locator(".search-count")).to_contain_text("in all folders")
