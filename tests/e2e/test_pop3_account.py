"""A POP3 account in a real browser: its fetched mail in the same screens as IMAP mail."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from accounts.models import Protocol
from tests.e2e.helpers import artifact_path, build_message, sign_in
from tests.support.accounts import make_account
from webmail import pop3fetch

pytestmark = pytest.mark.e2e


def test_fetched_pop3_mail_is_listed_opened_and_answered_as_a_draft(
    page, make_person, new_mailbox, mail_server
):
    mailbox = new_mailbox()
    person = make_person()
    account = make_account(person.user, mail_server, mailbox, protocol=Protocol.POP3)
    mail_server.deliver(
        mailbox.address,
        build_message(
            "Livraison de jeudi",
            sender="Boutique Bureau <boutique@example.org>",
            to=mailbox.address,
            text="Votre commande arrive jeudi.",
        ),
    )
    assert pop3fetch.fetch(account).new == 1

    sign_in(page, person.username, person.password)
    row = page.locator("tr.message-row", has_text="Livraison de jeudi")
    expect(row).to_have_class(re.compile(r"\bunread\b"))
    page.screenshot(path=artifact_path("pop3-mailbox"), full_page=True)
    row.get_by_role("link", name="Livraison de jeudi").click()
    expect(page.locator(".plain-body")).to_contain_text("Votre commande arrive jeudi.")

    page.get_by_role("link", name=re.compile("^↩ Reply")).click()
    expect(page.locator("#compose-subject")).to_have_value("Re: Livraison de jeudi")
    page.get_by_role("button", name="Save draft").click()
    page.goto(page.url.split("/compose/")[0] + "/?folder=Drafts")
    expect(page.locator("tr.message-row", has_text="Re: Livraison de jeudi")).to_have_count(1)
