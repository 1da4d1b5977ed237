"""Writing mail in a real browser: write, attach, send, undo, drafts, suggestions."""

from __future__ import annotations

import email
import re
from email import policy

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect

from tests.e2e.helpers import artifact_path, build_message, sign_in
from tests.integration.celery_worker import wait_for
from tests.support.mailboxes import DELIVERY_TIMEOUT, folder_uids, imap, with_message_id
from webmail.models import Contact, OutgoingMessage

pytestmark = pytest.mark.e2e

ATTACHMENT = bytes(range(256)) * 64


@pytest.fixture
def writer(page: Page, make_person, new_mailbox, mail_server):
    """A person signed in, with one message from Bob in their Inbox; (page, account, bob)."""
    mailbox, bob = new_mailbox(), new_mailbox()
    person = make_person(mailbox)
    mail_server.deliver(
        mailbox.address,
        build_message(
            "Planning", sender=f"Bob <{bob.address}>", to=mailbox.address, text="Shall we meet?"
        ),
    )
    sign_in(page, person.username, person.password)
    return page, person.accounts[0], bob


def open_editor(page: Page) -> None:
    page.get_by_role("link", name=re.compile("Write")).click()
    expect(page.locator("trix-editor")).to_be_visible()
    # The page's scripts run once it has loaded: events sent before find no one listening.
    page.wait_for_load_state()


def fill_message(page: Page, to: str, subject: str, text: str) -> None:
    page.fill("#compose-to", to)
    page.fill("#compose-subject", subject)
    page.locator("trix-editor").click()
    page.keyboard.press("Control+Home")
    page.keyboard.type(text)


def attach(page: Page, tmp_path, name: str = "Relevé d'août.bin", data: bytes = ATTACHMENT):
    path = tmp_path / name
    path.write_bytes(data)
    page.set_input_files("#compose-files", str(path))
    expect(page.locator("#upload-list li.upload.done")).to_have_count(1)


def received(mail_server, mailbox, subject: str) -> email.message.EmailMessage:
    with imap(mail_server, mailbox) as client:

        def find():
            client.select_folder("INBOX", readonly=True)
            uids = client.search(["SUBJECT", subject])
            return uids and client.fetch(uids, ["BODY.PEEK[]"])[uids[0]][b"BODY[]"]

        raw = wait_for(find, timeout=DELIVERY_TIMEOUT, interval=0.2, what=f"{subject!r}")
    return email.message_from_bytes(raw, policy=policy.default)


def test_write_attach_and_send(writer, tmp_path, mail_server, send_worker, settings):
    settings.SEND_UNDO_SECONDS = 2
    page, _account, bob = writer
    open_editor(page)
    fill_message(page, bob.address, "Compte rendu — réunion ✓", "Bonjour Bob,")
    page.get_by_role("button", name="Bold").click()
    page.keyboard.type(" voici le compte rendu.")
    attach(page, tmp_path)
    page.screenshot(path=artifact_path("compose-desktop"), full_page=True)
    page.get_by_role("button", name="Send", exact=True).click()

    expect(page).to_have_url(re.compile(r"/a/\d+/\?sent=\d+"))
    # The notice follows the message on its own: waiting, then sent.
    expect(page.locator(".outgoing-status")).to_contain_text("Sending…")
    expect(page.locator(".outgoing-status")).to_contain_text("Message sent.", timeout=30_000)
    message = received(mail_server, bob, "Compte rendu")
    assert message["Subject"] == "Compte rendu — réunion ✓"
    html = message.get_body(("html",)).get_content()
    assert re.search(r"<strong>(&nbsp;| )voici le compte rendu\.</strong>", html)
    text = message.get_body(("plain",)).get_content().replace("\xa0", " ")
    assert "Bonjour Bob, voici le compte rendu." in text
    (part,) = list(message.iter_attachments())
    assert part.get_filename() == "Relevé d'août.bin"
    assert part.get_content() == ATTACHMENT


