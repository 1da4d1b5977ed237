"""ImapStore: one mail account's live IMAP folders, read through the session pool."""

from __future__ import annotations

import hashlib
import imaplib
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timezone
from email.utils import parseaddr, parsedate_to_datetime
from typing import TYPE_CHECKING, Any, TypeVar

from django.core.cache import cache
from django.utils.translation import gettext as _
from imapclient import DELETED, DRAFT, SEEN
from imapclient.imap_utf7 import decode as decode_utf7
from imapclient.response_parser import parse_response
from imapclient.response_types import BodyData, Envelope

from webmail.mailstore.base import (
    SPECIAL_USE_ORDER,
    Folder,
    FolderNotFound,
    FolderStatus,
    MailStoreError,
    MessageNotFound,
    MessageSummary,
    Page,
    RawMessage,
)
from webmail.mailstore.pool import ImapSession, SessionPool, fingerprint, pool
from webmail.mime.headers import decode_header, envelope_addresses
from webmail.transport.imap import server_reply

if TYPE_CHECKING:
    from accounts.models import MailAccount

T = TypeVar("T")

#: What a message list shows of each message, fetched for a page at once.
SUMMARY_ITEMS = ("UID", "FLAGS", "RFC822.SIZE", "INTERNALDATE", "ENVELOPE", "BODYSTRUCTURE")

#: Orders a page can be in, with the RFC 5256 sort key of each.
SORT_KEYS = {
    "arrival": "ARRIVAL",
    "date": "DATE",
    "from": "FROM",
    "subject": "SUBJECT",
    "size": "SIZE",
}

#: Folder structure and unread counts change rarely; every page must not pay for them.
FOLDERS_TTL = 300
COUNTS_TTL = 60
#: A sorted UID list is keyed by the folder's exact contents, so it is never wrong,
#: only dropped when those contents change.
SORTED_TTL = 120

# Names that mean a special use on servers without SPECIAL-USE (RFC 6154).
_SPECIAL_NAMES = {
    "drafts": "\\Drafts",
    "draft": "\\Drafts",
    "sent": "\\Sent",
    "sent items": "\\Sent",
    "sent messages": "\\Sent",
    "archive": "\\Archive",
    "archives": "\\Archive",
    "junk": "\\Junk",
    "spam": "\\Junk",
    "trash": "\\Trash",
    "deleted items": "\\Trash",
    "deleted messages": "\\Trash",
}
_STATUS_ITEMS = ("UIDVALIDITY", "UIDNEXT", "UNSEEN", "MESSAGES")
_NOT_SELECTABLE = {b"\\noselect", b"\\nonexistent"}
_REPLY_PREFIXES = ("re:", "fw:", "fwd:", "aw:", "tr:")
#: The response code of a tagged APPEND reply naming the new message (RFC 4315).
_APPENDUID_RE = re.compile(rb"\[APPENDUID (\d+) (\d+)\]", re.IGNORECASE)


