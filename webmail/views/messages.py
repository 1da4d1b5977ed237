"""Reading one message: its page, its sandboxed body, its source, where it can be moved."""

from __future__ import annotations

from dataclasses import dataclass

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.http import urlencode
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views import View
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.generic import TemplateView

from webmail import reading, trust
from webmail.mailstore.base import Folder
from webmail.mime import ParsedMessage, Part
from webmail.models import TrustedSender
from webmail.sanitize import plain_text_to_html
from webmail.templatetags.mail import folder_label
from webmail.views.base import AccountMixin

SEEN = "\\Seen"
TRUSTED_SENDER_MAX_LENGTH = TrustedSender._meta.get_field("email").max_length
#: The message list's own query, carried from a message back to its list.
LIST_QUERY = ("page", "sort", "dir")


def body_csp(request: HttpRequest, allow_remote: bool) -> str:
    """The policy of the frame that shows a message's HTML.

    No script, no form, no plugin, no navigation of the page; images only from
    Facteur unless the person allowed remote content. The ``sandbox`` directive
    repeats the iframe's own so that the body stays sandboxed when opened directly.
    """
    # data: images survive the sanitiser only as PNG, JPEG, GIF or WebP.
    local = f"{request.scheme}://{request.get_host()} data:"
    images = f"{local} http: https:" if allow_remote else local
    return "; ".join(
        [
            "default-src 'none'",
            f"img-src {images}",
            "style-src 'unsafe-inline'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'self'",
            "sandbox allow-popups allow-popups-to-escape-sandbox",
        ]
    )


def _sender_email(message: ParsedMessage) -> str | None:
    return message.sender[0].email if message.sender else None


def destination_label(folder: Folder) -> str:
    """A folder as a list of destinations names it: a nested one by its whole path."""
    return folder_label(folder) if folder.depth == 0 else " / ".join(folder.path)


def _special(folders: list[Folder], use: str) -> Folder | None:
    # The first selectable one, as MailStore.special_folder chooses.
    return next((f for f in folders if f.special_use == use and f.selectable), None)


def _within(name: str, folder: Folder) -> bool:
    """Whether ``name`` is ``folder`` or a folder inside it."""
    inside = bool(folder.delimiter) and name.startswith(folder.name + folder.delimiter)
    return name == folder.name or inside


@dataclass(frozen=True)
class Destinations:
    """Where the actions of the message page can take a message of one folder."""

    #: Where Archive moves it; None when there is no archive or the message is in it.
    archive: Folder | None
    #: Where Delete moves it; None when Delete removes it for good: in the trash (or
    #: a folder inside it), as mail clients do, or when there is no trash.
    trash: Folder | None
    #: What "Move to…" offers: every folder that can hold mail but this one.
    targets: list[Folder]

    @classmethod
    def of(cls, folders: list[Folder], current: str) -> Destinations:
        archive, trash = _special(folders, "\\Archive"), _special(folders, "\\Trash")
        return cls(
            archive=None if archive is None or _within(current, archive) else archive,
            trash=None if trash is None or _within(current, trash) else trash,
            targets=[f for f in folders if f.selectable and f.name != current],
        )

    def target(self, name: str) -> Folder | None:
        return next((f for f in self.targets if f.name == name), None)


class MessageMixin(AccountMixin):
    def message_query(self, **extra) -> str:
        return urlencode({"folder": self.folder, **extra})

    def list_query(self) -> dict[str, str]:
        """The page and order of the list the message was opened from, when known."""
        return {name: self.request.GET[name] for name in LIST_QUERY if self.request.GET.get(name)}

    def list_url(self) -> str:
        return (
            reverse("webmail:mailbox", args=[self.account.pk])
            + "?"
            + urlencode({"folder": self.folder, **self.list_query()})
        )

    def message_url(self) -> str:
        return (
            reverse("webmail:message", args=[self.account.pk, self.kwargs["uid"]])
            + "?"
            + self.message_query(**self.list_query())
        )

    def remote_query(self, uidvalidity: int) -> dict[str, str]:
        """The query that shows the message with its remote content."""
        uid = self.kwargs["uid"]
        grant = reading.remote_content_grant(self.account, self.folder, uidvalidity, uid)
        return {"remote": "1", "grant": grant}

    def remote_granted(self, uidvalidity: int) -> bool:
        """Whether this request carries the person's consent to remote content."""
        return self.request.GET.get("remote") == "1" and reading.is_remote_content_granted(
            self.account,
            self.folder,
            uidvalidity,
            self.kwargs["uid"],
            self.request.GET.get("grant"),
        )


