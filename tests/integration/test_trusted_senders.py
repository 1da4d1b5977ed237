"""A trusted sender's remote content, only where the office's server vouches for the From:
messages with genuine and forged Authentication-Results delivered to the real Dovecot, read
through the message and conversation pages; and the page that lists and revokes the trust."""

from __future__ import annotations

import re
from email.message import EmailMessage

import pytest
from django.urls import reverse

from webmail.models import TrustedSender

pytestmark = pytest.mark.integration

OWN = "mx.office.test"
REMOTE_CSP = "img-src http://testserver data: http: https:;"


@pytest.fixture(autouse=True)
def own_server(settings):
    settings.AUTHSERV_ID = OWN


@pytest.fixture
def trusting(person):
    return TrustedSender.objects.create(user=person, email="zoe@example.org")


def deliver(mail_server, mail_user, *results: str, sender: str = "Zoé <zoe@example.org>") -> None:
    """A message with remote content and these Authentication-Results fields, top first."""
    msg = EmailMessage()
    for value in results:
        msg["Authentication-Results"] = value
    msg["From"] = sender
    msg["To"] = mail_user.address
    msg["Subject"] = "Newsletter"
    msg["Message-ID"] = "<news@example.org>"
    msg.set_content("Text")
    msg.add_alternative('<p>Hi <img src="https://tracker.example/p.gif"></p>', subtype="html")
    mail_server.deliver(mail_user.address, msg.as_bytes())


def remote_shown(client, account, uid: int = 1, name: str = "webmail:message") -> bool:
    page = client.get(reverse(name, args=[account.pk, uid]) + "?folder=INBOX")
    assert page.status_code == 200
    body_url = re.search(r'<iframe[^>]*src="([^"]+)"', page.content.decode()).group(1)
    body = client.get(body_url.replace("&amp;", "&"))
    shown = REMOTE_CSP in body["Content-Security-Policy"]
    assert shown == ("tracker.example" in body.content.decode())
    return shown


GENUINE = (
    f"{OWN}; spf=pass smtp.mailfrom=example.org; dkim=pass header.d=example.org;"
    " dmarc=pass header.from=example.org"
)


def test_a_trusted_sender_vouched_for_by_the_own_server_shows_remote_content(
    signed_in_client, mail_account, mail_server, mail_user, trusting
):
    deliver(mail_server, mail_user, GENUINE)
    assert remote_shown(signed_in_client, mail_account)
    assert remote_shown(signed_in_client, mail_account, name="webmail:conversation")


@pytest.mark.parametrize(
    "results",
    [
        pytest.param([], id="no field"),
        pytest.param(
            ["mx.attacker.example; dmarc=pass header.from=example.org"], id="other server"
        ),
        pytest.param([f"{OWN}; dmarc=pass header.from=attacker.example"], id="other domain"),
        pytest.param([f"{OWN}; dmarc=fail header.from=example.org"], id="dmarc failed"),
        pytest.param(
            [f"{OWN}; dmarc=fail header.from=example.org", GENUINE], id="forged below the own one"
        ),
        pytest.param([f"{OWN}; spf=pass smtp.mailfrom=example.org"], id="spf alone"),
    ],
)
def test_a_forged_from_gets_no_trust(
    signed_in_client, mail_account, mail_server, mail_user, trusting, results
):
    deliver(mail_server, mail_user, *results)
    assert not remote_shown(signed_in_client, mail_account)
    assert not remote_shown(signed_in_client, mail_account, name="webmail:conversation")


def test_without_the_setting_no_sender_trust_applies(
    signed_in_client, mail_account, mail_server, mail_user, trusting, settings
):
    settings.AUTHSERV_ID = ""
    deliver(mail_server, mail_user, GENUINE)
    assert not remote_shown(signed_in_client, mail_account)


def allow_form(client, account) -> tuple[str, str]:
    page = client.get(reverse("webmail:message", args=[account.pk, 1]) + "?folder=INBOX")
    page = page.content.decode()
    action = re.search(r'action="([^"]+/remote-content/[^"]*)"', page).group(1)
    return action.replace("&amp;", "&"), page


def test_always_showing_is_offered_and_kept_only_for_a_vouched_sender(
    signed_in_client, mail_account, mail_server, mail_user, person
):
    deliver(mail_server, mail_user, GENUINE)
    action, page = allow_form(signed_in_client, mail_account)
    assert "Always show remote content from zoe@example.org" in page

    assert signed_in_client.post(action, {"scope": "sender"}).status_code == 302
    assert list(person.trusted_senders.values_list("email", flat=True)) == ["zoe@example.org"]
    assert remote_shown(signed_in_client, mail_account)


def test_a_forged_sender_cannot_be_trusted_even_by_a_crafted_post(
    signed_in_client, mail_account, mail_server, mail_user, person
):
    deliver(mail_server, mail_user, "mx.attacker.example; dmarc=pass header.from=example.org")
    action, page = allow_form(signed_in_client, mail_account)
    assert "Always show remote content" not in page
    assert "Show for this message" in page

    response = signed_in_client.post(action, {"scope": "sender"})

    # This message's content is shown, as asked; no sender is trusted.
    assert response.status_code == 302
    assert "grant=" in response["Location"]
    assert not person.trusted_senders.exists()


# The trusted senders page ---------------------------------------------------------


def test_the_page_lists_the_persons_trusted_senders_only(
    signed_in_client, person, django_user_model
):
    TrustedSender.objects.create(user=person, email="zoe@example.org")
    TrustedSender.objects.create(user=person, email="news@example.net")
    other = django_user_model.objects.create_user(username="other-person")
    TrustedSender.objects.create(user=other, email="secret@elsewhere.example")

    page = signed_in_client.get(reverse("webmail:trusted-senders")).content.decode()

    assert page.index("news@example.net") < page.index("zoe@example.org")
    assert "secret@elsewhere.example" not in page
    assert page.count(">Revoke<") == 2


def test_revoking_takes_the_trust_back(
    signed_in_client, person, mail_account, mail_server, mail_user
):
    trusted = TrustedSender.objects.create(user=person, email="zoe@example.org")
    deliver(mail_server, mail_user, GENUINE)
    assert remote_shown(signed_in_client, mail_account)
    url = reverse("webmail:trusted-sender-revoke", args=[trusted.pk])

    assert signed_in_client.get(url).status_code == 405  # no GET writes
    response = signed_in_client.post(url, follow=True)

    assert response.status_code == 200
    assert "Remote content from zoe@example.org is blocked again." in response.content.decode()
    assert not person.trusted_senders.exists()
    assert not remote_shown(signed_in_client, mail_account)


def test_nobody_revokes_another_persons_trust(signed_in_client, django_user_model):
    other = django_user_model.objects.create_user(username="someone-else")
    theirs = TrustedSender.objects.create(user=other, email="zoe@example.org")
    url = reverse("webmail:trusted-sender-revoke", args=[theirs.pk])
    assert signed_in_client.post(url).status_code == 404
    assert TrustedSender.objects.filter(pk=theirs.pk).exists()


def test_the_page_is_linked_from_the_mail_screens(signed_in_client, mail_account):
    page = signed_in_client.get(reverse("webmail:mailbox", args=[mail_account.pk]))
    assert f'href="{reverse("webmail:trusted-senders")}"' in page.content.decode()
