"""Fetching a POP3 account, each message exactly once.

A message is recognised by its UIDL (RFC 1939). Each new one is retrieved and
handed to the account's sink (``pop3sink``): Facteur's own store, or a folder
of an IMAP account of the same person. The sink records the UIDL in step with
storing the message, so a fetch that stops anywhere keeps what it stored and
the next one carries on: nothing is lost, nothing is stored twice. Fetches of
one account take turns through a lease on its LocalMailbox row, which holds
across processes on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import logging
import poplib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import MailAccount, Protocol
from webmail.mailstore.base import MailStoreError
from webmail.models import LocalMailbox, Pop3Uidl
from webmail.pop3sink import DeliveryRefused, Sink, sink_for
from webmail.transport.endpoint import Endpoint
from webmail.transport.pop3 import POP3_ERRORS, close_quietly, open_pop3, pop3_problem, pop3_reply

logger = logging.getLogger(__name__)

#: How long a fetch holds its account without storing a message before another may start.
LEASE = timedelta(minutes=10)

#: RFC 1939: a UIDL is 1 to 70 characters in the range 0x21 to 0x7E.
_UIDL_MAX = 70

#: Rows updated per statement, within every database's bound on parameters.
_BATCH = 500


@dataclass(frozen=True)
class FetchResult:
    new: int  # messages stored by this fetch
    deleted: int  # messages deleted from the server
    total_on_server: int
    kept_aside: int = 0  # refused by the IMAP account too often: kept by Facteur instead
    refusal: str = ""  # why the IMAP account refused a message it is offered again


class FetchError(Exception):
    """A fetch that could not be done; ``message`` says why, for a person."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class FetchInProgress(FetchError):
    """Another fetch of the same account is running."""

    def __init__(self) -> None:
        super().__init__(_("This account is being fetched already."))


def parse_uidl_listing(lines: Iterable[bytes]) -> list[tuple[int, str]]:
    """The (message number, UIDL) pairs of a UIDL listing, in order.

    Lines that do not follow RFC 1939 are left out, and so is any repeat of a
    UIDL: a message that cannot be told apart from another is not fetched.
    """
    pairs: list[tuple[int, str]] = []
    seen: set[str] = set()
    for line in lines:
        number, _sep, uidl = line.strip().partition(b" ")
        uidl = uidl.strip()
        if not number.isdigit() or not 0 < len(uidl) <= _UIDL_MAX:
            continue
        if any(byte < 0x21 or byte > 0x7E for byte in uidl):
            continue
        text = uidl.decode("ascii")
        if text not in seen:
            seen.add(text)
            pairs.append((int(number), text))
    return pairs


def parse_scan_listing(lines: Iterable[bytes]) -> dict[int, int]:
    """Message number -> size in octets, from a LIST listing; lines that do not parse are out."""
    sizes: dict[int, int] = {}
    for line in lines:
        fields = line.split()
        if len(fields) >= 2 and fields[0].isdigit() and fields[1].isdigit():
            sizes[int(fields[0])] = int(fields[1])
    return sizes


def message_bytes(lines: list[bytes]) -> bytes:
    """A message as RETR or TOP gave it (dot-unstuffed lines), with CRLF line ends."""
    return b"".join(line + b"\r\n" for line in lines)


class _Lease:
    """The account's fetch lease; its expiry doubles as the holder's token."""

    def __init__(self, account_id: int, until: datetime) -> None:
        self.account_id = account_id
        self.until = until

    @classmethod
    def claim(cls, account_id: int) -> _Lease:
        LocalMailbox.objects.get_or_create(account_id=account_id)
        now = timezone.now()
        until = now + LEASE
        free = Q(fetching_until__isnull=True) | Q(fetching_until__lt=now)
        if not LocalMailbox.objects.filter(free, pk=account_id).update(fetching_until=until):
            raise FetchInProgress
        MailAccount.objects.filter(pk=account_id).update(pop3_last_fetch=now)
        return cls(account_id, until)

    @contextmanager
    def renewed(self) -> Iterator[None]:
        """A transaction that first renews the lease; FetchInProgress when another fetch has it."""
        until = timezone.now() + LEASE
        with transaction.atomic():
            # The write comes first, so that SQLite takes its write lock before anything is read.
            renewed = LocalMailbox.objects.filter(
                pk=self.account_id, fetching_until=self.until
            ).update(fetching_until=until)
            if not renewed:
                raise FetchInProgress
            yield
        self.until = until

    def release(self) -> None:
        LocalMailbox.objects.filter(pk=self.account_id, fetching_until=self.until).update(
            fetching_until=None
        )


