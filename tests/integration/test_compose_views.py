"""Writing and sending through the app's own screens, against the real mail server.

The sends go through the compose view, Redis, a real Celery worker process,
Postfix and Dovecot; what arrived is read back over IMAP.
"""

from __future__ import annotations

import email
import json
import re
import socket
import uuid
from datetime import timedelta
from email import policy
from email.message import EmailMessage
from email.utils import make_msgid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from accounts.models import MailAccount
from tests.integration.celery_worker import wait_for
from tests.support.accounts import Mailbox, make_account
from tests.support.compose import compose_url, form_fields
from tests.support.mailboxes import (
    DELIVERY_TIMEOUT,
    arrived,
    count,
    flags_of,
    folder_uids,
)
from webmail.models import Contact, OutgoingMessage, Upload

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

Status = OutgoingMessage.Status


@pytest.fixture
def alice(django_user_model, mail_server):
    person = django_user_model.objects.create_user(username=f"alice-{uuid.uuid4().hex[:6]}")
    person.first_name, person.last_name = "Alice", "Martin"
    person.save()
    return make_account(person, mail_server, Mailbox(mail_server))


@pytest.fixture
def bob(mail_server) -> Mailbox:
    return Mailbox(mail_server)


@pytest.fixture
def browser_of(client):
    def sign_in(account):
        client.force_login(account.user)
        return client

    return sign_in


@pytest.fixture
def no_undo(settings):
    settings.SEND_UNDO_SECONDS = 0


