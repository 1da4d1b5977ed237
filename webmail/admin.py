"""The administrator's view of the outbox: what waits, what failed and why, and a retry."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from webmail import outbox
from webmail.models import OutgoingMessage


@admin.register(OutgoingMessage)
class OutgoingMessageAdmin(admin.ModelAdmin):
    """Read-only rows (the message itself is never shown), and "Retry now"."""

    list_display = (
        "created",
        "user",
        "account",
        "status",
        "attempts",
        "send_after",
        "updated",
        "last_error",
    )
    list_filter = ("status",)
    list_select_related = ("user", "account")
    search_fields = ("user__username", "account__email", "message_id")
    date_hierarchy = "created"
    fields = (
        "user",
        "account",
        "message_id",
        "status",
        "attempts",
        "handed_over",
        "last_error",
        "send_after",
        "created",
        "updated",
        "sent_at",
        "task_id",
    )
    readonly_fields = fields
    actions = ("retry_now",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[OutgoingMessage]:
        # The bytes of the message are never needed here.
        return super().get_queryset(request).defer("raw")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.action(description=_("Retry now"), permissions=["change"])
    def retry_now(self, request: HttpRequest, queryset: QuerySet[OutgoingMessage]) -> None:
        asked = list(queryset.values_list("pk", flat=True))
        retried = outbox.retry_now(asked)
        self.message_user(
            request,
            ngettext(
                "%(count)d message queued to be sent now.",
                "%(count)d messages queued to be sent now.",
                len(retried),
            )
            % {"count": len(retried)},
        )
        if len(retried) < len(asked):
            self.message_user(
                request,
                _("Messages being sent, sent or cancelled were left as they are."),
            )
