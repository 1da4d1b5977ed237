"""New mail reaching an open page in a real browser, without a reload.

The page polls Facteur; a real Celery worker checks the account on the suite's
Dovecot (IMAP) or fetches it (POP3); the list, the folder counts, the tab title
and a notification follow.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from accounts.models import Protocol
from tests.e2e.helpers import artifact_path, build_message, sign_in
from tests.support.accounts import make_account
from webmail.models import SyncState

pytestmark = pytest.mark.e2e

#: Notifications the page shows are recorded instead, as if the tab were in the background.
RECORD_NOTIFICATIONS = """
window.__notifications = [];
window.Notification = function (title, options) {
  window.__notifications.push({ title: title, body: (options || {}).body });
  this.close = function () {};
};
window.Notification.permission = "granted";
window.Notification.requestPermission = function () { return Promise.resolve("granted"); };
Object.defineProperty(document, "hidden", { get: function () { return true; } });
"""


@pytest.fixture
def quick_checks(settings):
    settings.MAIL_POLL_SECONDS = 1
    settings.MAIL_CHECK_SECONDS = 1


def test_new_imap_mail_appears_in_the_open_inbox_with_a_notification(
    page, make_person, new_mailbox, mail_server, send_worker, quick_checks
):
    mailbox = new_mailbox()
    person = make_person(mailbox)
    account = person.accounts[0]
    mail_server.deliver(
        mailbox.address,
        build_message("Déjà là", sender="Zoé <zoe@example.org>", to=mailbox.address, text="1"),
    )
    page.add_init_script(RECORD_NOTIFICATIONS)
    sign_in(page, person.username, person.password)
    expect(page.locator("tr.message-row")).to_have_count(1)
    expect(page).to_have_title(re.compile(r"^\(1\) Inbox"))
    # Wait for the first background check, so that what follows is new to it.
    expect(page.locator("#sync-status[data-token]:not([data-token=''])")).to_have_count(1)
    page.evaluate("window.__notReloaded = true")

    mail_server.deliver(
        mailbox.address,
        build_message(
            "Compte rendu de réunion",
            sender="Bruno Lefèvre <bruno@example.org>",
            to=mailbox.address,
            text="Voici le compte rendu.",
        ),
    )
    row = page.locator("tr.message-row", has_text="Compte rendu de réunion")
    expect(row).to_be_visible(timeout=30_000)
    expect(row).to_have_class(re.compile(r"\bunread\b"))
    expect(page.locator("#folder-list a[aria-current=page] .badge")).to_have_text("2")
    expect(page).to_have_title(re.compile(r"^\(2\) Inbox"))
    assert page.evaluate("window.__notReloaded") is True
    notifications = page.evaluate("window.__notifications")
    assert notifications == [{"title": "Bruno Lefèvre", "body": "Compte rendu de réunion"}], (
        notifications
    )
    assert SyncState.objects.get(account=account).inbox_unread == 2
    page.screenshot(path=artifact_path("new-mail-arrived"), full_page=True)


def test_check_mail_fetches_a_pop3_account_into_the_open_page(
    page, make_person, new_mailbox, mail_server, send_worker, quick_checks
):
    mailbox = new_mailbox()
    person = make_person()
    make_account(person.user, mail_server, mailbox, protocol=Protocol.POP3)
    for number in range(3):
        mail_server.deliver(
            mailbox.address,
            build_message(
                f"Facture {number}",
                sender="Compta <compta@example.org>",
                to=mailbox.address,
                text="Ci-joint.",
            ),
        )
    sign_in(page, person.username, person.password)
    expect(page.locator("p.empty")).to_be_visible()
    page.evaluate("window.__notReloaded = true")

    page.get_by_role("button", name="Check mail").click()
    expect(page.locator("tr.message-row")).to_have_count(3, timeout=30_000)
    expect(page.locator("#folder-list a[aria-current=page] .badge")).to_have_text("3")
    assert page.evaluate("window.__notReloaded") is True


def test_a_first_large_fetch_shows_its_progress(page, make_person, new_mailbox, mail_server):
    mailbox = new_mailbox()
    person = make_person()
    account = make_account(person.user, mail_server, mailbox, protocol=Protocol.POP3)
    # A fetch in its middle, as the worker records it.
    SyncState.objects.create(account=account, progress_done=1250, progress_total=5000)
    sign_in(page, person.username, person.password)
    progress = page.locator(".fetch-progress progress")
    expect(progress).to_have_attribute("value", "1250")
    expect(progress).to_have_attribute("max", "5000")
    expect(page.locator(".fetch-progress")).to_contain_text("1250 of 5000")
    page.screenshot(path=artifact_path("pop3-fetch-progress"), full_page=True)
    SyncState.objects.filter(account=account).update(progress_done=5000)
    expect(progress).to_have_attribute("value", "5000", timeout=10_000)
