"""Signing in and out."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.contrib.auth.views import LoginView
from django.core.exceptions import NON_FIELD_ERRORS
from django.http import HttpResponse

from accounts.forms import SignInForm


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
