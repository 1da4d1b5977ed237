"""A Subject holding U+2028, U+2029 or another character that ends a line, from mail or typed:
listed, read, answered, forwarded, kept as a draft and sent, each without a server error."""

from __future__ import annotations

import base64
import email
import uuid
from email import policy

import pytest
from django.urls import reverse

from tests.integration.test_compose_views import Mailbox
from tests.support.accounts import make_account
from tests.support.compose import compose_url, form_fields
from tests.support.mailboxes import arrived, folder_uids
from webmail.models import OutgoingMessage

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

HOSTILE_SUBJECT = "Budget\u2028Bcc: victim@example.org\u2029vote\x85now\x0bplease"
FLAT_SUBJECT = "Budget Bcc: victim@example.org vote now please"


@pytest.fixture
def alice(django_user_model, mail_server):
    person = django_user_model.objects.create_user(username=f"alice-{uuid.uuid4().hex[:6]}")
    return make_account(person, mail_server, Mailbox(mail_server))


@pytest.fixture
def client_of(client, alice):
    client.force_login(alice.user)
    return client


def deliver(mail_server, account, subject: str, *, encoded: bool) -> None:
    if encoded:
        header = "=?utf-8?b?" + base64.b64encode(subject.encode()).decode() + "?="
    else:
        header = subject
    raw = (
        f"From: Bruno <bruno@example.org>\r\nTo: {account.email}\r\nSubject: {header}\r\n"
        "Message-ID: <separators@example.org>\r\nDate: Tue, 04 Mar 2025 09:00:00 +0000\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe text.\r\n"
    )
    mail_server.deliver(account.email, raw.encode("utf-8"))


@pytest.mark.parametrize("encoded", [True, False], ids=["encoded-word", "raw utf-8"])
def test_a_received_subject_is_listed_read_and_answered_on_one_line(
    alice, client_of, mail_server, encoded
):
    deliver(mail_server, alice, HOSTILE_SUBJECT, encoded=encoded)
    pages = [
        reverse("webmail:mailbox", args=[alice.pk]),
        reverse("webmail:message", args=[alice.pk, 1]) + "?folder=INBOX",
        reverse("webmail:conversation", args=[alice.pk, 1]) + "?folder=INBOX",
        reverse("webmail:search", args=[alice.pk]) + "?q=Budget&folder=INBOX",
    ]
    for url in pages:
        response = client_of.get(url)
        assert response.status_code == 200, url
        page = response.content.decode()
        assert "\u2028" not in page and "\u2029" not in page
        assert "victim@example.org" in page

    for start, prefix in [("reply", "Re"), ("reply_all", "Re"), ("forward", "Fwd")]:
        fields = form_fields(client_of, compose_url(alice, **{start: 1, "folder": "INBOX"}))
        assert fields["subject"] == f"{prefix}: {FLAT_SUBJECT}"
    fields = form_fields(client_of, compose_url(alice, forward_attached=1, folder="INBOX"))
    assert fields["subject"] == f"Fwd: {FLAT_SUBJECT}"


def test_a_typed_subject_with_line_separators_is_kept_as_a_draft_on_one_line(
    alice, client_of, mail_server
):
    fields = form_fields(client_of, compose_url(alice))
    fields.update(to="bob@example.org", subject=HOSTILE_SUBJECT, action="save")

    response = client_of.post(compose_url(alice), fields, HTTP_ACCEPT="application/json")

    assert response.status_code == 200, response.content
    (uid,) = folder_uids(mail_server, alice, "Drafts")
    reopened = form_fields(client_of, compose_url(alice, draft=uid))
    assert reopened["subject"] == FLAT_SUBJECT


def test_a_typed_subject_with_line_separators_is_sent_on_one_line(
    alice, client_of, mail_server, send_worker, settings
):
    settings.SEND_UNDO_SECONDS = 0
    bob = Mailbox(mail_server)
    fields = form_fields(client_of, compose_url(alice))
    fields.update(to=bob.address, subject=HOSTILE_SUBJECT, action="send")

    response = client_of.post(compose_url(alice), fields)

    assert response.status_code == 302
    row = OutgoingMessage.objects.get()
    ((_flags, raw),) = arrived(mail_server, bob, row.message_id).values()
    received = email.message_from_bytes(raw, policy=policy.default)
    assert received["Subject"] == FLAT_SUBJECT
    assert received["Bcc"] is None
