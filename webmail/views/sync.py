"""What an open page learns of new mail: the account's sync state, and "Check mail"."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.db.models import Exists, F, OuterRef, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views import View
from kombu.exceptions import OperationalError as BrokerError

from accounts.models import MailAccount, Protocol
from webmail import sync
from webmail.mailstore.base import Folder, MailStoreError
from webmail.models import LocalMessage, Pop3Uidl, SyncState
from webmail.views.base import INBOX, AccountMixin

logger = logging.getLogger(__name__)

#: A check asked for this long ago and still not done has no worker to do it.
PENDING_FOR = timedelta(minutes=1)
#: While a check is pending or a fetch runs, a page asks this often, in seconds.
BUSY_POLL_SECONDS = 2


def status_context(
    account: MailAccount,
    state: SyncState,
    folder: str | None,
    *,
    folders: list[Folder] | None = None,
    problem: str = "",
) -> dict:
    """What ``mail/_sync_status.html`` shows; ``folders``, when given, replace the page's list."""
    now = timezone.now()
    pending = bool(
        state.requested_at
        and now - state.requested_at < PENDING_FOR
        and (state.checked_at is None or state.checked_at < state.requested_at)
    )
    fetching = state.progress_total is not None
    # POP3 accounts delivering into this one fail out of sight unless shown here.
    refused = Pop3Uidl.objects.filter(
        account=OuterRef("pk"), state=Pop3Uidl.State.REFUSED, kept_uid__isnull=False
    )
    sources = list(
        MailAccount.objects.filter(pop3_deliver_to=account)
        .annotate(problem=F("sync_state__problem"), keeps_aside=Exists(refused))
        .filter((Q(problem__isnull=False) & ~Q(problem="")) | Q(keeps_aside=True))
        .values("pk", "email", "problem", "keeps_aside", "pop3_deliver_folder")
    )
    source_problems = [
        (source["email"], source["problem"]) for source in sources if source["problem"]
    ]
    keeping = [
        source["pk"]
        for source in sources
        if source["keeps_aside"] and folder in (None, source["pop3_deliver_folder"])
    ]
    query = {"folder": folder} if folder else {}
    return {
        "kept_aside": kept_aside(keeping),
        "account": account,
        "state": state,
        "folder": folder,
        "folders": folders,
        "problem": problem or state.problem,
        "source_problems": source_problems,
        "pending": pending,
        "fetching": fetching,
        "poll_seconds": BUSY_POLL_SECONDS if pending or fetching else settings.MAIL_POLL_SECONDS,
        "status_url": reverse("webmail:sync-status", args=[account.pk])
        + "?"
        + urlencode({**query, "token": state.token}),
        "check_url": reverse("webmail:check-mail", args=[account.pk]),
    }


#: Messages kept aside named on a page; the rest are counted.
KEPT_ASIDE_SHOWN = 10


def kept_aside(sources: list[int]) -> dict | None:
    """The messages these POP3 accounts kept aside because the IMAP server they deliver into
    refused them, newest first, each with where to read it; None when there are none."""
    if not sources:
        return None
    rows = Pop3Uidl.objects.filter(
        account=OuterRef("account"), kept_uid=OuterRef("uid"), state=Pop3Uidl.State.REFUSED
    )
    kept = LocalMessage.objects.filter(Exists(rows), account__in=sources, folder=INBOX).order_by(
        "-received", "-pk"
    )
    shown = list(kept.values("account_id", "uid", "subject", "sender")[:KEPT_ASIDE_SHOWN])
    if not shown:
        return None
    messages = [
        {
            **message,
            "url": reverse("webmail:message", args=[message["account_id"], message["uid"]])
            + "?"
            + urlencode({"folder": INBOX}),
        }
        for message in shown
    ]
    return {"messages": messages, "more": kept.count() - len(shown)}


def queue_check(account: MailAccount) -> bool:
    """Hand a check (an IMAP account) or a fetch (a POP3 one) to a worker; False if none can."""
    from webmail.tasks import check_mail, fetch_pop3

    task = fetch_pop3 if account.protocol == Protocol.POP3 else check_mail
    try:
        task.delay(account.pk)
    except BrokerError as exc:
        logger.warning("check of account %s not queued (%s)", account.pk, exc)
        return False
    return True


class SyncStatusView(AccountMixin, View):
    """The account's state for an open page; with the folder list again when it changed.

    It reads one row and asks the mail server nothing, unless something changed
    since the page's token: then the folder list comes back with fresh counts.
    """

    def get(self, request: HttpRequest, account_id: int) -> HttpResponse:
        account = self.account
        state = sync.state_of(account)
        if account.protocol == Protocol.IMAP and sync.request_check(state):
            queue_check(account)
        folders = None
        if state.token and request.GET.get("token") != state.token:
            try:
                folders = self.store.folders(fresh=True)
            except MailStoreError:
                # The counts stay as the page shows them; the state, its problem
                # included, is news enough.
                folders = None
        folder = request.GET.get("folder") and self.folder
        return render(
            request,
            "mail/_sync_status.html",
            status_context(account, state, folder, folders=folders),
        )


class CheckMailView(AccountMixin, View):
    """ "Check mail": a check or a POP3 fetch, now."""

    def post(self, request: HttpRequest, account_id: int) -> HttpResponse:
        account = self.account
        sync.request_check_now(account)
        problem = ""
        # POP3 accounts that deliver into this one are part of its new mail.
        sources = list(account.pop3_sources.filter(protocol=Protocol.POP3))
        if not all([queue_check(account), *map(queue_check, sources)]):
            problem = _("Mail cannot be checked right now: the background service is unavailable.")
        folder = request.POST.get("folder") or None
        if request.headers.get("HX-Request"):
            state = sync.state_of(account)
            return render(
                request,
                "mail/_sync_status.html",
                status_context(account, state, folder, problem=problem),
            )
        if problem:
            messages.error(request, problem)
        url = reverse("webmail:mailbox", args=[account.pk])
        return redirect(f"{url}?{urlencode({'folder': folder})}" if folder else url)
