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


def test_a_message_the_imap_account_refuses_is_kept_aside_and_named_there(
    page, make_person, new_mailbox, mail_server, settings
):
    settings.POP3_DELIVERY_MAX_TRIES = 1
    pop3_box, imap_box = new_mailbox(), new_mailbox()
    mail_server.add_user(imap_box.address, imap_box.password, quota_rule="*:storage=64K")
    person = make_person(imap_box)
    pop3 = make_account(person.user, mail_server, pop3_box, protocol=Protocol.POP3, position=1)
    pop3.pop3_deliver_to = person.accounts[0]
    pop3.save()
    mail_server.deliver(
        pop3_box.address,
        build_message("Scan du contrat", to=pop3_box.address, text="Page 1\n" * 20_000),
    )
    mail_server.deliver(
        pop3_box.address,
        build_message("Réunion lundi", to=pop3_box.address, text="À 10 h."),
    )
    result = pop3fetch.fetch(pop3)
    assert (result.new, result.kept_aside) == (1, 1)

    sign_in(page, person.username, person.password)
    expect(page.locator("tr.message-row", has_text="Réunion lundi")).to_have_count(1)
    notice = page.locator(".kept-aside")
    expect(notice).to_contain_text("Facteur keeps them aside")
    page.screenshot(path=artifact_path("pop3-kept-aside"), full_page=True)
    notice.get_by_role("link", name="Scan du contrat").click()
    expect(page.locator(".plain-body")).to_contain_text("Page 1")
