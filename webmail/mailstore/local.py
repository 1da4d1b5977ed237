"""LocalStore: the mail Facteur keeps itself for a POP3 account, behind the MailStore protocol.

Messages are LocalMessage rows whose headers were indexed when stored, so lists
and counts are database queries that never read a message's bytes.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Sequence
from typing import TYPE_CHECKING

from django.db import connections, transaction
from django.db.models import Count, F, Max, Min, Q, QuerySet, Value
from django.db.models.functions import Coalesce, Lower
from django.utils.translation import gettext as _

from webmail.compose.composition import message_ids
from webmail.mailstore.base import (
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
    Uids,
    is_protected,
    uid_ranges,
    uid_set,
)
from webmail.mime.headers import Address, parse_addresses
from webmail.models import LocalFolder, LocalMailbox, LocalMessage
from webmail.threads import ThreadHeaders, reference_ids, thread

if TYPE_CHECKING:
    from accounts.models import MailAccount
    from webmail.search import SearchQuery

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
#: Where a search of every folder does not look unless asked to, as Gmail has it.
_SEARCH_SKIPS = (SPECIAL_FOLDERS["\\Trash"], SPECIAL_FOLDERS["\\Junk"])

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
        subscribed = dict(self._folder_rows().values_list("name", "subscribed"))
        names = list(SPECIAL_FOLDERS.values()) + sorted(
            {*counts, *subscribed} - _SPECIAL_BY_NAME.keys(), key=_path_key
        )
        return [
            self._folder(name, *counts.get(name, (0, 0)), subscribed=subscribed.get(name, True))
            for name in names
        ]

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
        if not total and not self._exists(folder):
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

    def conversations(self, folder: str, number: int, *, per_page: int) -> Page[Conversation]:
        rows = self._messages().filter(folder=folder)
        threads = _threads(rows)
        if not threads and not self._exists(folder):
            raise _folder_not_found(folder)
        current = min(max(1, number), max(1, math.ceil(len(threads) / per_page)))
        start = (current - 1) * per_page
        shown = threads[start : start + per_page]
        wanted = [uid for uids in shown for uid in uids]
        summaries = {
            row.uid: _summary(row) for row in rows.filter(uid__in=wanted).only(*_SUMMARY_FIELDS)
        }
        items = [
            Conversation.of(uids, [summaries[uid] for uid in uids if uid in summaries])
            for uids in shown
        ]
        unread = rows.filter(seen=False).count()
        return Page(
            folder=self._folder(folder, unread, sum(map(len, threads))),
            items=[item for item in items if item is not None],
            number=current,
            per_page=per_page,
            total=len(threads),
        )

    def thread_uids(self, folder: str, uid: int) -> list[int]:
        rows = self._messages().filter(folder=folder)
        found = next((uids for uids in _threads(rows) if uid in uids), None)
        if found is None:
            raise MessageNotFound(
                _("This message no longer exists: it may have been moved or deleted.")
            )
        return list(found)

    def related_uids(
        self, folder: str, message_ids: Sequence[str], referenced: Sequence[str]
    ) -> list[int]:
        terms = [Q(message_id__in=list(referenced))] if referenced else []
        terms += [Q(in_reply_to__contains=m) | Q(references__contains=m) for m in message_ids]
        if not terms:
            return []
        rows = self._messages().filter(functools.reduce(operator.or_, terms), folder=folder)
        return sorted(rows.values_list("uid", flat=True))

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

    def delete(self, folder: str, uids: Uids) -> None:
        """Remove these messages in one DELETE; their UIDLs stay, so a fetch never brings
        them back."""
        if uids:
            self._selected(folder, uids).delete()

    def move(
        self, folder: str, uids: Uids, target: str, *, uidvalidity: int | None = None
    ) -> Moved | None:
        """Move these messages to ``target`` in one UPDATE.

        A message keeps its UID: UIDs come from one counter for the whole account,
        so no other message of ``target`` has it, and (folder, UID) still names
        one message. Moving them back is moving the same UIDs back.
        """
        if not self._exists(target):
            raise _folder_not_found(target)
        if uidvalidity is not None and uidvalidity != UIDVALIDITY:
            raise MessageNotFound(
                _("These messages are no longer in %(folder)s.") % {"folder": folder}
            )
        if not uids or target == folder:
            return None
        rows = self._selected(folder, uids)
        if not isinstance(uids, str):
            rows.update(folder=target)
            return Moved(folder=target, uidvalidity=UIDVALIDITY, uids=uid_set(uids))
        # A set such as ALL: the UIDs it stands for now, to move them back. Mail
        # stored meanwhile has higher UIDs and stays where it is.
        moved = list(rows.order_by("uid").values_list("uid", flat=True))
        if not moved:
            return None
        rows.filter(uid__lte=moved[-1]).update(folder=target)
        return Moved(folder=target, uidvalidity=UIDVALIDITY, uids=uid_set(moved))

    def copy(self, folder: str, uids: Uids, target: str) -> None:
        """Copy these messages to ``target`` in one INSERT … SELECT.

        The copies' UIDs are the originals' plus one offset, within a block taken
        from the account's counter: new, unique, and in the same order.
        """
        if not self._exists(target):
            raise _folder_not_found(target)
        if not uids:
            return
        rows = self._selected(folder, uids)
        bounds = rows.aggregate(low=Min("uid"), high=Max("uid"))
        low, high = bounds["low"], bounds["high"]
        if low is None:
            return
        span = high - low + 1
        LocalMailbox.objects.get_or_create(account_id=self.account.pk)
        with transaction.atomic():
            # The write first, as in allocate_uid, so that SQLite locks before reading.
            counter = LocalMailbox.objects.filter(pk=self.account.pk)
            counter.update(next_uid=F("next_uid") + span)
            first = counter.values_list("next_uid", flat=True).get() - span
            _insert_copies(rows.filter(uid__range=(low, high)), target, offset=first - low)

    def add_flags(self, folder: str, uids: Uids, flags: Sequence[str]) -> None:
        self._set_flags(folder, uids, flags, True)

    def remove_flags(self, folder: str, uids: Uids, flags: Sequence[str]) -> None:
        self._set_flags(folder, uids, flags, False)

    def empty_folder(self, folder: str) -> None:
        self._messages().filter(folder=folder).delete()

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
        """The matching rows, a page at a time in SQL; every folder at once as easily as one."""
        if sort not in SORT_FIELDS:
            raise ValueError(f"Unknown sort order {sort!r}")
        rows = self._messages()
        if folder is not None:
            if not self._exists(folder):
                raise _folder_not_found(folder)
            rows = rows.filter(folder=folder)
        elif not query.include_trash:
            for skipped in _SEARCH_SKIPS:
                rows = rows.exclude(_in_subtree("folder", skipped))
        rows = rows.alias(sent=Coalesce("date", "received")).filter(_matching(query))
        total = rows.count()
        current = min(max(1, number), max(1, math.ceil(total / per_page)))
        # UIDs come from one counter for the whole account: UID order is arrival order
        # across folders too.
        order = [field.desc() if reverse else field.asc() for field in SORT_FIELDS[sort]]
        start = (current - 1) * per_page
        shown = rows.only("folder", *_SUMMARY_FIELDS).order_by(*order)[start : start + per_page]
        return SearchResults(
            hits=[SearchHit(row.folder, _summary(row)) for row in shown],
            number=current,
            per_page=per_page,
            total=total,
            found=total,
        )

    # Folder management ---------------------------------------------------------

    def create_folder(self, name: str) -> None:
        if self._exists(name):
            raise MailStoreError(_("There is already a folder called %(name)s.") % {"name": name})
        LocalFolder.objects.create(account=self.account, name=name)

    def rename_folder(self, name: str, new_name: str) -> None:
        """Rename the folder and its subfolders, in the messages' rows and the folders' own."""
        self._check_changeable(name)
        if self._exists(new_name):
            raise MailStoreError(
                _("There is already a folder called %(name)s.") % {"name": new_name}
            )
        if new_name.startswith(name + DELIMITER):
            raise MailStoreError(_("A folder cannot go inside itself."))
        with transaction.atomic():
            for rows, field in ((self._messages(), "folder"), (self._folder_rows(), "name")):
                rows = rows.filter(_in_subtree(field, name))
                for old in list(rows.order_by().values_list(field, flat=True).distinct()):
                    rows.filter(**{field: old}).update(**{field: new_name + old[len(name) :]})

    def delete_folder(self, name: str) -> None:
        """Delete the folder, its subfolders and their messages (whose UIDLs stay)."""
        self._check_changeable(name)
        with transaction.atomic():
            self._messages().filter(_in_subtree("folder", name)).delete()
            self._folder_rows().filter(_in_subtree("name", name)).delete()

    def subscribe(self, name: str) -> None:
        self._set_subscribed(name, True)

    def unsubscribe(self, name: str) -> None:
        self._set_subscribed(name, False)

    def quota(self, *, max_age: float | None = None) -> Quota | None:
        """Facteur sets no limit on the mail it keeps."""
        return None

    # Helpers ------------------------------------------------------------------

    def _messages(self):
        return LocalMessage.objects.filter(account=self.account)

    def _selected(self, folder: str, uids: Uids) -> QuerySet[LocalMessage]:
        return self._messages().filter(folder=folder).filter(_uid_filter(uids))

    def _set_flags(self, folder: str, uids: Uids, flags: Sequence[str], value: bool) -> None:
        """One UPDATE of the flags kept as columns; the others are not kept."""
        fields = {_FLAG_FIELDS[f.lower()]: value for f in flags if f.lower() in _FLAG_FIELDS}
        if uids and fields:
            self._selected(folder, uids).update(**fields)

    def _folder_rows(self):
        return LocalFolder.objects.filter(account=self.account)

    def _exists(self, folder: str) -> bool:
        return (
            folder in _SPECIAL_BY_NAME
            or self._folder_rows().filter(name=folder).exists()
            or self._messages().filter(folder=folder).exists()
        )

    def _check_changeable(self, name: str) -> None:
        if not self._exists(name):
            raise _folder_not_found(name)
        if is_protected(self.folders(), name):
            raise FolderProtected(
                _("Special-use folders are protected: they cannot be renamed or deleted.")
            )

    def _set_subscribed(self, name: str, subscribed: bool) -> None:
        if not self._exists(name):
            raise _folder_not_found(name)
        LocalFolder.objects.update_or_create(
            account=self.account, name=name, defaults={"subscribed": subscribed}
        )

    def _folder(self, name: str, unread: int, total: int, *, subscribed: bool = True) -> Folder:
        return Folder(
            name=name,
            delimiter=DELIMITER,
            special_use=_SPECIAL_BY_NAME.get(name),
            unread=unread,
            total=total,
            subscribed=subscribed,
        )


def _in_subtree(field: str, name: str) -> Q:
    """The rows of folder ``name`` and of the folders inside it."""
    return Q(**{field: name}) | Q(**{f"{field}__startswith": name + DELIMITER})


def _threads(rows) -> list[tuple[int, ...]]:
    """The threads of these rows, newest message's first, each oldest first.

    Made from the indexed columns, never from the messages' bytes, on every call:
    one query of short rows, then about a second of threading per 100,000
    messages; the folders of a POP3 account are far smaller.
    """
    fields = ("uid", "message_id", "in_reply_to", "references", "subject", "date", "received")
    headers = [
        ThreadHeaders(
            uid=uid,
            message_id=next(iter(message_ids(message_id)), None),
            references=reference_ids(references, in_reply_to),
            subject=subject,
            date=date or received,
        )
        for uid, message_id, in_reply_to, references, subject, date, received in rows.order_by()
        .values_list(*fields)
        .iterator()
    ]
    return sorted((tuple(sorted(uids)) for uids in thread(headers)), key=max, reverse=True)


def _matching(query: SearchQuery) -> Q:
    """The rows that match ``query`` (its scope aside), with ``sent`` aliased to the date shown.

    Headers are compared with icontains: on PostgreSQL in any case, on SQLite in
    any case of ASCII letters only (its LIKE folds no other). The body's text is
    kept casefolded, so a body search ignores case on every database.
    """
    conditions = [Q()]
    for word in query.words:
        conditions.append(
            Q(subject__icontains=word)
            | Q(sender__icontains=word)
            | Q(sender_email__icontains=word)
            | Q(recipients__icontains=word)
            | Q(body_text__contains=word.casefold())
        )
    conditions += [Q(sender__icontains=w) | Q(sender_email__icontains=w) for w in query.sender]
    # Bcc is not kept: only To and Cc are.
    conditions += [Q(recipients__icontains=word) for word in query.recipient]
    conditions += [Q(subject__icontains=word) for word in query.subject]
    conditions += [Q(body_text__contains=word.casefold()) for word in query.body]
    if query.after:
        conditions.append(Q(sent__date__gte=query.after))
    if query.before:
        conditions.append(Q(sent__date__lt=query.before))
    if query.has_attachment:
        conditions.append(Q(has_attachments=True))
    if query.unread:
        conditions.append(Q(seen=False))
    if query.flagged:
        conditions.append(Q(flagged=True))
    if query.larger is not None:
        conditions.append(Q(size__gt=query.larger))
    if query.smaller is not None:
        conditions.append(Q(size__lt=query.smaller))
    return functools.reduce(operator.and_, conditions)


def _path_key(name: str) -> list[str]:
    return [part.casefold() for part in name.split(DELIMITER)]


def _uid_filter(uids: Uids) -> Q:
    """The rows of these UIDs: a list, or the ranges of an RFC 3501 set (ALL: every row)."""
    if not isinstance(uids, str):
        return Q(uid__in=list(uids))
    return functools.reduce(
        operator.or_,
        (
            Q(uid__gte=low) if high is None else Q(uid__range=(low, high))
            for low, high in uid_ranges(uids)
        ),
    )


def _insert_copies(rows: QuerySet[LocalMessage], folder: str, offset: int) -> None:
    """Copies of ``rows`` in ``folder`` with their UIDs raised by ``offset``, in one
    INSERT … SELECT: no message's bytes pass through Python."""
    fields = [f for f in LocalMessage._meta.concrete_fields if not f.primary_key]
    changed = {
        "folder": Value(folder, output_field=LocalMessage._meta.get_field("folder")),
        "uid": F("uid") + offset,
    }
    # Aliases that name no field keep the columns in the order given.
    select = rows.order_by().values(
        **{f"copy_{f.attname}": changed.get(f.name, F(f.attname)) for f in fields}
    )
    sql, params = select.query.get_compiler(using=rows.db).as_sql()
    connection = connections[rows.db]
    table = connection.ops.quote_name(LocalMessage._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table} ({columns}) {sql}", params)


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
