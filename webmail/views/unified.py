"""All inboxes: the Inbox of every account of the person in one list, newest first."""

from __future__ import annotations

import functools
import heapq
import itertools
import logging
import math
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from django.conf import settings
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import translation
from django.utils.cache import add_never_cache_headers
from django.utils.functional import cached_property
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.generic import TemplateView

from accounts.crypto import CredentialError
from accounts.models import MailAccount, Protocol
from webmail import mailstore
from webmail.mailstore.base import Folder, MailStoreError, MessageSummary, Page

logger = logging.getLogger(__name__)

INBOX = "INBOX"
#: The deepest page: page N reads the N * per_page newest messages of every account.
MAX_PAGES = 20
#: Colours that tell the accounts apart in the list (see facteur.css).
ACCOUNT_COLOURS = 6

_EARLIEST = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Source:
    """One account's Inbox as the unified list reads it."""

    account: MailAccount
    colour: int
    page: Page | None = None  # its newest messages, when its server answered
    problem: str = ""


@dataclass(frozen=True)
class Row:
    source: Source
    summary: MessageSummary
    url: str


def _newest(account: MailAccount, count: int, language: str) -> Page:
    # Worker threads do not inherit the request's language, in which problems are told.
    with translation.override(language):
        return mailstore.for_account(account).page(INBOX, 1, per_page=count)


def _outcome(source: Source, read: Callable[[], Page]) -> Source:
    try:
        return replace(source, page=read())
    except MailStoreError as exc:
        logger.warning("inbox of account %s unavailable: %s", source.account.pk, type(exc).__name__)
        return replace(source, problem=str(exc))
    except CredentialError:
        logger.error("stored password of account %s cannot be decrypted", source.account.pk)
        return replace(
            source, problem=_("The password stored for this mail account cannot be read.")
        )


def read_inboxes(accounts: list[MailAccount], count: int) -> list[Source]:
    """The ``count`` newest messages of each account's Inbox, by arrival.

    IMAP servers are asked at once, each in a thread of its own (one sequence-range
    FETCH each), so that a slow one does not add to the others; the mail Facteur
    keeps is one query each, here, where the database connection is.
    """
    language = translation.get_language()
    sources = [Source(account, index % ACCOUNT_COLOURS) for index, account in enumerate(accounts)]
    remote = [s for s in sources if s.account.protocol == Protocol.IMAP]
    with ThreadPoolExecutor(max_workers=max(1, len(remote))) as workers:
        asked = {s.account.pk: workers.submit(_newest, s.account, count, language) for s in remote}
        return [
            _outcome(
                source,
                asked[source.account.pk].result
                if source.account.pk in asked
                else functools.partial(_newest, source.account, count, language),
            )
            for source in sources
        ]


def merged(sources: list[Source]) -> Iterator[tuple[Source, MessageSummary]]:
    """Every source's messages in one list, newest first.

    A merge takes from the head of one source at a time, the newest of the heads,
    so its first N items come from the first N (at most) of each source: the N
    newest of each account are all page N needs, never a whole mailbox. Each
    source is in arrival order and the heads are compared by date, so where an
    account's dates disagree with its arrival order (mail imported late) the list
    still keeps that account's order; the pages stay consistent with each other
    because every page is a slice of the same merge.
    """
    streams = [
        [(source, summary) for summary in source.page.items]
        for source in sources
        if source.page is not None
    ]
    return heapq.merge(*streams, key=lambda row: row[1].date or _EARLIEST, reverse=True)


class UnifiedInboxView(LoginRequiredMixin, TemplateView):
    """Every account's Inbox in one list; an account whose server is down says so."""

    template_name = "mail/unified.html"

    @cached_property
    def accounts(self) -> list[MailAccount]:
        return list(MailAccount.objects.filter(user=self.request.user))

    def get(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not self.accounts:
            return redirect("webmail:home")
        response = super().get(request, *args, **kwargs)
        add_never_cache_headers(response)  # as every mail screen
        return response

    def get_template_names(self) -> list[str]:
        if self.request.headers.get("HX-Request") and self.request.headers.get("HX-Target") == (
            "message-list"
        ):
            return ["mail/_unified_list.html"]
        return [self.template_name]

    def get_context_data(self, **kwargs) -> dict:
        per_page = settings.MESSAGES_PER_PAGE
        try:
            number = max(1, min(int(self.request.GET.get("page") or 1), MAX_PAGES))
        except ValueError:
            number = 1
        # A POP3 account that delivers into an IMAP account has its mail there.
        readable = [
            a for a in self.accounts if a.protocol == Protocol.IMAP or a.pop3_deliver_to_id is None
        ]
        sources = read_inboxes(readable, number * per_page)
        total = sum(s.page.total for s in sources if s.page is not None)
        pages = max(1, min(MAX_PAGES, math.ceil(total / per_page)))
        number = min(number, pages)
        start = (number - 1) * per_page
        rows = [
            Row(source, summary, self._url(source.account, summary))
            for source, summary in itertools.islice(merged(sources), start, start + per_page)
        ]
        first = self.accounts[0]
        return super().get_context_data(
            account=first,
            accounts=self.accounts,
            folders=self._folders(first),
            folder=None,
            unified_page=True,
            sources=sources,
            problems=[s for s in sources if s.problem],
            rows=rows,
            number=number,
            total=total,
            first_index=start + 1 if rows else 0,
            last_index=start + len(rows),
            previous_page=number - 1 if number > 1 else None,
            next_page=number + 1 if number < pages else None,
            unified_url=reverse("webmail:unified"),
            **kwargs,
        )

    @staticmethod
    def _url(account: MailAccount, summary: MessageSummary) -> str:
        return (
            reverse("webmail:message", args=[account.pk, summary.uid])
            + "?"
            + urlencode({"folder": INBOX})
        )

    @staticmethod
    def _folders(account: MailAccount) -> list[Folder]:
        """The first account's folders for the pane, or none while its server is down."""
        try:
            return mailstore.for_account(account).folders()
        except (MailStoreError, CredentialError):
            return []
