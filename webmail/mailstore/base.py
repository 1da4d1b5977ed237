"""The MailStore protocol and the value objects that views receive.

Views speak only to a MailStore; ImapStore (live IMAP through the pool) and
LocalStore (POP3-fetched mail kept by Facteur) implement it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from webmail.mime.headers import Address

if TYPE_CHECKING:
    from webmail.search import SearchQuery

#: RFC 3501: a UID is a non-zero 32-bit number; anything else names no message.
MAX_UID = 2**32 - 1

#: Every message of a folder, where a method takes UIDs: RFC 3501's set "1:*".
ALL = "1:*"

#: The messages a method acts on: their UIDs, or an RFC 3501 set of UIDs such as
#: ALL or "4:9,12", which changes a whole folder in one command without listing it.
Uids = Sequence[int] | str

_UID_RANGE_RE = re.compile(r"([1-9][0-9]*)(?::([1-9][0-9]*|\*))?")

#: Special-use attributes (RFC 6154) in the order a person expects them.
SPECIAL_USE_ORDER = ("\\Inbox", "\\Drafts", "\\Sent", "\\Archive", "\\Junk", "\\Trash")


class MailStoreError(Exception):
    """The mail server could not do what was asked; the message says why, for a person."""


class ServerRefused(MailStoreError):
    """The server answered NO or BAD: the connection is sound, this request was refused."""


class FolderNotFound(MailStoreError):
    pass


class FolderProtected(MailStoreError):
    """INBOX and the special-use folders (and what holds them) are not renamed or deleted."""


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
    subscribed: bool = True  # False only where the server keeps subscriptions (LSUB)

    @property
    def path(self) -> list[str]:
        return self.name.split(self.delimiter) if self.delimiter else [self.name]

    @property
    def leaf(self) -> str:
        return self.path[-1]

    @property
    def depth(self) -> int:
        return len(self.path) - 1


def subtree(folders: Sequence[Folder], name: str) -> list[Folder]:
    """The folder called ``name`` and every folder inside it, as listed."""
    return [
        f
        for f in folders
        if f.name == name or (f.delimiter and f.name.startswith(name + f.delimiter))
    ]


def is_protected(folders: Sequence[Folder], name: str) -> bool:
    """Whether renaming or deleting ``name`` would touch INBOX or a special-use folder."""
    return name.upper() == "INBOX" or any(f.special_use for f in subtree(folders, name))


@dataclass(frozen=True)
class FolderStatus:
    """What a folder holds now, as a check for new mail learns it (RFC 3501 STATUS)."""

    uidvalidity: int
    uidnext: int
    unread: int
    total: int


@dataclass(frozen=True)
class Quota:
    """How much of its storage quota (RFC 2087) an account uses, in bytes."""

    used: int
    limit: int

    #: From this share of the limit on, a person is warned that the mailbox is nearly full.
    WARNING_AT = 0.9

    @property
    def fraction(self) -> float:
        return min(1.0, self.used / self.limit) if self.limit > 0 else 0.0

    @property
    def percent(self) -> int:
        return math.floor(self.fraction * 100)

    @property
    def nearly_full(self) -> bool:
        return self.fraction >= self.WARNING_AT


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
class Conversation:
    """The messages of one folder that make one thread, as a list of conversations shows them."""

    uids: tuple[int, ...]  # oldest first, by arrival
    latest: MessageSummary  # the newest one
    subject: str  # the first one's
    participants: tuple[Address, ...]  # their senders, each once, in the order they wrote
    unread: int
    flagged: bool
    has_attachments: bool

    @property
    def count(self) -> int:
        return len(self.uids)

    @classmethod
    def of(
        cls, uids: Sequence[int], summaries: Sequence[MessageSummary], *, unread_others: int = 0
    ) -> Conversation | None:
        """The conversation of ``uids`` (oldest first), from the summaries of some of them.

        Those without a summary count only through ``unread_others``; None when
        none has one (they are all gone since the thread was made).
        """
        if not summaries:
            return None
        senders: dict[str, Address] = {}
        for summary in summaries:
            sender = summary.sender
            if sender is not None:
                senders.setdefault(sender.email.lower() or sender.name, sender)
        return cls(
            uids=tuple(uids),
            latest=summaries[-1],
            subject=summaries[0].subject,
            participants=tuple(senders.values()),
            unread=unread_others + sum(not summary.seen for summary in summaries),
            flagged=any(summary.flagged for summary in summaries),
            has_attachments=any(summary.has_attachments for summary in summaries),
        )


ItemT = TypeVar("ItemT", MessageSummary, Conversation)


class Paged:
    """Where a page stands among ``total`` items; its dataclass gives the three fields."""

    number: int  # 1-based
    per_page: int
    total: int

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
class Page(Paged, Generic[ItemT]):
    folder: Folder
    items: list[ItemT]
    number: int  # 1-based
    per_page: int
    total: int  # messages in the folder, or conversations in a page of conversations


@dataclass(frozen=True)
class SearchHit:
    """A message found, and the folder it is in."""

    folder: str
    summary: MessageSummary


@dataclass(frozen=True)
class SearchResults(Paged):
    """One page of what a search found."""

    hits: list[SearchHit]
    number: int  # 1-based
    per_page: int
    total: int  # results that can be paged through
    #: Messages that matched: more than ``total`` when a search of every folder kept
    #: only the newest results of some.
    found: int

    @property
    def capped(self) -> bool:
        return self.found > self.total


@dataclass(frozen=True)
class RawMessage:
    """One message's bytes as stored, with what identifies that exact version."""

    folder: str
    uid: int
    uidvalidity: int
    raw: bytes
    flags: frozenset[str] = field(default_factory=frozenset)


