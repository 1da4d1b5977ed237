"""Looking into test mailboxes directly over IMAP, to check what the app did."""

from __future__ import annotations

import contextlib
import imaplib
from collections.abc import Iterator

from imapclient import IMAPClient

from accounts.models import MailAccount
from tests.integration.celery_worker import wait_for
from webmail.transport.endpoint import STARTTLS, Endpoint
from webmail.transport.imap import close_quietly, open_imap

#: Bound on waiting for a message to be sent or to arrive.
DELIVERY_TIMEOUT = 40.0


@contextlib.contextmanager
def imap_commands() -> Iterator[list[str]]:
    """Every IMAP command line any connection of this process sends meanwhile, without
    its tag or quotes, as "UID MOVE 1:* Archive": what proves which commands Facteur used,
    since a server runs commands (SORT, THREAD, MOVE) it does not announce."""
    sent: list[str] = []
    original = imaplib.IMAP4.send

    def record(self, data: bytes) -> None:
        # A literal's bytes or its closing CRLF go out alone: only tagged lines are commands.
        line = bytes(data).decode("utf-8", "replace").partition(" ")[2].strip()
        if line:
            sent.append(line.replace('"', ""))
        original(self, data)

    imaplib.IMAP4.send = record
    try:
        yield sent
    finally:
        imaplib.IMAP4.send = original


@contextlib.contextmanager
def imap(mail_server, mailbox) -> Iterator[IMAPClient]:
    """A signed-in client of a test mailbox or of a MailAccount."""
    if isinstance(mailbox, MailAccount):
        endpoint = mailbox.incoming_endpoint()
    else:
        endpoint = Endpoint(
            host=mail_server.host,
            port=mail_server.imap_port,
            security=STARTTLS,
            login=mailbox.address,
            password=mailbox.password,
            ca_file=str(mail_server.ca_file),
        )
    client = open_imap(endpoint)
    try:
        yield client
    finally:
        close_quietly(client)


def with_message_id(client: IMAPClient, folder: str, message_id: str) -> dict:
    """UID -> (flags, raw) of the messages of ``folder`` with this Message-ID."""
    client.select_folder(folder, readonly=True)
    uids = client.search(["HEADER", "Message-ID", message_id])
    fetched = client.fetch(uids, ["FLAGS", "BODY.PEEK[]"]) if uids else {}
    return {uid: (data[b"FLAGS"], data[b"BODY[]"]) for uid, data in fetched.items()}


def arrived(mail_server, mailbox, message_id: str, folder: str = "INBOX") -> dict:
    """The copies of a message in ``folder``, once at least one has arrived."""
    with imap(mail_server, mailbox) as client:
        return wait_for(
            lambda: with_message_id(client, folder, message_id),
            timeout=DELIVERY_TIMEOUT,
            interval=0.2,
            what=f"{message_id} in {folder}",
        )


def count(mail_server, mailbox, message_id: str, folder: str = "INBOX") -> int:
    with imap(mail_server, mailbox) as client:
        return len(with_message_id(client, folder, message_id))


def folder_uids(mail_server, mailbox, folder: str) -> list[int]:
    with imap(mail_server, mailbox) as client:
        client.select_folder(folder, readonly=True)
        return client.search(["ALL"])


def flags_of(mail_server, mailbox, folder: str, uid: int) -> set[bytes]:
    with imap(mail_server, mailbox) as client:
        client.select_folder(folder, readonly=True)
        return set(client.get_flags([uid]).get(uid, ()))
