"""The folder list and the message list."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _
from django.views import View
from django.views.generic import TemplateView

from webmail.views.base import AccountMixin
from webmail.views.conversations import conversation_rows, conversations_enabled

#: The orders a person can choose, with the store's name for each.
SORT_CHOICES = {
    "date": _("Date"),
    "from": _("Sender"),
    "subject": _("Subject"),
    "size": _("Size"),
}
DEFAULT_SORT = "date"


class HomeView(LoginRequiredMixin, View):
    """The person's first account's Inbox, or a word on what to do without one."""

    def get(self, request: HttpRequest) -> HttpResponse:
        account = request.user.mail_accounts.order_by("position", "id").first()
        if account is None:
            return render(request, "mail/no_account.html")
        return redirect("webmail:mailbox", account_id=account.pk)


def _page_number(value: str | None) -> int:
    try:
        return max(1, min(int(value or 1), 1_000_000))
    except ValueError:
        return 1


def _outgoing_pk(value: str | None) -> int | None:
    """The outbox row named by ``?sent=``, whose state the page shows after a send."""
    return int(value) if value and value.isascii() and value.isdigit() and len(value) < 12 else None


class MailboxView(AccountMixin, TemplateView):
    """One folder's messages, a page at a time; htmx asks for the list alone."""

    template_name = "mail/mailbox.html"

    def get(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        target = self.account.delivers_into
        if target is not None:
            # This POP3 account's mail goes into a folder of another account: it is there.
            url = reverse("webmail:mailbox", args=[target.pk])
            return redirect(f"{url}?{urlencode({'folder': self.account.pop3_deliver_folder})}")
        return super().get(request, *args, **kwargs)

    @cached_property
    def prefers_conversations(self) -> bool:
        return conversations_enabled(self.request)

    @cached_property
    def conversation_mode(self) -> bool:
        """Conversations as the person chose, newest first; any other order lists single
        messages, and so does Drafts, whose messages open one by one in the editor."""
        newest_first = self.request.GET.get("sort", DEFAULT_SORT) == DEFAULT_SORT and (
            self.request.GET.get("dir", "desc") != "asc"
        )
        return (
            newest_first
            and self.prefers_conversations
            and self.store.special_folder("\\Drafts") != self.folder
        )

    def get_template_names(self) -> list[str]:
        if self.request.headers.get("HX-Request") and self.request.headers.get("HX-Target") == (
            "message-list"
        ):
            if self.conversation_mode:
                return ["mail/_thread_list.html"]
            return ["mail/_message_list.html"]
        return [self.template_name]

    def get_context_data(self, **kwargs) -> dict:
        kwargs.update(
            conversations=self.conversation_mode, prefers_conversations=self.prefers_conversations
        )
        if self.conversation_mode:
            return super().get_context_data(**self._conversation_context(), **kwargs)
        sort = self.request.GET.get("sort", DEFAULT_SORT)
        if sort not in SORT_CHOICES:
            sort = DEFAULT_SORT
        reverse_order = self.request.GET.get("dir", "desc") != "asc"
        store_sort = "arrival" if sort == DEFAULT_SORT else sort
        page = self.store.page(
            self.folder,
            _page_number(self.request.GET.get("page")),
            per_page=settings.MESSAGES_PER_PAGE,
            sort=store_sort,
            reverse=reverse_order,
        )
        folders = self.store.folders()
        folder_query = urlencode({"folder": self.folder})
        # A draft opens in the editor, as in every mail client.
        is_drafts = page.folder.special_use == "\\Drafts"
        compose_url = reverse("webmail:compose", args=[self.account.pk])
        rows = [
            (
                summary,
                f"{compose_url}?{urlencode({'draft': summary.uid})}"
                if is_drafts
                else reverse("webmail:message", args=[self.account.pk, summary.uid])
                + "?"
                + folder_query,
            )
            for summary in page.items
        ]
        return super().get_context_data(
            account=self.account,
            accounts=self.accounts,
            folders=folders,
            folder=self.folder,
            current_folder=page.folder,
            page=page,
            rows=rows,
            folder_query=folder_query,
            sort=sort,
            direction="desc" if reverse_order else "asc",
            sort_choices=SORT_CHOICES,
            mailbox_url=reverse("webmail:mailbox", args=[self.account.pk]),
            sent_notice=_outgoing_pk(self.request.GET.get("sent")),
            **kwargs,
        )

    def _conversation_context(self) -> dict:
        page = self.store.conversations(
            self.folder,
            _page_number(self.request.GET.get("page")),
            per_page=settings.MESSAGES_PER_PAGE,
        )
        return {
            "account": self.account,
            "accounts": self.accounts,
            "folders": self.store.folders(),
            "folder": self.folder,
            "current_folder": page.folder,
            "page": page,
            "rows": conversation_rows(self.account, self.folder, page),
            "folder_query": urlencode({"folder": self.folder}),
            "mailbox_url": reverse("webmail:mailbox", args=[self.account.pk]),
            "sent_notice": _outgoing_pk(self.request.GET.get("sent")),
            "sort": DEFAULT_SORT,
            "direction": "desc",
            "sort_choices": SORT_CHOICES,
        }