def test_reply_then_undo_returns_to_the_editor(writer, mail_server, settings):
    settings.SEND_UNDO_SECONDS = 600
    page, _account, bob = writer
    page.get_by_role("link", name="Planning").click()
    page.get_by_role("link", name=re.compile("^↩ Reply")).click()
    expect(page.locator("#compose-to")).to_have_value(f"Bob <{bob.address}>")
    expect(page.locator("#compose-subject")).to_have_value("Re: Planning")
    expect(page.locator("trix-editor blockquote")).to_contain_text("Shall we meet?")
    page.locator("trix-editor").press("Control+Home")
    page.keyboard.type("Tuesday works.")
    page.get_by_role("button", name="Send", exact=True).click()

    toast = page.locator(".outgoing-status")
    expect(toast).to_contain_text("Sending…")
    toast.get_by_role("button", name="Undo").click()
    expect(page.locator("trix-editor")).to_contain_text("Tuesday works.")
    expect(page.locator("#compose-to")).to_have_value(f"Bob <{bob.address}>")
    expect(page.locator("#compose-subject")).to_have_value("Re: Planning")
    row = OutgoingMessage.objects.get()
    assert row.status == OutgoingMessage.Status.CANCELLED
    with imap(mail_server, bob) as client:
        assert not with_message_id(client, "INBOX", row.message_id)


def test_a_draft_saves_itself_and_reopens_with_its_attachment(
    writer, tmp_path, mail_server, settings
):
    settings.DRAFT_AUTOSAVE_SECONDS = 2
    page, account, bob = writer
    open_editor(page)
    fill_message(page, bob.address, "Half written", "To be continued")
    attach(page, tmp_path, name="notes.txt", data=b"draft notes")
    expect(page.locator("#compose-status")).to_contain_text("Draft saved", timeout=15_000)
    draft_uid = page.locator("#compose-draft-uid").input_value()
    assert draft_uid
    # A few more automatic saves replace the draft, never pile up copies.
    page.locator("trix-editor").press("End")
    page.keyboard.type(" tomorrow")
    expect(page.locator("#compose-draft-uid")).not_to_have_value(draft_uid, timeout=15_000)
    assert len(folder_uids(mail_server, account, "Drafts")) == 1

    page.goto(reverse("webmail:mailbox", args=[account.pk]) + "?folder=Drafts")
    page.get_by_role("link", name="Half written").click()
    expect(page.locator("trix-editor")).to_contain_text("To be continued tomorrow")
    expect(page.locator("#compose-to")).to_have_value(bob.address)
    expect(page.locator("#upload-list li.upload.done .upload-name")).to_have_text("notes.txt")
    # Reopened, the attachment is a reference to the draft; the next automatic save
    # keeps it as an upload, since that save replaces the draft it came from.
    expect(page.locator("#upload-list input[name=carried]")).to_have_count(1)
    page.wait_for_load_state()
    page.locator("trix-editor").press("End")
    page.keyboard.type(" again")
    expect(page.locator("#upload-list input[name=attachments]")).to_have_count(1, timeout=15_000)
    expect(page.locator("#upload-list input[name=carried]")).to_have_count(0)
    page.locator("trix-editor").press("End")
    page.keyboard.type(" and again")
    expect(page.locator("#compose-status")).to_contain_text("Draft saved", timeout=15_000)
    wait_for(
        lambda: b"again and again" in latest_draft(mail_server, account),
        timeout=DELIVERY_TIMEOUT,
        what="the draft saved again",
    )
    assert b"notes.txt" in latest_draft(mail_server, account)


def latest_draft(mail_server, account) -> bytes:
    with imap(mail_server, account) as client:
        client.select_folder("Drafts", readonly=True)
        uids = client.search(["ALL"])
        if not uids:
            return b""
        return client.fetch(uids[-1:], ["BODY.PEEK[]"])[uids[-1]][b"BODY[]"]


def test_files_dropped_on_the_form_are_attached(writer):
    page, _account, _bob = writer
    open_editor(page)
    page.evaluate(
        """() => {
            const data = new DataTransfer();
            data.items.add(new File(["dropped bytes"], "dropped.txt", {type: "text/plain"}));
            const form = document.getElementById("compose-form");
            form.dispatchEvent(new DragEvent("dragenter", {dataTransfer: data, bubbles: true}));
            form.dispatchEvent(new DragEvent("drop", {dataTransfer: data, bubbles: true}));
        }"""
    )
    expect(page.locator("#upload-list li.upload.done .upload-name")).to_have_text("dropped.txt")


def test_an_attachment_over_the_limit_is_refused_in_the_page(writer, tmp_path, settings):
    settings.UPLOAD_MAX_SIZE = 1024
    page, _account, _bob = writer
    open_editor(page)
    path = tmp_path / "big.bin"
    path.write_bytes(b"x" * 4096)
    page.set_input_files("#compose-files", str(path))
    expect(page.locator("#upload-error")).to_contain_text("too large")
    expect(page.locator("#upload-list li")).to_have_count(0)