def fetch(
    account: MailAccount, *, progress: Callable[[int, int], None] | None = None
) -> FetchResult:
    """Fetch the new messages of POP3 ``account``, then delete the old ones if it says so.

    ``progress(done, total)`` is called once before the first new message and
    after each one is stored. Raises FetchInProgress when another fetch of the
    account is running, FetchError when the server cannot be fetched from
    without guessing or the IMAP account it delivers into fails, and
    ConnectionProblem when it cannot be reached or the connection fails; what
    was stored before then stays stored.
    """
    if account.protocol != Protocol.POP3:
        raise ValueError("Only a POP3 account is fetched.")
    lease = _Lease.claim(account.pk)
    try:
        endpoint = account.incoming_endpoint()
        client = open_pop3(endpoint)
        try:
            result = _Fetch(account, client, endpoint, lease, progress).run()
        except BaseException:
            # Without QUIT the server forgets any DELE: nothing leaves it unrecorded.
            close_quietly(client, quit=False)
            raise
    finally:
        lease.release()
    logger.info(
        "POP3 account %s: %s new, %s kept aside, %s deleted from the server, %s on it.",
        account.pk,
        result.new,
        result.kept_aside,
        result.deleted,
        result.total_on_server,
    )
    return result


class _Fetch:
    def __init__(
        self,
        account: MailAccount,
        client: poplib.POP3,
        endpoint: Endpoint,
        lease: _Lease,
        progress: Callable[[int, int], None] | None,
    ) -> None:
        self.account = account
        self.client = client
        self.endpoint = endpoint
        self.lease = lease
        self.progress = progress or (lambda done, total: None)

    def run(self) -> FetchResult:
        sink = sink_for(self.account, self.lease.renewed)
        try:
            listing = self.listing()
            sizes = parse_scan_listing(self.client.list()[1])
            states = dict(
                Pop3Uidl.objects.filter(account=self.account).values_list("uidl", "state")
            )
            # New, or left half delivered by a fetch that stopped.
            new = [
                (number, uidl)
                for number, uidl in listing
                if states.get(uidl, Pop3Uidl.State.DELIVERING) == Pop3Uidl.State.DELIVERING
            ]
            stored = kept_aside = 0
            refusal = ""
            self.progress(0, len(new))
            for done, (number, uidl) in enumerate(new, start=1):
                try:
                    stored += self.fetch_one(sink, number, uidl, sizes.get(number), uidl in states)
                except DeliveryRefused as refused:
                    # The mail behind it goes on; this one is offered again, or kept aside.
                    kept_aside += refused.kept_aside
                    if not refused.kept_aside:
                        refusal = refused.reason
                self.progress(done, len(new))
            doomed = self.delete_old(listing)
            self.client.quit()  # the server deletes at QUIT, and only then
        except POP3_ERRORS as exc:
            raise pop3_problem(exc, self.endpoint) from None
        except MailStoreError as exc:
            # Only a sink that delivers into an IMAP account talks to a mail store.
            raise FetchError(
                _("The mail could not be delivered into %(account)s (%(folder)s): %(reason)s")
                % {
                    "account": self.account.delivers_into,
                    "folder": self.account.pop3_deliver_folder,
                    "reason": exc,
                }
            ) from exc
        self.mark_deleted(doomed)
        return FetchResult(
            new=stored,
            deleted=len(doomed),
            total_on_server=len(listing),
            kept_aside=kept_aside,
            refusal=refusal,
        )

    def listing(self) -> list[tuple[int, str]]:
        try:
            lines = self.client.uidl()[1]
        except poplib.error_proto as exc:
            if pop3_reply(exc) == "EOF":
                raise
            raise FetchError(
                _(
                    "%(host)s does not give messages unique identifiers (UIDL), without which "
                    "Facteur cannot tell new mail from mail it already has."
                )
                % {"host": self.endpoint.host}
            ) from None
        return parse_uidl_listing(lines)

    def fetch_one(
        self, sink: Sink, number: int, uidl: str, size: int | None, resumed: bool
    ) -> bool:
        partial = sink.headers_only(size)
        if partial:
            raw = message_bytes(self.client.top(number, 0)[1])
        else:
            raw = message_bytes(self.client.retr(number)[1])
        return sink.put(uidl, raw, size=size, partial=partial, resumed=resumed)

    def delete_old(self, listing: list[tuple[int, str]]) -> list[str]:
        """DELE the messages fetched long enough ago; the UIDLs marked for deletion."""
        days = self.account.pop3_delete_after_days
        if days is None:
            return []
        cutoff = timezone.now() - timedelta(days=days)
        # A message not yet known to be in its IMAP folder stays on the server.
        old = set(
            Pop3Uidl.objects.filter(
                account=self.account, deleted_from_server=False, first_seen__lt=cutoff
            )
            .exclude(state=Pop3Uidl.State.DELIVERING)
            .values_list("uidl", flat=True)
        )
        doomed = []
        for number, uidl in listing:
            if uidl in old:
                self.client.dele(number)
                doomed.append(uidl)
        return doomed

    def mark_deleted(self, uidls: list[str]) -> None:
        for start in range(0, len(uidls), _BATCH):
            Pop3Uidl.objects.filter(
                account=self.account, uidl__in=uidls[start : start + _BATCH]
            ).update(deleted_from_server=True)