class ImapStore:
    """The MailStore of one IMAP account.

    Folders are selected read-write: a person reading mail changes flags on most
    messages, and going from a read-only to a read-write selection would cost a
    second SELECT, dearer than a page on a big folder. Bodies are fetched with
    BODY.PEEK, so reading never sets \\Seen by itself.
    """

    def __init__(self, account: MailAccount, *, sessions: SessionPool = pool) -> None:
        self.account = account
        self.sessions = sessions
        self._cache_prefix = f"imap:{account.pk}:{fingerprint(account)[:12]}"

    # MailStore ----------------------------------------------------------------

    def folders(self, *, fresh: bool = False) -> list[Folder]:
        tree: list[Folder] | None = cache.get(self._key("folders"))
        counts = {} if fresh else self._cached_counts(tree or [])
        missing = (
            None
            if tree is None
            else [f.name for f in tree if f.selectable and f.name not in counts]
        )
        if tree is None or missing:

            def refresh(session: ImapSession) -> tuple[list[Folder], dict[str, tuple[int, int]]]:
                _catch_up(session)
                fresh: dict[str, tuple[int, int]] = {}
                names = missing
                listed = tree
                if names is None or (len(names) > 1 and session.has("LIST-STATUS")):
                    listed, fresh = _list_folders(session, status=session.has("LIST-STATUS"))
                    names = [f.name for f in listed if f.selectable and f.name not in fresh]
                for name in names:
                    fresh[name] = _status(session, name)
                return listed, fresh

            tree, fresh = self._run(refresh)
            cache.set(self._key("folders"), tree, FOLDERS_TTL)
            cache.set_many({self._count_key(name): n for name, n in fresh.items()}, COUNTS_TTL)
            counts.update(fresh)
        return [
            replace(f, unread=counts[f.name][0], total=counts[f.name][1]) if f.name in counts else f
            for f in tree
        ]

    def folder_status(self, folder: str) -> FolderStatus:
        def ask(session: ImapSession) -> FolderStatus:
            _catch_up(session)
            values = session.client.folder_status(folder, _STATUS_ITEMS)
            return FolderStatus(
                uidvalidity=values.get(b"UIDVALIDITY", 0),
                uidnext=values.get(b"UIDNEXT", 0),
                unread=values.get(b"UNSEEN", 0),
                total=values.get(b"MESSAGES", 0),
            )

        status = self._run(ask)
        cache.set(self._count_key(folder), (status.unread, status.total), COUNTS_TTL)
        return status

    def page(
        self,
        folder: str,
        number: int,
        *,
        per_page: int,
        sort: str = "arrival",
        reverse: bool = True,
    ) -> Page:
        if sort not in SORT_KEYS:
            raise ValueError(f"Unknown sort order {sort!r}")

        def read(session: ImapSession) -> Page:
            state = session.select(folder, readonly=False)
            total = state.exists
            current = min(max(1, number), max(1, math.ceil(total / per_page)))
            if sort == "arrival":
                items = _page_by_sequence(session, total, current, per_page, reverse)
            else:
                uids = self._sorted_uids(session, folder, total, sort, reverse)
                total = len(uids)
                start = (current - 1) * per_page
                items = _summaries_by_uid(session, uids[start : start + per_page])
            return Page(
                folder=self._describe(session, folder, total),
                items=items,
                number=current,
                per_page=per_page,
                total=total,
            )

        return self._run(read)

    def message(self, folder: str, uid: int) -> RawMessage:
        def read(session: ImapSession) -> RawMessage:
            state = session.select(folder, readonly=False, refresh=False)
            data = session.client.fetch([uid], ["FLAGS", "BODY.PEEK[]"]).get(uid)
            if not data and (state.uidnext is None or uid >= state.uidnext):
                # Mail that arrived after this session last looked is not in its view
                # until the server has told it so: look again before saying it is gone.
                state = session.select(folder, readonly=False, refresh=True)
                data = session.client.fetch([uid], ["FLAGS", "BODY.PEEK[]"]).get(uid)
            if not data or b"BODY[]" not in data:
                raise MessageNotFound(
                    _("This message no longer exists: it may have been moved or deleted.")
                )
            return RawMessage(
                folder=folder,
                uid=uid,
                uidvalidity=state.uidvalidity,
                raw=data[b"BODY[]"],
                flags=frozenset(_text(flag) for flag in data.get(b"FLAGS", ())),
            )

        return self._run(read)

    def mark_seen(self, folder: str, uid: int) -> None:
        def store(session: ImapSession) -> None:
            session.select(folder, readonly=False, refresh=False)
            session.client.add_flags([uid], [SEEN], silent=True)

        self._run(store)
        cache.delete(self._count_key(folder))

    def special_folder(self, use: str) -> str | None:
        """The first folder with this special use ("\\Drafts", ...), from the cached list."""
        tree: list[Folder] | None = cache.get(self._key("folders"))
        if tree is None:
            tree = self._run(lambda session: _list_folders(session)[0])
            cache.set(self._key("folders"), tree, FOLDERS_TTL)
        return next((f.name for f in tree if f.special_use == use and f.selectable), None)

    def find_message_id(self, folder: str, message_id: str) -> bool:
        """Whether ``folder`` holds a message with this Message-ID."""
        return bool(self.message_id_uids(folder, message_id))

    def message_id_uids(self, folder: str, message_id: str) -> list[int]:
        """The UIDs of the messages of ``folder`` with this Message-ID, lowest first."""

        def search(session: ImapSession) -> list[int]:
            session.select(folder, readonly=False)
            return sorted(session.client.search(["HEADER", "Message-ID", message_id]))

        return self._run(search)

    def append(
        self, folder: str, raw: bytes, *, seen: bool = False, draft: bool = False
    ) -> int | None:
        """Store ``raw`` as a new message of ``folder``; its UID, when the server has UIDPLUS.

        Not retried on a new connection: an APPEND whose reply was lost may have
        been done, and a second one would store the message twice.
        """
        flags = [flag for flag, wanted in ((SEEN, seen), (DRAFT, draft)) if wanted]

        def store(session: ImapSession) -> int | None:
            reply = session.client.append(folder, raw, flags=flags)
            return _appended_uid(reply) if session.has("UIDPLUS") else None

        uid = self._run(store, idempotent=False)
        cache.delete(self._count_key(folder))
        return uid

    def delete(self, folder: str, uids: Sequence[int]) -> None:
        """Remove these messages from ``folder`` at once, leaving every other one as it is
        (see ``_expunge`` for servers without UIDPLUS)."""
        if not uids:
            return

        def remove(session: ImapSession) -> None:
            session.select(folder, readonly=False, refresh=False)
            _expunge(session, uids)

        self._run(remove)
        cache.delete(self._count_key(folder))

    def move(self, folder: str, uids: Sequence[int], target: str) -> None:
        """Move these messages from ``folder`` to ``target``, however many, at once.

        With MOVE (RFC 6851) that is one UID MOVE. Without it they are copied, then
        removed as ``delete`` removes them (so without UIDPLUS too, the originals
        stay behind marked \\Deleted). Not retried on a new connection: a
        COPY whose reply was lost may have been done, and a second one would leave
        two copies in ``target``.
        """
        if not uids or target == folder:
            return

        def relocate(session: ImapSession) -> None:
            session.select(folder, readonly=False, refresh=False)
            try:
                if session.has("MOVE"):
                    session.client.move(list(uids), target)
                else:
                    session.client.copy(list(uids), target)
                    _expunge(session, uids)
            except imaplib.IMAP4.error as exc:
                # RFC 3501: [TRYCREATE] says the target does not exist; servers
                # that do not send it are asked.
                if isinstance(exc, imaplib.IMAP4.abort) or (
                    "[TRYCREATE]" not in server_reply(exc).upper()
                    and session.client.folder_exists(target)
                ):
                    raise
                raise FolderNotFound(
                    _("The folder %(name)s does not exist.") % {"name": target}
                ) from None

        try:
            self._run(relocate, idempotent=False)
        except FolderNotFound:
            # A folder the cached list may still offer is gone: list them again.
            cache.delete(self._key("folders"))
            raise
        cache.delete_many([self._count_key(folder), self._count_key(target)])

    def add_flags(self, folder: str, uids: Sequence[int], flags: Sequence[str]) -> None:
        if not uids or not flags:
            return

        def store(session: ImapSession) -> None:
            session.select(folder, readonly=False, refresh=False)
            session.client.add_flags(list(uids), list(flags), silent=True)

        self._run(store)
        cache.delete(self._count_key(folder))

    # Helpers ------------------------------------------------------------------

    def _run(self, operation: Callable[[ImapSession], T], *, idempotent: bool = True) -> T:
        try:
            return self.sessions.run(self.account, operation, idempotent=idempotent)
        except imaplib.IMAP4.error as exc:
            # A NO or BAD reply: the connection is sound, the request was refused.
            raise MailStoreError(
                _("The mail server refused the request: %(reply)s") % {"reply": server_reply(exc)}
            ) from exc

    def _key(self, *parts: str) -> str:
        return ":".join((self._cache_prefix, *parts))

    def _count_key(self, folder: str) -> str:
        # Each folder's count expires on its own: refreshing one must not keep others.
        return self._key("count", _digest(folder))

    def _cached_counts(self, folders: list[Folder]) -> dict[str, tuple[int, int]]:
        keys = {self._count_key(f.name): f.name for f in folders if f.selectable}
        return {keys[key]: value for key, value in cache.get_many(list(keys)).items()}

    def _describe(self, session: ImapSession, name: str, total: int) -> Folder:
        """The Folder a page is of, from the cached list when there is one."""
        tree: list[Folder] | None = cache.get(self._key("folders"))
        known = next((f for f in tree or () if f.name == name), None)
        if known is None:
            listed = _list_folders(session, pattern=name)[0]
            known = next((f for f in listed if f.name == name), Folder(name=name, delimiter=""))
        unread, __ = cache.get(self._count_key(name), (None, None))
        return replace(known, unread=unread, total=total)

    def _sorted_uids(
        self, session: ImapSession, folder: str, exists: int, sort: str, reverse: bool
    ) -> list[int]:
        """Every UID of the selected folder in the order asked, cached by the folder's contents."""
        if not exists:
            return []
        # UIDs only grow, so the count and the last UID change whenever a message
        # comes or goes: together with UIDVALIDITY they name the contents exactly.
        last = _fetch_by_sequence(session, str(exists), ["UID"])
        last_uid = last[exists][b"UID"] if exists in last else 0
        state = session.state
        key = self._key(
            "sorted",
            _digest(folder),
            f"{state.uidvalidity if state else 0}-{exists}-{last_uid}-{sort}-{int(reverse)}",
        )
        uids: list[int] | None = cache.get(key)
        if uids is None:
            if session.has("SORT"):
                criteria = [SORT_KEYS[sort]]
                if sort == "from" and session.has("SORT=DISPLAY"):
                    criteria = ["DISPLAYFROM"]  # RFC 5957: by the name a person sees
                uids = session.client.sort(["REVERSE", *criteria] if reverse else criteria)
            else:
                uids = _sort_locally(session, sort, reverse)
            cache.set(key, uids, SORTED_TTL)
        return uids


