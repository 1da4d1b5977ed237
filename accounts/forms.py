"""Forms of the sign-in page, of a person's identities and of the administrator's screens."""

from __future__ import annotations

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import authenticate
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.forms.formsets import INITIAL_FORM_COUNT, TOTAL_FORM_COUNT
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables

from accounts.models import Identity, MailAccount, Protocol, ServerPreset
from accounts.provisioning import validate_ca_file, validate_host
from accounts.throttle import SignInThrottle


class ThrottledAuthenticationMixin:
    """Refuses sign-in after too many failures, before the password is even checked.

    The refusal is the same whether or not the username exists, so it tells an
    attacker nothing about which accounts there are.
    """

    throttled_message = _(
        "Too many failed sign-in attempts. Please wait a few minutes before trying again."
    )

    @sensitive_variables("password")
    def clean(self) -> dict:
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if username is not None and password:
            throttle = SignInThrottle.for_request(self.request, username)
            if not throttle.begin():
                throttle.record_refusal()
                raise ValidationError(self.throttled_message, code="throttled")
            self.user_cache = authenticate(self.request, username=username, password=password)
            if self.user_cache is None:
                throttle.record_failure()
                raise self.get_invalid_login_error()
            throttle.clear()
            self.confirm_login_allowed(self.user_cache)
        return self.cleaned_data


class SignInForm(ThrottledAuthenticationMixin, AuthenticationForm):
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": _("The username, e-mail address or password is not right."),
    }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        username = self.fields["username"]
        username.label = _("Username or e-mail address")
        # An e-mail address may be longer than a username.
        username.max_length = 254
        username.widget.attrs.update({"maxlength": 254, "autocomplete": "username"})


class AdminSignInForm(ThrottledAuthenticationMixin, AdminAuthenticationForm):
    """The admin site's sign-in, throttled like the people's."""


NOT_GRANTED_MESSAGE = _(
    "This account may not send as this address. Your administrator can allow it."
)


class IdentityForm(forms.ModelForm):
    """A name, an address and a signature to send with; the address must be one."""

    email = forms.EmailField(label=_("E-mail address"), max_length=254)

    class Meta:
        model = Identity
        fields = ("name", "email", "signature")
        widgets = {"signature": forms.Textarea(attrs={"rows": 5})}
        help_texts = {
            "name": _("The name recipients see beside the address."),
            "signature": _("Added below what you write. Plain text."),
        }

    def clean_email(self) -> str:
        email = self.cleaned_data["email"]
        if not self.instance.account.may_send_as(email):
            raise ValidationError(NOT_GRANTED_MESSAGE, code="not_granted")
        return email

    def clean_signature(self) -> str:
        # Browsers send a text area's lines with CRLF; the signature is matched
        # line by line in the editor when the person changes identity.
        return "\n".join(self.cleaned_data["signature"].splitlines())


class IdentityInlineFormSet(forms.BaseInlineFormSet):
    """An account's identities in its admin page; left out of a post, they stay as they are.

    Scripts, and the account form's own tests, post the account's fields alone:
    without the inline's management data Django would refuse the whole form.
    """

    def __init__(self, data=None, *args, **kwargs) -> None:
        super().__init__(data, *args, **kwargs)
        if self.is_bound and self.add_prefix(TOTAL_FORM_COUNT) not in self.data:
            self.data = self.data.copy()
            self.data[self.add_prefix(TOTAL_FORM_COUNT)] = "0"
            self.data[self.add_prefix(INITIAL_FORM_COUNT)] = "0"


class SendAsGrantInlineFormSet(IdentityInlineFormSet):
    """An account's send-as grants in its admin page; left out of a post, they stay too."""


class _ServerFieldsMixin:
    """Validates host names and the CA file of a preset or an account form."""

    host_fields: tuple[str, ...] = ()

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for name in self.host_fields:
            self.fields[name].validators.append(validate_host)
        self.fields["ca_file"].validators.append(validate_ca_file)


class ServerPresetAdminForm(_ServerFieldsMixin, forms.ModelForm):
    host_fields = ("imap_host", "pop3_host", "smtp_host")

    class Meta:
        model = ServerPreset
        fields = (
            "name",
            "domain",
            "imap_host",
            "imap_port",
            "imap_security",
            "pop3_host",
            "pop3_port",
            "pop3_security",
            "smtp_host",
            "smtp_port",
            "smtp_security",
            "ca_file",
            "accept_untrusted",
        )

    def clean_domain(self) -> str:
        return self.cleaned_data["domain"].strip().lower().rstrip(".")

    def clean(self) -> dict:
        cleaned = super().clean()
        for protocol in ("imap", "pop3"):
            host, port = f"{protocol}_host", f"{protocol}_port"
            if cleaned.get(host) and not cleaned.get(port):
                self.add_error(port, _("A server needs a port."))
        if not cleaned.get("imap_host") and not cleaned.get("pop3_host"):
            raise ValidationError(
                _("Fill in an IMAP or a POP3 server: a preset needs an incoming server."),
                code="no_incoming",
            )
        return cleaned


