"""What the message page does to a message: archive it, delete it, move it elsewhere.

Each action is a POST of one of the page's forms; it goes back to the folder's
list with a word on what was done. A deletion for good is confirmed first, on a
page of its own, so that it needs no script.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils.functional import cached_property
from django.utils.translation import gettext as _
from django.views import View

from webmail import reading
from webmail.mailstore.base import Folder, MailStoreError
from webmail.views.messages import (
    Destinations,
    MessageMixin,
    destination_label,
    requested_uidvalidity,
)


class MessageActionView(MessageMixin, View):
    """What the actions share: POST only, and a refusal or failure told on the message page."""

    http_method_names = ["post"]

    @cached_property
    def folder_list(self) -> list[Folder]:
        return self.store.folders()

    @cached_property
    def destinations(self) -> Destinations:
        return Destinations.of(self.folder_list, self.folder)

    def post(self, request: HttpRequest, account_id: int, uid: int) -> HttpResponse:
        try:
            return self.act(uid)
        except MailStoreError as exc:
            # Back on the message page (which says so if it is gone): the person
            # sees what failed and can try again from where they were.
            return self.refuse(str(exc))

    def act(self, uid: int) -> HttpResponse:
        raise NotImplementedError

    def done(self, notice: str) -> HttpResponse:
        messages.success(self.request, notice)
        return redirect(self.list_url())

    def refuse(self, problem: str) -> HttpResponse:
        messages.error(self.request, problem)
        return redirect(self.message_url())

    def move_to(self, uid: int, target: Folder) -> HttpResponse:
        self.store.move(self.folder, [uid], target.name)
        return self.done(
            _("The message was moved to %(folder)s.") % {"folder": destination_label(target)}
        )


class ArchiveMessageView(MessageActionView):
    def act(self, uid: int) -> HttpResponse:
        archive = self.destinations.archive
        if archive is None:
            return self.refuse(_("There is no archive folder to move this message to."))
        self.store.move(self.folder, [uid], archive.name)
        return self.done(_("The message was archived."))


class MoveMessageView(MessageActionView):
    def act(self, uid: int) -> HttpResponse:
        name = self.request.POST.get("target", "")
        if not name:
            return self.refuse(_("Choose the folder to move the message to."))
        target = self.destinations.target(name)
        if target is None:
            return self.refuse(_("The message cannot be moved to %(folder)s.") % {"folder": name})
        return self.move_to(uid, target)


class DeleteMessageView(MessageActionView):
    """To the trash; from the trash (or without one) for good, once confirmed."""

    def act(self, uid: int) -> HttpResponse:
        trash = self.destinations.trash
        if trash is not None:
            return self.move_to(uid, trash)
        if self.request.POST.get("confirm") != "1":
            return self.confirmation(uid)
        self.store.delete(self.folder, [uid])
        return self.done(_("The message was deleted permanently."))

    def confirmation(self, uid: int) -> HttpResponse:
        """The page that asks before a deletion for good, naming the message it is about."""
        raw = reading.cached_raw(
            self.store, self.account, self.folder, requested_uidvalidity(self.request), uid
        )
        if raw is None:
            raise Http404(_("This message has changed on the server; reload the page."))
        return TemplateResponse(
            self.request,
            "mail/confirm_delete.html",
            {
                "account": self.account,
                "accounts": self.accounts,
                "folders": self.folder_list,
                "folder": self.folder,
                "message": reading.parsed(self.account, raw),
                "action_url": self.request.get_full_path(),
                "cancel_url": self.message_url(),
            },
        )