# Folders ----------------------------------------------------------------------


def _list_folders(
    session: ImapSession, *, pattern: str = "*", status: bool = False
) -> tuple[list[Folder], dict[str, tuple[int, int]]]:
    """LIST, with special uses and (RFC 5819) unread counts in the same reply when asked."""
    client = session.client
    returns = []
    if session.has("SPECIAL-USE"):
        returns.append(b"SPECIAL-USE")
    if status:
        returns.append(b"STATUS (MESSAGES UNSEEN)")
    arguments = [b'""', client._normalise_folder(pattern)]
    if returns:
        arguments += [b"RETURN", b"(" + b" ".join(returns) + b")"]
    # imapclient's list_folders() cannot ask for RETURN options; its own raw command
    # and LIST parser (which decodes modified UTF-7 names) do the rest.
    data = client._raw_command_untagged(b"LIST", arguments, uid=False)
    listed = client._proc_folder_list(data)
    statuses = {}
    if status:
        replies = client._imap.untagged_responses.pop("STATUS", [])
        tokens = parse_response([r for r in replies if r is not None])
        for name, items in zip(tokens[::2], tokens[1::2], strict=True):
            values = dict(zip(items[::2], items[1::2], strict=True))
            statuses[_folder_name(name)] = (values.get(b"UNSEEN", 0), values.get(b"MESSAGES", 0))
    folders = [_folder(flags, delimiter, name, session) for flags, delimiter, name in listed]
    return _ordered(folders), statuses


