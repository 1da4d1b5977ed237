"""Where mail comes from: ``for_account(account)`` gives the MailStore of a mail account."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.translation import gettext as _

from webmail.mailstore.base import MailStore, MailStoreError
from webmail.mailstore.imap import ImapStore

if TYPE_CHECKING:
    from accounts.models import MailAccount


def for_account(account: MailAccount) -> MailStore:
    """The store that reads ``account``: live IMAP, or the mail fetched from POP3."""
    if account.protocol == "imap":  # accounts.models.Protocol.IMAP
        return ImapStore(account)
    raise MailStoreError(_("Accounts read over POP3 cannot be opened yet."))
