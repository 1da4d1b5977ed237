"""Drafts: a message being written is kept in the account's Drafts folder, one copy at a time.

Each save stores the new version first and only then deletes the one it
replaces, so a save that fails half-way leaves a draft, never none.
"""

from __future__ import annotations

import logging
from email import policy
from email.parser import BytesHeaderParser
from typing import TYPE_CHECKING

from django.utils.translation import gettext as _

from webmail import mailstore
from webmail.mailstore.base import FolderNotFound, MailStore, MailStoreError
from webmail.mailstore.imap import ImapStore

if TYPE_CHECKING:
    from accounts.models import MailAccount

logger = logging.getLogger(__name__)

#: The special use (RFC 6154) of the folder drafts are kept in.
DRAFTS = "\\Drafts"


def _store(account: MailAccount) -> MailStore:
    return mailstore.for_account(account)


def _folder(store: MailStore) -> str:
    folder = store.special_folder(DRAFTS)
    if folder is None:
        raise FolderNotFound(_("This account has no Drafts folder."))
    return folder


def drafts_folder(account: MailAccount) -> str | None:
    """The name of the account's Drafts folder, or None if it has none."""
    return _store(account).special_folder(DRAFTS)


def save_draft(account: MailAccount, raw: bytes, *, replace_uid: int | None) -> int | None:
    """Store ``raw`` as a draft, marked read, in place of draft ``replace_uid``; its new UID.

    The UID is None only when the server can tell it neither in its reply
    (UIDPLUS) nor by a search of the draft's Message-ID.
    """
    store = _store(account)
    folder = _folder(store)
    uid = store.append(folder, raw, seen=True, draft=True)
    if uid is None and isinstance(store, ImapStore):
        uid = _uid_by_message_id(store, folder, raw)
    if replace_uid is not None and replace_uid != uid:
        try:
            store.delete(folder, [replace_uid])
        except MailStoreError as exc:
            # The new version is stored: that is what matters, so the save succeeded.
            logger.warning("Draft %s of account %s not replaced (%s)", replace_uid, account.pk, exc)
    return uid


def _uid_by_message_id(store: ImapStore, folder: str, raw: bytes) -> int | None:
    """The UID of the draft just stored, on a server without UIDPLUS.

    Each version of a draft carries the same Message-ID or a new one; the newest
    message with it has the highest UID.
    """
    message_id = BytesHeaderParser(policy=policy.default).parsebytes(raw)["Message-ID"]
    if not message_id:
        return None
    uids = store.message_id_uids(folder, str(message_id).strip())
    return uids[-1] if uids else None


def load_draft(account: MailAccount, uid: int) -> bytes:
    """The bytes of draft ``uid``; MessageNotFound when it is gone."""
    store = _store(account)
    return store.message(_folder(store), uid).raw


def delete_draft(account: MailAccount, uid: int) -> None:
    """Delete draft ``uid``; one already gone, or no Drafts folder, is no error."""
    store = _store(account)
    folder = store.special_folder(DRAFTS)
    if folder is not None:
        store.delete(folder, [uid])
