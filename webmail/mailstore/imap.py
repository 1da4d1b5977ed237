"""ImapStore: one mail account's live IMAP folders, read through the session pool."""

from __future__ import annotations

import hashlib
import imaplib
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import replace
from datetime import UTC, datetime, timezone
from email.utils import parseaddr, parsedate_to_datetime
from typing import TYPE_CHECKING, Any, TypeVar

from django.core.cache import cache
from django.utils.translation import gettext as _
from imapclient import DELETED, DRAFT, SEEN
from imapclient.imap_utf7 import decode as decode_utf7
from imapclient.response_parser import parse_message_list, parse_response
from imapclient.response_types import BodyData, Envelope

from webmail.mailstore.base import (
    ALL,
    SPECIAL_USE_ORDER,
    Conversation,
    Folder,
    FolderNotFound,
    FolderProtected,
    FolderStatus,
    MailStoreError,
    MessageNotFound,
    MessageSummary,
    Moved,
    Page,
    Quota,
    RawMessage,
    SearchHit,
    SearchResults,
    ServerRefused,
    Uids,
    is_protected,
    subtree,
    uid_ranges,
)
from webmail.mailstore.pool import ImapSession, SelectState, SessionPool, fingerprint, pool
from webmail.mime.headers import decode_header, envelope_addresses
from webmail.search import (
    SearchQuery,
    header_keys,
    imap_charset,
    imap_criteria,
    parse_esearch,
)
from webmail.threads import THREAD_HEADERS, ThreadHeaders, read_headers, thread
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
#: The quota is shown from the cache for this long after a check last asked for it.
QUOTA_TTL = 600
INBOX = "INBOX"
#: Seconds to wait for the reply to a command on a whole folder: Dovecot can take
#: a minute and more to move 100,000 messages of a Maildir, saying little meanwhile.
BULK_TIMEOUT = 600
#: A sorted UID list is keyed by the folder's exact contents, so it is never wrong,
#: only dropped when those contents change.
SORTED_TTL = 120
#: What a search found in one folder is cached the same way, so that paging never
#: searches again. Flags are not part of the key: a message read after a search
#: for unread mail stays among its results until the folder changes or this passes.
SEARCH_TTL = 120
#: A search of every folder keeps at most this many results of each, the newest.
EVERYWHERE_PER_FOLDER = 200
#: ... and is cached by the query alone: knowing every folder's contents would cost
#: a SELECT of each on every page.
EVERYWHERE_TTL = 60
#: Where a search of every folder does not look unless asked to, as Gmail has it.
_SEARCH_SKIPS = ("\\Trash", "\\Junk")
#: Seconds a SEARCH or SORT may take. Without a full-text index the server reads
#: every message of the folder: 3.5 s for 100,000 on an idle machine, and more
#: under load than the connection's timeout allows any other command.
SEARCH_TIMEOUT = 120
#: Threads are keyed the same way; without THREAD they cost a FETCH of every
#: message's headers, so they are kept longer.
THREADS_TTL = 600
#: Messages of one conversation whose summaries a list of conversations fetches:
#: the first and the newest ones. The others count by their flags alone.
CONVERSATION_DETAIL = 10

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

        return self._header_search(folder, [("Message-ID", message_id)])

    def conversations(self, folder: str, number: int, *, per_page: int) -> Page[Conversation]:
        def read(session: ImapSession) -> Page[Conversation]:
            state = session.select(folder, readonly=False)
            threads = self._threads(session, folder, state.exists)
            current = min(max(1, number), max(1, math.ceil(len(threads) / per_page)))
            start = (current - 1) * per_page
            return Page(
                folder=self._describe(session, folder, state.exists),
                items=_conversations(session, threads[start : start + per_page]),
                number=current,
                per_page=per_page,
                total=len(threads),
            )

        return self._run(read)

    def thread_uids(self, folder: str, uid: int) -> list[int]:
        def find(session: ImapSession) -> list[int]:
            state = session.select(folder, readonly=False)
            threads = self._threads(session, folder, state.exists)
            found = next((t for t in threads if uid in t), None)
            if found is None:
                raise MessageNotFound(
                    _("This message no longer exists: it may have been moved or deleted.")
                )
            return list(found)

        return self._run(find)

    def related_uids(
        self, folder: str, message_ids: Sequence[str], referenced: Sequence[str]
    ) -> list[int]:
        """One SEARCH of header fields; its cost grows with ``folder`` and the number of ids."""
        terms = [
            (name, message_id)
            for message_id in message_ids
            for name in ("In-Reply-To", "References")
        ]
        terms += [("Message-ID", message_id) for message_id in referenced]
        return self._header_search(folder, terms)

    def _header_search(self, folder: str, terms: list[tuple[str, str]]) -> list[int]:
        """The UIDs of ``folder`` with any of these (header, value) pairs, lowest first."""
        criteria = header_keys(terms)
        if not criteria:
            return []

        def search(session: ImapSession) -> list[int]:
            state = session.select(folder, readonly=False)
            return sorted(_search_uids(session, criteria, state.exists))

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

    def delete(self, folder: str, uids: Uids) -> None:
        """Remove these messages from ``folder`` at once, leaving every other one as it is
        (see ``_expunge`` for servers without UIDPLUS)."""
        if not uids:
            return
        messages = _message_set(uids)

        def remove(session: ImapSession) -> None:
            _select_for(session, folder, messages)
            with _patience(session, messages):
                _expunge(session, messages)

        self._run(remove)
        cache.delete(self._count_key(folder))

    def move(
        self, folder: str, uids: Uids, target: str, *, uidvalidity: int | None = None
    ) -> Moved | None:
        """Move these messages from ``folder`` to ``target``, however many, at once.

        With MOVE (RFC 6851) that is one UID MOVE. Without it they are copied, then
        removed as ``delete`` removes them (so without UIDPLUS too, the originals
        stay behind marked \\Deleted). Not retried on a new connection: a
        COPY whose reply was lost may have been done, and a second one would leave
        two copies in ``target``.
        """
        if not uids or target == folder:
            return None
        messages = _message_set(uids)

        def relocate(session: ImapSession) -> Moved | None:
            state = _select_for(session, folder, messages)
            if uidvalidity is not None and state.uidvalidity != uidvalidity:
                raise MessageNotFound(
                    _("These messages are no longer in %(folder)s.") % {"folder": folder}
                )
            session.client._imap.untagged_responses.pop("COPYUID", None)  # an earlier COPY's
            with _patience(session, messages), _into(session, target):
                if session.has("MOVE"):
                    session.client.move(messages, target)
                else:
                    session.client.copy(messages, target)
                    _expunge(session, messages)
            return _copied(session, target)

        moved = self._into_folder(target, relocate)
        cache.delete_many([self._count_key(folder), self._count_key(target)])
        return moved

    def copy(self, folder: str, uids: Uids, target: str) -> None:
        """Copy these messages to ``target`` in one UID COPY; not retried, as ``move``."""
        if not uids:
            return
        messages = _message_set(uids)

        def duplicate(session: ImapSession) -> None:
            _select_for(session, folder, messages)
            with _patience(session, messages), _into(session, target):
                session.client.copy(messages, target)

        self._into_folder(target, duplicate)
        cache.delete(self._count_key(target))

    def add_flags(self, folder: str, uids: Uids, flags: Sequence[str]) -> None:
        self._store_flags(folder, uids, flags, add=True)

    def remove_flags(self, folder: str, uids: Uids, flags: Sequence[str]) -> None:
        self._store_flags(folder, uids, flags, add=False)

    def empty_folder(self, folder: str) -> None:
        """Delete every message of ``folder`` for good: one UID STORE, one EXPUNGE.

        All are marked \\Deleted, so a plain EXPUNGE removes exactly them, with or
        without UIDPLUS; mail arriving in between is not marked and stays.
        """

        def empty(session: ImapSession) -> None:
            _select_for(session, folder, ALL)
            with _patience(session, ALL):
                session.client.add_flags(ALL, [DELETED], silent=True)
                session.client.expunge()

        self._run(empty)
        cache.delete(self._count_key(folder))

    # Folder management ---------------------------------------------------------

    def create_folder(self, name: str) -> None:
        """CREATE then SUBSCRIBE: a folder made here shows in every client's list.

        Not retried on a new connection: a CREATE whose reply was lost may have
        been done, and a second one would be refused as a duplicate.
        """

        def make(session: ImapSession) -> None:
            session.client.create_folder(name)
            session.client.subscribe_folder(name)

        self._change_folders(make, [])

    def rename_folder(self, name: str, new_name: str) -> None:
        """RENAME, which takes the subfolders along; their subscriptions follow them."""
        listed, affected = self._protect(name)
        if any(f.name == new_name for f in listed):
            # Dovecot renames onto a special-use folder it has not made on disk yet.
            raise MailStoreError(
                _("There is already a folder called %(name)s.") % {"name": new_name}
            )
        delimiter = affected[0].delimiter
        if delimiter and new_name.startswith(name + delimiter):
            raise MailStoreError(_("A folder cannot go inside itself."))

        def rename(session: ImapSession) -> None:
            _leave(session, name, delimiter)
            moved = [
                sub
                for __, __, sub in session.client.list_sub_folders()
                if sub == name or (delimiter and sub.startswith(name + delimiter))
            ]
            session.client.rename_folder(name, new_name)
            # Servers keep subscriptions by name, and RENAME does not change them.
            for sub in moved:
                session.client.unsubscribe_folder(sub)
                session.client.subscribe_folder(new_name + sub[len(name) :])

        self._change_folders(rename, affected)

    def delete_folder(self, name: str) -> None:
        """DELETE the folder and its subfolders, innermost first, and their subscriptions.

        Servers refuse to delete a folder that has subfolders, or delete only its
        messages and keep it as a mere parent.
        """
        __, affected = self._protect(name)
        delimiter = affected[0].delimiter

        def remove(session: ImapSession) -> None:
            _leave(session, name, delimiter)
            for folder in sorted(affected, key=lambda f: f.depth, reverse=True):
                try:
                    session.client.delete_folder(folder.name)
                except imaplib.IMAP4.error as exc:
                    # A mere parent, listed for what was inside it, may be gone with that.
                    if folder.selectable or isinstance(exc, imaplib.IMAP4.abort):
                        raise
                session.client.unsubscribe_folder(folder.name)

        self._change_folders(remove, affected)

    def subscribe(self, name: str) -> None:
        self._change_folders(lambda session: session.client.subscribe_folder(name), [])

    def unsubscribe(self, name: str) -> None:
        self._change_folders(lambda session: session.client.unsubscribe_folder(name), [])

    def quota(self, *, max_age: float | None = None) -> Quota | None:
        """The quota of INBOX's storage (RFC 2087), cached: GETQUOTAROOT is slow on big accounts.

        Pages read the cache only; the background check asks again now and then.
        """
        known: tuple[float, Quota | None] | None = cache.get(self._key("quota"))
        if max_age is None or (known is not None and time.time() - known[0] < max_age):
            return known[1] if known else None

        def ask(session: ImapSession) -> Quota | None:
            if not session.has("QUOTA"):
                return None
            __, quotas = session.client.get_quota_root(INBOX)
            return storage_quota(quotas)

        value = self._run(ask)
        cache.set(self._key("quota"), (time.time(), value), QUOTA_TTL)
        return value

    # Search -------------------------------------------------------------------

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
        """SEARCH on the server, then one page of summaries of what it found."""
        if sort not in SORT_KEYS:
            raise ValueError(f"Unknown sort order {sort!r}")
        if folder is None:
            return self._run(
                lambda session: self._search_everywhere(session, query, number, per_page)
            )

        def find(session: ImapSession) -> SearchResults:
            state = session.select(folder, readonly=False)
            uids = self._found_uids(session, folder, state.exists, query, sort, reverse)
            current = min(max(1, number), max(1, math.ceil(len(uids) / per_page)))
            start = (current - 1) * per_page
            items = _summaries_by_uid(session, uids[start : start + per_page])
            return SearchResults(
                hits=[SearchHit(folder, summary) for summary in items],
                number=current,
                per_page=per_page,
                total=len(uids),
                found=len(uids),
            )

        return self._run(find)

    def _found_uids(
        self,
        session: ImapSession,
        folder: str,
        exists: int,
        query: SearchQuery,
        sort: str,
        reverse: bool,
    ) -> list[int]:
        """The UIDs of the selected folder that match, in the order asked, cached by its contents.

        Newest first is UID order and needs no SORT; another order is SORTed on the
        server when it can, else sorted here from one header of the matches only.
        """
        if not exists:
            return []
        key = self._key(
            "search",
            _digest(folder),
            _contents(session, exists),
            query.digest,
            f"{sort}-{int(reverse)}",
        )
        uids: list[int] | None = cache.get(key)
        if uids is None:
            criteria = imap_criteria(query)
            if sort == "arrival":
                uids = sorted(_search_uids(session, criteria, exists), reverse=reverse)
            elif session.has("SORT"):
                uids = _sort_found(session, criteria, _sort_program(session, sort, reverse))
            else:
                found = _search_uids(session, criteria, exists)
                uids = _sort_locally(session, sort, reverse, uids=found)
            cache.set(key, uids, SEARCH_TTL)
        return uids

    def _search_everywhere(
        self, session: ImapSession, query: SearchQuery, number: int, per_page: int
    ) -> SearchResults:
        """One page of what every folder searched holds that matches, newest first."""
        key = self._key("search-all", query.digest)
        found: tuple[list[tuple[str, int]], int] | None = cache.get(key)
        if found is None:
            found = self._find_everywhere(session, query)
            cache.set(key, found, EVERYWHERE_TTL)
        ranked, matched = found
        current = min(max(1, number), max(1, math.ceil(len(ranked) / per_page)))
        start = (current - 1) * per_page
        shown = ranked[start : start + per_page]
        summaries: dict[tuple[str, int], MessageSummary] = {}
        for name in _selected_last(session, dict.fromkeys(name for name, __ in shown)):
            try:
                session.select(name, readonly=False, refresh=False)
            except FolderNotFound:
                continue  # deleted since it was searched
            uids = [uid for folder, uid in shown if folder == name]
            summaries.update(((name, s.uid), s) for s in _summaries_by_uid(session, uids))
        return SearchResults(
            hits=[
                SearchHit(name, summaries[name, uid])
                for name, uid in shown
                if (name, uid) in summaries
            ],
            number=current,
            per_page=per_page,
            total=len(ranked),
            found=matched,
        )

    def _find_everywhere(
        self, session: ImapSession, query: SearchQuery
    ) -> tuple[list[tuple[str, int]], int]:
        """(folder, UID) of the newest matches of each folder, newest first by
        INTERNALDATE, and how many messages matched in all."""
        tree: list[Folder] | None = cache.get(self._key("folders"))
        if tree is None:
            tree = _list_folders(session)[0]
            cache.set(self._key("folders"), tree, FOLDERS_TTL)
        skipped = set()
        if not query.include_trash:
            for folder in tree:
                if folder.special_use in _SEARCH_SKIPS:
                    skipped.update(f.name for f in subtree(tree, folder.name))
        names = [f.name for f in tree if f.selectable and f.name not in skipped]
        criteria = imap_criteria(query)
        ranked: list[tuple[float, str, int]] = []
        matched = 0
        for name in _selected_last(session, names):
            try:
                state = session.select(name, readonly=False)
            except MailStoreError:
                continue  # gone, or not to be opened, since the list was made
            if not state.exists:
                continue
            uids = _search_uids(session, criteria, state.exists)
            matched += len(uids)
            newest = sorted(uids)[-EVERYWHERE_PER_FOLDER:]
            if newest:
                dates = session.client.fetch(newest, ["INTERNALDATE"])
                for uid in newest:
                    moment = dates.get(uid, {}).get(b"INTERNALDATE")
                    ranked.append((_aware(moment).timestamp() if moment else 0.0, name, uid))
        ranked.sort(reverse=True)
        return [(name, uid) for __, name, uid in ranked], matched

    # Helpers ------------------------------------------------------------------

    def _protect(self, name: str) -> tuple[list[Folder], list[Folder]]:
        """Every folder listed now, and ``name`` with its subfolders.

        FolderNotFound when there is no such folder, FolderProtected when it is or
        holds INBOX or a special-use folder.
        """
        listed = self._run(lambda session: _list_folders(session)[0])
        affected = subtree(listed, name)
        if not any(f.name == name for f in affected):
            raise FolderNotFound(_("The folder %(name)s does not exist.") % {"name": name})
        if is_protected(listed, name):
            raise FolderProtected(
                _("Special-use folders are protected: they cannot be renamed or deleted.")
            )
        return listed, affected

    def _change_folders(
        self, change: Callable[[ImapSession], None], affected: Sequence[Folder]
    ) -> None:
        """Change the folder tree once (never retried), then drop what is cached of it."""
        try:
            self._run(change, idempotent=False)
        finally:
            cache.delete_many([self._key("folders"), *(self._count_key(f.name) for f in affected)])

    def _store_flags(self, folder: str, uids: Uids, flags: Sequence[str], *, add: bool) -> None:
        """One UID STORE of +FLAGS or -FLAGS, however many messages."""
        if not uids or not flags:
            return
        messages = _message_set(uids)

        def store(session: ImapSession) -> None:
            _select_for(session, folder, messages)
            change = session.client.add_flags if add else session.client.remove_flags
            with _patience(session, messages):
                change(messages, list(flags), silent=True)

        self._run(store)
        cache.delete(self._count_key(folder))

    def _into_folder(self, target: str, operation: Callable[[ImapSession], T]) -> T:
        """Run a COPY or MOVE into ``target`` once (never retried)."""
        try:
            return self._run(operation, idempotent=False)
        except FolderNotFound:
            # A folder the cached list may still offer is gone: list them again.
            cache.delete(self._key("folders"))
            raise

    def _run(self, operation: Callable[[ImapSession], T], *, idempotent: bool = True) -> T:
        try:
            return self.sessions.run(self.account, operation, idempotent=idempotent)
        except imaplib.IMAP4.error as exc:
            # A NO or BAD reply: the connection is sound, the request was refused.
            raise ServerRefused(
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
        key = self._key(
            "sorted", _digest(folder), f"{_contents(session, exists)}-{sort}-{int(reverse)}"
        )
        uids: list[int] | None = cache.get(key)
        if uids is None:
            if session.has("SORT"):
                uids = session.client.sort(_sort_program(session, sort, reverse))
            else:
                uids = _sort_locally(session, sort, reverse)
            cache.set(key, uids, SORTED_TTL)
        return uids

    def _threads(self, session: ImapSession, folder: str, exists: int) -> list[tuple[int, ...]]:
        """Every thread of the selected folder as its UIDs, oldest first; the thread with
        the newest message first. Cached by the folder's contents.

        With THREAD=REFERENCES the server groups them (RFC 5256). Without it every
        message's threading headers are fetched and grouped here: on a folder of
        100,000 messages that is some 30 MB from the server and a few seconds of
        parsing and threading, paid again whenever a message comes or goes.
        """
        if not exists:
            return []
        key = self._key("threads", _digest(folder), _contents(session, exists))
        threads: list[tuple[int, ...]] | None = cache.get(key)
        if threads is None:
            if session.has("THREAD=REFERENCES"):
                groups = [_thread_uids(t) for t in session.client.thread("REFERENCES", "ALL")]
            else:
                groups = thread(_thread_headers(session))
            # The newest message by arrival puts its thread first, as the plain list does.
            threads = sorted((tuple(sorted(g)) for g in groups if g), key=max, reverse=True)
            cache.set(key, threads, THREADS_TTL)
        return threads


# Folders ----------------------------------------------------------------------


def _list_folders(
    session: ImapSession, *, pattern: str = "*", status: bool = False
) -> tuple[list[Folder], dict[str, tuple[int, int]]]:
    """LIST, with special uses and (RFC 5819) unread counts in the same reply when asked."""
    client = session.client
    returns = []
    if session.has("SPECIAL-USE"):
        returns.append(b"SPECIAL-USE")
    if session.has("LIST-EXTENDED"):
        returns.append(b"SUBSCRIBED")  # RFC 5258: \Subscribed among the attributes
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
    subscribed = None
    if not session.has("LIST-EXTENDED") and pattern == "*":
        subscribed = {name for __, __, name in client.list_sub_folders()}
    folders = [
        _folder(flags, delimiter, name, session, subscribed) for flags, delimiter, name in listed
    ]
    return _ordered(folders), statuses


def storage_quota(quotas: Iterable[Any]) -> Quota | None:
    """The STORAGE resource of a GETQUOTAROOT reply (in units of 1024 bytes), if limited."""
    for quota in quotas:
        if str(quota.resource).upper() == "STORAGE" and quota.limit:
            return Quota(used=quota.usage * 1024, limit=quota.limit * 1024)
    return None


def _leave(session: ImapSession, name: str, delimiter: str) -> None:
    """Select INBOX instead of ``name`` or a folder inside it, before it is renamed or deleted.

    Dovecot drops a connection whose selected folder is renamed or deleted under it.
    """
    selected = session.folder
    if selected is not None and (
        selected == name or (delimiter and selected.startswith(name + delimiter))
    ):
        session.select(INBOX, readonly=False)


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
    flags: Iterable[bytes],
    delimiter: bytes | None,
    name: str,
    session: ImapSession,
    subscriptions: set[str] | None = None,
) -> Folder:
    """A listed folder; ``subscriptions`` (from LSUB) when LIST cannot say which are."""
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
        subscribed=(
            b"\\subscribed" in lowered
            if session.has("LIST-EXTENDED")
            else subscriptions is None or name in subscriptions
        ),
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


