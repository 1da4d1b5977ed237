"""Acting on many messages of a list at once: what its selection's toolbar does.

Each action is a POST of the list's form, whose buttons name their action with
``formaction``. It runs as one command on the server for the UIDs checked or,
when the person chose every message of the folder, for the set ALL ("1:*"),
which is never listed page by page. Then it goes back to the same page of the
list with a word on what was done; after a move, that word offers to undo it.
"""

from __future__ import annotations

import secrets

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.formats import number_format
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views import View

from webmail.mailstore.base import (
    ALL,
    MAX_UID,
    Folder,
    FolderNotFound,
    MailStoreError,
    MessageNotFound,
    Moved,
)
from webmail.views.base import AccountMixin
from webmail.views.messages import LIST_QUERY, Destinations, destination_label

SEEN = "\\Seen"
FLAGGED = "\\Flagged"

#: More UIDs than a page can show are not a person's selection.
MAX_SELECTED = 1000
#: Where the last move that can be undone is remembered.
UNDO_SESSION_KEY = "webmail.undo_move"
#: The longest set of UIDs kept for an undo, so that the session stays small.
UNDO_MAX_LENGTH = 2000

#: A selection: the UIDs checked, or ALL.
Selection = list[int] | str


def parse_selection(values: list[str], scope: str | None) -> Selection | None:
    """What the list's form selected: ALL, the UIDs checked (sorted, once each), or None."""
    if scope == "all":
        return ALL
    uids = set()
    # A conversation's box holds all its UIDs, separated by commas.
    for part in (part for box in values for part in box.split(",")):
        if not (part.isascii() and part.isdigit() and len(part) <= 10):
            return None
        uid = int(part)
        if not 0 < uid <= MAX_UID:
            return None
        uids.add(uid)
    if not uids or len(uids) > MAX_SELECTED:
        return None
    return sorted(uids)


def special_destination(folders: list[Folder], use: str, current: str) -> Folder | None:
    """The first folder with this special use, unless the messages are already in it
    (or in a folder inside it)."""
    found = next((f for f in folders if f.special_use == use and f.selectable), None)
    if found is None:
        return None
    inside = bool(found.delimiter) and current.startswith(found.name + found.delimiter)
    return None if current == found.name or inside else found


