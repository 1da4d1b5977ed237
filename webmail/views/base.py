"""What every mail screen shares: the signed-in person's account and its store."""

from __future__ import annotations

import logging

from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers
from django.utils.functional import cached_property
from django.utils.translation import gettext as _

from accounts.crypto import CredentialError
from accounts.models import MailAccount
from webmail import mailstore
from webmail.mailstore.base import (
    MAX_UID,
    Folder,
    FolderNotFound,
    MailStore,
    MailStoreError,
    MessageNotFound,
)

logger = logging.getLogger(__name__)

INBOX = "INBOX"


class AccountMixin(LoginRequiredMixin):
    """Scopes a view to one mail account of the signed-in person.

    Another person's account id is a 404, exactly like an id that does not exist.
    """

    request: HttpRequest
    kwargs: dict

    @cached_property
    def accounts(self) -> list[MailAccount]:
        """All the person's accounts, for the switcher: one query gives them and the current one."""
        return list(MailAccount.objects.filter(user=self.request.user))

    @cached_property
    def account(self) -> MailAccount:
        for account in self.accounts:
            if account.pk == self.kwargs["account_id"]:
                return account
        raise Http404

    @cached_property
    def store(self) -> MailStore:
        return mailstore.for_account(self.account)

    @cached_property
    def folder(self) -> str:
        name = self.request.GET.get("folder") or INBOX
        if len(name) > 1000 or any(ch in name for ch in "\r\n\x00"):
            raise Http404(_("No such folder."))
        return name

    def folders_if_reachable(self) -> list[Folder]:
        """The folder list, or none while the server is unreachable: for the screens
        that need no IMAP server (writing, the outbox)."""
        try:
            return self.store.folders()
        except MailStoreError:
            return []

    def dispatch(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not 0 < kwargs.get("uid", 1) <= MAX_UID:
            raise Http404
        response = self._dispatch_reading(request, *args, **kwargs)
        if "Cache-Control" not in response:
            # Mail must not stay in the browser's cache for whoever sits at a
            # shared computer after the person has signed out.
            add_never_cache_headers(response)
        return response

    def _dispatch_reading(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
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
            return self.unavailable(str(exc))
        except CredentialError:
            # The keys in the environment no longer open this account's stored
            # password: only an administrator can mend that.
            logger.error(
                "stored password of account %s cannot be decrypted", kwargs.get("account_id")
            )
            return self.unavailable(
                _(
                    "The password stored for this mail account cannot be read. "
                    "Your administrator needs to set it again."
                )
            )

    def unavailable(self, problem: str) -> HttpResponse:
        return render(
            self.request,
            "mail/unavailable.html",
            {"account": self.account, "problem": problem},
            status=503,
        )