def _contents(session: ImapSession, exists: int) -> str:
    """What names the selected folder's contents exactly, for cache keys.

    UIDs only grow, so the count and the last UID change whenever a message comes
    or goes: together with UIDVALIDITY they name the contents.
    """
    last = _fetch_by_sequence(session, str(exists), ["UID"])
    last_uid = last[exists][b"UID"] if exists in last else 0
    state = session.state
    return f"{state.uidvalidity if state else 0}-{exists}-{last_uid}"


def _thread_uids(tree: Any) -> list[int]:
    """The UIDs of one thread of a THREAD reply, whose nesting says who answers whom."""
    found: list[int] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, tuple | list):
            stack.extend(node)
        else:
            found.append(int(node))
    return found


def _thread_headers(session: ImapSession) -> list[ThreadHeaders]:
    """For servers without THREAD: the threading headers of every message, in one FETCH."""
    section = f"BODY.PEEK[HEADER.FIELDS ({' '.join(THREAD_HEADERS)})]"
    response = _fetch_by_sequence(session, "1:*", ["UID", "INTERNALDATE", section])
    return [
        read_headers(
            data[b"UID"],
            next((v for k, v in data.items() if k.startswith(b"BODY[")), b"") or b"",
            _aware(data[b"INTERNALDATE"]) if data.get(b"INTERNALDATE") else None,
        )
        for data in response.values()
        if b"UID" in data
    ]