def deliver_original(mail_server, account, *, sender: str, cc: str = "") -> str:
    """A message from ``sender`` to ``account`` (and ``cc``); its Message-ID."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = account.email
    if cc:
        message["Cc"] = cc
    message["Subject"] = "Re: Re: Budget 2026"
    message["Message-ID"] = make_msgid(domain="example.org")
    message["References"] = "<root@example.org>"
    message.set_content("The figures are attached.\nSecond line.")
    mail_server.deliver(account.email, message.as_bytes())
    return message["Message-ID"]


def test_the_editor_opens_with_the_default_identity_and_a_style_nonce(alice, browser_of):
    response = browser_of(alice).get(compose_url(alice))
    assert response.status_code == 200
    identity = alice.identities.get()
    assert identity.email == alice.email
    assert identity.name == "Alice Martin"
    policy_header = response.headers["Content-Security-Policy"]
    assert "style-src 'self' 'nonce-" in policy_header
    assert "script-src 'self';" in policy_header


def test_a_reply_is_prefilled_from_the_original(alice, browser_of, mail_server):
    message_id = deliver_original(mail_server, alice, sender="Bruno <bruno@example.org>")
    client = browser_of(alice)
    fields = form_fields(client, compose_url(alice, reply=1, folder="INBOX"))
    assert fields["to"] == "Bruno <bruno@example.org>"
    assert fields["subject"] == "Re: Budget 2026"
    assert fields["in_reply_to"] == message_id
    assert fields["references"].split() == ["<root@example.org>", message_id]
    assert (fields["origin_kind"], fields["origin_uid"]) == ("reply", "1")
    assert "The figures are attached." in fields["html"]


def test_reply_all_leaves_out_the_persons_own_addresses(alice, browser_of, mail_server):
    alice.identities.create(email="alice.martin@example.test", name="Alice")
    deliver_original(
        mail_server,
        alice,
        sender="bruno@example.org",
        cc="Chloé <chloe@example.org>, alice.martin@example.test",
    )
    fields = form_fields(browser_of(alice), compose_url(alice, reply_all=1, folder="INBOX"))
    everyone = (fields["to"] + "," + fields["cc"]).lower()
    assert "bruno@example.org" in everyone
    assert "chloe@example.org" in everyone
    assert alice.email.lower() not in everyone
    assert "alice.martin@example.test" not in everyone


def test_an_invalid_address_is_named_before_anything_is_queued(alice, browser_of):
    client = browser_of(alice)
    fields = form_fields(client, compose_url(alice))
    fields.update(to="bob@example.test, not an address", subject="Hi", action="send")
    response = client.post(compose_url(alice), fields)
    assert response.status_code == 400
    assert "not an address" in response.content.decode()
    assert not OutgoingMessage.objects.exists()


def test_a_header_injection_is_refused(alice, browser_of):
    client = browser_of(alice)
    fields = form_fields(client, compose_url(alice))
    fields.update(to="bob@example.test", subject="Hi\r\nBcc: victim@example.org", action="send")
    response = client.post(compose_url(alice), fields)
    assert response.status_code == 400
    assert not OutgoingMessage.objects.exists()


def test_drafts_are_replaced_never_piled_up_and_reopen_with_attachments(
    alice, browser_of, mail_server
):
    client = browser_of(alice)
    upload = client.post(
        reverse("webmail:upload", args=[alice.pk]),
        {"file": SimpleUploadedFile("Résumé 履歴書.pdf", b"%PDF-1.4 draft", "application/pdf")},
    ).json()
    fields = form_fields(client, compose_url(alice))
    fields.update(
        to="bob@",  # half typed: a draft keeps it as it is
        bcc="hidden@example.org",
        subject="Brouillon d'été",
        html="<div>first <strong>version</strong></div>",
        attachments=[upload["id"]],
        action="save",
    )
    answers = []
    for text in ("first", "second", "third"):
        fields["html"] = f"<div>{text} <strong>version</strong></div>"
        response = client.post(compose_url(alice), fields, HTTP_ACCEPT="application/json")
        assert response.status_code == 200, response.content
        answers.append(response.json())
        fields["draft_uid"] = answers[-1]["draft_uid"]
    drafts = folder_uids(mail_server, alice, "Drafts")
    assert drafts == [answers[-1]["draft_uid"]]

    reopened = form_fields(client, compose_url(alice, draft=drafts[0]))
    assert reopened["to"] == "bob@"
    assert reopened["bcc"] == "hidden@example.org"
    assert reopened["subject"] == "Brouillon d'été"
    assert "third" in reopened["html"]
    assert reopened["draft_uid"] == str(drafts[0])
    # Reopening wrote nothing: the draft's attachment is a reference until it is posted.
    assert "attachments" not in reopened
    assert Upload.objects.count() == 1
    (token,) = reopened["carried"]
    reopened["action"] = "save"
    answer = client.post(compose_url(alice), reopened, HTTP_ACCEPT="application/json").json()
    (kept,) = answer["carried"]
    assert kept["carried"] == token
    attachment = Upload.objects.get(pk=kept["id"])
    assert attachment.filename == "Résumé 履歴書.pdf"
    assert bytes(attachment.content) == b"%PDF-1.4 draft"


def test_uploads_beyond_the_limit_are_refused_with_a_clear_message(alice, browser_of, settings):
    settings.UPLOAD_MAX_SIZE = 1000
    response = browser_of(alice).post(
        reverse("webmail:upload", args=[alice.pk]),
        {"file": SimpleUploadedFile("big.bin", b"x" * 2000)},
    )
    assert response.status_code == 413
    assert "too large" in response.json()["error"]
    assert not Upload.objects.exists()


def test_uploads_waiting_to_be_sent_are_bounded_per_person(alice, browser_of, settings):
    settings.UPLOAD_MAX_SIZE = 1000
    client = browser_of(alice)
    url = reverse("webmail:upload", args=[alice.pk])
    for number in range(4):
        file = SimpleUploadedFile(f"part-{number}.bin", b"x" * 1000)
        assert client.post(url, {"file": file}).status_code == 200
    response = client.post(url, {"file": SimpleUploadedFile("more.bin", b"x")})
    assert response.status_code == 413
    assert "waiting to be sent" in response.json()["error"]
    assert Upload.objects.count() == 4


def test_another_persons_upload_cannot_be_attached(alice, browser_of, django_user_model):
    other = django_user_model.objects.create_user(username=f"eve-{uuid.uuid4().hex[:6]}")
    theirs = Upload.objects.create(
        user=other, filename="secret.txt", content_type="text/plain", size=6, content=b"secret"
    )
    client = browser_of(alice)
    fields = form_fields(client, compose_url(alice))
    fields.update(to="bob@example.test", attachments=[theirs.pk], action="send")
    assert client.post(compose_url(alice), fields).status_code == 400
    assert client.post(reverse("webmail:upload-delete", args=[theirs.pk])).status_code == 204
    assert Upload.objects.filter(pk=theirs.pk).exists()


def test_alice_replies_to_bob_with_an_attachment_and_everything_lands(
    alice, bob, browser_of, mail_server, send_worker, no_undo
):
    deliver_original(mail_server, alice, sender=f"Bob <{bob.address}>")
    client = browser_of(alice)
    payload = bytes(range(256)) * 40
    upload = client.post(
        reverse("webmail:upload", args=[alice.pk]),
        {"file": SimpleUploadedFile("Relevé d'août.bin", payload, "application/octet-stream")},
    ).json()
    fields = form_fields(client, compose_url(alice, reply=1, folder="INBOX"))
    fields.update(
        subject="Re: Budget 2026 — réponse ✓",
        html="<div>Voilà <strong>les chiffres</strong>.</div>" + fields["html"],
        attachments=[upload["id"]],
        action="send",
    )
    response = client.post(compose_url(alice), fields)
    assert response.status_code == 302
    row = OutgoingMessage.objects.get()
    assert f"sent={row.pk}" in response["Location"]

    (_flags, raw), *_ = arrived(mail_server, bob, row.message_id).values()
    received = email.message_from_bytes(raw, policy=policy.default)
    assert received["Subject"] == "Re: Budget 2026 — réponse ✓"
    (part,) = list(received.iter_attachments())
    assert part.get_filename() == "Relevé d'août.bin"
    assert part.get_content() == payload
    text = received.get_body(("plain",)).get_content()
    assert "Voilà les chiffres." in text
    assert "> The figures are attached." in text

    arrived(mail_server, alice, row.message_id, folder="Sent")
    wait_for(
        lambda: b"\\Answered" in flags_of(mail_server, alice, "INBOX", 1),
        timeout=DELIVERY_TIMEOUT,
        what="the original flagged answered",
    )
    assert Contact.objects.filter(user=alice.user, email=bob.address.lower()).exists()
    assert not Upload.objects.exists()


def test_forward_as_attachment_carries_the_original_and_flags_it(
    alice, bob, browser_of, mail_server, send_worker, no_undo
):
    original_id = deliver_original(mail_server, alice, sender="bruno@example.org")
    client = browser_of(alice)
    fields = form_fields(client, compose_url(alice, forward_attached=1, folder="INBOX"))
    assert fields["subject"] == "Fwd: Re: Re: Budget 2026"
    fields.update(to=bob.address, action="send")
    assert client.post(compose_url(alice), fields).status_code == 302
    row = OutgoingMessage.objects.get()
    (_flags, raw), *_ = arrived(mail_server, bob, row.message_id).values()
    received = email.message_from_bytes(raw, policy=policy.default)
    (part,) = list(received.iter_attachments())
    assert part.get_content_type() == "message/rfc822"
    assert part.get_content()["Message-ID"] == original_id
    wait_for(
        lambda: b"$Forwarded" in flags_of(mail_server, alice, "INBOX", 1),
        timeout=DELIVERY_TIMEOUT,
        what="the original flagged forwarded",
    )


def test_a_sent_draft_leaves_the_drafts_folder(
    alice, bob, browser_of, mail_server, send_worker, no_undo
):
    client = browser_of(alice)
    fields = form_fields(client, compose_url(alice))
    fields.update(to=bob.address, subject="From a draft", html="<div>Hi</div>", action="save")
    saved = client.post(compose_url(alice), fields, HTTP_ACCEPT="application/json").json()
    assert folder_uids(mail_server, alice, "Drafts") == [saved["draft_uid"]]
    fields.update(draft_uid=saved["draft_uid"], action="send")
    assert client.post(compose_url(alice), fields).status_code == 302
    row = OutgoingMessage.objects.get()
    arrived(mail_server, bob, row.message_id)
    assert folder_uids(mail_server, alice, "Drafts") == []


def test_undo_puts_the_message_back_in_the_editor_and_nothing_is_sent(
    alice, bob, browser_of, mail_server, settings
):
    settings.SEND_UNDO_SECONDS = 600
    client = browser_of(alice)
    fields = form_fields(client, compose_url(alice))
    fields.update(to=bob.address, bcc="Carol <carol@example.org>", subject="Oops", action="send")
    fields["html"] = "<div>Not yet</div>"
    client.post(compose_url(alice), fields)
    row = OutgoingMessage.objects.get()
    status = client.get(reverse("webmail:outgoing-status", args=[row.pk]))
    assert "Undo" in status.content.decode()

    response = client.post(reverse("webmail:outgoing-edit", args=[row.pk]))
    assert response.status_code == 302
    assert response["Location"].endswith(f"?outgoing={row.pk}")
    row.refresh_from_db()
    assert row.status == Status.CANCELLED
    reopened = form_fields(client, response["Location"])
    assert reopened["to"] == bob.address
    # The envelope keeps Bcc addresses without their names.
    assert reopened["bcc"] == "carol@example.org"
    assert "Not yet" in reopened["html"]
    assert count(mail_server, bob, row.message_id) == 0


def test_send_later_waits_in_the_outbox_and_can_be_cancelled(alice, bob, browser_of, settings):
    client = browser_of(alice)
    fields = form_fields(client, compose_url(alice))
    later = timezone.localtime() + timedelta(days=1)
    fields.update(
        to=bob.address,
        subject="Tomorrow",
        send_at=later.strftime("%Y-%m-%dT%H:%M"),
        action="schedule",
    )
    assert client.post(compose_url(alice), fields).status_code == 302
    row = OutgoingMessage.objects.get()
    assert row.status == Status.QUEUED
    assert abs(row.send_after - later) < timedelta(minutes=1)
    page = client.get(reverse("webmail:outbox", args=[alice.pk])).content.decode()
    assert "Tomorrow" in page
    assert "Scheduled for" in page

    client.post(reverse("webmail:outgoing-discard", args=[row.pk]))
    row.refresh_from_db()
    assert row.status == Status.CANCELLED


def test_a_time_in_the_past_is_refused_for_send_later(alice, browser_of):
    client = browser_of(alice)
    fields = form_fields(client, compose_url(alice))
    fields.update(to="bob@example.test", send_at="2001-01-01T10:00", action="schedule")
    assert client.post(compose_url(alice), fields).status_code == 400
    assert not OutgoingMessage.objects.exists()


def test_nobody_reaches_another_persons_outbox(alice, browser_of, django_user_model, mail_server):
    client = browser_of(alice)
    fields = form_fields(client, compose_url(alice))
    fields.update(to="bob@example.test", subject="Private", action="schedule")
    fields["send_at"] = (timezone.localtime() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    client.post(compose_url(alice), fields)
    row = OutgoingMessage.objects.get()

    eve = django_user_model.objects.create_user(username=f"eve-{uuid.uuid4().hex[:6]}")
    client.force_login(eve)
    assert client.get(reverse("webmail:outgoing-status", args=[row.pk])).status_code == 404
    client.post(reverse("webmail:outgoing-edit", args=[row.pk]))
    client.post(reverse("webmail:outgoing-discard", args=[row.pk]))
    row.refresh_from_db()
    assert row.status == Status.QUEUED
    assert client.get(compose_url(alice, outgoing=row.pk)).status_code == 404


def test_contacts_suggest_the_addresses_written_to(alice, browser_of):
    client = browser_of(alice)
    fields = form_fields(client, compose_url(alice))
    fields.update(
        to='"Zoé Dupont" <zoe@example.org>',
        subject="Hi",
        send_at=(timezone.localtime() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"),
        action="schedule",
    )
    client.post(compose_url(alice), fields)
    found = client.get(reverse("webmail:contacts"), {"q": "zo"}).json()["contacts"]
    assert found == [{"name": "Zoé Dupont", "email": "zoe@example.org"}]
    assert json.loads(client.get(reverse("webmail:contacts"), {"q": "zz"}).content) == {
        "contacts": []
    }


def test_the_mailbox_shows_the_state_of_the_message_just_sent(alice, browser_of, bob, settings):
    settings.SEND_UNDO_SECONDS = 600
    client = browser_of(alice)
    fields = form_fields(client, compose_url(alice))
    fields.update(to=bob.address, subject="Notice", action="send")
    response = client.post(compose_url(alice), fields)
    page = client.get(response["Location"]).content.decode()
    row = OutgoingMessage.objects.get()
    assert reverse("webmail:outgoing-status", args=[row.pk]) in page
    # A number that is not one names no message: the page shows no notice.
    mailbox = reverse("webmail:mailbox", args=[alice.pk])
    tampered = client.get(mailbox, {"sent": "x"})
    assert tampered.status_code == 200
    assert 'class="toasts"' not in tampered.content.decode()
    assert 'class="toasts"' in page


def test_a_message_can_be_written_and_queued_while_the_imap_server_is_down(alice, browser_of):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    MailAccount.objects.filter(pk=alice.pk).update(incoming_port=closed)
    client = browser_of(alice)
    assert client.get(compose_url(alice)).status_code == 200
    fields = form_fields(client, compose_url(alice))
    fields.update(to="bob@example.test", subject="Offline", action="send")
    assert client.post(compose_url(alice), fields).status_code == 302
    assert OutgoingMessage.objects.get().status == Status.QUEUED
    saved = client.post(
        compose_url(alice), {**fields, "action": "save"}, HTTP_ACCEPT="application/json"
    )
    assert saved.status_code == 503
    assert saved.json()["error"]


# Opening the editor on another message writes nothing; its parts come when posted ----------

REPORT = b"%PDF-1.4 " + b"r" * 3000
PHOTO = b"\x89PNG\r\n\x1a\n" + b"p" * 2000


@pytest.fixture
def original(mail_server, alice) -> str:
    """A message with two attachments in Alice's INBOX (UID 1); its Message-ID."""
    message = EmailMessage()
    message["From"] = "bruno@example.org"
    message["To"] = alice.email
    message["Subject"] = "Quarterly report"
    message["Message-ID"] = make_msgid(domain="example.org")
    message.set_content("Both files attached.")
    message.add_attachment(REPORT, maintype="application", subtype="pdf", filename="report.pdf")
    message.add_attachment(PHOTO, maintype="image", subtype="png", filename="photo.png")
    mail_server.deliver(alice.email, message.as_bytes())
    return message["Message-ID"]


