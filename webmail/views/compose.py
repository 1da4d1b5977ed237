"""Writing a message: new, reply, forward, a draft reopened; saving drafts; sending."""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.db.models import Sum
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.html import escape
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views import View

from accounts.models import Identity
from webmail import outbox, reading
from webmail.compose import carried, drafts, prefill
from webmail.compose.composition import Composition
from webmail.compose.editor_html import html_to_text
from webmail.compose.message import draft_bytes, restore, to_message
from webmail.forms import ComposeForm
from webmail.mailstore.base import MAX_UID, MailStoreError
from webmail.middleware import DEFAULT_CSP
from webmail.mime import parse_message
from webmail.mime.build import HeaderInjection, InvalidAddress
from webmail.models import STORAGE_ERRORS, Contact, OutgoingMessage, Upload
from webmail.views.base import AccountMixin

logger = logging.getLogger(__name__)

#: How many messages' worth of attachments a person may have uploaded and not sent.
WAITING_UPLOADS_FACTOR = 4

#: The query parameters that start a message from another, and what each makes of it.
STARTS = ("reply", "reply_all", "forward", "forward_attached")


def compose_csp(nonce: str) -> str:
    """The page's policy, letting the editor add its own stylesheet under ``nonce``."""
    return DEFAULT_CSP.replace("style-src 'self'", f"style-src 'self' 'nonce-{nonce}'")


def _uid(value: str) -> int:
    try:
        uid = int(value)
    except (TypeError, ValueError) as exc:
        raise Http404 from exc
    if not 0 < uid <= MAX_UID:
        raise Http404
    return uid


def signature_html(signature: str) -> str:
    lines = "<br>".join(escape(line) for line in signature.splitlines())
    return f"<div>-- <br>{lines}</div>"


def with_signature(composition: Composition, signature: str) -> Composition:
    """Room to write first, then the signature, above any quoted message."""
    if not signature.strip():
        return composition
    if composition.rich:
        composition.html = "<div><br></div>" + signature_html(signature) + composition.html
    else:
        composition.text = "\n\n-- \n" + signature + "\n" + composition.text
    return composition


