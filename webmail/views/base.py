"""What every mail screen shares: the signed-in person's account and its store."""

from __future__ import annotations

import logging

from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils.functional import cached_property
from django.utils.translation import gettext as _

from accounts.models import MailAccount
from webmail import mailstore
from webmail.mailstore.base import FolderNotFound, MailStore, MailStoreError, MessageNotFound

logger = logging.getLogger(__name__)

INBOX = "INBOX"


class AccountMixin(LoginRequiredMixin):
    """Scopes a view to one mail account of the signed-in person.

    Another person's account id is a 404, exactly like an id that does not exist.
    """

    request: HttpRequest
    kwargs: dict

    @cached_property
    def account(self) -> MailAccount:
        return get_object_or_404(
            MailAccount.objects.select_related("preset"),
            pk=self.kwargs["account_id"],
            user=self.request.user,
        )

    @cached_property
    def store(self) -> MailStore:
        return mailstore.for_account(self.account)

    @cached_property
    def folder(self) -> str:
        name = self.request.GET.get("folder") or INBOX
        if len(name) > 1000 or any(ch in name for ch in "\r\n\x00"):
            raise Http404(_("No such folder."))
        return name

    def dispatch(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            return super().dispatch(request, *args, **kwargs)
        except (FolderNotFound, MessageNotFound) as exc:
            raise Http404(str(exc)) from exc
        except MailStoreError as exc:
            logger.warning(
                "mail server unavailable for account %s: %s",
                kwargs.get("account_id"),
                type(exc).__name__,
            )
            return render(
                request,
                "mail/unavailable.html",
                {"account": self.account, "problem": str(exc)},
                status=503,
            )
