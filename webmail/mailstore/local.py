"""LocalStore: the mail Facteur keeps itself for a POP3 account, behind the MailStore protocol.

Messages are LocalMessage rows whose headers were indexed when stored, so lists
and counts are database queries that never read a message's bytes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from django.db import transaction
from django.db.models import Count, F, Q
from django.db.models.functions import Coalesce, Lower
from django.utils.translation import gettext as _

from webmail.mailstore.base import (
    Folder,
    FolderNotFound,
    FolderStatus,
    MessageNotFound,
    MessageSummary,
    Page,
    RawMessage,
)
from webmail.mime.headers import Address, parse_addresses
from webmail.models import LocalMailbox, LocalMessage

if TYPE_CHECKING:
    from accounts.models import MailAccount

INBOX = "INBOX"
DELIMITER = "/"

#: The folders every local store has, by special use, in base.SPECIAL_USE_ORDER.
SPECIAL_FOLDERS = {
    "\\Inbox": INBOX,
    "\\Drafts": "Drafts",
    "\\Sent": "Sent",
    "\\Archive": "Archive",
    "\\Junk": "Junk",
    "\\Trash": "Trash",
}
_SPECIAL_BY_NAME = {name: use for use, name in SPECIAL_FOLDERS.items()}

#: Local UIDs come from one counter per account that only grows, so a folder and
#: UID never name two different messages: the validity of UIDs never has to change.
UIDVALIDITY = 1

#: Orders a page can be in, with the columns of each (ties in arrival order).
SORT_FIELDS = {
    "arrival": (F("uid"),),
    "date": (Coalesce("date", "received"), F("uid")),
    "from": (Lower("sender"), F("uid")),
    "subject": (Lower("subject"), F("uid")),
    "size": (F("size"), F("uid")),
}

#: What a message list reads of each row: never the raw bytes.
_SUMMARY_FIELDS = (
    "uid",
    "subject",
    "sender",
    "sender_email",
    "recipients",
    "date",
    "received",
    "size",
    "seen",
    "flagged",
    "answered",
    "has_attachments",
)

#: The flags kept as columns; any other flag or keyword is not kept.
_FLAG_FIELDS = {"\\seen": "seen", "\\flagged": "flagged", "\\answered": "answered"}


def allocate_uid(account_id: int) -> int:
    """The next local UID of the account, within the caller's transaction.

    The write comes first, so that SQLite takes its write lock before anything
    is read.
    """
    LocalMailbox.objects.filter(pk=account_id).update(next_uid=F("next_uid") + 1)
    return LocalMailbox.objects.values_list("next_uid", flat=True).get(pk=account_id) - 1


class LocalStore:
    """The MailStore of one account whose mail Facteur keeps (fetched over POP3)."""

    def __init__(self, account: MailAccount) -> None:
        self.account = account

    # MailStore ----------------------------------------------------------------

    def folders(self, *, fresh: bool = False) -> list[Folder]:
        # Counted from the rows each time: ``fresh`` or not, they are current.
        counts = {
            row["folder"]: (row["unread"], row["total"])
            for row in self._messages()
            .order_by()
            .values("folder")
            .annotate(total=Count("pk"), unread=Count("pk", filter=Q(seen=False)))
        }
        names = list(SPECIAL_FOLDERS.values()) + sorted(
            (name for name in counts if name not in _SPECIAL_BY_NAME), key=_path_key
        )
        return [self._folder(name, *counts.get(name, (0, 0))) for name in names]

    def folder_status(self, folder: str) -> FolderStatus:
        counts = (
            self._messages()
            .filter(folder=folder)
            .aggregate(total=Count("pk"), unread=Count("pk", filter=Q(seen=False)))
        )
        next_uid = (
            LocalMailbox.objects.filter(pk=self.account.pk)
            .values_list("next_uid", flat=True)
            .first()
        )
        return FolderStatus(
            uidvalidity=UIDVALIDITY,
            uidnext=next_uid or 1,
            unread=counts["unread"],
            total=counts["total"],
        )

    def page(
        self,
        folder: str,
        number: int,
        *,
        per_page: int,
        sort: str = "arrival",
        reverse: bool = True,
    ) -> Page:
        if sort not in SORT_FIELDS:
            raise ValueError(f"Unknown sort order {sort!r}")
        rows = self._messages().filter(folder=folder)
        counts = rows.aggregate(total=Count("pk"), unread=Count("pk", filter=Q(seen=False)))
        total, unread = counts["total"], counts["unread"]
        if not total and folder not in _SPECIAL_BY_NAME:
            raise _folder_not_found(folder)
        current = min(max(1, number), max(1, math.ceil(total / per_page)))
        order = [field.desc() if reverse else field.asc() for field in SORT_FIELDS[sort]]
        start = (current - 1) * per_page
        items = rows.only(*_SUMMARY_FIELDS).order_by(*order)[start : start + per_page]
        return Page(
            folder=self._folder(folder, unread, total),
            items=[_summary(row) for row in items],
            number=current,
            per_page=per_page,
            total=total,
        )

    def message(self, folder: str, uid: int) -> RawMessage:
        row = self._messages().filter(folder=folder, uid=uid).first()
        if row is None:
            if not self._exists(folder):
                raise _folder_not_found(folder)
            raise MessageNotFound(
                _("This message no longer exists: it may have been moved or deleted.")
            )
        return RawMessage(
            folder=folder,
            uid=uid,
            uidvalidity=UIDVALIDITY,
            raw=bytes(row.raw),
            flags=_flags(row),
        )

    def mark_seen(self, folder: str, uid: int) -> None:
        self._messages().filter(folder=folder, uid=uid).update(seen=True)

    def special_folder(self, use: str) -> str | None:
        return SPECIAL_FOLDERS.get(use)

    def find_message_id(self, folder: str, message_id: str) -> bool:
        return self._messages().filter(folder=folder, message_id=message_id).exists()

    def append(
        self, folder: str, raw: bytes, *, seen: bool = False, draft: bool = False
    ) -> int | None:
        """Store ``raw`` as a new message of ``folder``; its UID.

        ``draft`` is not kept: the Drafts folder is what makes a local draft.
        """
        if not self._exists(folder):
            raise _folder_not_found(folder)
        message = LocalMessage.from_bytes(self.account, raw, uid=0, folder=folder)
        message.seen = seen
        # Made before the transaction: a read in it would come before its first write.
        LocalMailbox.objects.get_or_create(account_id=self.account.pk)
        with transaction.atomic():
            message.uid = allocate_uid(self.account.pk)
            message.save()
        return message.uid

    def delete(self, folder: str, uids: Sequence[int]) -> None:
        """Remove these messages; their UIDLs stay, so a fetch never brings them back."""
        if uids:
            self._messages().filter(folder=folder, uid__in=list(uids)).delete()

    def move(self, folder: str, uids: Sequence[int], target: str) -> None:
        """Move these messages to ``target`` in one UPDATE.

        A message keeps its UID: UIDs come from one counter for the whole account,
        so no other message of ``target`` has it, and (folder, UID) still names
        one message.
        """
        if not self._exists(target):
            raise _folder_not_found(target)
        if uids and target != folder:
            self._messages().filter(folder=folder, uid__in=list(uids)).update(folder=target)

    def add_flags(self, folder: str, uids: Sequence[int], flags: Sequence[str]) -> None:
        fields = {_FLAG_FIELDS[f.lower()]: True for f in flags if f.lower() in _FLAG_FIELDS}
        if uids and fields:
            self._messages().filter(folder=folder, uid__in=list(uids)).update(**fields)

    # Helpers ------------------------------------------------------------------

    def _messages(self):
        return LocalMessage.objects.filter(account=self.account)

    def _exists(self, folder: str) -> bool:
        return folder in _SPECIAL_BY_NAME or self._messages().filter(folder=folder).exists()

    def _folder(self, name: str, unread: int, total: int) -> Folder:
        return Folder(
            name=name,
            delimiter=DELIMITER,
            special_use=_SPECIAL_BY_NAME.get(name),
            unread=unread,
            total=total,
        )


def _path_key(name: str) -> list[str]:
    return [part.casefold() for part in name.split(DELIMITER)]


def _folder_not_found(folder: str) -> FolderNotFound:
    return FolderNotFound(_("The folder %(name)s does not exist.") % {"name": folder})


def _summary(row: LocalMessage) -> MessageSummary:
    # ``sender`` holds the name a person sees, or the address when there is no name.
    name = row.sender if row.sender != row.sender_email else ""
    sender = Address(name=name, email=row.sender_email) if name or row.sender_email else None
    return MessageSummary(
        uid=row.uid,
        subject=row.subject,
        sender=sender,
        recipients=parse_addresses(row.recipients),
        date=row.date or row.received,
        size=row.size,
        seen=row.seen,
        flagged=row.flagged,
        answered=row.answered,
        has_attachments=row.has_attachments,
    )


def _flags(row: LocalMessage) -> frozenset[str]:
    kept = {"\\Seen": row.seen, "\\Flagged": row.flagged, "\\Answered": row.answered}
    return frozenset(flag for flag, on in kept.items() if on)
