"""The mail screens for a POP3 account, read from the mail Facteur fetched into its own store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import pytest
from django.urls import reverse

from accounts.models import MailAccount, Protocol
from tests.support.accounts import make_account
from tests.support.compose import compose_url, form_fields
from webmail import outbox, pop3fetch
from webmail.mailstore.local import LocalStore
from webmail.mime import Address, build_message
from webmail.models import OutgoingMessage

pytestmark = pytest.mark.integration

START = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)


def message(number: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Zoé Martin <zoe{number}@example.org>"
    msg["To"] = "me@example.test"
    msg["Subject"] = f"Réunion n°{number}"
    msg["Date"] = format_datetime(START + timedelta(hours=number))
    msg["Message-ID"] = make_msgid(domain="example.org")
    msg.set_content(f"Body of message {number}.")
    return msg.as_bytes()


@pytest.fixture
def pop3_account(person, mail_server, mail_user) -> MailAccount:
    return make_account(person, mail_server, mail_user, protocol=Protocol.POP3)


@pytest.fixture
def fetched(pop3_account, mail_server, mail_user) -> MailAccount:
    """The account with three messages delivered to it and fetched."""
    for number in range(3):
        mail_server.deliver(mail_user.address, message(number))
    assert pop3fetch.fetch(pop3_account).new == 3
    return pop3_account


def mailbox_url(account, **query) -> str:
    url = reverse("webmail:mailbox", args=[account.pk])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def test_the_mailbox_lists_fetched_mail_newest_first_a_page_at_a_time(
    signed_in_client, fetched, settings
):
    settings.MESSAGES_PER_PAGE = 2
    first = signed_in_client.get(mailbox_url(fetched))
    assert first.status_code == 200
    page = first.content.decode()
    assert page.index("Réunion n°2") < page.index("Réunion n°1")
    assert "Réunion n°0" not in page
    assert page.count('class="message-row unread"') == 2
    assert "Zoé Martin" in page
    second = signed_in_client.get(mailbox_url(fetched, page=2)).content.decode()
    assert second.count('class="message-row') == 1
    assert "Réunion n°0" in second
    for name in ("Drafts", "Sent", "Archive", "Trash"):
        assert f"folder={name}" in page


def test_opening_a_message_shows_it_and_marks_it_read(signed_in_client, fetched):
    newest = fetched.local_messages.order_by("-uid").first()
    response = signed_in_client.get(reverse("webmail:message", args=[fetched.pk, newest.uid]))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Réunion n°2" in page and "Body of message 2." in page
    newest.refresh_from_db()
    assert newest.seen
    assert fetched.local_messages.filter(seen=False).count() == 2


def test_a_message_that_is_not_there_is_a_404(signed_in_client, fetched):
    response = signed_in_client.get(reverse("webmail:message", args=[fetched.pk, 999]))
    assert response.status_code == 404


def test_drafts_are_kept_in_the_local_drafts_folder_and_replaced(signed_in_client, pop3_account):
    fields = form_fields(signed_in_client, compose_url(pop3_account))
    fields.update(to="bob@", subject="Brouillon d'été", action="save")
    answers = []
    for text in ("first", "second"):
        fields["html"] = f"<div>{text} version</div>"
        response = signed_in_client.post(
            compose_url(pop3_account), fields, HTTP_ACCEPT="application/json"
        )
        assert response.status_code == 200, response.content
        answers.append(response.json()["draft_uid"])
        fields["draft_uid"] = answers[-1]
    kept = list(pop3_account.local_messages.values_list("folder", "uid"))
    assert kept == [("Drafts", answers[-1])]
    reopened = form_fields(signed_in_client, compose_url(pop3_account, draft=answers[-1]))
    assert reopened["subject"] == "Brouillon d'été"
    assert "second version" in reopened["html"]
    listed = signed_in_client.get(mailbox_url(pop3_account, folder="Drafts")).content.decode()
    assert "Brouillon d&#x27;été" in listed or "Brouillon d'été" in listed


def test_sent_mail_is_kept_in_the_local_sent_folder_marked_read(pop3_account):
    built, recipients = build_message(
        sender=Address("Léa", pop3_account.email),
        to="bob@example.test",
        subject="Plans",
        text="See you on Tuesday.",
        message_id_domain="example.test",
    )
    row = outbox.queue(pop3_account, built, recipients)
    submitted = []

    def submit(endpoint, envelope_from, recipients, raw, *, on_handover):
        on_handover()
        submitted.append(raw)
        return {}

    assert outbox.deliver(row.pk, submit=submit).outcome is outbox.Outcome.SENT
    outbox.after_sent(row.pk)
    outbox.after_sent(row.pk)  # done again, as a retried task does: still one copy
    (copy,) = pop3_account.local_messages.all()
    assert (copy.folder, copy.seen, copy.subject) == ("Sent", True, "Plans")
    assert bytes(copy.raw) == submitted[0]
    assert copy.message_id == OutgoingMessage.objects.get(pk=row.pk).message_id
    assert LocalStore(pop3_account).page("Sent", 1, per_page=10).total == 1
