"""Managing an account's folders: create, rename or move, delete, subscribe.

Every change is a POST of a form on these pages, which work without script; a
deletion is confirmed on a page of its own. INBOX and the special-use folders
(and the folders holding them) are never renamed or deleted.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View

from webmail.mailstore.base import Folder, MailStoreError, is_protected, subtree
from webmail.views.base import AccountMixin
from webmail.views.messages import destination_label

#: The longest name a person may give one folder, and its whole path, in characters.
MAX_NAME_LENGTH = 100
MAX_PATH_LENGTH = 250
#: LIST wildcards (RFC 3501): a name holding one cannot be listed on its own.
WILDCARDS = "*%"


def name_problem(name: str, delimiter: str) -> str | None:
    """What is wrong with ``name`` as one level of a folder's path, for a person; or None."""
    if not name:
        return _("Enter a name for the folder.")
    if any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in name):
        return _("A folder name must be on one line, without control characters.")
    if delimiter and delimiter in name:
        return _(
            "A folder name cannot contain “%(delimiter)s”. To put a folder inside another, "
            "choose that one under “Inside”."
        ) % {"delimiter": delimiter}
    if any(ch in name for ch in WILDCARDS):
        return _("A folder name cannot contain * or %.")
    if len(name) > MAX_NAME_LENGTH:
        return _("A folder name can be at most %(max)d characters long.") % {"max": MAX_NAME_LENGTH}
    return None


def hierarchy_delimiter(folders: Sequence[Folder]) -> str:
    """The server's separator of nested names; "" where folders cannot nest."""
    return next((f.delimiter for f in folders if f.delimiter), "")


def same_folder(a: str, b: str) -> bool:
    """Whether two names are one folder: INBOX is INBOX in any case (RFC 3501)."""
    return a == b or (a.upper() == "INBOX" and b.upper() == "INBOX")


class FolderForm(forms.Form):
    """A folder's own name and the folder it goes inside; ``full_name`` once valid."""

    name = forms.CharField(
        label=gettext_lazy("Name"),
        error_messages={"required": gettext_lazy("Enter a name for the folder.")},
        widget=forms.TextInput(attrs={"maxlength": MAX_NAME_LENGTH, "autocomplete": "off"}),
    )
    parent = forms.ChoiceField(label=gettext_lazy("Inside"), required=False)

    def __init__(
        self, *args, folders: Sequence[Folder], exclude: Sequence[Folder] = (), **kwargs
    ) -> None:
        super().__init__(*args, **kwargs)
        self.folders = folders
        self.delimiter = hierarchy_delimiter(folders)
        excluded = {f.name for f in exclude}
        self.fields["parent"].choices = [("", _("No folder (top level)"))] + [
            (f.name, destination_label(f))
            for f in folders
            if self.delimiter and f.name not in excluded
        ]
        if not self.delimiter:
            self.fields["parent"].widget = forms.HiddenInput()

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        problem = name_problem(name, self.delimiter)
        if problem:
            raise forms.ValidationError(problem)
        return name

    def clean(self) -> dict:
        cleaned = super().clean()
        if "name" in cleaned and not self.errors:
            parent = cleaned.get("parent") or ""
            self.full_name = (
                f"{parent}{self.delimiter}{cleaned['name']}" if parent else cleaned["name"]
            )
            if len(self.full_name) > MAX_PATH_LENGTH:
                self.add_error(
                    "name", _("Nested this deep, the folder's whole name would be too long.")
                )
            elif any(same_folder(f.name, self.full_name) for f in self.folders):
                self.add_error("name", self.duplicate_message())
        return cleaned

    def duplicate_message(self) -> str:
        return _("There is already a folder with this name there.")


class RenameFolderForm(FolderForm):
    def __init__(self, *args, folder: Folder, folders: Sequence[Folder], **kwargs) -> None:
        # A folder cannot go inside itself or inside one of its own subfolders.
        super().__init__(*args, folders=folders, exclude=subtree(folders, folder.name), **kwargs)
        self.folder = folder
        if not self.is_bound:
            parent = folder.delimiter.join(folder.path[:-1]) if folder.depth else ""
            self.initial = {"name": folder.leaf, "parent": parent}

    def duplicate_message(self) -> str:
        if self.full_name == self.folder.name:
            return _("Give the folder another name or choose another place for it.")
        return super().duplicate_message()


class FolderAdminMixin(AccountMixin):
    """The account's folders as listed now, and the pages' shared context."""

    @cached_property
    def folder_list(self) -> list[Folder]:
        # Listed again, not from the cache: another mail program may have changed them.
        return self.store.folders(fresh=True)

    @cached_property
    def managed(self) -> Folder:
        """The folder named by ``?folder=``; 404 when there is no such folder."""
        found = next((f for f in self.folder_list if f.name == self.folder), None)
        if found is None:
            raise Http404(_("No such folder."))
        return found

    def manage_url(self) -> str:
        return reverse("webmail:folders", args=[self.account.pk])

    def folder_url(self, name: str, folder: str) -> str:
        url = reverse(name, args=[self.account.pk])
        return f"{url}?{urlencode({'folder': folder})}"

    def render(self, template: str, **context) -> HttpResponse:
        return TemplateResponse(
            self.request,
            template,
            {
                "account": self.account,
                "accounts": self.accounts,
                "folders": self.folder_list,
                # No folder of the pane is the page being shown.
                "folder": None,
                "manage_url": self.manage_url(),
                "manage_folders_page": True,
                **context,
            },
        )

    def refuse_protected(self) -> HttpResponse | None:
        if is_protected(self.folder_list, self.managed.name):
            messages.error(
                self.request,
                _("Special-use folders are protected: they cannot be renamed or deleted."),
            )
            return redirect(self.manage_url())
        return None


