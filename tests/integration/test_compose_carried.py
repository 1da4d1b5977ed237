"""Opening the editor on another message writes nothing; its parts are fetched when posted."""

from __future__ import annotations

import email
import re
import secrets
import uuid
from email import policy
from email.message import EmailMessage
from email.utils import make_msgid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tests.support.accounts import make_account
from tests.support.compose import compose_url, form_fields
from tests.support.mailboxes import arrived
from webmail.models import OutgoingMessage, Upload

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

REPORT = b"%PDF-1.4 " + b"r" * 3000
PHOTO = b"\x89PNG\r\n\x1a\n" + b"p" * 2000


class Mailbox:
    def __init__(self, mail_server) -> None:
        self.address = f"user-{uuid.uuid4().hex[:12]}@{mail_server.domain}"
        self.password = secrets.token_urlsafe(12)
        mail_server.add_user(self.address, self.password)


@pytest.fixture
def alice(django_user_model, mail_server):
    person = django_user_model.objects.create_user(username=f"alice-{uuid.uuid4().hex[:6]}")
    return make_account(person, mail_server, Mailbox(mail_server))


@pytest.fixture
def client_of(client):
    def sign_in(account):
        client.force_login(account.user)
        return client

    return sign_in


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
def test_opening_a_forward_writes_no_row(alice, client_of, original, start):
    client = client_of(alice)
    page = client.get(compose_url(alice, **{start: 1, "folder": "INBOX"}))
    assert page.status_code == 200
    assert rows() == (0, 0)
    names = re.findall(r'class="upload-name">([^<]+)<', page.content.decode())
    expected = ["report.pdf", "photo.png"] if start == "forward" else ["Quarterly report.eml"]
    assert names == expected


def test_opening_a_draft_or_a_cancelled_message_writes_no_row(alice, client_of, original):
    client = client_of(alice)
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
    alice, client_of, original, mail_server, send_worker, settings
):
    settings.SEND_UNDO_SECONDS = 0
    bob = Mailbox(mail_server)
    client = client_of(alice)
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
    alice, client_of, original, settings
):
    """A page elsewhere can make the browser GET the editor as often as it likes."""
    settings.UPLOAD_MAX_SIZE = 8000  # room for 4 times 8,000 bytes waiting
    client = client_of(alice)
    for _attempt in range(20):
        for start in ("forward", "forward_attached"):
            assert client.get(compose_url(alice, **{start: 1})).status_code == 200
    assert rows() == (0, 0)
    answer = client.post(
        reverse("webmail:upload", args=[alice.pk]),
        {"file": SimpleUploadedFile("mine.bin", b"m" * 7000)},
    )
    assert answer.status_code == 200


def test_kept_parts_count_against_the_room_for_uploads(alice, client_of, original, settings):
    settings.UPLOAD_MAX_SIZE = 8000
    client = client_of(alice)
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
    alice, client_of, original, mail_server
):
    client = client_of(alice)
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
    alice, client_of, original, mail_server, django_user_model
):
    client = client_of(alice)
    token = form_fields(client, compose_url(alice, forward=1, folder="INBOX"))["carried"][0]
    other_person = django_user_model.objects.create_user(username=f"eve-{uuid.uuid4().hex[:6]}")
    eve = make_account(other_person, mail_server, Mailbox(mail_server))
    eves = client_of(eve)
    fields = form_fields(eves, compose_url(eve))
    fields.update(to="bob@example.test", carried=[token], action="send")
    response = eves.post(compose_url(eve), fields)
    assert response.status_code == 400
    assert not OutgoingMessage.objects.exists()