class MessageView(MessageMixin, TemplateView):
    template_name = "mail/message.html"

    def get_context_data(self, **kwargs) -> dict:
        account, uid = self.account, self.kwargs["uid"]
        raw = reading.fetch_raw(self.store, account, self.folder, uid)
        message = reading.parsed(account, raw)
        sender = _sender_email(message)
        verified = trust.verified_sender(raw.raw, message)
        allow_remote = self.remote_granted(raw.uidvalidity) or (
            verified is not None and TrustedSender.is_trusted(self.request.user, verified)
        )
        body = reading.sanitised_body(
            account,
            raw,
            message,
            allow_remote=allow_remote,
            cid_url=reading.cid_url_resolver(account, raw, message),
        )
        if SEEN not in raw.flags:
            self.store.mark_seen(self.folder, uid)
        folders = self.store.folders()
        destinations = Destinations.of(folders, self.folder)

        return super().get_context_data(
            account=account,
            accounts=self.accounts,
            folders=folders,
            folder=self.folder,
            message=message,
            sender_email=sender,
            # Trusting a sender is offered only where the trust could apply.
            sender_verified=verified is not None,
            body=body,
            body_url=reverse("webmail:message-body", args=[account.pk, uid])
            + "?"
            + self.message_query(
                v=raw.uidvalidity, **(self.remote_query(raw.uidvalidity) if allow_remote else {})
            ),
            # plain_text_to_html escapes everything it does not itself produce.
            text_html=mark_safe(plain_text_to_html(message.text))  # noqa: S308
            if body is None and message.text
            else None,
            attachments=[
                (part, self._attachment_url(part, raw.uidvalidity))
                for part in message.attachments
                if not (body and part.inline and part.content_id)
            ],
            allow_remote=allow_remote,
            allow_remote_url=reverse("webmail:allow-remote-content", args=[account.pk, uid])
            + "?"
            + self.message_query(v=raw.uidvalidity),
            source_url=reverse("webmail:message-source", args=[account.pk, uid])
            + "?"
            + self.message_query(),
            download_url=reverse("webmail:message-source", args=[account.pk, uid])
            + "?"
            + self.message_query(download=1),
            compose_url=reverse("webmail:compose", args=[account.pk]),
            compose_query=self.message_query(),
            mailbox_url=self.list_url(),
            destinations=destinations,
            move_choices=[(f.name, destination_label(f)) for f in destinations.targets],
            archive_url=self._action_url("webmail:message-archive"),
            # The version shown goes along, for the confirmation of a deletion for good.
            delete_url=self._action_url("webmail:message-delete", v=raw.uidvalidity),
            move_url=self._action_url("webmail:message-move"),
            **kwargs,
        )

    def _action_url(self, name: str, **extra) -> str:
        return (
            reverse(name, args=[self.account.pk, self.kwargs["uid"]])
            + "?"
            + self.message_query(**self.list_query(), **extra)
        )

    def _attachment_url(self, part: Part, uidvalidity: int) -> str:
        return (
            reverse("webmail:attachment", args=[self.account.pk, self.kwargs["uid"], part.part_id])
            + "?"
            + self.message_query(v=uidvalidity)
        )


def requested_uidvalidity(request: HttpRequest) -> int:
    try:
        return int(request.GET.get("v", ""))
    except ValueError as exc:
        raise Http404(_("This link is incomplete.")) from exc


@method_decorator(xframe_options_sameorigin, name="dispatch")
class MessageBodyView(MessageMixin, View):
    """The sanitised HTML body, alone, for the sandboxed frame of the message page."""

    def get(self, request: HttpRequest, account_id: int, uid: int) -> HttpResponse:
        uidvalidity = requested_uidvalidity(request)
        allow_remote = self.remote_granted(uidvalidity)
        body = reading.cached_body(self.account, self.folder, uidvalidity, uid, allow_remote)
        if body is None:
            # Another process rendered the page: do the work again here.
            raw = reading.cached_raw(self.store, self.account, self.folder, uidvalidity, uid)
            if raw is None:
                raise Http404(_("This message has changed on the server; reload the page."))
            message = reading.parsed(self.account, raw)
            body = reading.sanitised_body(
                self.account,
                raw,
                message,
                allow_remote=allow_remote,
                cid_url=reading.cid_url_resolver(self.account, raw, message),
            )
        response = TemplateResponse(request, "mail/message_body.html", {"body": body})
        response.headers["Content-Security-Policy"] = body_csp(request, allow_remote)
        response.headers["Cache-Control"] = "private, no-store"
        return response


class MessageSourceView(MessageMixin, View):
    """The message exactly as stored, as text or as an .eml download."""

    def get(self, request: HttpRequest, account_id: int, uid: int) -> HttpResponse:
        raw = reading.fetch_raw(self.store, self.account, self.folder, uid)
        if request.GET.get("download"):
            response = HttpResponse(raw.raw, content_type="message/rfc822")
            response.headers["Content-Disposition"] = f'attachment; filename="message-{uid}.eml"'
        else:
            response = HttpResponse(raw.raw, content_type="text/plain; charset=utf-8")
        response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
        response.headers["Cache-Control"] = "private, no-store"
        return response


class AllowRemoteContentView(MessageMixin, View):
    """Remote content for this message once, or always for its sender.

    The sender is read from the message itself, never from the form, so that a
    forged request cannot make the person trust an address of its choosing, and
    only when the office's server vouches for it (``webmail.trust``).
    """

    def post(self, request: HttpRequest, account_id: int, uid: int) -> HttpResponse:
        target = reverse("webmail:message", args=[self.account.pk, uid])
        uidvalidity = requested_uidvalidity(request)
        if request.POST.get("scope") != "sender":
            return redirect(target + "?" + self.message_query(**self.remote_query(uidvalidity)))
        raw = reading.cached_raw(self.store, self.account, self.folder, uidvalidity, uid)
        if raw is None:
            raise Http404(_("This message has changed on the server; reload the page."))
        sender = trust.verified_sender(raw.raw, reading.parsed(self.account, raw))
        if sender is None or len(sender) > TRUSTED_SENDER_MAX_LENGTH:
            # Nothing vouches for its From: this message's content is shown, no more.
            return redirect(target + "?" + self.message_query(**self.remote_query(uidvalidity)))
        TrustedSender.objects.get_or_create(user=request.user, email=sender)
        return redirect(target + "?" + self.message_query())
