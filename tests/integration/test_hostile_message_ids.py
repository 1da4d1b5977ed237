"""Message-IDs written to break an IMAP SEARCH, against the real Dovecot: each goes as a
string, never as syntax, so conversations, drafts and POP3 delivery look them up and answer."""

from __future__ import annotations

import pytest
from django.urls import reverse

from webmail.mailstore.imap import ImapStore

pytestmark = pytest.mark.integration

#: Identifiers a message may carry that IMAP reads as syntax when sent bare.
HOSTILE_IDS = [
    '<quo"te@example.org>',
    "<back\\slash@example.org>",
    "<tail\\@example.org\\>",
    "<close)only@example.org>",
    "<{5}@example.org>",
    "<*%]@example.org>",
    "<" + "x" * 230 + "@example.org>",
]
#: Threading reads a comment out of an identifier ("<a(b)c@x>" is "<ac@x>"): looked up as is.
STORE_ONLY_IDS = ["<par(en)s@example.org>", "<" + "z" * 900 + "@example.org>"]


def message(number: int, message_id: str, *, replying_to: str | None = None) -> bytes:
    lines = [
        "From: Alice Martin <alice@example.org>",
        "To: me@example.test",
        f"Subject: Hostile {number}",
        "Date: Tue, 04 Mar 2025 09:00:00 +0000",
        f"Message-ID: {message_id}",
    ]
    if replying_to:
        lines += [f"In-Reply-To: {replying_to}", f"References: {replying_to}"]
    body = f"Text of message {number}."
    return ("\r\n".join(lines) + "\r\n\r\n" + body + "\r\n").encode("utf-8")


@pytest.mark.parametrize("message_id", HOSTILE_IDS)
def test_a_conversation_joins_the_own_reply_to_a_hostile_message_id(
    signed_in_client, mail_account, imap, message_id
):
    imap.append("INBOX", message(1, message_id))
    reply = message(2, "<reply@office.test>", replying_to=message_id)
    imap.append("Sent", reply, flags=[b"\\Seen"])
    url = reverse("webmail:conversation", args=[mail_account.pk, 1]) + "?folder=INBOX"

    response = signed_in_client.get(url)

    assert response.status_code == 200
    page = response.content.decode()
    assert "Text of message 1." in page
    assert "Text of message 2." in page  # found in Sent by the hostile identifier
    assert 'data-folder="Sent"' in page


def test_the_store_finds_each_hostile_message_id_and_only_it(mail_account, imap):
    hostile = HOSTILE_IDS + STORE_ONLY_IDS
    for number, message_id in enumerate(hostile, start=1):
        imap.append("Drafts", message(number, message_id))
    imap.append("Drafts", message(99, "<plain@example.org>"))
    store = ImapStore(mail_account)

    for number, message_id in enumerate(hostile, start=1):
        assert store.message_id_uids("Drafts", message_id) == [number]
    assert store.related_uids("Drafts", [], hostile) == list(range(1, len(hostile) + 1))


def test_an_eight_bit_message_id_is_looked_for_in_utf8(mail_account, imap):
    imap.append("Drafts", message(1, "<é-ü@exämple.org>"))
    store = ImapStore(mail_account)

    assert store.message_id_uids("Drafts", "<é-ü@exämple.org>") == [1]


@pytest.mark.parametrize(
    "message_id",
    [
        "<cr\r@example.org>",
        "<lf\n@example.org>",
        "<crlf\r\nA1 LOGOUT@x>",
        "<nul\x00@x>",
        "<" + "y" * 2000 + "@example.org>",
    ],
)
def test_an_identifier_no_header_can_hold_finds_nothing_and_breaks_nothing(
    mail_account, imap, message_id
):
    imap.append("Drafts", message(1, "<plain@example.org>"))
    store = ImapStore(mail_account)

    assert store.message_id_uids("Drafts", message_id) == []
    assert store.related_uids("Drafts", [message_id], [message_id, "<plain@example.org>"]) == [1]
    # The connection is still fit for the next command.
    assert store.message_id_uids("Drafts", "<plain@example.org>") == [1]