def _catch_up(session: ImapSession) -> None:
    """Let the session see the mail that arrived since it last looked.

    Dovecot answers STATUS (and LIST-STATUS) of the selected folder from the
    session's own view of it, which only a command such as NOOP brings up to date.
    """
    if session.folder is not None:
        session.select(session.folder, readonly=session.readonly)


def _status(session: ImapSession, name: str) -> tuple[int, int]:
    values = session.client.folder_status(name, ["MESSAGES", "UNSEEN"])
    return values.get(b"UNSEEN", 0), values.get(b"MESSAGES", 0)


def _folder_name(name: Any) -> str:
    if isinstance(name, bytes):
        return decode_utf7(name)
    return str(name)  # a name made of digits is parsed as a number


def _folder(
    flags: Iterable[bytes], delimiter: bytes | None, name: str, session: ImapSession
) -> Folder:
    lowered = {flag.lower() for flag in flags}
    separator = _text(delimiter) if delimiter else ""
    if name.upper() == "INBOX":
        name, special = "INBOX", "\\Inbox"
    else:
        special = next((use for use in SPECIAL_USE_ORDER if use.lower().encode() in lowered), None)
        if special is None and not session.has("SPECIAL-USE"):
            special = _SPECIAL_NAMES.get(_top_level_name(name, separator).lower())
    return Folder(
        name=name,
        delimiter=separator,
        special_use=special,
        selectable=not lowered & _NOT_SELECTABLE,
    )