class ManageFoldersView(FolderAdminMixin, View):
    """Every folder with what can be done to it, and the form that makes a new one."""

    def get(self, request: HttpRequest, account_id: int) -> HttpResponse:
        return self.page(FolderForm(folders=self.folder_list))

    def post(self, request: HttpRequest, account_id: int) -> HttpResponse:
        form = FolderForm(request.POST, folders=self.folder_list)
        if form.is_valid():
            try:
                self.store.create_folder(form.full_name)
            except MailStoreError as exc:
                form.add_error("name", str(exc))
            else:
                messages.success(
                    request,
                    _("The folder %(name)s was created.")
                    % {"name": destination_label(_named(form.full_name, form.delimiter))},
                )
                return redirect(self.manage_url())
        return self.page(form)

    def page(self, form: FolderForm) -> HttpResponse:
        rows = [
            {
                "folder": f,
                "inbox": f.special_use == "\\Inbox",
                # INBOX is listed whether subscribed or not (the pane always shows it).
                "listed": f.subscribed or f.special_use == "\\Inbox",
                "protected": is_protected(self.folder_list, f.name),
                "rename_url": self.folder_url("webmail:folder-rename", f.name),
                "delete_url": self.folder_url("webmail:folder-delete", f.name),
                "subscription_url": self.folder_url("webmail:folder-subscription", f.name),
            }
            for f in self.folder_list
        ]
        return self.render("mail/folders_manage.html", form=form, rows=rows)


class RenameFolderView(FolderAdminMixin, View):
    """A new name, a new place (another parent), or both."""

    def get(self, request: HttpRequest, account_id: int) -> HttpResponse:
        refused = self.refuse_protected()
        if refused:
            return refused
        return self.page(RenameFolderForm(folder=self.managed, folders=self.folder_list))

    def post(self, request: HttpRequest, account_id: int) -> HttpResponse:
        refused = self.refuse_protected()
        if refused:
            return refused
        form = RenameFolderForm(request.POST, folder=self.managed, folders=self.folder_list)
        if form.is_valid():
            try:
                self.store.rename_folder(self.managed.name, form.full_name)
            except MailStoreError as exc:
                form.add_error("name", str(exc))
            else:
                messages.success(
                    request,
                    _("The folder %(old)s is now %(new)s.")
                    % {
                        "old": destination_label(self.managed),
                        "new": destination_label(_named(form.full_name, form.delimiter)),
                    },
                )
                return redirect(self.manage_url())
        return self.page(form)

    def page(self, form: RenameFolderForm) -> HttpResponse:
        return self.render(
            "mail/folder_rename.html",
            form=form,
            managed=self.managed,
            action_url=self.folder_url("webmail:folder-rename", self.managed.name),
        )


class DeleteFolderView(FolderAdminMixin, View):
    """Asks first, saying how many messages and subfolders go with the folder."""

    def get(self, request: HttpRequest, account_id: int) -> HttpResponse:
        refused = self.refuse_protected()
        if refused:
            return refused
        affected = subtree(self.folder_list, self.managed.name)
        messages_count = sum(
            self.store.folder_status(f.name).total for f in affected if f.selectable
        )
        return self.render(
            "mail/folder_confirm_delete.html",
            managed=self.managed,
            subfolders=[f for f in affected if f.name != self.managed.name],
            messages_count=messages_count,
            action_url=self.folder_url("webmail:folder-delete", self.managed.name),
        )

    def post(self, request: HttpRequest, account_id: int) -> HttpResponse:
        refused = self.refuse_protected()
        if refused:
            return refused
        try:
            self.store.delete_folder(self.managed.name)
        except MailStoreError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(
                request,
                _("The folder %(name)s was deleted.") % {"name": destination_label(self.managed)},
            )
        return redirect(self.manage_url())


class FolderSubscriptionView(FolderAdminMixin, View):
    """Subscribe (``subscribed=1``) or unsubscribe: whether the folder pane lists it."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest, account_id: int) -> HttpResponse:
        folder = self.managed
        try:
            if request.POST.get("subscribed") == "1":
                self.store.subscribe(folder.name)
                notice = _("The folder %(name)s is shown in the folder list again.")
            else:
                self.store.unsubscribe(folder.name)
                notice = _("The folder %(name)s is no longer shown in the folder list.")
        except MailStoreError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, notice % {"name": destination_label(folder)})
        return redirect(self.manage_url())


def _named(name: str, delimiter: str) -> Folder:
    """A Folder for a name that is not listed yet, to name it as the lists do."""
    return Folder(name=name, delimiter=delimiter)
