"""The senders whose remote content a person chose to always see, and taking that back."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext as _
from django.views import View
from django.views.generic import TemplateView

from webmail.models import TrustedSender


class TrustedSendersView(LoginRequiredMixin, TemplateView):
    template_name = "mail/trusted_senders.html"

    def get_context_data(self, **kwargs) -> dict:
        return super().get_context_data(
            senders=TrustedSender.objects.filter(user=self.request.user).order_by("email"),
            verification_on=bool(settings.AUTHSERV_ID),
            **kwargs,
        )


class RevokeTrustedSenderView(LoginRequiredMixin, View):
    """Revokes on POST only; another person's row is not found."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        sender = get_object_or_404(TrustedSender, pk=pk, user=request.user)
        sender.delete()
        messages.success(
            request,
            _("Remote content from %(sender)s is blocked again.") % {"sender": sender.email},
        )
        return redirect("webmail:trusted-senders")