def _conversations(session: ImapSession, threads: list[tuple[int, ...]]) -> list[Conversation]:
    """The conversations of a page: summaries of the first and newest messages of each
    thread (CONVERSATION_DETAIL), only the flags of the others."""
    detailed = [
        t if len(t) <= CONVERSATION_DETAIL else (t[0], *t[1 - CONVERSATION_DETAIL :])
        for t in threads
    ]
    wanted = sorted({uid for shown in detailed for uid in shown})
    response = session.client.fetch(wanted, list(SUMMARY_ITEMS)) if wanted else {}
    others = sorted({uid for t in threads for uid in t} - set(wanted))
    flags = session.client.fetch(others, ["FLAGS"]) if others else {}
    conversations = []
    for uids, shown in zip(threads, detailed, strict=True):
        summaries = [
            _summary(uid, response[uid]) for uid in shown if b"ENVELOPE" in response.get(uid, {})
        ]
        unread = sum(
            uid in flags and b"\\seen" not in {f.lower() for f in flags[uid].get(b"FLAGS", ())}
            for uid in uids
            if uid not in shown
        )
        conversation = Conversation.of(uids, summaries, unread_others=unread)
        if conversation is not None:
            conversations.append(conversation)
    return conversations


def _summaries_by_uid(session: ImapSession, uids: list[int]) -> list[MessageSummary]:
    if not uids:
        return []
    response = session.client.fetch(uids, list(SUMMARY_ITEMS))
    return [_summary(uid, response[uid]) for uid in uids if b"ENVELOPE" in response.get(uid, {})]