class ComposeView(AccountMixin, View):
    """GET opens the editor; POST saves the draft (``action=save``) or sends (``action=send``)."""

    def get(self, request: HttpRequest, account_id: int) -> HttpResponse:
        identities = self.account.sending_identities()
        if not identities:
            # Only where an administrator removed every address it may send as.
            messages.error(request, _("This account has no address it may send as. Add one first."))
            return redirect("accounts:identities")
        composition, draft_uid, fresh, parts = self.starting_point()
        identity = next(
            (i for i in identities if i.email.lower() == composition.identity_email.lower()),
            identities[0],
        )
        if fresh:
            composition = with_signature(composition, identity.signature)
        # A GET writes nothing: the original's parts are fetched when the form is posted.
        references = [(carried.sign(self.account, part), part) for part in parts]
        form = ComposeForm(
            account=self.account,
            initial={
                "identity": identity.pk,
                "to": composition.to,
                "cc": composition.cc,
                "bcc": composition.bcc,
                "subject": composition.subject,
                "rich": composition.rich,
                "html": composition.html,
                "text": composition.text,
                "in_reply_to": composition.in_reply_to,
                "references": " ".join(composition.references),
                "origin_kind": composition.origin_kind,
                "origin_folder": composition.origin_folder,
                "origin_uid": composition.origin_uid,
                "draft_uid": draft_uid,
            },
        )
        return self.render_editor(form, identities, [], references)

    def starting_point(
        self,
    ) -> tuple[Composition, int | None, bool, list[carried.CarriedPart]]:
        """What the editor opens with, the draft it replaces, whether it is a new text,
        and the attachments it carries from another message."""
        query = self.request.GET
        for start in STARTS:
            if start in query:
                uid = _uid(query[start])
                raw = reading.fetch_raw(self.store, self.account, self.folder, uid)
                original = reading.parsed(self.account, raw)
                if start.startswith("reply"):
                    composition = prefill.reply(
                        original,
                        own_addresses=self.account.own_addresses(),
                        reply_all=start == "reply_all",
                        folder=self.folder,
                        uid=uid,
                    )
                    return composition, None, True, []
                as_attachment = start == "forward_attached"
                # No bytes: the parts go in the page as references (see carried).
                composition = prefill.forward(
                    original, b"", folder=self.folder, uid=uid, as_attachment=as_attachment
                )
                if as_attachment:
                    name = composition.attachments[0].filename
                    parts = [carried.whole(name, len(raw.raw), folder=self.folder, uid=uid)]
                else:
                    parts = carried.parts_of(
                        original, source=carried.MESSAGE, folder=self.folder, number=uid
                    )
                return composition, None, True, parts
        if "draft" in query:
            uid = _uid(query["draft"])
            raw = drafts.load_draft(self.account, uid)
            parts = carried.parts_of(parse_message(raw), source=carried.DRAFT, number=uid)
            return restore(raw), uid, False, parts
        if "outgoing" in query:
            row = get_object_or_404(
                OutgoingMessage,
                pk=_uid(query["outgoing"]),
                user=self.request.user,
                account=self.account,
                status=OutgoingMessage.Status.CANCELLED,
            )
            composition = restore(bytes(row.raw), envelope_to=row.envelope_to)
            composition.origin_kind = row.origin_kind
            composition.origin_folder = row.origin_folder
            composition.origin_uid = row.origin_uid
            parts = carried.parts_of(
                parse_message(bytes(row.raw)), source=carried.OUTGOING, number=row.pk
            )
            return composition, None, False, parts
        composition = Composition(to=query.get("to", "")[:2000])
        return composition, None, True, []

    def render_editor(
        self,
        form: ComposeForm,
        identities: list[Identity],
        uploads: list[Upload],
        references: list[tuple[str, carried.CarriedPart]],
        *,
        status: int = 200,
    ) -> HttpResponse:
        nonce = secrets.token_urlsafe(16)
        response = render(
            self.request,
            "mail/compose.html",
            {
                "account": self.account,
                "accounts": self.accounts,
                "folders": self.folders_if_reachable(),
                "folder": None,
                "form": form,
                "identities": identities,
                "signatures": {str(i.pk): i.signature for i in identities if i.signature.strip()},
                "uploads": uploads,
                "carried": references,
                "csp_nonce": nonce,
                "autosave_seconds": settings.DRAFT_AUTOSAVE_SECONDS,
                "max_upload_size": settings.UPLOAD_MAX_SIZE,
                "undo_seconds": settings.SEND_UNDO_SECONDS,
            },
            status=status,
        )
        response.headers["Content-Security-Policy"] = compose_csp(nonce)
        return response

    def post(self, request: HttpRequest, account_id: int) -> HttpResponse:
        action = request.POST.get("action")
        if action not in ComposeForm.ACTIONS:
            return HttpResponse(status=400)
        form = ComposeForm(request.POST, account=self.account, action=action)
        if form.is_valid():
            try:
                if action == ComposeForm.SAVE:
                    return self.save_draft(form)
                return self.send(form)
            except carried.CarriedPartGone:
                form.add_error(None, carried.gone_message())
            except NoRoomForUploads:
                form.add_error(None, waiting_uploads_message())
            except STORAGE_ERRORS as exc:
                logger.warning("carried parts not stored: %s", exc)
                form.add_error(
                    None, _("The attachments cannot be kept just now. Try again in a moment.")
                )
            except (InvalidAddress, HeaderInjection, outbox.OutboxError) as exc:
                form.add_error(None, str(exc))
        if self.wants_json():
            return JsonResponse({"errors": form.errors.get_json_data()}, status=400)
        uploads = list(form.cleaned_data.get("attachments") or [])
        references = form.cleaned_data.get("carried") or []
        return self.render_editor(
            form, self.account.sending_identities(), uploads, references, status=400
        )

    def composition(self, form: ComposeForm) -> Composition:
        """What was written, with the bytes of the parts carried from another message."""
        composition = form.composition()
        parts = [part for _token, part in form.cleaned_data["carried"]]
        if parts:
            composition.attachments += carried.fetch(self.account, self.store, parts)
        return composition

    def keep_carried(self, form: ComposeForm) -> list[dict]:
        """The carried parts kept as uploads, for a page that goes on saving the draft.

        Each save replaces the draft, which may be where the parts come from; as
        uploads they outlive it. What they weigh counts against the person's room.
        """
        references = form.cleaned_data["carried"]
        if not references:
            return []
        attachments = carried.fetch(self.account, self.store, [p for _t, p in references])
        if not has_room(self.request.user, sum(len(a.content) for a in attachments)):
            raise NoRoomForUploads
        kept = []
        for (token, _part), attachment in zip(references, attachments, strict=True):
            row = Upload.objects.create(
                user=self.request.user,
                filename=attachment.filename[:255],
                content_type=attachment.content_type[:255],
                size=len(attachment.content),
                content=attachment.content,
            )
            form.cleaned_data["attachments"].append(row)
            form.attachment_bytes[row.pk] = attachment.content
            kept.append(
                {
                    "carried": token,
                    "id": row.pk,
                    "delete_url": reverse("webmail:upload-delete", args=[row.pk]),
                }
            )
        form.cleaned_data["carried"] = []
        return kept

    def wants_json(self) -> bool:
        return "application/json" in self.request.headers.get("Accept", "")

    def save_draft(self, form: ComposeForm) -> HttpResponse:
        identity = form.cleaned_data["identity"]
        kept = self.keep_carried(form) if self.wants_json() else []
        message, _recipients = to_message(
            self.composition(form),
            sender=identity.address(),
            message_id_domain=_domain(identity.email),
            draft=True,
        )
        try:
            uid = drafts.save_draft(
                self.account, draft_bytes(message), replace_uid=form.cleaned_data["draft_uid"]
            )
        except MailStoreError as exc:
            if self.wants_json():
                return JsonResponse({"error": str(exc)}, status=503)
            raise
        saved = formats.time_format(timezone.localtime(), "TIME_FORMAT")
        if self.wants_json():
            return JsonResponse(
                {
                    "draft_uid": uid,
                    "saved": _("Draft saved at %(time)s.") % {"time": saved},
                    "carried": kept,
                }
            )
        messages.success(self.request, _("Draft saved."))
        if uid is None:
            return redirect("webmail:mailbox", account_id=self.account.pk)
        return redirect(
            reverse("webmail:compose", args=[self.account.pk]) + "?" + urlencode({"draft": uid})
        )

    def send(self, form: ComposeForm) -> HttpResponse:
        data = form.cleaned_data
        identity = data["identity"]
        composition = self.composition(form)
        message, recipients = to_message(
            composition, sender=identity.address(), message_id_domain=_domain(identity.email)
        )
        send_at = data["send_at"] or timezone.now() + timedelta(seconds=settings.SEND_UNDO_SECONDS)
        row = outbox.queue(
            self.account,
            message,
            recipients,
            send_after=send_at,
            origin_kind=composition.origin_kind,
            origin_folder=composition.origin_folder,
            origin_uid=composition.origin_uid,
            draft_uid=data["draft_uid"],
        )
        Upload.objects.filter(pk__in=[u.pk for u in data["attachments"]]).delete()
        if data["draft_uid"]:
            # Sent or scheduled, it is no longer a draft; the worker deletes it
            # again after sending should the server be unreachable now.
            try:
                drafts.delete_draft(self.account, data["draft_uid"])
            except MailStoreError as exc:
                logger.warning("draft of outgoing message %s not deleted: %s", row.pk, exc)
        return redirect(
            reverse("webmail:mailbox", args=[self.account.pk]) + "?" + urlencode({"sent": row.pk})
        )