def test_recipients_are_suggested_from_contacts(writer):
    page, account, _bob = writer
    Contact.objects.create(user=account.user, email="zoe@example.org", name="Zoé Dupont")
    open_editor(page)
    page.locator("#compose-to").press_sequentially("zo")
    option = page.get_by_role("option", name=re.compile("Zoé Dupont"))
    expect(option).to_be_visible()
    page.locator("#compose-to").press("ArrowDown")
    page.locator("#compose-to").press("Enter")
    expect(page.locator("#compose-to")).to_have_value('"Zoé Dupont" <zoe@example.org>, ')


def test_an_invalid_address_is_shown_before_sending(writer):
    page, _account, _bob = writer
    open_editor(page)
    fill_message(page, "bob@", "Typo", "Hello")
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.locator("#error-to")).to_contain_text("bob@")
    assert not OutgoingMessage.objects.exists()


@pytest.mark.parametrize("device", ["phone"], indirect=True)
def test_the_editor_fits_a_phone(writer):
    page, account, _bob = writer
    page.goto(reverse("webmail:compose", args=[account.pk]))
    expect(page.locator("trix-editor")).to_be_visible()
    page.screenshot(path=artifact_path("compose-phone"), full_page=True)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390


def test_send_later_waits_in_the_outbox_and_reopens_for_editing(writer):
    page, _account, bob = writer
    open_editor(page)
    fill_message(page, bob.address, "Rappel de demain", "N'oublie pas la réunion.")
    page.get_by_text("Send later").click()
    page.fill("#compose-send-at", "2099-06-01T09:30")
    page.get_by_role("button", name="Schedule").click()

    expect(page.locator(".outgoing-status")).to_contain_text("Scheduled for")
    page.get_by_role("link", name="Outbox").click()
    row = page.locator("tr.outbox-row", has_text="Rappel de demain")
    expect(row).to_contain_text("Scheduled for")
    page.screenshot(path=artifact_path("outbox-desktop"), full_page=True)
    row.get_by_role("button", name="Edit").click()
    expect(page.locator("#compose-subject")).to_have_value("Rappel de demain")
    expect(page.locator("trix-editor")).to_contain_text("N'oublie pas la réunion.")
    assert OutgoingMessage.objects.get().status == OutgoingMessage.Status.CANCELLED


def test_an_identity_with_its_signature_is_picked_when_writing(
    writer, mail_server, send_worker, settings
):
    settings.SEND_UNDO_SECONDS = 0
    page, account, bob = writer
    page.get_by_role("link", name="Identities and signatures").click()
    page.get_by_role("link", name="Add an identity").click()
    page.get_by_label("Name").fill("Service comptabilité")
    page.get_by_label("E-mail address").fill(account.email)
    page.get_by_label("Signature").fill("Service comptabilité\nPoste 42")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".identity", has_text="Service comptabilité")).to_contain_text("Poste 42")
    page.screenshot(path=artifact_path("identities-desktop"), full_page=True)

    page.goto(reverse("webmail:compose", args=[account.pk]))
    page.select_option("#compose-identity", label=f"Service comptabilité <{account.email}>")
    expect(page.locator("trix-editor")).to_contain_text("Poste 42")
    fill_message(page, bob.address, "Facture", "Ci-joint la facture.")
    page.get_by_role("button", name="Send", exact=True).click()
    message = received(mail_server, bob, "Facture")
    assert message["From"].addresses[0].display_name == "Service comptabilité"
    text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert text.startswith("Ci-joint la facture.\n")
    assert "\n-- \nService comptabilité\nPoste 42" in text


def test_a_draft_deleted_behind_the_page_says_its_attachment_is_gone(
    writer, tmp_path, mail_server, settings
):
    settings.DRAFT_AUTOSAVE_SECONDS = 2
    page, account, bob = writer
    open_editor(page)
    fill_message(page, bob.address, "Soon gone", "Text")
    attach(page, tmp_path, name="notes.txt", data=b"draft notes")
    expect(page.locator("#compose-status")).to_contain_text("Draft saved", timeout=15_000)
    draft_uid = page.locator("#compose-draft-uid").input_value()
    page.goto(reverse("webmail:compose", args=[account.pk]) + f"?draft={draft_uid}")
    expect(page.locator("#upload-list input[name=carried]")).to_have_count(1)
    page.wait_for_load_state()
    with imap(mail_server, account) as client:
        client.select_folder("Drafts")
        client.delete_messages(client.search(["ALL"]))
        client.expunge()
    page.locator("trix-editor").press("End")
    page.keyboard.type(" more")
    expect(page.locator("#compose-status")).to_contain_text(
        "An attachment of the original message is no longer there", timeout=15_000
    )