def _sort_program(session: ImapSession, sort: str, reverse: bool) -> list[str]:
    """The SORT criteria (RFC 5256) of an order."""
    criteria = [SORT_KEYS[sort]]
    if sort == "from" and session.has("SORT=DISPLAY"):
        criteria = ["DISPLAYFROM"]  # RFC 5957: by the name a person sees
    return ["REVERSE", *criteria] if reverse else criteria


def _sort_locally(
    session: ImapSession, sort: str, reverse: bool, *, uids: list[int] | None = None
) -> list[int]:
    """For servers without SORT: fetch the one header needed for every message (or for
    those of ``uids`` only), and sort."""
    header = {"date": "DATE", "from": "FROM", "subject": "SUBJECT"}.get(sort)
    items = ["UID", "RFC822.SIZE"] if sort == "size" else ["UID", "INTERNALDATE"]
    if header:
        items.append(f"BODY.PEEK[HEADER.FIELDS ({header})]")
    if uids is None:
        fetched = _fetch_by_sequence(session, "1:*", items).values()
        response = {data[b"UID"]: data for data in fetched if b"UID" in data}
    else:
        fetched = session.client.fetch(uids, items) if uids else {}
        response = {uid: fetched[uid] for uid in uids if uid in fetched}

    def key(uid: int) -> tuple:
        data = response[uid]
        if sort == "size":
            value: Any = data.get(b"RFC822.SIZE", 0)
        else:
            raw = next((v for k, v in data.items() if k.startswith(b"BODY[")), b"") or b""
            value = _sort_value(sort, _header_value(raw), data.get(b"INTERNALDATE"))
        return (value, uid)  # ties in arrival order, as SORT does

    return sorted(response, key=key, reverse=reverse)