def _domain(email: str) -> str:
    return email.rpartition("@")[2] or "localhost"


class NoRoomForUploads(Exception):
    """The person's waiting attachments would weigh more than they may keep."""


def has_room(user, size: int) -> bool:
    """Whether ``size`` more bytes fit in what a person may keep waiting in all the
    messages they are writing at once: a stolen session must not fill the database."""
    waiting = Upload.objects.filter(user=user).aggregate(total=Sum("size"))["total"]
    return (waiting or 0) + size <= settings.UPLOAD_MAX_SIZE * WAITING_UPLOADS_FACTOR


def waiting_uploads_message() -> str:
    return _(
        "Too many attachments are waiting to be sent. Send or delete "
        "the messages you are writing, or try again later."
    )


class UploadView(AccountMixin, View):
    """Keeps one attached file until the message is sent; the answer names it for the form."""

    def post(self, request: HttpRequest, account_id: int) -> JsonResponse:
        limit = settings.UPLOAD_MAX_SIZE
        too_big = _("This file is too large: a message may carry %(max)s of attachments.") % {
            "max": filesizeformat(limit)
        }
        # Refused before the body is read, when the browser says how much is coming.
        if int(request.META.get("CONTENT_LENGTH") or 0) > limit + 64 * 1024:
            return JsonResponse({"error": too_big}, status=413)
        upload = request.FILES.get("file")
        if upload is None:
            return JsonResponse({"error": _("No file was received.")}, status=400)
        if upload.size > limit:
            return JsonResponse({"error": too_big}, status=413)
        if not has_room(request.user, upload.size):
            return JsonResponse({"error": waiting_uploads_message()}, status=413)
        try:
            row = Upload.objects.create(
                user=request.user,
                filename=(upload.name or "attachment")[:255],
                content_type=(upload.content_type or "application/octet-stream")[:255],
                size=upload.size,
                content=upload.read(),
            )
        except STORAGE_ERRORS as exc:
            logger.warning("upload not stored: %s", exc)
            return JsonResponse(
                {"error": _("The file could not be kept just now. Try again in a moment.")},
                status=503,
            )
        return JsonResponse(
            {
                "id": row.pk,
                "filename": row.filename,
                "size": row.size,
                "delete_url": reverse("webmail:upload-delete", args=[row.pk]),
            }
        )


class UploadDeleteView(LoginRequiredMixin, View):
    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        Upload.objects.filter(pk=pk, user=request.user).delete()
        return HttpResponse(status=204)


class ContactsView(LoginRequiredMixin, View):
    """Addresses the person has written to, for the recipient fields' suggestions."""

    def get(self, request: HttpRequest) -> JsonResponse:
        query = request.GET.get("q", "").strip()[:100]
        found = Contact.suggest(request.user, query) if query else []
        return JsonResponse(
            {"contacts": [{"name": c.name, "email": c.email} for c in found]},
        )


class PlainTextView(LoginRequiredMixin, View):
    """The text a rich message becomes, for the switch to plain text."""

    def post(self, request: HttpRequest) -> JsonResponse:
        return JsonResponse({"text": html_to_text(request.POST.get("html", ""))})
