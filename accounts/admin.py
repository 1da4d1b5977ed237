"""The administrator's screens: people, their mail accounts, server presets."""

from __future__ import annotations

from collections.abc import Callable

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db import models
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.crypto import CredentialError
from accounts.forms import (
    AdminSignInForm,
    IdentityInlineFormSet,
    MailAccountAdminForm,
    MailAccountInlineFormSet,
    SendAsGrantInlineFormSet,
    ServerPresetAdminForm,
)
from accounts.models import Identity, MailAccount, Protocol, SendAsGrant, ServerPreset
from webmail.transport import diagnose
from webmail.transport.endpoint import Endpoint

admin.site.login_form = AdminSignInForm

TLS_WARNING = _(
    "Certificates are verified against the system's authorities, or against the CA file "
    "if one is named. Accepting untrusted certificates turns that check off: anyone on the "
    "network path can then pose as the server and read the passwords and the mail. Name "
    "the CA file instead whenever you can."
)


def check_account(account: MailAccount) -> list[tuple[str, diagnose.CheckResult]]:
    """Sign in to the account's incoming and sending servers; a result per server."""
    incoming = Protocol(account.protocol)
    check_incoming = diagnose.check_pop3 if incoming == Protocol.POP3 else diagnose.check_imap
    return [
        (str(incoming.label), _run(check_incoming, account.incoming_endpoint)),
        ("SMTP", _run(diagnose.check_smtp, account.smtp_endpoint)),
    ]


def _run(
    check: Callable[[Endpoint], diagnose.CheckResult], endpoint: Callable[[], Endpoint]
) -> diagnose.CheckResult:
    try:
        return check(endpoint())
    except CredentialError:
        return diagnose.CheckResult(
            ok=False,
            message=gettext("The stored password cannot be decrypted with the configured keys."),
        )


@admin.register(ServerPreset)
class ServerPresetAdmin(admin.ModelAdmin):
    form = ServerPresetAdminForm
    list_display = ("name", "domain", "imap_host", "pop3_host", "smtp_host", "accept_untrusted")
    search_fields = ("name", "domain")
    fieldsets = (
        (None, {"fields": ("name", "domain")}),
        (_("Incoming (IMAP)"), {"fields": ("imap_host", "imap_port", "imap_security")}),
        (_("Incoming (POP3)"), {"fields": ("pop3_host", "pop3_port", "pop3_security")}),
        (_("Sending (SMTP)"), {"fields": ("smtp_host", "smtp_port", "smtp_security")}),
        (_("TLS"), {"fields": ("ca_file", "accept_untrusted"), "description": TLS_WARNING}),
    )


_ACCOUNT_FIELDSETS = (
    (
        None,
        {"fields": ("email", "display_name", "preset", "protocol", "login", "password")},
    ),
    (
        _("Incoming server"),
        {
            "fields": (
                "incoming_host",
                "incoming_port",
                "incoming_security",
                "pop3_delete_after_days",
                "pop3_deliver_to",
                "pop3_deliver_folder",
            )
        },
    ),
    (
        _("Sending server"),
        {
            "fields": (
                "smtp_host",
                "smtp_port",
                "smtp_security",
                "smtp_login",
                "smtp_password",
                "clear_smtp_password",
            )
        },
    ),
    (_("TLS"), {"fields": ("ca_file", "accept_untrusted"), "description": TLS_WARNING}),
)


class IdentityInline(admin.TabularInline):
    model = Identity
    formset = IdentityInlineFormSet
    fields = ("name", "email", "signature", "position")
    formfield_overrides = {models.TextField: {"widget": forms.Textarea(attrs={"rows": 3})}}
    extra = 0


class SendAsGrantInline(admin.TabularInline):
    """What the account may put in From besides its own address."""

    model = SendAsGrant
    formset = SendAsGrantInlineFormSet
    fields = ("kind", "value")
    extra = 0
    verbose_name_plural = _(
        "Addresses it may send as, besides its own (identities with any other address cannot send)"
    )


class MailProblemFilter(admin.SimpleListFilter):
    """Accounts whose last new-mail check or POP3 fetch failed."""

    title = _("checks and fetches")
    parameter_name = "mail_problem"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list:
        return [("failing", _("Failing")), ("fine", _("Fine or not yet checked"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[MailAccount]):
        failing = Q(sync_state__isnull=False) & ~Q(sync_state__problem="")
        if self.value() == "failing":
            return queryset.filter(failing)
        if self.value() == "fine":
            return queryset.exclude(failing)
        return queryset


@admin.register(MailAccount)
class MailAccountAdmin(admin.ModelAdmin):
    form = MailAccountAdminForm
    inlines = (SendAsGrantInline, IdentityInline)
    list_display = (
        "email",
        "user",
        "protocol",
        "incoming_host",
        "smtp_host",
        "preset",
        "last_checked",
        "mail_problem",
    )
    list_filter = (MailProblemFilter, "protocol", "preset")
    search_fields = ("email", "user__username", "user__email")
    list_select_related = ("user", "preset", "sync_state")
    autocomplete_fields = ("user",)
    actions = ("test_connection",)
    fieldsets = (
        (None, {"fields": ("user", "position")}),
        *_ACCOUNT_FIELDSETS,
    )

    @admin.display(description=_("last checked"), ordering="sync_state__checked_at")
    def last_checked(self, account: MailAccount):
        state = getattr(account, "sync_state", None)
        return state.checked_at if state is not None else None

    @admin.display(description=_("problem"))
    def mail_problem(self, account: MailAccount) -> str:
        state = getattr(account, "sync_state", None)
        return state.problem if state is not None else ""

    @admin.action(description=_("Test connection"))
    def test_connection(self, request: HttpRequest, queryset: QuerySet[MailAccount]) -> None:
        for account in queryset:
            results = check_account(account)
            parts = " ".join(f"{label}: {result.message}" for label, result in results)
            ok = all(result.ok for _label, result in results)
            self.message_user(
                request,
                f"{account.email} — {parts}",
                level=messages.SUCCESS if ok else messages.ERROR,
            )


class MailAccountInline(admin.StackedInline):
    model = MailAccount
    form = MailAccountAdminForm
    formset = MailAccountInlineFormSet
    fieldsets = _ACCOUNT_FIELDSETS
    extra = 0
    show_change_link = True


User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class PersonAdmin(UserAdmin):
    inlines = (MailAccountInline,)
