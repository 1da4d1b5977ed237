"""The limit `manage.py imap_budget` counts against is the one Dovecot enforces.

Connections held open here stand for the other processes and nodes of a
deployment, all reaching the server from one address (127.0.0.1).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.urls import reverse

from tests.integration.celery_worker import wait_for
from webmail.imap_budget import DOVECOT_DEFAULT_LIMIT
from webmail.mailstore.pool import pool
from webmail.transport.imap import close_quietly, open_imap

pytestmark = [pytest.mark.integration]


@pytest.fixture
def held(mail_account) -> Iterator[list]:
    pool.discard(mail_account)
    connections: list = []
    yield connections
    for client in connections:
        close_quietly(client)
    pool.discard(mail_account)


def test_past_the_limit_a_page_fails_clearly_and_within_it_opens(
    mail_account, signed_in_client, held
):
    url = reverse("webmail:mailbox", args=[mail_account.pk])
    for _ in range(DOVECOT_DEFAULT_LIMIT):
        held.append(open_imap(mail_account.incoming_endpoint()))
    response = signed_in_client.get(url)
    assert response.status_code == 503  # the 11th is refused: a clear page, not a 500
    assert b"Try again" in response.content

    close_quietly(held.pop())
    # Dovecot counts the freed connection out once its process has ended.
    wait_for(lambda: signed_in_client.get(url).status_code == 200, what="the page within the limit")
