"""The reading screens against the real Dovecot: lists, messages, parts, scoping, headers."""

from __future__ import annotations

import base64
import json
import re
import ssl
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from types import SimpleNamespace

import pytest
from django.core import signing
from django.test import Client
from django.urls import reverse
from imapclient import IMAPClient

from accounts.models import MailAccount
from tests.support.accounts import make_account
from webmail.models import TrustedSender

pytestmark = pytest.mark.integration

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cf00000301010018dd8db40000000049454e44ae426082"
)


def message(
    subject: str,
    *,
    sender: str = "Zoé Martin <zoe@example.org>",
    to: str = "me@example.test",
    text: str = "Hello",
    html: str | None = None,
    when: datetime | None = None,
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(when or datetime.now(UTC))
    msg["Message-ID"] = make_msgid(domain="example.org")
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    return msg


def imap(mail_server, mail_user) -> IMAPClient:
    client = IMAPClient(
        mail_server.host,
        port=mail_server.imaps_port,
        ssl_context=ssl.create_default_context(cafile=str(mail_server.ca_file)),
    )
    client.login(mail_user.address, mail_user.password)
    return client


def mailbox_url(account: MailAccount, **query) -> str:
    url = reverse("webmail:mailbox", args=[account.pk])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def message_url(account: MailAccount, uid: int, name: str = "webmail:message") -> str:
    return reverse(name, args=[account.pk, uid]) + "?folder=INBOX"


def allow_remote_url(page: str) -> str:
    """The action of the message page's "show remote content" form."""
    action = re.search(r'<form method="post" action="([^"]+/remote-content/[^"]*)"', page)
    return action.group(1).replace("&amp;", "&")


def test_home_goes_to_the_first_account(signed_in_client, mail_account):
    response = signed_in_client.get(reverse("webmail:home"))
    assert response.status_code == 302
    assert response["Location"] == mailbox_url(mail_account)


def test_home_without_an_account_says_what_to_do(signed_in_client):
    response = signed_in_client.get(reverse("webmail:home"))
    assert response.status_code == 200
    assert b"No mail account yet" in response.content


def test_mailbox_lists_newest_first_with_decoded_headers(
    signed_in_client, mail_account, mail_server, mail_user
):
    start = datetime.now(UTC) - timedelta(days=3)
    for number in range(3):
        mail_server.deliver(
            mail_user.address,
            message(
                f"Réunion n°{number} — 日本語", when=start + timedelta(hours=number)
            ).as_bytes(),
        )
    response = signed_in_client.get(mailbox_url(mail_account))
    assert response.status_code == 200
    page = response.content.decode()
    positions = [page.index(f"Réunion n°{number} — 日本語") for number in (2, 1, 0)]
    assert positions == sorted(positions)
    assert "Zoé Martin" in page
    assert page.count('class="message-row unread"') == 3


def test_mailbox_pages_by_fifty(signed_in_client, mail_account, mail_server, mail_user):
    for number in range(55):
        mail_server.deliver(mail_user.address, message(f"Numbered {number:02d}").as_bytes())
    first = signed_in_client.get(mailbox_url(mail_account)).content.decode()
    second = signed_in_client.get(mailbox_url(mail_account, page=2)).content.decode()
    assert first.count('class="message-row') == 50
    assert "Numbered 54" in first and "Numbered 05" in first and "Numbered 04" not in first
    assert second.count('class="message-row') == 5
    assert "Numbered 00" in second


def test_htmx_asks_for_the_list_alone(signed_in_client, mail_account, mail_server, mail_user):
    mail_server.deliver(mail_user.address, message("Partial").as_bytes())
    response = signed_in_client.get(
        mailbox_url(mail_account), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="message-list"
    )
    assert b"Partial" in response.content
    assert b"<html" not in response.content


def test_opening_a_message_shows_it_and_marks_it_read(
    signed_in_client, mail_account, mail_server, mail_user
):
    mail_server.deliver(
        mail_user.address,
        message("Plain one", text="See https://example.org/a?b=1&c=<2> now").as_bytes(),
    )
    response = signed_in_client.get(message_url(mail_account, 1))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Plain one" in page
    assert 'href="https://example.org/a?b=1&amp;c="' in page or "https://example.org/a?b=1" in page
    assert "<2>" not in page
    with imap(mail_server, mail_user) as client:
        client.select_folder("INBOX", readonly=True)
        assert b"\\Seen" in client.get_flags([1])[1]


def vouched(msg: EmailMessage) -> EmailMessage:
    """``msg`` as the office's server passes it on: DMARC passed for its From domain."""
    msg["Authentication-Results"] = "mx.office.test; dmarc=pass header.from=example.org"
    return msg


def test_html_body_is_sandboxed_and_remote_content_waits_for_consent(
    signed_in_client, mail_account, mail_server, mail_user, person, settings
):
    settings.AUTHSERV_ID = "mx.office.test"
    html = (
        '<p onclick="alert(1)">Hi <img src="https://tracker.example/p.gif"></p>'
        '<script>alert(2)</script><a href="https://example.org/">link</a>'
    )
    mail_server.deliver(mail_user.address, vouched(message("Newsletter", html=html)).as_bytes())
    page = signed_in_client.get(message_url(mail_account, 1)).content.decode()
    iframe = re.search(r"<iframe[^>]*>", page).group(0)
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in iframe
    assert "Remote images" in page
    body_url = re.search(r'src="([^"]+)"', iframe).group(1).replace("&amp;", "&")

    body = signed_in_client.get(body_url)
    assert body.status_code == 200
    csp = body["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "sandbox" in csp
    assert "img-src http://testserver data:;" in csp
    content = body.content.decode()
    assert "tracker.example" not in content
    assert "alert" not in content and "onclick" not in content
    assert 'target="_blank"' in content and "noopener" in content

    allow = signed_in_client.post(allow_remote_url(page), {"scope": "sender"})
    assert allow.status_code == 302
    assert TrustedSender.is_trusted(person, "zoe@example.org")
    page = signed_in_client.get(message_url(mail_account, 1)).content.decode()
    body_url = re.search(r'<iframe[^>]*src="([^"]+)"', page).group(1).replace("&amp;", "&")
    body = signed_in_client.get(body_url)
    assert "img-src http://testserver data: http: https:;" in body["Content-Security-Policy"]
    assert "tracker.example" in body.content.decode()


def test_attachments_download_safely_with_identical_bytes(
    signed_in_client, mail_account, mail_server, mail_user
):
    msg = message("With files")
    payload = b"<html><script>alert(1)</script></html>"
    msg.add_attachment(payload, maintype="text", subtype="html", filename="../../evil.html")
    msg.add_attachment(PNG, maintype="image", subtype="png", filename="pixel.png")
    mail_server.deliver(mail_user.address, msg.as_bytes())
    page = signed_in_client.get(message_url(mail_account, 1)).content.decode()
    links = [u.replace("&amp;", "&") for u in re.findall(r'href="(/a/\d+/m/1/part/[^"]+)"', page)]
    assert len(links) == 2
    html_part = signed_in_client.get(links[0])
    assert html_part.content == payload
    assert html_part["Content-Type"] == "application/octet-stream"
    assert html_part["Content-Disposition"].startswith("attachment;")
    assert "/" not in html_part["Content-Disposition"].split("filename", 1)[1]
    assert html_part["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in html_part["Content-Security-Policy"]
    image = signed_in_client.get(links[1] + "&inline=1")
    assert image.content == PNG
    assert image["Content-Type"] == "image/png"


def test_inline_images_are_served_by_signed_links_only(
    signed_in_client, mail_account, mail_server, mail_user
):
    msg = message("Inline", html='<p>Logo: <img src="cid:logo@x"></p>')
    msg.get_payload()[1].add_related(PNG, maintype="image", subtype="png", cid="<logo@x>")
    mail_server.deliver(mail_user.address, msg.as_bytes())
    page = signed_in_client.get(message_url(mail_account, 1)).content.decode()
    body_url = re.search(r'<iframe[^>]*src="([^"]+)"', page).group(1).replace("&amp;", "&")
    body = signed_in_client.get(body_url).content.decode()
    image_url = re.search(r'<img[^>]*src="([^"]+)"', body).group(1).replace("&amp;", "&")
    assert image_url.startswith("/inline/")
    # The sandboxed frame sends no cookies: the link alone must work.
    anonymous = Client()
    response = anonymous.get(image_url)
    assert response.status_code == 200 and response.content == PNG
    assert anonymous.get(image_url[:-3] + "abc/").status_code == 404


def test_a_bodys_inline_images_come_from_one_parse(
    signed_in_client, mail_account, mail_server, mail_user, monkeypatch
):
    from webmail import reading
    from webmail.localmail.demo import solid_png

    colours = [(200, 0, 0), (0, 200, 0), (0, 0, 200)]
    html = "".join(f'<img src="cid:image{n}@x">' for n in range(len(colours)))
    msg = message("Three images", html=html)
    for n, rgb in enumerate(colours):
        msg.get_payload()[1].add_related(
            solid_png(8, 8, rgb), maintype="image", subtype="png", cid=f"<image{n}@x>"
        )
    mail_server.deliver(mail_user.address, msg.as_bytes())
    extractions = []
    real = reading.extract_parts
    monkeypatch.setattr(
        reading, "extract_parts", lambda *a, **k: extractions.append(a) or real(*a, **k)
    )
    page = signed_in_client.get(message_url(mail_account, 1)).content.decode()
    body_url = re.search(r'<iframe[^>]*src="([^"]+)"', page).group(1).replace("&amp;", "&")
    body = signed_in_client.get(body_url).content.decode()
    urls = [u.replace("&amp;", "&") for u in re.findall(r'<img[^>]*src="([^"]+)"', body)]
    images = [Client().get(url).content for url in urls]
    assert images == [solid_png(8, 8, rgb) for rgb in colours]
    assert len(extractions) == 1


def test_source_is_served_as_inert_text(signed_in_client, mail_account, mail_server, mail_user):
    raw = message("Source", html="<script>alert(1)</script>").as_bytes()
    mail_server.deliver(mail_user.address, raw)
    response = signed_in_client.get(message_url(mail_account, 1, "webmail:message-source"))
    assert response["Content-Type"].startswith("text/plain")
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert b"Subject: Source" in response.content


def test_nobody_reaches_another_persons_mail_by_changing_a_number(
    client, mail_account, mail_server, mail_user, django_user_model
):
    mail_server.deliver(mail_user.address, message("Private").as_bytes())
    intruder = django_user_model.objects.create_user(username="intruder", password="x-Pass-123!")
    client.force_login(intruder)
    for url in (
        mailbox_url(mail_account),
        message_url(mail_account, 1),
        message_url(mail_account, 1, "webmail:message-source"),
        reverse("webmail:attachment", args=[mail_account.pk, 1, "2"]) + "?folder=INBOX&v=1",
        reverse("webmail:message-body", args=[mail_account.pk, 1]) + "?folder=INBOX&v=1",
    ):
        response = client.get(url)
        assert response.status_code == 404, url
        assert b"Private" not in response.content


def test_signed_out_people_are_sent_to_sign_in(client, mail_account):
    response = client.get(mailbox_url(mail_account))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_pages_carry_the_security_headers(signed_in_client, mail_account):
    response = signed_in_client.get(mailbox_url(mail_account))
    assert "default-src 'self'" in response["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


def test_state_changes_need_the_csrf_token(mail_account, person):
    client = Client(enforce_csrf_checks=True)
    client.force_login(person)
    response = client.post(
        reverse("webmail:allow-remote-content", args=[mail_account.pk, 1]) + "?folder=INBOX",
        {"scope": "sender", "sender": "a@b.c"},
    )
    assert response.status_code == 403


def test_an_unreachable_server_gives_a_clear_page(signed_in_client, person, mail_server, mail_user):
    account = make_account(person, mail_server, mail_user)
    account.incoming_port = 1  # nothing listens there
    account.save()
    response = signed_in_client.get(mailbox_url(account))
    assert response.status_code == 503
    assert b"not answering" in response.content
    assert b"Traceback" not in response.content


def test_a_missing_message_or_folder_is_a_404(signed_in_client, mail_account):
    assert signed_in_client.get(message_url(mail_account, 999)).status_code == 404
    assert signed_in_client.get(mailbox_url(mail_account, folder="Nope")).status_code == 404


def test_trusting_a_sender_takes_the_address_from_the_message(
    signed_in_client, mail_account, mail_server, mail_user, person, settings
):
    settings.AUTHSERV_ID = "mx.office.test"
    html = '<p>Hi <img src="https://tracker.example/p.gif"></p>'
    mail_server.deliver(mail_user.address, vouched(message("Remote", html=html)).as_bytes())
    page = signed_in_client.get(message_url(mail_account, 1)).content.decode()
    # A forged form cannot choose whom the person trusts.
    response = signed_in_client.post(
        allow_remote_url(page), {"scope": "sender", "sender": "attacker@evil.example"}
    )
    assert response.status_code == 302
    assert list(TrustedSender.objects.filter(user=person).values_list("email", flat=True)) == [
        "zoe@example.org"
    ]


def test_trusting_the_sender_of_a_changed_message_is_refused(
    signed_in_client, mail_account, mail_server, mail_user, person
):
    mail_server.deliver(mail_user.address, message("Remote", html="<p>x</p>").as_bytes())
    url = reverse("webmail:allow-remote-content", args=[mail_account.pk, 1])
    for query in ("?folder=INBOX", "?folder=INBOX&v=1"):
        assert signed_in_client.post(url + query, {"scope": "sender"}).status_code == 404
    assert not TrustedSender.objects.filter(user=person).exists()


def inline_image_url(client: Client, account: MailAccount) -> str:
    page = client.get(message_url(account, 1)).content.decode()
    body_url = re.search(r'<iframe[^>]*src="([^"]+)"', page).group(1).replace("&amp;", "&")
    body = client.get(body_url).content.decode()
    return re.search(r'<img[^>]*src="([^"]+)"', body).group(1).replace("&amp;", "&")


@pytest.fixture
def inline_message(mail_server, mail_user) -> None:
    msg = message("Inline", html='<p>Logo: <img src="cid:logo@x"></p>')
    msg.get_payload()[1].add_related(PNG, maintype="image", subtype="png", cid="<logo@x>")
    mail_server.deliver(mail_user.address, msg.as_bytes())


def test_an_inline_image_link_dies_when_the_account_changes_owner(
    signed_in_client, mail_account, inline_message, django_user_model
):
    image_url = inline_image_url(signed_in_client, mail_account)
    assert Client().get(image_url).status_code == 200
    mail_account.user = django_user_model.objects.create_user(username="heir", password="x")
    mail_account.save()
    assert Client().get(image_url).status_code == 404


def test_an_inline_image_link_dies_when_the_account_changes_login(
    signed_in_client, mail_account, inline_message
):
    image_url = inline_image_url(signed_in_client, mail_account)
    mail_account.login = "someone.else@example.test"
    mail_account.save()
    assert Client().get(image_url).status_code == 404


def test_an_inline_image_link_dies_with_its_owners_access(
    signed_in_client, mail_account, inline_message, person
):
    image_url = inline_image_url(signed_in_client, mail_account)
    person.is_active = False
    person.save()
    assert Client().get(image_url).status_code == 404


def test_a_password_the_keys_cannot_open_gives_a_clear_page(signed_in_client, mail_account):
    mail_account.password_encrypted = "not-a-fernet-token"
    mail_account.save()
    response = signed_in_client.get(mailbox_url(mail_account))
    assert response.status_code == 503
    assert b"cannot be read" in response.content
    assert b"Traceback" not in response.content


def test_hostile_attachment_names_cannot_forge_headers(
    signed_in_client, mail_account, mail_server, mail_user
):
    raw = (
        b"From: zoe@example.org\r\nTo: me@example.test\r\nSubject: Names\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\nHi\r\n"
        b"--b\r\nContent-Type: image/png\r\n"
        b"Content-Disposition: attachment;"
        b" filename*=utf-8''r%C3%A9sum%C3%A9%22%0D%0ASet-Cookie%3A%20x%3D1%0D%0A%22.png\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode(PNG) + b"\r\n"
        b'--b\r\nContent-Type: text/html; name="a\\"b.html"\r\n'
        b'Content-Disposition: attachment; filename="a\\"b.html"\r\n\r\n<script>x</script>\r\n'
        b"--b--\r\n"
    )
    mail_server.deliver(mail_user.address, raw)
    page = signed_in_client.get(message_url(mail_account, 1)).content.decode()
    links = [u.replace("&amp;", "&") for u in re.findall(r'href="(/a/\d+/m/1/part/[^"]+)"', page)]
    assert len(links) == 2
    for link in links:
        for inline in ("", "&inline=1"):
            response = signed_in_client.get(link + inline)
            assert response.status_code == 200
            assert "Set-Cookie" not in response
            disposition = response["Content-Disposition"]
            assert "\r" not in disposition and "\n" not in disposition
            assert response["X-Content-Type-Options"] == "nosniff"
            assert response["Cache-Control"].startswith("private")
    html = signed_in_client.get(links[1] + "&inline=1")
    assert html["Content-Type"] == "application/octet-stream"
    assert html["Content-Disposition"].startswith("attachment;")
    # A quote is no part of a name a file system takes: it becomes "_".
    assert html["Content-Disposition"].endswith('filename="a_b.html"')


def test_frames_are_allowed_only_where_meant(
    signed_in_client, mail_account, mail_server, mail_user
):
    mail_server.deliver(mail_user.address, message("Framed", html="<p>Hi</p>").as_bytes())
    page = signed_in_client.get(message_url(mail_account, 1))
    assert page["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page["Content-Security-Policy"]
    body_url = re.search(r'<iframe[^>]*src="([^"]+)"', page.content.decode()).group(1)
    body = signed_in_client.get(body_url.replace("&amp;", "&"))
    assert body["X-Frame-Options"] == "SAMEORIGIN"
    assert "frame-ancestors 'self'" in body["Content-Security-Policy"]
    assert b"</body>" in body.content and body.content.count(b"</body>") == 1
    source = signed_in_client.get(message_url(mail_account, 1, "webmail:message-source"))
    assert source["X-Frame-Options"] == "DENY"
    assert source["X-Content-Type-Options"] == "nosniff"


def test_screens_read_the_accounts_once(
    signed_in_client, mail_account, mail_server, mail_user, person, django_assert_num_queries
):
    # A second account, never opened: only the switcher lists it.
    other = SimpleNamespace(address="second@example.test", password="unused")
    make_account(person, mail_server, other, position=1)
    mail_server.deliver(mail_user.address, message("Counted").as_bytes())
    signed_in_client.get(mailbox_url(mail_account))  # opens the pooled connection
    # The session, the person, their accounts (the current one and the switcher's
    # list at once), the account's new-mail state and the problems of POP3
    # accounts delivering into it (their problems and what they kept aside, at once).
    # A message's sender is looked up among the trusted only when it is verified.
    with django_assert_num_queries(5):
        page = signed_in_client.get(mailbox_url(mail_account))
    assert page.content.decode().count('class="account-switcher"') == 1
    with django_assert_num_queries(5):
        assert signed_in_client.get(message_url(mail_account, 1)).status_code == 200


def test_an_unexpected_error_shows_the_plain_error_page(mail_account, person, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("internal detail")

    monkeypatch.setattr("webmail.views.messages.reading.fetch_raw", broken)
    client = Client(raise_request_exception=False)
    client.force_login(person)
    response = client.get(message_url(mail_account, 1))
    assert response.status_code == 500
    assert b"Something went wrong" in response.content
    assert b"internal detail" not in response.content and b"Traceback" not in response.content
    assert response["X-Frame-Options"] == "DENY"


def test_numbers_no_message_or_account_can_have_are_a_404(signed_in_client, mail_account):
    for uid in (0, 2**32, 10**30):
        assert signed_in_client.get(message_url(mail_account, uid)).status_code == 404, uid
    huge = reverse("webmail:mailbox", args=[10**30])
    assert signed_in_client.get(huge).status_code == 404


def test_an_inline_image_link_outlives_its_body_only_briefly(
    signed_in_client, mail_account, inline_message, monkeypatch
):
    three_hours_ago = signing.b62_encode(int(time.time()) - 3 * 3600)
    monkeypatch.setattr(signing.TimestampSigner, "timestamp", lambda self: three_hours_ago)
    image_url = inline_image_url(signed_in_client, mail_account)
    monkeypatch.undo()
    assert Client().get(image_url).status_code == 404


def test_the_language_changes_only_by_a_form_with_its_token(person):
    client = Client(enforce_csrf_checks=True)
    client.force_login(person)
    url = reverse("set_language")
    assert client.post(url, {"language": "fr", "next": "/"}).status_code == 403
    client.get(url, {"language": "fr", "next": "/"})
    assert "django_language" not in client.cookies


def test_mail_pages_are_not_kept_in_the_browsers_cache(
    signed_in_client, mail_account, mail_server, mail_user
):
    mail_server.deliver(mail_user.address, message("Cached").as_bytes())
    for url in (mailbox_url(mail_account), message_url(mail_account, 1)):
        cache_control = signed_in_client.get(url)["Cache-Control"]
        assert "no-store" in cache_control and "private" in cache_control, url


def test_htmx_keeps_no_copy_of_the_pages_in_the_browser(signed_in_client, mail_account):
    # htmx would otherwise snapshot message lists into sessionStorage for the back
    # button, where they outlive signing out.
    page = signed_in_client.get(mailbox_url(mail_account)).content.decode()
    config = re.search(r"<meta name=\"htmx-config\" content='([^']+)'>", page).group(1)
    assert json.loads(config)["historyCacheSize"] == 0


def test_remote_content_needs_the_persons_own_consent(
    signed_in_client, mail_account, mail_server, mail_user
):
    html = '<p>Hi <img src="https://tracker.example/p.gif"></p>'
    mail_server.deliver(mail_user.address, message("Tracked", html=html).as_bytes())
    # A link from elsewhere cannot let the remote content through by itself.
    forged = signed_in_client.get(message_url(mail_account, 1) + "&remote=1").content.decode()
    assert "Remote images" in forged
    body_url = re.search(r'<iframe[^>]*src="([^"]+)"', forged).group(1).replace("&amp;", "&")
    for url in (body_url, body_url + "&remote=1", body_url + "&remote=1&grant=0123abcd"):
        body = signed_in_client.get(url)
        assert "https:" not in body["Content-Security-Policy"], url
        assert "tracker.example" not in body.content.decode()

    allowed = signed_in_client.post(allow_remote_url(forged), {"scope": "message"}, follow=True)
    page = allowed.content.decode()
    assert "Remote images" not in page
    body_url = re.search(r'<iframe[^>]*src="([^"]+)"', page).group(1).replace("&amp;", "&")
    body = signed_in_client.get(body_url)
    assert "img-src http://testserver data: http: https:;" in body["Content-Security-Policy"]
    assert "tracker.example" in body.content.decode()
