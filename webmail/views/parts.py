"""Attachments and inline images, served so that a browser can never run them."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.views import View

from accounts.crypto import CredentialError
from accounts.models import MailAccount
from webmail import mailstore, reading
from webmail.mailstore.base import MailStoreError
from webmail.mime import extract_part
from webmail.views.base import AccountMixin

PART_CSP = "default-src 'none'; style-src 'unsafe-inline'; sandbox"


def part_response(
    content_type: str, filename: str, payload: bytes, *, inline: bool
) -> HttpResponse:
    """A part as a download, or shown in place only for harmless image types."""
    inline = inline and content_type in reading.INLINE_IMAGE_TYPES
    response = HttpResponse(
        payload, content_type=content_type if inline else "application/octet-stream"
    )
    response.headers["Content-Disposition"] = content_disposition_header(
        as_attachment=not inline, filename=filename
    )
    response.headers["Content-Security-Policy"] = PART_CSP
    # Never kept by the browser: after sign-out it would show the mail to the next person.
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _extract(raw: bytes, part_id: str) -> tuple[str, str, bytes]:
    try:
        return extract_part(raw, part_id, limits=reading.parse_limits())
    except KeyError as exc:
        raise Http404(_("This attachment does not exist.")) from exc


class AttachmentView(AccountMixin, View):
    def get(self, request: HttpRequest, account_id: int, uid: int, part_id: str) -> HttpResponse:
        try:
            uidvalidity = int(request.GET.get("v", ""))
        except ValueError as exc:
            raise Http404(_("This link is incomplete.")) from exc
        raw = reading.cached_raw(self.store, self.account, self.folder, uidvalidity, uid)
        if raw is None:
            raise Http404(_("This message has changed on the server; reload the page."))
        content_type, filename, payload = _extract(raw.raw, part_id)
        return part_response(
            content_type, filename, payload, inline=request.GET.get("inline") == "1"
        )


class InlinePartView(View):
    """An inline image of a message body, named by a signed token (see reading.inline_token)."""

    def get(self, request: HttpRequest, token: str) -> HttpResponse:
        part = reading.read_inline_token(token)
        if part is None:
            raise Http404(_("This image link has expired."))
        account = MailAccount.objects.filter(pk=part.account_id, user__is_active=True).first()
        if account is None or not part.belongs_to(account):
            raise Http404(_("This image link has expired."))
        try:
            image = reading.inline_image(
                mailstore.for_account(account),
                account,
                part.folder,
                part.uidvalidity,
                part.uid,
                part.part_id,
            )
        except (MailStoreError, CredentialError) as exc:
            raise Http404(_("This image link has expired.")) from exc
        if image is None:
            raise Http404(_("This part is not an image."))
        return part_response(*image, inline=True)
