"""Where a message fetched over POP3 goes: Facteur's own store, or an IMAP folder.

A fetch hands each message to the sink of its account with its UIDL; the sink
records the UIDL so that the message is never fetched again, in step with
storing the message, and says whether it took the message. Each of its
database writes is made inside ``renewed()``, the fetch's lease renewed in the
same transaction, so that a fetch that lost its lease stops before writing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol

from django.conf import settings
from django.db import IntegrityError
from django.db.models import F
from django.utils import timezone

from accounts.models import MailAccount
from webmail.mailstore.base import ServerRefused
from webmail.mailstore.imap import ImapStore
from webmail.mailstore.local import allocate_uid
from webmail.mime.parse import ParseLimits, parse_message
from webmail.models import LocalMessage, Pop3Uidl

logger = logging.getLogger(__name__)

#: A transaction in which the fetch's lease is renewed first.
Renewed = Callable[[], AbstractContextManager[None]]

# Every message is larger than zero bytes: only its headers are read.
_HEADERS_ONLY = ParseLimits(max_message_bytes=0)


class Sink(Protocol):
    def headers_only(self, size: int | None) -> bool:
        """Whether a message of ``size`` octets is to be fetched as its headers alone (TOP)."""

    def put(self, uidl: str, raw: bytes, *, size: int | None, partial: bool, resumed: bool) -> bool:
        """Take the message ``raw`` of ``uidl``; False when it was taken already.

        ``resumed``: the UIDL was left "delivering" by an earlier fetch.
        """


class DeliveryRefused(Exception):
    """The IMAP server refused a message; ``kept_aside`` once Facteur keeps it instead."""

    def __init__(self, reason: str, *, kept_aside: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kept_aside = kept_aside


def sink_for(account: MailAccount, renewed: Renewed) -> Sink:
    target = account.delivers_into
    if target is None:
        return LocalSink(account, renewed)
    return ImapSink(account, target, account.pop3_deliver_folder, renewed)


def _recorded(account: MailAccount, uidl: str) -> bool:
    return Pop3Uidl.objects.filter(account=account, uidl=uidl).exists()


class LocalSink:
    """Keeps each message as a LocalMessage, stored with its UIDL in one transaction."""

    def __init__(self, account: MailAccount, renewed: Renewed) -> None:
        self.account = account
        self.renewed = renewed

    def headers_only(self, size: int | None) -> bool:
        return size is not None and size > settings.POP3_MAX_MESSAGE_BYTES

    def put(self, uidl: str, raw: bytes, *, size: int | None, partial: bool, resumed: bool) -> bool:
        message = LocalMessage.from_bytes(self.account, raw, uid=0, size=size, partial=partial)
        try:
            with self.renewed():
                message.uid = allocate_uid(self.account.pk)
                if resumed:
                    # Left half delivered into an account no longer delivered into:
                    # kept here rather than lost, even if that account has it too.
                    left = Pop3Uidl.objects.filter(
                        account=self.account, uidl=uidl, state=Pop3Uidl.State.DELIVERING
                    )
                    if not left.update(state=Pop3Uidl.State.STORED, first_seen=timezone.now()):
                        return False
                else:
                    Pop3Uidl.objects.create(account=self.account, uidl=uidl)
                message.save()
        except IntegrityError:
            if not _recorded(self.account, uidl):
                raise
            # Stored meanwhile by a fetch that outlived its lease: once is enough.
            return False
        return True


class ImapSink:
    """APPENDs each message, its bytes unchanged, to a folder of an IMAP account.

    The APPEND and the database cannot share a transaction, so the UIDL is
    recorded as delivering before the APPEND and as delivered once the server
    confirmed it. A UIDL the next fetch finds still delivering (a connection
    dropped or the worker died in between) is appended again only if the
    folder does not hold its Message-ID; a message without a Message-ID cannot
    be looked for and is appended again: twice rather than never.

    Messages are fetched whole whatever their size: the folder is the person's
    real mailbox, where a message cut down to its headers would pass for the
    whole one. The IMAP server's own limits apply: a message it refuses (over
    quota, too large) is offered again by the next fetches, and once refused
    ``POP3_DELIVERY_MAX_TRIES`` times it is kept aside, stored by Facteur, so
    that it never holds up the mail behind it.
    """

    def __init__(
        self, account: MailAccount, target: MailAccount, folder: str, renewed: Renewed
    ) -> None:
        self.account = account
        self.folder = folder
        self.renewed = renewed
        # Through the pool, so that the target's bound on connections holds.
        self.store = ImapStore(target)

    def headers_only(self, size: int | None) -> bool:
        return False

    def put(self, uidl: str, raw: bytes, *, size: int | None, partial: bool, resumed: bool) -> bool:
        if resumed:
            message_id = parse_message(raw, limits=_HEADERS_ONLY).message_id
            if message_id and self.store.find_message_id(self.folder, message_id):
                self.mark_delivered(uidl)
                return False
        elif not self.mark_delivering(uidl):
            return False
        try:
            self.store.append(self.folder, raw)
        except ServerRefused as exc:
            kept = self.refused(uidl, raw, size, str(exc))
            raise DeliveryRefused(str(exc), kept_aside=kept) from exc
        self.mark_delivered(uidl)
        return True

    def refused(self, uidl: str, raw: bytes, size: int | None, reason: str) -> bool:
        """Count one more refusal of ``uidl``; whether it is kept aside now, for good."""
        row = Pop3Uidl.objects.filter(
            account=self.account, uidl=uidl, state=Pop3Uidl.State.DELIVERING
        )
        tries = row.values_list("refusals", flat=True).first() or 0
        keep = tries + 1 >= max(1, settings.POP3_DELIVERY_MAX_TRIES)
        # Parsed before the transaction, as LocalSink does: the lease is held meanwhile.
        kept = LocalMessage.from_bytes(self.account, raw, uid=0, size=size) if keep else None
        changes: dict = {"refusals": F("refusals") + 1, "refusal": reason[:500]}
        with self.renewed():
            if kept is not None:
                kept.uid = allocate_uid(self.account.pk)
                kept.save()
                changes.update(state=Pop3Uidl.State.REFUSED, kept_uid=kept.uid)
            row.update(**changes)
        logger.warning(
            "POP3 account %s: message %s refused by the IMAP server (%s time(s))%s.",
            self.account.pk,
            uidl,
            tries + 1,
            ", kept aside" if keep else "",
        )
        return keep

    def mark_delivering(self, uidl: str) -> bool:
        """Record ``uidl`` as being delivered; False when it was recorded meanwhile."""
        try:
            with self.renewed():
                Pop3Uidl.objects.create(
                    account=self.account, uidl=uidl, state=Pop3Uidl.State.DELIVERING
                )
        except IntegrityError:
            if not _recorded(self.account, uidl):
                raise
            return False
        return True

    def mark_delivered(self, uidl: str) -> None:
        # Deletion from the server counts its days from now, when the folder has it.
        with self.renewed():
            Pop3Uidl.objects.filter(
                account=self.account, uidl=uidl, state=Pop3Uidl.State.DELIVERING
            ).update(state=Pop3Uidl.State.DELIVERED, first_seen=timezone.now())
