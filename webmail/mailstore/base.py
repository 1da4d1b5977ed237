"""The MailStore protocol and the value objects that views receive.

Views speak only to a MailStore; ImapStore (live IMAP through the pool) and
LocalStore (POP3-fetched mail kept by Facteur) implement it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from webmail.mime.headers import Address

#: RFC 3501: a UID is a non-zero 32-bit number; anything else names no message.
MAX_UID = 2**32 - 1

#: Special-use attributes (RFC 6154) in the order a person expects them.
SPECIAL_USE_ORDER = ("\\Inbox", "\\Drafts", "\\Sent", "\\Archive", "\\Junk", "\\Trash")


class MailStoreError(Exception):
    """The mail server could not do what was asked; the message says why, for a person."""


class FolderNotFound(MailStoreError):
    pass


class MessageNotFound(MailStoreError):
    pass


@dataclass(frozen=True)
class Folder:
    name: str  # the server's name, decoded from modified UTF-7
    delimiter: str
    special_use: str | None = None  # one of SPECIAL_USE_ORDER, or None
    selectable: bool = True
    unread: int | None = None
    total: int | None = None

    @property
    def path(self) -> list[str]:
        return self.name.split(self.delimiter) if self.delimiter else [self.name]

    @property
    def leaf(self) -> str:
        return self.path[-1]

    @property
    def depth(self) -> int:
        return len(self.path) - 1


@dataclass(frozen=True)
class FolderStatus:
    """What a folder holds now, as a check for new mail learns it (RFC 3501 STATUS)."""

    uidvalidity: int
    uidnext: int
    unread: int
    total: int


@dataclass(frozen=True)
class MessageSummary:
    uid: int
    subject: str
    sender: Address | None
    recipients: tuple[Address, ...]
    date: datetime | None
    size: int
    seen: bool
    flagged: bool
    answered: bool
    has_attachments: bool


@dataclass(frozen=True)
class Page:
    folder: Folder
    items: list[MessageSummary]
    number: int  # 1-based
    per_page: int
    total: int  # messages in the folder

    @property
    def num_pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.num_pages

    @property
    def first_index(self) -> int:
        return 0 if not self.total else (self.number - 1) * self.per_page + 1

    @property
    def last_index(self) -> int:
        return min(self.total, self.number * self.per_page)


@dataclass(frozen=True)
class RawMessage:
    """One message's bytes as stored, with what identifies that exact version."""

    folder: str
    uid: int
    uidvalidity: int
    raw: bytes
    flags: frozenset[str] = field(default_factory=frozenset)


class MailStore(Protocol):
    """Where one mail account's messages come from."""

    def folders(self, *, fresh: bool = False) -> list[Folder]:
        """Every folder, special-use first, with unread counts where known.

        ``fresh`` asks for every count now rather than from the cache.
        """
        ...

    def folder_status(self, folder: str) -> FolderStatus:
        """The folder's UIDVALIDITY, next UID and counts, asked now."""
        ...

    def page(
        self,
        folder: str,
        number: int,
        *,
        per_page: int,
        sort: str = "arrival",
        reverse: bool = True,
    ) -> Page:
        """One page of a folder's messages; never reads the whole folder."""
        ...

    def message(self, folder: str, uid: int) -> RawMessage:
        """The whole message, fetched without setting \\Seen."""
        ...

    def mark_seen(self, folder: str, uid: int) -> None: ...

    def special_folder(self, use: str) -> str | None:
        """The folder with this special use ("\\Sent", "\\Drafts", ...), or None."""
        ...

    def find_message_id(self, folder: str, message_id: str) -> bool:
        """Whether ``folder`` holds a message with this Message-ID."""
        ...

    def append(
        self, folder: str, raw: bytes, *, seen: bool = False, draft: bool = False
    ) -> int | None:
        """Store ``raw`` in ``folder``; its new UID when the server tells it, else None."""
        ...

    def delete(self, folder: str, uids: Sequence[int]) -> None:
        """Remove these messages, and no other, from ``folder``; missing ones are no error."""
        ...

    def move(self, folder: str, uids: Sequence[int], target: str) -> None:
        """Move these messages, and no other, from ``folder`` to ``target`` at once.

        Missing ones are no error; a ``target`` that does not exist is FolderNotFound.
        """
        ...

    def add_flags(self, folder: str, uids: Sequence[int], flags: Sequence[str]) -> None:
        """Set flags or keywords ("\\Answered", "$Forwarded") on these messages."""
        ...