class MailAccountAdminForm(_ServerFieldsMixin, forms.ModelForm):
    """A mail account whose passwords can be set but never read back.

    With a preset chosen and the server fields left empty, the servers come
    from the preset, so that an address and a password are enough.
    """

    host_fields = ("incoming_host", "smtp_host")
    server_fields = MailAccount.SERVER_FIELDS
    password_again_message = _(
        "The server or how it is reached has changed: type the password again to send it there."
    )

    password = forms.CharField(
        label=_("Password"),
        strip=False,
        required=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=_(
            "Leave empty to keep the current password. Needed again when a server changes."
        ),
    )
    smtp_password = forms.CharField(
        label=_("SMTP password"),
        strip=False,
        required=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=_("Only if sending needs a different password from receiving. Empty: unchanged."),
    )
    clear_smtp_password = forms.BooleanField(
        label=_("Use the incoming password for sending"),
        required=False,
        help_text=_("Forget the separate SMTP password."),
    )

    class Meta:
        model = MailAccount
        fields = (
            "user",
            "position",
            "email",
            "display_name",
            "preset",
            "protocol",
            "login",
            "incoming_host",
            "incoming_port",
            "incoming_security",
            "pop3_delete_after_days",
            "pop3_deliver_to",
            "pop3_deliver_folder",
            "smtp_host",
            "smtp_port",
            "smtp_security",
            "smtp_login",
            "ca_file",
            "accept_untrusted",
        )
        help_texts = {
            "preset": _("Leave the server fields empty to fill them in from the preset."),
            "login": _("Empty: the e-mail address."),
        }

    def __init__(self, *args, person: AbstractBaseUser | None = None, **kwargs) -> None:
        """``person``: whose account this is, when the form is not the one to say it."""
        super().__init__(*args, **kwargs)
        # Filled in from the preset or the address in clean() when left empty.
        for name in ("incoming_host", "incoming_port", "smtp_host", "smtp_port", "login"):
            self.fields[name].required = False
        self.fields["pop3_deliver_folder"].required = False
        if not self.instance.password_encrypted:
            self.fields["password"].required = True
            self.fields["password"].help_text = ""
        self._offer_delivery_targets(person)

    def _offer_delivery_targets(self, person: AbstractBaseUser | None) -> None:
        """Offer the person's IMAP accounts to deliver into; everyone's while the person is unknown.

        The model's clean() has the last word, whatever is posted.
        """
        field = self.fields["pop3_deliver_to"]
        targets = MailAccount.objects.filter(protocol=Protocol.IMAP).select_related("user")
        if self.instance.user_id is None and person is None:
            field.queryset = targets
            field.label_from_instance = lambda account: f"{account.email} ({account.user})"
            return
        # A person not saved yet has no account to offer.
        person_id = self.instance.user_id or person.pk
        field.queryset = targets.filter(user_id=person_id).exclude(pk=self.instance.pk)

    def clean_pop3_deliver_folder(self) -> str:
        return self.cleaned_data["pop3_deliver_folder"].strip() or "INBOX"

    def clean(self) -> dict:
        cleaned = super().clean()
        preset = cleaned.get("preset")
        if preset and not cleaned.get("incoming_host") and not cleaned.get("smtp_host"):
            filled = MailAccount(protocol=cleaned.get("protocol") or Protocol.IMAP)
            filled.apply_preset(preset)
            for name in self.server_fields:
                cleaned[name] = getattr(filled, name)
        if not cleaned.get("login") and cleaned.get("email"):
            cleaned["login"] = cleaned["email"]
        for name in ("incoming_host", "incoming_port", "smtp_host", "smtp_port"):
            if name not in self.errors and cleaned.get(name) in (None, ""):
                message = (
                    _("The preset has no such server: fill this in.")
                    if preset
                    else _("Choose a preset or fill this in.")
                )
                self.add_error(name, ValidationError(message, code="required"))
        if self.instance.pk is not None:
            self._require_passwords_for_new_servers(cleaned)
        return cleaned

    def _changed(self, cleaned: dict, names: tuple[str, ...]) -> bool:
        return any(
            name in cleaned and cleaned[name] != getattr(self.instance, name) for name in names
        )

    def _require_passwords_for_new_servers(self, cleaned: dict) -> None:
        """A stored password goes only where it went when it was typed.

        Otherwise whoever may edit the account could point it at a server of
        theirs, press "Test connection" or wait for the next sign-in, and read
        the person's mail password there.
        """
        trust = self._changed(cleaned, ("ca_file", "accept_untrusted"))
        incoming = trust or self._changed(
            cleaned, ("protocol", "incoming_host", "incoming_port", "incoming_security")
        )
        sending = trust or self._changed(cleaned, ("smtp_host", "smtp_port", "smtp_security"))
        clearing = bool(cleaned.get("clear_smtp_password"))
        # Without its own password, sending uses the incoming one.
        sends_with_incoming = clearing or not self.instance.smtp_password_encrypted
        if sending and (clearing or not cleaned.get("smtp_password")):
            if sends_with_incoming:
                incoming = True
            else:
                self.add_error(
                    "smtp_password",
                    ValidationError(self.password_again_message, code="password_again"),
                )
        if clearing and self.instance.smtp_password_encrypted:
            # The incoming password would then go to the sending server.
            incoming = True
        if incoming and not cleaned.get("password") and "password" not in self.errors:
            self.add_error(
                "password", ValidationError(self.password_again_message, code="password_again")
            )

    @sensitive_variables("password", "smtp_password")
    def save(self, commit: bool = True) -> MailAccount:
        account = super().save(commit=False)
        password = self.cleaned_data.get("password")
        smtp_password = self.cleaned_data.get("smtp_password")
        if password:
            account.set_password(password)
        if self.cleaned_data.get("clear_smtp_password"):
            account.set_smtp_password("")
        elif smtp_password:
            account.set_smtp_password(smtp_password)
        if commit:
            account.save()
            self._save_m2m()
        return account


class MailAccountInlineFormSet(forms.BaseInlineFormSet):
    """A person's accounts in their admin page: each form knows whose they are."""

    def get_form_kwargs(self, index: int | None) -> dict:
        return {**super().get_form_kwargs(index), "person": self.instance}
