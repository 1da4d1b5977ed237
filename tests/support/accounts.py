"""Mail accounts that point at the suite's real mail server."""

from __future__ import annotations

from accounts.models import MailAccount, Security


def make_account(
    user, mail_server, mailbox, *, security: str = Security.STARTTLS, position: int = 0
) -> MailAccount:
    """A saved account of ``user`` reading ``mailbox`` (anything with .address and .password)."""
    account = MailAccount(
        user=user,
        email=mailbox.address,
        login=mailbox.address,
        incoming_host=mail_server.host,
        incoming_port=mail_server.imaps_port if security == Security.TLS else mail_server.imap_port,
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
