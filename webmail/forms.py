"""The compose form: what a person writes, checked before anything is saved or queued."""

from __future__ import annotations

import logging
from datetime import datetime

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy

from accounts.models import Identity, MailAccount
from webmail.compose import carried
from webmail.compose.composition import Composition
from webmail.mailstore.base import MAX_UID
from webmail.mime.build import Attachment, HeaderInjection, InvalidAddress, parse_recipients
from webmail.mime.headers import one_line
from webmail.models import STORAGE_ERRORS, Upload

logger = logging.getLogger(__name__)

#: RFC 5322 2.1.1: a line, and so a Subject, is at most 998 characters.
MAX_LINE = 998


def _check_weight(total: int) -> None:
    if total > settings.UPLOAD_MAX_SIZE:
        raise forms.ValidationError(
            _("The attachments weigh %(total)s together; the most a message may carry is %(max)s.")
            % {"total": filesizeformat(total), "max": filesizeformat(settings.UPLOAD_MAX_SIZE)}
        )


class ComposeForm(forms.Form):
    """A message being written; ``sending`` turns on the checks a draft does not need."""

    SEND = "send"
    SCHEDULE = "schedule"
    SAVE = "save"
    ACTIONS = (SEND, SCHEDULE, SAVE)

    identity = forms.ModelChoiceField(queryset=Identity.objects.none(), label=_lazy("From"))
    to = forms.CharField(label=_lazy("To"), required=False, max_length=20_000)
    cc = forms.CharField(label=_lazy("Cc"), required=False, max_length=20_000)
    bcc = forms.CharField(label=_lazy("Bcc"), required=False, max_length=20_000)
    subject = forms.CharField(label=_lazy("Subject"), required=False, max_length=MAX_LINE)
    rich = forms.BooleanField(required=False)
    html = forms.CharField(required=False, strip=False)
    text = forms.CharField(required=False, strip=False)
    attachments = forms.ModelMultipleChoiceField(queryset=Upload.objects.none(), required=False)
    in_reply_to = forms.CharField(required=False, max_length=MAX_LINE)
    references = forms.CharField(required=False, max_length=20_000)
    origin_kind = forms.ChoiceField(
        required=False, choices=[("", ""), ("reply", "reply"), ("forward", "forward")]
    )
    origin_folder = forms.CharField(required=False, max_length=1000)
    origin_uid = forms.IntegerField(required=False, min_value=1, max_value=MAX_UID)
    draft_uid = forms.IntegerField(required=False, min_value=1, max_value=MAX_UID)
    send_at = forms.DateTimeField(
        label=_lazy("Send at"),
        required=False,
        input_formats=["%Y-%m-%dT%H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )

    def __init__(self, *args, account: MailAccount, action: str = SAVE, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.account = account
        self.sending = action != self.SAVE
        self.scheduling = action == self.SCHEDULE
        self.fields["identity"].queryset = Identity.objects.filter(account=account)
        self.fields["attachments"].queryset = Upload.objects.filter(user=account.user)

    def clean_identity(self) -> Identity:
        identity = self.cleaned_data["identity"]
        # An identity made before the administrator's rules, or since disallowed.
        if not self.account.may_send_as(identity.email):
            raise forms.ValidationError(
                _("This account may no longer send as %(address)s. Choose another identity.")
                % {"address": identity.email}
            )
        return identity

    def _recipients(self, name: str, header: str) -> str:
        value = self.cleaned_data.get(name, "")
        if self.sending:
            try:
                parse_recipients(value, header)
            except (InvalidAddress, HeaderInjection) as exc:
                raise forms.ValidationError(str(exc)) from exc
        elif "\r" in value or "\n" in value:
            raise forms.ValidationError(_("This field must be on one line."))
        return value

    def clean_to(self) -> str:
        return self._recipients("to", "To")

    def clean_cc(self) -> str:
        return self._recipients("cc", "Cc")

    def clean_bcc(self) -> str:
        return self._recipients("bcc", "Bcc")

    def clean_subject(self) -> str:
        subject = self.cleaned_data.get("subject", "")
        if "\r" in subject or "\n" in subject:
            raise forms.ValidationError(_("The subject must be on one line."))
        # Other line breaks (U+2028, ...) are invisible in the field: they become spaces.
        return one_line(subject)

    def clean_references(self) -> list[str]:
        return self.cleaned_data.get("references", "").split()

    def clean_send_at(self) -> datetime | None:
        if not self.scheduling:
            return None
        send_at = self.cleaned_data.get("send_at")
        if send_at is None or send_at <= timezone.now():
            raise forms.ValidationError(_("Pick a time in the future to send it later."))
        return send_at

    def clean_attachments(self) -> list[Upload]:
        uploads = list(self.cleaned_data.get("attachments") or [])
        _check_weight(sum(upload.size for upload in uploads))
        # Read now, so that a storage out of reach is said on the form, the text kept.
        try:
            self.attachment_bytes = {upload.pk: upload.content for upload in uploads}
        except STORAGE_ERRORS as exc:
            logger.warning("attachments not read from the uploads storage: %s", exc)
            raise forms.ValidationError(
                _("The attachments cannot be read just now. Try again in a moment.")
            ) from exc
        return uploads

    def clean(self) -> dict:
        data = super().clean()
        if self.sending and not self.errors and not any(data.get(f) for f in ("to", "cc", "bcc")):
            self.add_error("to", _("Add at least one recipient."))
        self._clean_carried(data)
        return data

    def _clean_carried(self, data: dict) -> None:
        """The attachments referenced from another message (see ``webmail.compose.carried``)."""
        tokens = self.data.getlist("carried") if hasattr(self.data, "getlist") else []
        found = carried.read_all(self.account, tokens[: carried.MAX_CARRIED])
        data["carried"] = found
        if len(found) != len(tokens):
            self.add_error(None, _("An attachment of this message cannot be found."))
            return
        total = sum(upload.size for upload in data.get("attachments") or []) + sum(
            part.size for _token, part in found
        )
        if "attachments" not in self.errors:
            try:
                _check_weight(total)
            except forms.ValidationError as exc:
                self.add_error("attachments", exc)

    def composition(self) -> Composition:
        """What was written, with the attachments' bytes."""
        data = self.cleaned_data
        return Composition(
            to=data["to"],
            cc=data["cc"],
            bcc=data["bcc"],
            subject=data["subject"],
            html=data["html"] if data["rich"] else "",
            text="" if data["rich"] else data["text"],
            rich=data["rich"],
            in_reply_to=data["in_reply_to"],
            references=data["references"],
            origin_kind=data["origin_kind"],
            origin_folder=data["origin_folder"] if data["origin_kind"] else "",
            origin_uid=data["origin_uid"] if data["origin_kind"] else None,
            identity_email=data["identity"].email,
            attachments=[
                Attachment(u.filename, self.attachment_bytes[u.pk], u.content_type)
                for u in data["attachments"]
            ],
        )