def _search_uids(session: ImapSession, criteria: list[bytes], exists: int) -> list[int]:
    """UID SEARCH of the selected folder, which holds ``exists`` messages.

    With ESEARCH (RFC 4731), RETURN (ALL) has the server answer with a compact
    set ("1:4000,4002") rather than every UID spelt out; COUNT would add nothing
    that set does not say. Sent as a raw command: imapclient's search() would
    quote the already quoted strings again.
    """
    charset = imap_charset(criteria)
    arguments = [b"CHARSET", charset, *criteria] if charset else criteria
    client = session.client
    with _patient(session):
        if session.has("ESEARCH"):
            lines = client._raw_command_untagged(
                b"SEARCH", [b"RETURN", b"(ALL)", *arguments], response_name="ESEARCH"
            )
            return parse_esearch(lines[-1], limit=exists)
        return list(parse_message_list(client._raw_command_untagged(b"SEARCH", arguments)))


def _sort_found(session: ImapSession, criteria: list[bytes], program: list[str]) -> list[int]:
    """UID SORT (RFC 5256) of the messages of the selected folder that match ``criteria``."""
    order = b"(" + " ".join(program).encode("ascii") + b")"
    # Unlike SEARCH, SORT always names a charset.
    charset = imap_charset(criteria) or b"US-ASCII"
    with _patient(session):
        found = session.client._raw_command_untagged(
            b"SORT", [order, charset, *criteria], unpack=True
        )
    return [int(uid) for uid in (found or b"").split()]