def uid_set(uids: Iterable[int]) -> str:
    """The shortest RFC 3501 set of these UIDs: [7, 1, 2, 3] gives "1:3,7"."""
    ranges: list[list[int]] = []
    for uid in sorted(set(uids)):
        if ranges and uid == ranges[-1][1] + 1:
            ranges[-1][1] = uid
        else:
            ranges.append([uid, uid])
    return ",".join(str(low) if low == high else f"{low}:{high}" for low, high in ranges)


def uid_ranges(uids: str) -> list[tuple[int, int | None]]:
    """The ranges of an RFC 3501 set of UIDs as (lowest, highest), None for "*" (no bound).

    "1:3,7,9:*" gives [(1, 3), (7, 7), (9, None)] and "5:2" gives [(2, 5)]. Anything
    else is a ValueError, so that no other string reaches a server or a query.
    """
    ranges: list[tuple[int, int | None]] = []
    for part in uids.split(","):
        match = _UID_RANGE_RE.fullmatch(part)
        if match is None or int(match[1]) > MAX_UID:
            raise ValueError(f"Not a set of UIDs: {uids!r}")
        low, high = int(match[1]), match[2]
        if high == "*":
            ranges.append((low, None))
        elif high is None or int(high) <= MAX_UID:
            other = low if high is None else int(high)
            ranges.append((min(low, other), max(low, other)))
        else:
            raise ValueError(f"Not a set of UIDs: {uids!r}")
    return ranges


@dataclass(frozen=True)
class Moved:
    """Where moved messages are now (RFC 4315 COPYUID): what moving them back takes."""

    folder: str
    uidvalidity: int
    uids: str  # their UIDs in ``folder``, as an RFC 3501 set without "*"

    @property
    def count(self) -> int:
        return sum(high - low + 1 for low, high in uid_ranges(self.uids) if high is not None)


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

    def conversations(self, folder: str, number: int, *, per_page: int) -> Page[Conversation]:
        """One page of a folder's threads, the one with the newest message first."""
        ...

    def thread_uids(self, folder: str, uid: int) -> list[int]:
        """The UIDs of the thread of message ``uid`` in ``folder``, oldest first.

        MessageNotFound when ``folder`` does not hold ``uid``.
        """
        ...

    def related_uids(
        self, folder: str, message_ids: Sequence[str], referenced: Sequence[str]
    ) -> list[int]:
        """The UIDs of the messages of ``folder`` that answer one of ``message_ids``
        (In-Reply-To, References) or whose Message-ID is one of ``referenced``."""
        ...

    def append(
        self, folder: str, raw: bytes, *, seen: bool = False, draft: bool = False
    ) -> int | None:
        """Store ``raw`` in ``folder``; its new UID when the server tells it, else None."""
        ...

    def delete(self, folder: str, uids: Uids) -> None:
        """Remove these messages, and no other, from ``folder``; missing ones are no error."""
        ...

    def move(
        self, folder: str, uids: Uids, target: str, *, uidvalidity: int | None = None
    ) -> Moved | None:
        """Move these messages, and no other, from ``folder`` to ``target`` at once.

        Missing ones are no error; a ``target`` that does not exist is FolderNotFound.
        With ``uidvalidity``, the UIDs are those of that version of ``folder``: if it
        has another now, nothing moves (MessageNotFound). Returns where the messages
        went when the server tells it (UIDPLUS), for moving them back.
        """
        ...

    def copy(self, folder: str, uids: Uids, target: str) -> None:
        """Copy these messages from ``folder`` to ``target`` at once."""
        ...

    def add_flags(self, folder: str, uids: Uids, flags: Sequence[str]) -> None:
        """Set flags or keywords ("\\Answered", "$Forwarded") on these messages."""
        ...

    def remove_flags(self, folder: str, uids: Uids, flags: Sequence[str]) -> None:
        """Clear flags or keywords ("\\Seen", "\\Flagged") of these messages."""
        ...

    def empty_folder(self, folder: str) -> None:
        """Delete every message of ``folder`` for good (emptying the trash)."""
        ...

    def search(
        self,
        query: SearchQuery,
        number: int,
        *,
        folder: str | None,
        per_page: int,
        sort: str = "arrival",
        reverse: bool = True,
    ) -> SearchResults:
        """One page of the messages of ``folder`` (of every folder when None) that match.

        Only one page of summaries is ever read. The order is as ``page()`` has it
        in one folder; across every folder, newest first.
        """
        ...

    def create_folder(self, name: str) -> None:
        """Make a folder (``name`` is its whole path) and subscribe to it."""
        ...

    def rename_folder(self, name: str, new_name: str) -> None:
        """Rename or move a folder with its subfolders; FolderProtected for special uses."""
        ...

    def delete_folder(self, name: str) -> None:
        """Delete a folder, its subfolders and their messages; FolderProtected for special uses."""
        ...

    def subscribe(self, name: str) -> None: ...

    def unsubscribe(self, name: str) -> None: ...

    def quota(self, *, max_age: float | None = None) -> Quota | None:
        """The storage quota as last learnt, or None when unknown or unlimited.

        Without ``max_age`` the server is not asked (pages show what the background
        check learnt); with it, the server is asked when what is known is older
        than ``max_age`` seconds.
        """
        ...