def rows() -> tuple[int, int]:
    return Upload.objects.count(), OutgoingMessage.objects.count()


@pytest.mark.parametrize("start", ["forward", "forward_attached"])
def test_opening_a_forward_writes_no_row(alice, browser_of, original, start):
    client = browser_of(alice)
    page = client.get(compose_url(alice, **{start: 1, "folder": "INBOX"}))
    assert page.status_code == 200
    assert rows() == (0, 0)
    names = re.findall(r'class="upload-name">([^<]+)<', page.content.decode())
    expected = ["report.pdf", "photo.png"] if start == "forward" else ["Quarterly report.eml"]
    assert names == expected


def test_opening_a_draft_or_a_cancelled_message_writes_no_row(alice, browser_of, original):
    client = browser_of(alice)
    fields = form_fields(client, compose_url(alice, forward=1, folder="INBOX"))
    fields.update(to="bob@example.test", action="save")
    saved = client.post(compose_url(alice), fields)
    assert saved.status_code == 302
    uploads_before = rows()
    draft_uid = re.search(r"draft=(\d+)", saved["Location"]).group(1)
    reopened = form_fields(client, compose_url(alice, draft=draft_uid))
    assert len(reopened["carried"]) == 2 and "attachments" not in reopened
    assert rows() == uploads_before == (0, 0)


