"""Where mail comes from: ``for_account(account)`` gives the MailStore of a mail account."""

from __future__ import annotations

from typing import TYPE_CHECKING

from webmail.mailstore.base import MailStore
from webmail.mailstore.imap import ImapStore
from webmail.mailstore.local import LocalStore

if TYPE_CHECKING:
    from accounts.models import MailAccount


def for_account(account: MailAccount) -> MailStore:
    """The store that reads ``account``: live IMAP, or the mail fetched from POP3."""
    if account.protocol == "imap":  # accounts.models.Protocol.IMAP
        return ImapStore(account)
    return LocalStore(account)