def _top_level_name(name: str, delimiter: str) -> str:
    """The name a special use may be guessed from: a top-level folder's, or "" if nested.

    Some servers keep every folder under INBOX ("INBOX.Sent"): those count as top-level.
    """
    parts = name.split(delimiter) if delimiter else [name]
    if len(parts) == 2 and parts[0].upper() == "INBOX":
        return parts[1]
    return parts[0] if len(parts) == 1 else ""


def _ordered(folders: list[Folder]) -> list[Folder]:
    """INBOX, then the other special uses in SPECIAL_USE_ORDER, then the rest by name.

    A folder inside a special-use folder follows it; parents always come before
    their children.
    """
    rank = {use: index for index, use in enumerate(SPECIAL_USE_ORDER)}
    specials = [f for f in folders if f.special_use]

    def key(folder: Folder) -> tuple:
        # The innermost special-use folder holding this one ("INBOX/Sent" goes with
        # Sent, "INBOX/Projects" with INBOX) decides its group.
        roots = [
            f
            for f in specials
            if folder.name == f.name or folder.name.startswith(f.name + f.delimiter)
        ]
        root = max(roots, key=lambda f: len(f.name), default=None)
        group = rank[root.special_use] if root else len(SPECIAL_USE_ORDER)
        return (group, root.name.casefold() if root else "", [p.casefold() for p in folder.path])

    return sorted(folders, key=key)


# Pages ------------------------------------------------------------------------


def _fetch_by_sequence(session: ImapSession, messages: str, items: Iterable[str]) -> dict:
    """FETCH by message sequence numbers, keyed by them (imapclient otherwise uses UIDs)."""
    client = session.client
    client.use_uid = False
    try:
        return client.fetch(messages, list(items))
    finally:
        client.use_uid = True


def _page_by_sequence(
    session: ImapSession, total: int, number: int, per_page: int, reverse: bool
) -> list[MessageSummary]:
    """A page in arrival order straight from the message count: no SEARCH, no SORT."""
    if reverse:
        high = total - (number - 1) * per_page
        low = max(1, high - per_page + 1)
    else:
        low = (number - 1) * per_page + 1
        high = min(total, number * per_page)
    if high < low:
        return []
    response = _fetch_by_sequence(session, f"{low}:{high}", SUMMARY_ITEMS)
    rows = sorted(
        (seq, data)
        for seq, data in response.items()
        if low <= seq <= high and b"ENVELOPE" in data and b"UID" in data
    )
    if reverse:
        rows.reverse()
    return [_summary(data[b"UID"], data) for __, data in rows]


def _summaries_by_uid(session: ImapSession, uids: list[int]) -> list[MessageSummary]:
    if not uids:
        return []
    response = session.client.fetch(uids, list(SUMMARY_ITEMS))
    return [_summary(uid, response[uid]) for uid in uids if b"ENVELOPE" in response.get(uid, {})]


def _sort_locally(session: ImapSession, sort: str, reverse: bool) -> list[int]:
    """For servers without SORT: fetch the one header needed for every message, and sort."""
    header = {"date": "DATE", "from": "FROM", "subject": "SUBJECT"}.get(sort)
    items = ["UID", "RFC822.SIZE"] if sort == "size" else ["UID", "INTERNALDATE"]
    if header:
        items.append(f"BODY.PEEK[HEADER.FIELDS ({header})]")
    response = _fetch_by_sequence(session, "1:*", items)

    def key(seq: int) -> tuple:
        data = response[seq]
        if sort == "size":
            value: Any = data.get(b"RFC822.SIZE", 0)
        else:
            raw = next((v for k, v in data.items() if k.startswith(b"BODY[")), b"") or b""
            value = _sort_value(sort, _header_value(raw), data.get(b"INTERNALDATE"))
        return (value, seq)  # ties in arrival order, as SORT does

    order = sorted((seq for seq in response if b"UID" in response[seq]), key=key)
    if reverse:
        order.reverse()
    return [response[seq][b"UID"] for seq in order]


def _header_value(raw: bytes) -> str:
    """The value of the one header field in a HEADER.FIELDS reply, unfolded and decoded."""
    return decode_header(raw.partition(b":")[2].strip())


