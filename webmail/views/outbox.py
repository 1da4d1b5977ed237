"""What became of the messages a person sent: the outbox, undo, edit, discard."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views import View
from django.views.generic import TemplateView

from webmail import outbox
from webmail.models import OutgoingMessage
from webmail.views.base import AccountMixin

Status = OutgoingMessage.Status

#: How long the "sent" notice stays on screen after a message went.
SENT_NOTICE = timedelta(minutes=2)


class OutboxView(AccountMixin, TemplateView):
    """The account's messages waiting, being sent, failed, and sent in the last day."""

    template_name = "mail/outbox.html"

    def get_context_data(self, **kwargs) -> dict:
        return super().get_context_data(
            account=self.account,
            accounts=self.accounts,
            folders=self.folders_if_reachable(),
            folder=None,
            outbox_page=True,
            rows=outbox.pending(self.request.user).filter(account=self.account),
            **kwargs,
        )


class OutgoingStatusView(LoginRequiredMixin, View):
    """One message's state, polled by the notice shown after pressing send."""

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        row = get_object_or_404(OutgoingMessage.objects.defer("raw"), pk=pk, user=request.user)
        now = timezone.now()
        # Held longer than the undo delay: the person chose when it goes.
        undo_delay = timedelta(seconds=settings.SEND_UNDO_SECONDS + 5)
        shown = row.status != Status.SENT or (row.sent_at and now - row.sent_at < SENT_NOTICE)
        return render(
            request,
            "mail/_outgoing_status.html",
            {
                "row": row,
                "shown": shown and row.status != Status.CANCELLED,
                # Within the undo delay the message is waiting only for that.
                "undoable": row.status == Status.QUEUED and row.attempts == 0,
                "scheduled": row.status == Status.QUEUED
                and not row.attempts
                and row.send_after - row.created > undo_delay,
                "polling": row.status in (Status.QUEUED, Status.SENDING)
                and row.send_after - now < timedelta(minutes=1),
            },
        )


class OutgoingEditView(LoginRequiredMixin, View):
    """Undo a send, or change a scheduled or failed message: it goes back into the editor."""

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        row = outbox.reopen(request.user, pk)
        if row is None:
            messages.error(request, _("Too late: this message is already on its way."))
            return redirect("webmail:home")
        return redirect(
            reverse("webmail:compose", args=[row.account_id])
            + "?"
            + urlencode({"outgoing": row.pk})
        )


class OutgoingDiscardView(LoginRequiredMixin, View):
    """Drop a scheduled or failed message without sending it."""

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        row = outbox.reopen(request.user, pk)
        if row is None:
            messages.error(request, _("Too late: this message is already on its way."))
            return redirect("webmail:home")
        messages.success(request, _("The message will not be sent."))
        return redirect("webmail:outbox", account_id=row.account_id)