class BulkActionView(AccountMixin, View):
    """POST only; the person's own account only (another's is a 404, as everywhere)."""

    http_method_names = ["post"]
    #: Whether the action needs messages checked (emptying the trash does not).
    needs_selection = True

    @cached_property
    def folder_list(self) -> list[Folder]:
        return self.store.folders()

    @cached_property
    def destinations(self) -> Destinations:
        return Destinations.of(self.folder_list, self.folder)

    @cached_property
    def selection(self) -> Selection | None:
        return parse_selection(self.request.POST.getlist("uid"), self.request.POST.get("scope"))

    def post(self, request: HttpRequest, account_id: int) -> HttpResponse:
        if self.needs_selection and self.selection is None:
            return self.refuse(_("Select one or more messages first."))
        try:
            return self.act()
        except MailStoreError as exc:
            # Back on the list, which says what failed; the person can try again.
            return self.refuse(str(exc))

    def act(self) -> HttpResponse:
        raise NotImplementedError

    # Where the person goes back to ------------------------------------------------

    def list_fields(self) -> dict[str, str]:
        """The page and order of the list the form was sent from."""
        return {
            name: value
            for name in LIST_QUERY
            if (value := self.request.POST.get(name, "")) and len(value) <= 20
        }

    def list_url(self) -> str:
        return (
            reverse("webmail:mailbox", args=[self.account.pk])
            + "?"
            + urlencode({"folder": self.folder, **self.list_fields()})
        )

    def done(self, notice: str, *, undo: Moved | None = None) -> HttpResponse:
        session = self.request.session
        session.pop(UNDO_SESSION_KEY, None)  # only the last move can be undone
        if undo is not None and len(undo.uids) <= UNDO_MAX_LENGTH:
            token = secrets.token_urlsafe(12)
            session[UNDO_SESSION_KEY] = {
                "account": self.account.pk,
                "token": token,
                "folder": undo.folder,
                "uidvalidity": undo.uidvalidity,
                "uids": undo.uids,
                "back": self.folder,
            }
            notice = self.with_undo(notice, token)
        messages.success(self.request, notice)
        return redirect(self.list_url())

    def with_undo(self, notice: str, token: str) -> str:
        """The notice with its Undo button: a form of its own, which needs no script."""
        url = reverse("webmail:bulk-undo", args=[self.account.pk])
        fields = {"csrfmiddlewaretoken": get_token(self.request), "token": token}
        fields.update(self.list_fields())
        return format_html(
            '{} <form method="post" action="{}" class="undo-form">{}'
            '<button class="button link" type="submit">{}</button></form>',
            notice,
            f"{url}?{urlencode({'folder': self.folder})}",
            format_html_join("", '<input type="hidden" name="{}" value="{}">', fields.items()),
            _("Undo"),
        )

    def refuse(self, problem: str) -> HttpResponse:
        messages.error(self.request, problem)
        return redirect(self.list_url())

    # What the actions share ---------------------------------------------------------

    @property
    def count(self) -> int | None:
        """How many messages are selected; None for every message of the folder."""
        return None if self.selection == ALL else len(self.selection)

    def label(self, name: str) -> str:
        folder = next((f for f in self.folder_list if f.name == name), None)
        return destination_label(folder) if folder is not None else name

    def move_to(self, target: Folder) -> HttpResponse:
        moved = self.store.move(self.folder, self.selection, target.name)
        count = self.count if self.count is not None else (moved.count if moved else None)
        values = {"folder": destination_label(target), "count": _number(count)}
        if count is None:
            notice = _("Every message of this folder was moved to %(folder)s.") % values
        else:
            notice = (
                ngettext(
                    "%(count)s message was moved to %(folder)s.",
                    "%(count)s messages were moved to %(folder)s.",
                    count,
                )
                % values
            )
        return self.done(notice, undo=moved)

    def confirmation(self, question: str) -> HttpResponse:
        """The page that asks before a deletion for good, for people without scripts."""
        fields: list[tuple[str, str | int]] = []
        if self.selection == ALL:
            fields.append(("scope", "all"))
        elif self.selection is not None:
            fields.extend(("uid", uid) for uid in self.selection)
        fields.extend(self.list_fields().items())
        return TemplateResponse(
            self.request,
            "mail/confirm_bulk.html",
            {
                "account": self.account,
                "accounts": self.accounts,
                "folders": self.folder_list,
                "folder": self.folder,
                "question": question,
                "fields": fields,
                "action_url": self.request.get_full_path(),
                "cancel_url": self.list_url(),
            },
        )


def _number(count: int | None) -> str:
    return number_format(count, force_grouping=True) if count is not None else ""


class FlagsView(BulkActionView):
    """Sets or clears one flag with one UID STORE (one UPDATE for local mail)."""

    flag: str
    add: bool

    def act(self) -> HttpResponse:
        change = self.store.add_flags if self.add else self.store.remove_flags
        change(self.folder, self.selection, [self.flag])
        return self.done(self.notice())

    def notice(self) -> str:
        raise NotImplementedError


class MarkReadView(FlagsView):
    flag, add = SEEN, True

    def notice(self) -> str:
        if self.count is None:
            return _("Every message of this folder was marked as read.")
        return ngettext(
            "%(count)s message was marked as read.",
            "%(count)s messages were marked as read.",
            self.count,
        ) % {"count": _number(self.count)}


class MarkUnreadView(FlagsView):
    flag, add = SEEN, False

    def notice(self) -> str:
        if self.count is None:
            return _("Every message of this folder was marked as unread.")
        return ngettext(
            "%(count)s message was marked as unread.",
            "%(count)s messages were marked as unread.",
            self.count,
        ) % {"count": _number(self.count)}


class FlagView(FlagsView):
    flag, add = FLAGGED, True

    def notice(self) -> str:
        if self.count is None:
            return _("Every message of this folder was flagged.")
        return ngettext(
            "%(count)s message was flagged.", "%(count)s messages were flagged.", self.count
        ) % {"count": _number(self.count)}


class UnflagView(FlagsView):
    flag, add = FLAGGED, False

    def notice(self) -> str:
        if self.count is None:
            return _("Every message of this folder was unflagged.")
        return ngettext(
            "%(count)s message was unflagged.", "%(count)s messages were unflagged.", self.count
        ) % {"count": _number(self.count)}


