"""Signing in and out, and the identities a person sends as."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.contrib.auth.views import LoginView
from django.core.exceptions import NON_FIELD_ERRORS
from django.db.models import Max, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse_lazy
from django.utils.functional import cached_property
from django.utils.translation import gettext as _
from django.views import View
from django.views.generic import CreateView, TemplateView, UpdateView

from accounts.forms import IdentityForm, SignInForm
from accounts.models import Identity, MailAccount


class SignInView(LoginView):
    """Sign-in by username or e-mail address, throttled after repeated failures."""

    form_class = SignInForm
    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def get_redirect_url(self) -> str:
        redirect_to = super().get_redirect_url()
        # A "next" back to this page would send a signed-in person round in a
        # loop, which LoginView refuses with a server error.
        if redirect_to and urlsplit(redirect_to).path == self.request.path:
            return ""
        return redirect_to

    def form_invalid(self, form: SignInForm) -> HttpResponse:
        response = super().form_invalid(form)
        if form.has_error(NON_FIELD_ERRORS, "throttled"):
            response.status_code = 429
        return response


class IdentitiesView(LoginRequiredMixin, TemplateView):
    """The person's accounts, each with the identities it sends as."""

    template_name = "accounts/identities.html"

    def get_context_data(self, **kwargs) -> dict:
        accounts = MailAccount.objects.filter(user=self.request.user).order_by("position", "id")
        rows = []
        for account in accounts:
            identities = list(account.identities.all())
            allowed = {identity.pk for identity in account.sending_identities()}
            for identity in identities:
                identity.may_send = identity.pk in allowed
            rows.append((account, identities))
        return super().get_context_data(accounts=rows, **kwargs)


class _IdentityFormMixin(LoginRequiredMixin):
    model = Identity
    form_class = IdentityForm
    template_name = "accounts/identity_form.html"
    success_url = reverse_lazy("accounts:identities")


def _own_identities(request: HttpRequest) -> QuerySet[Identity]:
    """Another person's identity is a 404, exactly like one that does not exist."""
    return Identity.objects.filter(account__user=request.user).select_related("account")


class IdentityCreateView(_IdentityFormMixin, CreateView):
    @cached_property
    def account(self) -> MailAccount:
        return get_object_or_404(MailAccount, pk=self.kwargs["account_id"], user=self.request.user)

    def get_initial(self) -> dict:
        return {"name": self.account.display_name or self.request.user.get_full_name()}

    def get_form_kwargs(self) -> dict:
        # The form checks the address against this account's grants.
        return {**super().get_form_kwargs(), "instance": Identity(account=self.account)}

    def get_context_data(self, **kwargs) -> dict:
        return super().get_context_data(account=self.account, **kwargs)

    def form_valid(self, form: IdentityForm) -> HttpResponse:
        form.instance.account = self.account
        last = self.account.identities.aggregate(last=Max("position"))["last"]
        form.instance.position = 0 if last is None else last + 1
        messages.success(self.request, _("The identity was added."))
        return super().form_valid(form)


class IdentityUpdateView(_IdentityFormMixin, UpdateView):
    def get_queryset(self) -> QuerySet[Identity]:
        return _own_identities(self.request)

    def get_context_data(self, **kwargs) -> dict:
        return super().get_context_data(account=self.object.account, **kwargs)

    def form_valid(self, form: IdentityForm) -> HttpResponse:
        messages.success(self.request, _("The identity was saved."))
        return super().form_valid(form)


class IdentityDeleteView(LoginRequiredMixin, View):
    """Deletes on POST only, so that a link or an image cannot delete anything."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        identity = get_object_or_404(_own_identities(request), pk=pk)
        if identity.account.sending_identities() == [identity]:
            messages.error(
                request,
                _("An account needs one address to send as: add another before deleting this one."),
            )
            return redirect("accounts:identities")
        identity.delete()
        messages.success(request, _("The identity was deleted."))
        return redirect("accounts:identities")