@contextmanager
def _patient(session: ImapSession) -> Iterator[None]:
    """Wait up to SEARCH_TIMEOUT for the server's answer, then as long as before."""
    sock = session.client.socket()
    previous = sock.gettimeout()
    sock.settimeout(SEARCH_TIMEOUT)
    try:
        yield
    finally:
        sock.settimeout(previous)


def _selected_last(session: ImapSession, names: Iterable[str]) -> list[str]:
    """``names``, the folder the session has selected last: it stays selected afterwards,
    which spares the next page of that folder a SELECT."""
    return sorted(names, key=lambda name: name == session.folder)


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


def _expunge(session: ImapSession, messages: list[int] | str) -> None:
    """Remove these messages of the selected folder, and no other.

    With UIDPLUS, UID EXPUNGE (RFC 4315) removes exactly these. Without it they
    are only marked \\Deleted: a plain EXPUNGE would also remove whatever other
    messages the person (or another program) marked deleted and still keeps,
    as clients that show deleted messages struck through let them do.
    """
    session.client.add_flags(messages, [DELETED], silent=True)
    if session.has("UIDPLUS"):
        session.client.uid_expunge(messages)


def _message_set(uids: Uids) -> list[int] | str:
    """What imapclient sends for ``uids``: a list, or a set checked to be one of UIDs."""
    if isinstance(uids, str):
        uid_ranges(uids)  # a ValueError for anything but a set of UIDs
        return uids
    return list(uids)


