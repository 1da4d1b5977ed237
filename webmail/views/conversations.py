"""Conversations: a folder listed by thread, one thread read as a whole, and the choice
between that and single messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.views import View
from django.views.generic import TemplateView

from accounts.models import MailAccount
from webmail import reading, trust
from webmail.mailstore.base import (
    Conversation,
    MailStore,
    MessageNotFound,
    Page,
    RawMessage,
)
from webmail.mime import ParsedMessage, Part
from webmail.models import MailPreferences
from webmail.sanitize import SanitizedHtml, plain_text_to_html
from webmail.threads import ThreadHeaders, read_headers
from webmail.views.messages import SEEN, MessageMixin

#: Messages of one conversation shown at once: its newest ones.
MAX_SHOWN = 50
#: Bytes of whole messages fetched for one conversation page: older messages
#: beyond are left out (and counted as hidden) once this much has been read.
MAX_FETCHED_BYTES = 16 * 1024 * 1024
#: Identifiers looked for in Sent, of each kind: enough for the messages shown.
MAX_SEARCHED_IDS = MAX_SHOWN

_EARLIEST = datetime.min.replace(tzinfo=UTC)


#: Where a session keeps the person's choice once read, so that lists cost no query for it.
SESSION_KEY = "webmail.conversations"


def conversations_enabled(request: HttpRequest) -> bool:
    """Whether the person lists conversations rather than single messages.

    Read from the database once per session; a change made in another browser
    reaches this one at its next sign-in.
    """
    value = request.session.get(SESSION_KEY)
    if value is None:
        value = request.session[SESSION_KEY] = MailPreferences.of(request.user).conversations
    return bool(value)


def conversation_rows(
    account: MailAccount, folder: str, page: Page[Conversation]
) -> list[tuple[Conversation, str]]:
    """Each conversation of a page with the page it opens: a lone message opens as itself."""
    query = "?" + urlencode({"folder": folder})
    return [
        (
            conversation,
            reverse(
                "webmail:message" if conversation.count == 1 else "webmail:conversation",
                args=[account.pk, conversation.latest.uid],
            )
            + query,
        )
        for conversation in page.items
    ]


@dataclass
class Entry:
    """One message of a conversation as the page shows it."""

    folder: str
    raw: RawMessage
    message: ParsedMessage
    headers: ThreadHeaders
    own: bool  # the person's own, found in Sent
    expanded: bool = False
    body: SanitizedHtml | None = None  # sanitised now only for the expanded one
    urls: dict[str, str] = field(default_factory=dict)
    attachments: list[tuple[Part, str]] = field(default_factory=list)

    @property
    def uid(self) -> int:
        return self.raw.uid

    @property
    def seen(self) -> bool:
        return SEEN in self.raw.flags

    @cached_property
    def text_html(self) -> SafeString | None:
        if self.message.html is not None or not self.message.text:
            return None
        # plain_text_to_html escapes everything it does not itself produce.
        return mark_safe(plain_text_to_html(self.message.text))  # noqa: S308

    @property
    def sort_key(self) -> tuple[datetime, int]:
        return (self.message.date or _EARLIEST, self.uid)


class ConversationView(MessageMixin, TemplateView):
    """Every message of one thread of a folder, oldest first, with the person's replies
    from Sent; the newest open, the others folded."""

    template_name = "mail/conversation.html"

    def get_context_data(self, **kwargs) -> dict:
        store, folder = self.store, self.folder
        uids = store.thread_uids(folder, self.kwargs["uid"])
        budget = [MAX_FETCHED_BYTES]
        entries = self._entries(store, folder, uids[-MAX_SHOWN:], own=False, budget=budget)
        if not entries:
            raise MessageNotFound(
                _("This message no longer exists: it may have been moved or deleted.")
            )
        sent = store.special_folder("\\Sent")
        if sent is not None and sent != folder:
            entries += self._own_replies(store, sent, entries, budget)
        entries.sort(key=lambda entry: entry.sort_key)
        unseen = [e.uid for e in entries if e.folder == folder and not e.seen]
        if unseen:
            store.add_flags(folder, unseen, [SEEN])
        entries[-1].expanded = True
        for entry in entries:
            self._prepare(entry)
        return super().get_context_data(
            account=self.account,
            accounts=self.accounts,
            folders=store.folders(),
            folder=folder,
            entries=entries,
            subject=entries[0].message.subject,
            hidden=len(uids) - sum(1 for e in entries if not e.own),
            mailbox_url=self.list_url(),
            **kwargs,
        )

    def _entries(
        self, store: MailStore, folder: str, uids: list[int], *, own: bool, budget: list[int]
    ) -> list[Entry]:
        """The messages ``uids``, newest first until ``budget[0]`` bytes have been
        fetched (the budget is shared with later calls), returned oldest first."""
        entries = []
        for uid in reversed(uids):
            if budget[0] <= 0:
                break
            try:
                raw = reading.fetch_raw(store, self.account, folder, uid)
            except MessageNotFound:
                continue  # gone since the thread was made
            budget[0] -= len(raw.raw)
            message = reading.parsed(self.account, raw)
            entries.append(Entry(folder, raw, message, read_headers(uid, raw.raw), own))
        entries.reverse()
        return entries

    def _own_replies(
        self, store: MailStore, sent: str, entries: list[Entry], budget: list[int]
    ) -> list[Entry]:
        """The person's messages in Sent that answer the conversation or that it answers.

        Found by Message-ID in one SEARCH, bounded by the number of messages shown.
        """
        known = {e.headers.message_id for e in entries if e.headers.message_id}
        referenced = {ref for e in entries for ref in e.headers.references} - known
        uids = store.related_uids(
            sent, sorted(known)[:MAX_SEARCHED_IDS], sorted(referenced)[:MAX_SEARCHED_IDS]
        )
        found = self._entries(store, sent, uids[-MAX_SHOWN:], own=True, budget=budget)
        # A message the person sent to themselves is in both folders: show it once.
        return [e for e in found if e.headers.message_id not in known]

    def _prepare(self, entry: Entry) -> None:
        account, raw = self.account, entry.raw
        allow_remote = trust.remote_content_trusted(self.request.user, raw.raw, entry.message)
        if entry.expanded:
            # Sanitised now, so that its frame is served from the cache; the folded
            # ones are sanitised when they are opened.
            entry.body = reading.sanitised_body(
                account,
                raw,
                entry.message,
                allow_remote=allow_remote,
                cid_url=reading.cid_url_resolver(account, raw, entry.message),
            )
        query = {"folder": entry.folder}
        body_query = {**query, "v": raw.uidvalidity}
        if allow_remote:
            grant = reading.remote_content_grant(account, entry.folder, raw.uidvalidity, raw.uid)
            body_query.update(remote="1", grant=grant)
        compose = reverse("webmail:compose", args=[account.pk])
        entry.urls = {
            "message": self._url("webmail:message", entry, query),
            "body": self._url("webmail:message-body", entry, body_query),
            "reply": f"{compose}?{urlencode({**query, 'reply': raw.uid})}",
            "reply_all": f"{compose}?{urlencode({**query, 'reply_all': raw.uid})}",
            "forward": f"{compose}?{urlencode({**query, 'forward': raw.uid})}",
        }
        entry.attachments = [
            (part, self._url("webmail:attachment", entry, {**query, "v": raw.uidvalidity}, part))
            for part in entry.message.attachments
            if not (entry.message.html is not None and part.inline and part.content_id)
        ]

    def _url(self, name: str, entry: Entry, query: dict, part: Part | None = None) -> str:
        args = [self.account.pk, entry.uid] + ([part.part_id] if part is not None else [])
        return reverse(name, args=args) + "?" + urlencode(query)


class ListModeView(LoginRequiredMixin, View):
    """Conversations or single messages in the lists: the person's choice, kept for them."""

    def post(self, request: HttpRequest) -> HttpResponse:
        conversations = request.POST.get("conversations") == "1"
        MailPreferences.objects.update_or_create(
            user=request.user, defaults={"conversations": conversations}
        )
        request.session[SESSION_KEY] = conversations
        target = request.POST.get("next", "")
        if not url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            target = reverse("webmail:home")
        # Not redirect(): a word that is no URL would be looked up as a view name.
        return HttpResponseRedirect(target)
