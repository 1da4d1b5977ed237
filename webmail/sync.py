"""Checking accounts for new mail in the background, for the pages that show them.

A worker checks an account (``check``): every folder's counts and the Inbox's
next UID, through the account's store and so within its connection bound. What
it learns goes into the account's ``SyncState`` row, whose token changes
whenever a page showing the account has something to update; open pages poll
that row, never the mail server. New Inbox messages are opened and sanitised
during the check, so that the person opening one finds it ready.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from accounts.models import MailAccount, Protocol
from webmail import mailstore, reading, trust
from webmail.mailstore.base import (
    Folder,
    FolderStatus,
    MailStore,
    MailStoreError,
    MessageNotFound,
)
from webmail.models import SyncState
from webmail.transport.imap import ConnectionProblem

logger = logging.getLogger(__name__)

INBOX = "INBOX"
#: A check holds its account this long at most; one that takes longer was left by a dead worker.
CHECK_LEASE = timedelta(minutes=2)
#: A fetch's progress is written at most this often, in seconds: a page polls it, no faster.
PROGRESS_INTERVAL = 1.0
#: A check asks for the quota again when what is known of it is older than this, in
#: seconds: GETQUOTAROOT costs up to 185 ms on a big account, and the quota changes slowly.
QUOTA_REFRESH_SECONDS = 300


class CheckInProgress(Exception):
    """Another worker is checking this account now."""


def state_of(account: MailAccount) -> SyncState:
    """The account's row, made when it has none."""
    state, __ = SyncState.objects.get_or_create(account=account)
    return state


def token(folders: Sequence[Folder], inbox: FolderStatus) -> str:
    """A digest of what an open page shows of the account: it changes when any of it does."""
    seen = [[f.name, f.unread, f.total] for f in folders if f.selectable]
    payload = json.dumps([seen, inbox.uidvalidity, inbox.uidnext], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def check(account: MailAccount, *, store: MailStore | None = None) -> SyncState:
    """Ask the account's server what changed and record it; sanitise new Inbox messages.

    Raises CheckInProgress when another check of the account is running. A
    server that cannot be reached is recorded as the state's problem, not raised.
    """
    store = store or mailstore.for_account(account)
    previous = _claim(account)
    try:
        _record(account, store, previous)
    finally:
        SyncState.objects.filter(account=account).update(checking_until=None)
    return state_of(account)


def _record(account: MailAccount, store: MailStore, previous: SyncState) -> None:
    try:
        folders = store.folders(fresh=True)
        inbox = store.folder_status(INBOX)
    except (MailStoreError, ConnectionProblem) as exc:
        logger.info("account %s not checked: %s", account.pk, type(exc).__name__)
        SyncState.objects.filter(account=account).update(
            problem=str(getattr(exc, "message", exc)), checked_at=timezone.now()
        )
        return
    SyncState.objects.filter(account=account).update(
        token=token(folders, inbox),
        inbox_unread=inbox.unread,
        inbox_uidvalidity=inbox.uidvalidity,
        inbox_uidnext=inbox.uidnext,
        checked_at=timezone.now(),
        problem="",
    )
    try:
        store.quota(max_age=QUOTA_REFRESH_SECONDS)
    except (MailStoreError, ConnectionProblem) as exc:
        # The counts were recorded; the page shows the quota it had.
        logger.info("quota of account %s not refreshed: %s", account.pk, type(exc).__name__)
    if previous.inbox_uidvalidity == inbox.uidvalidity and previous.inbox_uidnext:
        newest = range(
            max(previous.inbox_uidnext, inbox.uidnext - settings.MAIL_PRERENDER_COUNT),
            inbox.uidnext,
        )
        prerender(store, account, INBOX, list(reversed(newest)))


def prerender(store: MailStore, account: MailAccount, folder: str, uids: Sequence[int]) -> int:
    """Open, parse and sanitise these messages into the cache the message page reads.

    Returns how many were prepared. A message gone meanwhile is skipped; one that
    cannot be read is left for the page, which says why.
    """
    prepared = 0
    for uid in uids:
        try:
            raw = reading.fetch_raw(store, account, folder, uid)
        except MessageNotFound:
            continue
        parsed = reading.parsed(account, raw)
        reading.sanitised_body(
            account,
            raw,
            parsed,
            allow_remote=trust.remote_content_trusted(account.user, raw.raw, parsed),
            cid_url=reading.cid_url_resolver(account, raw, parsed),
        )
        prepared += 1
    return prepared


def request_check(state: SyncState, *, now=None) -> bool:
    """Whether a check of the state's account is due for an open page; if so, it
    counts as queued.

    Due when neither a check was done nor one was asked for within
    ``MAIL_CHECK_SECONDS``: many open pages ask for one check between them.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.MAIL_CHECK_SECONDS)
    return bool(
        SyncState.objects.filter(pk=state.pk)
        .filter(Q(requested_at__isnull=True) | Q(requested_at__lte=cutoff))
        .filter(Q(checked_at__isnull=True) | Q(checked_at__lte=cutoff))
        .update(requested_at=now)
    )


def request_check_now(account: MailAccount) -> None:
    """Count a check as queued at once, as the person asked for it."""
    state_of(account)
    SyncState.objects.filter(account=account).update(requested_at=timezone.now())


def due_for_background_check(now=None) -> list[int]:
    """The IMAP accounts of active people not checked for ``MAIL_BACKGROUND_CHECK_SECONDS``.

    Their checks count as queued from now, so that a busy worker is not sent them twice.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.MAIL_BACKGROUND_CHECK_SECONDS)
    due = list(
        MailAccount.objects.filter(protocol=Protocol.IMAP, user__is_active=True)
        .filter(Q(sync_state__checked_at__isnull=True) | Q(sync_state__checked_at__lte=cutoff))
        .exclude(sync_state__checking_until__gt=now)
        .exclude(sync_state__requested_at__gt=cutoff)
        .values_list("pk", flat=True)
    )
    SyncState.objects.filter(account_id__in=due).update(requested_at=now)
    return due


def progress_recorder(account: MailAccount) -> Callable[[int, int], None]:
    """A ``progress(done, total)`` for a fetch, which writes the state at most every second."""
    state_of(account)
    last = 0.0

    def record(done: int, total: int) -> None:
        nonlocal last
        moment = time.monotonic()
        if done and done < total and moment - last < PROGRESS_INTERVAL:
            return
        last = moment
        SyncState.objects.filter(account=account).update(progress_done=done, progress_total=total)

    return record


def fetch_ended(account: MailAccount, problem: str = "") -> None:
    """A fetch is over: no progress to show, and what went wrong, if anything."""
    SyncState.objects.update_or_create(
        account=account,
        defaults={"progress_done": None, "progress_total": None, "problem": problem},
    )


def _claim(account: MailAccount) -> SyncState:
    """Hold the account for one check; the state as the last check left it."""
    state_of(account)
    now = timezone.now()
    held = (
        SyncState.objects.filter(account=account)
        .filter(Q(checking_until__isnull=True) | Q(checking_until__lte=now))
        .update(checking_until=now + CHECK_LEASE)
    )
    if not held:
        raise CheckInProgress
    return SyncState.objects.get(account=account)