def _select_for(session: ImapSession, folder: str, messages: list[int] | str) -> SelectState:
    """Select ``folder`` for a command by UID on ``messages``, seeing every one they name.

    A session sees only the mail the server has told it of, and a command by UID
    skips the rest: a set such as ALL, or a UID this session has not seen yet (the
    page showing it came from another), needs its view brought up to date first.
    """
    state = session.select(folder, readonly=False, refresh=False)
    if isinstance(messages, str) or state.uidnext is None or max(messages) >= state.uidnext:
        state = session.select(folder, readonly=False)
    return state


@contextmanager
def _patience(session: ImapSession, messages: list[int] | str) -> Iterator[None]:
    """Wait for as long as a command on a set such as ALL may take, not the usual seconds."""
    if not isinstance(messages, str):
        yield
        return
    sock = session.client.socket()
    usual = sock.gettimeout()
    sock.settimeout(BULK_TIMEOUT)
    try:
        yield
    finally:
        with suppress(OSError):  # a broken connection is dropped anyway
            sock.settimeout(usual)


@contextmanager
def _into(session: ImapSession, target: str) -> Iterator[None]:
    """FolderNotFound for a COPY or MOVE refused because ``target`` does not exist."""
    try:
        yield
    except imaplib.IMAP4.error as exc:
        # RFC 3501: [TRYCREATE] says the target does not exist; servers that do
        # not send it are asked.
        if isinstance(exc, imaplib.IMAP4.abort) or (
            "[TRYCREATE]" not in server_reply(exc).upper() and session.client.folder_exists(target)
        ):
            raise
        raise FolderNotFound(_("The folder %(name)s does not exist.") % {"name": target}) from None


def _copied(session: ImapSession, target: str) -> Moved | None:
    """Where the last COPY or MOVE put the messages, from its COPYUID (RFC 4315).

    imaplib files the response code of the tagged reply (COPY) and of the untagged
    one that MOVE sends before its expunges alike; None without UIDPLUS.
    """
    replies = session.client._imap.untagged_responses.pop("COPYUID", [])
    found = [_text(reply).split() for reply in replies if reply]
    if not session.has("UIDPLUS") or not found or any(len(parts) != 3 for parts in found):
        return None
    if len({parts[0] for parts in found}) != 1 or not found[0][0].isdigit():
        return None
    uids = ",".join(parts[2] for parts in found)
    try:
        if any(high is None for __, high in uid_ranges(uids)):
            return None  # new UIDs are numbers, never "*"
    except ValueError:
        return None
    return Moved(folder=target, uidvalidity=int(found[0][0]), uids=uids)


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