def _sort_value(sort: str, value: str, internaldate: datetime | None) -> Any:
    if sort == "date":
        try:
            return _aware(parsedate_to_datetime(value)).timestamp()
        except (TypeError, ValueError, IndexError):
            return _aware(internaldate).timestamp() if internaldate else 0.0
    if sort == "from":
        name, address = parseaddr(value)
        return (name or address).casefold()
    return _base_subject(value)


def _base_subject(subject: str) -> str:
    """The subject without its reply and forward prefixes (after RFC 5256), for sorting."""
    subject = subject.strip()
    while True:
        lowered = subject.casefold()
        prefix = next((p for p in _REPLY_PREFIXES if lowered.startswith(p)), None)
        if prefix is None:
            return lowered
        subject = subject[len(prefix) :].strip()


def _summary(uid: int, data: dict) -> MessageSummary:
    envelope: Envelope = data[b"ENVELOPE"]
    flags = {_text(flag).lower() for flag in data.get(b"FLAGS", ())}
    senders = envelope_addresses(envelope.from_ or ())
    date = envelope.date or data.get(b"INTERNALDATE")
    return MessageSummary(
        uid=uid,
        subject=decode_header(envelope.subject),
        sender=senders[0] if senders else None,
        recipients=envelope_addresses((envelope.to or ()) + (envelope.cc or ())),
        date=_aware(date) if date else None,
        size=data.get(b"RFC822.SIZE", 0),
        seen="\\seen" in flags,
        flagged="\\flagged" in flags,
        answered="\\answered" in flags,
        has_attachments=_has_attachments(data.get(b"BODYSTRUCTURE")),
    )


def _has_attachments(body: Any, in_related: bool = False) -> bool:
    """Whether a BODYSTRUCTURE shows a part a person would save.

    That is a part with an attachment disposition, or any other non-text part
    except the images an HTML body shows from its multipart/related.
    """
    if not isinstance(body, tuple) or not body:
        return False
    if isinstance(body, BodyData) and body.is_multipart:
        parts, subtype = body[0], _text(body[1]).lower()
        if subtype == "signed":
            parts = parts[:1]  # the signature itself is not an attachment
        elif subtype == "encrypted":
            return False  # what is inside cannot be known before decryption
        return any(_has_attachments(part, subtype == "related") for part in parts)
    maintype = _text(body[0]).lower()
    if _disposition(body, maintype) == "attachment":
        return True
    return maintype != "text" and not in_related


def _disposition(body: tuple, maintype: str) -> str:
    # The extension data follows the fields of the part's type (RFC 3501, 7.4.2).
    if maintype == "text":
        index = 9
    elif maintype == "message" and _text(body[1]).lower() == "rfc822":
        index = 11
    else:
        index = 8
    value = body[index] if len(body) > index else None
    if isinstance(value, tuple) and value and isinstance(value[0], bytes):
        return _text(value[0]).lower()
    return ""


def _expunge(session: ImapSession, uids: Sequence[int]) -> None:
    """Remove these messages of the selected folder, and no other.

    With UIDPLUS, UID EXPUNGE (RFC 4315) removes exactly these. Without it they
    are only marked \\Deleted: a plain EXPUNGE would also remove whatever other
    messages the person (or another program) marked deleted and still keeps,
    as clients that show deleted messages struck through let them do.
    """
    session.client.add_flags(list(uids), [DELETED], silent=True)
    if session.has("UIDPLUS"):
        session.client.uid_expunge(list(uids))


def _appended_uid(reply: bytes | str | None) -> int | None:
    """The UID in an APPEND reply such as ``[APPENDUID 1234 56] Append completed.``."""
    if isinstance(reply, str):
        reply = reply.encode("ascii", "replace")
    match = _APPENDUID_RE.search(reply or b"")
    return int(match.group(2)) if match else None


def _digest(folder: str) -> str:
    """A folder's name made fit for a cache key (any length, any character)."""
    return hashlib.sha256(folder.encode()).hexdigest()[:24]


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


def _aware(moment: datetime) -> datetime:
    """An aware datetime with a standard-library zone; a date without a zone is taken as UTC."""
    offset = moment.utcoffset()
    return moment.replace(tzinfo=UTC if offset is None else timezone(offset))