def test_a_forward_carries_the_originals_parts_through_postfix(
    alice, browser_of, original, mail_server, send_worker, settings
):
    settings.SEND_UNDO_SECONDS = 0
    bob = Mailbox(mail_server)
    client = browser_of(alice)
    fields = form_fields(client, compose_url(alice, forward=1, folder="INBOX"))
    fields.update(to=bob.address, action="send")
    assert client.post(compose_url(alice), fields).status_code == 302
    row = OutgoingMessage.objects.get()
    (_flags, raw), *_ = arrived(mail_server, bob, row.message_id).values()
    received = email.message_from_bytes(raw, policy=policy.default)
    parts = {p.get_filename(): p.get_content() for p in received.iter_attachments()}
    assert parts == {"report.pdf": REPORT, "photo.png": PHOTO}
    assert not Upload.objects.exists()


def test_cross_site_opening_cannot_exhaust_the_room_for_uploads(
    alice, browser_of, original, settings
):
    """A page elsewhere can make the browser GET the editor as often as it likes."""
    settings.UPLOAD_MAX_SIZE = 8000  # room for 4 times 8,000 bytes waiting
    client = browser_of(alice)
    for _attempt in range(20):
        for start in ("forward", "forward_attached"):
            assert client.get(compose_url(alice, **{start: 1})).status_code == 200
    assert rows() == (0, 0)
    answer = client.post(
        reverse("webmail:upload", args=[alice.pk]),
        {"file": SimpleUploadedFile("mine.bin", b"m" * 7000)},
    )
    assert answer.status_code == 200


