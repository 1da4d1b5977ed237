"""Every answer that carries mail is kept by neither the browser nor a shared cache."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from tests.integration.test_reading_views import PNG, message, message_url

pytestmark = pytest.mark.integration


def assert_private(response, url: str) -> None:
    assert response.status_code == 200, url
    directives = {part.strip() for part in response["Cache-Control"].split(",")}
    assert {"private", "no-store"} <= directives, url
    assert not any(d.startswith("max-age=") and d != "max-age=0" for d in directives), url


def test_every_url_that_carries_mail_is_private_and_not_stored(
    signed_in_client, mail_account, mail_server, mail_user
):
    msg = message("Private", html='<p>Logo <img src="cid:logo@x"></p>')
    msg.get_payload()[1].add_related(PNG, maintype="image", subtype="png", cid="<logo@x>")
    msg.add_attachment(b"minutes", maintype="text", subtype="plain", filename="minutes.txt")
    mail_server.deliver(mail_user.address, msg.as_bytes())
    account = mail_account.pk

    page = signed_in_client.get(message_url(mail_account, 1))
    assert_private(page, "message page")
    html = page.content.decode()
    body_url = re.search(r'<iframe[^>]*src="([^"]+)"', html).group(1).replace("&amp;", "&")
    body = signed_in_client.get(body_url)
    assert_private(body, body_url)
    inline_url = re.search(r'<img[^>]*src="([^"]+)"', body.content.decode()).group(1)
    inline_url = inline_url.replace("&amp;", "&")
    # The sandboxed frame sends no cookie: the inline image must be private on its own.
    assert_private(Client().get(inline_url), inline_url)
    part_links = [
        u.replace("&amp;", "&") for u in re.findall(r'href="(/a/\d+/m/1/part/[^"]+)"', html)
    ]
    assert part_links
    urls = [
        *part_links,
        *(link + "&inline=1" for link in part_links),
        message_url(mail_account, 1, "webmail:message-source"),
        message_url(mail_account, 1, "webmail:message-source") + "&download=1",
        reverse("webmail:mailbox", args=[account]),
        reverse("webmail:conversation", args=[account, 1]) + "?folder=INBOX",
        reverse("webmail:search", args=[account]) + "?q=Private",
        reverse("webmail:unified"),
        reverse("webmail:sync-status", args=[account]),
        reverse("webmail:outbox", args=[account]),
        reverse("webmail:contacts") + "?q=zo",
    ]
    for url in urls:
        assert_private(signed_in_client.get(url), url)
    # The list partials htmx asks for.
    for url in (reverse("webmail:mailbox", args=[account]), reverse("webmail:unified")):
        assert_private(signed_in_client.get(url, headers={"HX-Request": "true"}), url + " (htmx)")
