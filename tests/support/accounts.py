"""Mail accounts that point at the suite's real mail server."""

from __future__ import annotations

import secrets
import uuid

from accounts.models import MailAccount, Protocol, Security


class Mailbox:
    """A new mailbox of its own on the suite's mail server."""

    def __init__(self, mail_server) -> None:
        self.address = f"user-{uuid.uuid4().hex[:12]}@{mail_server.domain}"
        self.password = secrets.token_urlsafe(12)
        mail_server.add_user(self.address, self.password)


def make_account(
    user,
    mail_server,
    mailbox,
    *,
    security: str = Security.STARTTLS,
    position: int = 0,
    protocol: str = Protocol.IMAP,
) -> MailAccount:
    """A saved account of ``user`` reading ``mailbox`` (anything with .address and .password)."""
    tls = security == Security.TLS
    if protocol == Protocol.POP3:
        port = mail_server.pop3s_port if tls else mail_server.pop3_port
    else:
        port = mail_server.imaps_port if tls else mail_server.imap_port
    account = MailAccount(
        user=user,
        email=mailbox.address,
        login=mailbox.address,
        protocol=protocol,
        incoming_host=mail_server.host,
        incoming_port=port,
        incoming_security=security,
        smtp_host=mail_server.host,
        smtp_port=mail_server.submission_port,
        smtp_security=Security.STARTTLS,
        ca_file=str(mail_server.ca_file),
        position=position,
    )
    account.set_password(mailbox.password)
    account.save()
    return account


def unreachable_account(user, email: str = "alice@example.test", **fields) -> MailAccount:
    """A saved account of ``user`` whose servers nobody answers: for tests that need none."""
    account = MailAccount(
        user=user,
        email=email,
        login=email,
        incoming_host="127.0.0.1",
        incoming_port=9,  # discard: nothing listens there
        smtp_host="127.0.0.1",
        smtp_port=9,
        **fields,
    )
    account.set_password("mail-password")
    account.save()
    return account