def test_kept_parts_count_against_the_room_for_uploads(alice, browser_of, original, settings):
    settings.UPLOAD_MAX_SIZE = 8000
    client = browser_of(alice)
    for _upload in range(4):
        client.post(
            reverse("webmail:upload", args=[alice.pk]),
            {"file": SimpleUploadedFile("big.bin", b"b" * 7000)},
        )
    fields = form_fields(client, compose_url(alice, forward=1, folder="INBOX"))
    fields["action"] = "save"
    response = client.post(compose_url(alice), fields, HTTP_ACCEPT="application/json")
    assert response.status_code == 400
    assert "Too many attachments are waiting" in response.content.decode()
    assert Upload.objects.count() == 4


def test_an_autosave_keeps_the_parts_as_uploads_and_the_page_names_them(
    alice, browser_of, original, mail_server
):
    client = browser_of(alice)
    fields = form_fields(client, compose_url(alice, forward=1, folder="INBOX"))
    fields["action"] = "save"
    answer = client.post(compose_url(alice), fields, HTTP_ACCEPT="application/json").json()
    assert [k["carried"] for k in answer["carried"]] == fields["carried"]
    kept = Upload.objects.in_bulk([k["id"] for k in answer["carried"]])
    assert sorted(bytes(u.content) for u in kept.values()) == sorted([REPORT, PHOTO])
    # The next save names the uploads, as the page's script does; the draft keeps both.
    fields.pop("carried")
    fields.update(attachments=list(kept), draft_uid=answer["draft_uid"])
    again = client.post(compose_url(alice), fields, HTTP_ACCEPT="application/json").json()
    assert again["carried"] == []
    reopened = form_fields(client, compose_url(alice, draft=again["draft_uid"]))
    assert len(reopened["carried"]) == 2


def test_a_reference_made_for_another_account_is_refused(
    alice, browser_of, original, mail_server, django_user_model
):
    client = browser_of(alice)
    token = form_fields(client, compose_url(alice, forward=1, folder="INBOX"))["carried"][0]
    other_person = django_user_model.objects.create_user(username=f"eve-{uuid.uuid4().hex[:6]}")
    eve = make_account(other_person, mail_server, Mailbox(mail_server))
    eves = browser_of(eve)
    fields = form_fields(eves, compose_url(eve))
    fields.update(to="bob@example.test", carried=[token], action="send")
    response = eves.post(compose_url(eve), fields)
    assert response.status_code == 400
    assert not OutgoingMessage.objects.exists()
