"""The administrator sees the outbox and the accounts in trouble, and retries a failed send."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages import constants
from django.urls import reverse
from django.utils import timezone

from accounts.models import MailAccount
from tests.integration.celery_worker import wait_for
from tests.support.accounts import make_account, unreachable_account
from tests.support.mailboxes import DELIVERY_TIMEOUT, arrived
from webmail import sync
from webmail.mime import Address, build_message
from webmail.mime.build import as_bytes
from webmail.models import OutgoingMessage, SyncState

pytestmark = [pytest.mark.integration]

User = get_user_model()
Status = OutgoingMessage.Status
OUTBOX_URL = reverse("admin:webmail_outgoingmessage_changelist")
ACCOUNTS_URL = reverse("admin:accounts_mailaccount_changelist")


def failed_message(account: MailAccount, to: str, **fields) -> OutgoingMessage:
    """A message as a permanent refusal leaves it: failed, with the server's reply."""
    message, recipients = build_message(
        sender=Address("", account.email),
        to=to,
        subject="Quarterly figures",
        text="Secret body of the message",
        message_id_domain=account.email.rpartition("@")[2],
    )
    values = {
        "status": Status.FAILED,
        "attempts": 6,
        "last_error": "554 5.7.1 Relay access denied",
        **fields,
    }
    return OutgoingMessage.objects.create(
        user=account.user,
        account=account,
        message_id=message["Message-ID"],
        subject=message["Subject"],
        raw=as_bytes(message),
        envelope_from=account.email,
        envelope_to=recipients,
        send_after=timezone.now(),
        **values,
    )


@pytest.mark.django_db
def test_the_outbox_shows_state_attempts_and_last_error_but_never_the_message(
    admin_client, mail_server, mail_user
):
    owner = User.objects.create_user("carol")
    account = make_account(owner, mail_server, mail_user)
    row = failed_message(account, "someone@example.org")
    page = admin_client.get(OUTBOX_URL).content.decode()
    assert "554 5.7.1 Relay access denied" in page
    assert account.email in page
    assert "Secret body" not in page
    detail = admin_client.get(reverse("admin:webmail_outgoingmessage_change", args=[row.pk]))
    assert detail.status_code == 200
    assert "Relay access denied" in detail.content.decode()
    assert "Secret body" not in detail.content.decode()
    filtered = admin_client.get(OUTBOX_URL, {"status__exact": "sent"}).content.decode()
    assert "Relay access denied" not in filtered
    assert admin_client.get(reverse("admin:webmail_outgoingmessage_add")).status_code == 403


@pytest.mark.django_db(transaction=True)
def test_retry_now_sends_a_failed_message_through_a_real_worker(
    admin_client, mail_server, mail_user, send_worker
):
    owner = User.objects.create_user("dave")
    account = make_account(owner, mail_server, mail_user)
    # To the account's own address: the Inbox it reads receives it.
    failed = failed_message(account, mail_user.address)
    sent = failed_message(account, mail_user.address, status=Status.SENT, attempts=1)

    response = admin_client.post(
        OUTBOX_URL,
        {"action": "retry_now", "_selected_action": [failed.pk, sent.pk]},
        follow=True,
    )
    notices = [(m.level, m.message) for m in response.context["messages"]]
    assert (constants.INFO, "1 message queued to be sent now.") in notices
    assert any("left as they are" in text for __, text in notices)

    done = wait_for(
        lambda: OutgoingMessage.objects.filter(pk=failed.pk, status=Status.SENT).first(),
        timeout=DELIVERY_TIMEOUT,
        what="the retried message to be sent",
    )
    assert done.attempts == 1  # a fresh round of attempts
    assert len(arrived(mail_server, mail_user, failed.message_id)) == 1
    sent.refresh_from_db()
    assert sent.status == Status.SENT


@pytest.mark.django_db
def test_accounts_whose_checks_fail_are_listed_with_the_reason(
    admin_client, mail_server, mail_user
):
    owner = User.objects.create_user("erin")
    working = make_account(owner, mail_server, mail_user)
    broken = unreachable_account(owner, email="erin@example.test")
    sync.check(working)
    sync.check(broken)

    failing = admin_client.get(ACCOUNTS_URL, {"mail_problem": "failing"}).content.decode()
    assert broken.email in failing
    assert working.email not in failing
    problem = SyncState.objects.get(account=broken).problem
    assert problem
    assert problem in failing

    fine = admin_client.get(ACCOUNTS_URL, {"mail_problem": "fine"}).content.decode()
    assert working.email in fine
    assert broken.email not in fine
