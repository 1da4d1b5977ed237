"""Every message of the public corpus opens through the real message view."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from tests.support.corpus import corpus_messages, require_corpus

pytestmark = pytest.mark.integration


def test_every_corpus_message_opens_without_a_server_error(
    signed_in_client, mail_account, mail_server, mail_user
):
    require_corpus("mime")
    messages = corpus_messages()
    for _, raw in messages:
        mail_server.deliver(mail_user.address, raw)

    failures = []
    for uid, (name, _) in enumerate(messages, start=1):
        url = reverse("webmail:message", args=[mail_account.pk, uid]) + "?folder=INBOX"
        response = signed_in_client.get(url)
        if response.status_code != 200:
            failures.append((name, response.status_code))
            continue
        frame = re.search(r'<iframe[^>]*src="([^"]+)"', response.content.decode())
        if frame:
            body = signed_in_client.get(frame.group(1).replace("&amp;", "&"))
            if body.status_code != 200:
                failures.append((f"{name} (body)", body.status_code))
    assert not failures, failures
    listing = signed_in_client.get(reverse("webmail:mailbox", args=[mail_account.pk]))
    assert listing.status_code == 200