class ArchiveView(BulkActionView):
    def act(self) -> HttpResponse:
        archive = self.destinations.archive
        if archive is None:
            return self.refuse(_("There is no archive folder to move these messages to."))
        return self.move_to(archive)


class JunkView(BulkActionView):
    def act(self) -> HttpResponse:
        junk = special_destination(self.folder_list, "\\Junk", self.folder)
        if junk is None:
            return self.refuse(_("There is no junk folder to move these messages to."))
        return self.move_to(junk)


class MoveView(BulkActionView):
    def act(self) -> HttpResponse:
        name = self.request.POST.get("target", "")
        if not name:
            return self.refuse(_("Choose the folder to move the messages to."))
        target = self.destinations.target(name)
        if target is None:
            return self.refuse(_("The messages cannot be moved to %(folder)s.") % {"folder": name})
        return self.move_to(target)


class CopyView(BulkActionView):
    def act(self) -> HttpResponse:
        name = self.request.POST.get("target", "")
        if not name:
            return self.refuse(_("Choose the folder to copy the messages to."))
        target = self.destinations.target(name)
        if target is None:
            return self.refuse(_("The messages cannot be copied to %(folder)s.") % {"folder": name})
        self.store.copy(self.folder, self.selection, target.name)
        values = {"folder": destination_label(target), "count": _number(self.count)}
        if self.count is None:
            return self.done(_("Every message of this folder was copied to %(folder)s.") % values)
        return self.done(
            ngettext(
                "%(count)s message was copied to %(folder)s.",
                "%(count)s messages were copied to %(folder)s.",
                self.count,
            )
            % values
        )


class DeleteView(BulkActionView):
    """To the trash; from the trash (or without one) for good, once confirmed."""

    def act(self) -> HttpResponse:
        trash = self.destinations.trash
        if trash is not None:
            return self.move_to(trash)
        count = self.count
        if self.request.POST.get("confirm") != "1":
            if count is None:
                question = _("Delete every message of this folder permanently?")
            else:
                question = ngettext(
                    "Delete %(count)s message permanently?",
                    "Delete %(count)s messages permanently?",
                    count,
                ) % {"count": _number(count)}
            return self.confirmation(question)
        if count is None:
            # Everything goes: a plain EXPUNGE does it, even without UIDPLUS.
            self.store.empty_folder(self.folder)
            return self.done(_("Every message of this folder was deleted permanently."))
        self.store.delete(self.folder, self.selection)
        return self.done(
            ngettext(
                "%(count)s message was deleted permanently.",
                "%(count)s messages were deleted permanently.",
                count,
            )
            % {"count": _number(count)}
        )


class EmptyTrashView(BulkActionView):
    needs_selection = False

    def act(self) -> HttpResponse:
        trash = next(
            (f for f in self.folder_list if f.special_use == "\\Trash" and f.selectable), None
        )
        if trash is None:
            return self.refuse(_("There is no trash folder to empty."))
        if self.request.POST.get("confirm") != "1":
            return self.confirmation(_("Empty the trash: delete every message in it permanently?"))
        self.store.empty_folder(trash.name)
        return self.done(_("The trash was emptied."))


class UndoMoveView(BulkActionView):
    """Moves the messages of the last move back where they were, in one command.

    They get new UIDs there, as any moved message does; the move is forgotten, so
    it is undone once at most.
    """

    needs_selection = False

    def act(self) -> HttpResponse:
        session = self.request.session
        record = session.get(UNDO_SESSION_KEY)
        if (
            not isinstance(record, dict)
            or record.get("account") != self.account.pk
            or not secrets.compare_digest(
                str(record.get("token")).encode(), self.request.POST.get("token", "").encode()
            )
        ):
            return self.refuse(_("There is nothing to undo."))
        del session[UNDO_SESSION_KEY]
        try:
            back = self.store.move(
                record["folder"], record["uids"], record["back"], uidvalidity=record["uidvalidity"]
            )
        except (FolderNotFound, MessageNotFound):
            back = None
        if back is None:
            # Deleted, moved again or gone with their folder since.
            return self.refuse(_("These messages can no longer be moved back."))
        values = {"folder": self.label(record["back"]), "count": _number(back.count)}
        messages.success(
            self.request,
            ngettext(
                "%(count)s message was moved back to %(folder)s.",
                "%(count)s messages were moved back to %(folder)s.",
                back.count,
            )
            % values,
        )
        return redirect(self.list_url())
