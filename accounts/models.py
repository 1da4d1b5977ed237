"""People's mail accounts, the identities they send as, and the server presets."""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import (
    DomainNameValidator,
    MaxValueValidator,
    MinValueValidator,
    validate_email,
)
from django.db import models, transaction
from django.utils.translation import gettext_lazy as _

from accounts import crypto
from webmail.mime.headers import Address
from webmail.transport.endpoint import Endpoint


class Security(models.TextChoices):
    TLS = "tls", _("TLS")
    STARTTLS = "starttls", _("STARTTLS")
    NONE = "none", _("None (unencrypted)")


class Protocol(models.TextChoices):
    IMAP = "imap", _("IMAP")
    POP3 = "pop3", _("POP3")


def validate_one_line(value: str) -> None:
    """Refuses line breaks in what becomes a header (header injection)."""
    if "\r" in value or "\n" in value:
        raise ValidationError(_("This must be on one line."), code="line_break")


def _port_field(verbose_name: str, **kwargs) -> models.PositiveIntegerField:
    return models.PositiveIntegerField(
        verbose_name, validators=[MinValueValidator(1), MaxValueValidator(65535)], **kwargs
    )


class TlsTrust(models.Model):
    """How certificates of a server are checked: verified by default."""

    ca_file = models.CharField(
        _("CA file"),
        max_length=500,
        blank=True,
        help_text=_("Path to a PEM file of the authority that signed the servers' certificates."),
    )
    accept_untrusted = models.BooleanField(
        _("accept untrusted certificates"),
        default=False,
        help_text=_("Accept any certificate. Only for a server you control on a trusted network."),
    )

    class Meta:
        abstract = True


class ServerPreset(TlsTrust):
    """The servers of one mail domain, so that an account needs only an address and password."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    domain = models.CharField(_("mail domain"), max_length=253, unique=True)
    imap_host = models.CharField(_("IMAP host"), max_length=253, blank=True)
    imap_port = _port_field(_("IMAP port"), null=True, blank=True)
    imap_security = models.CharField(
        _("IMAP security"), max_length=10, choices=Security.choices, default=Security.TLS
    )
    pop3_host = models.CharField(_("POP3 host"), max_length=253, blank=True)
    pop3_port = _port_field(_("POP3 port"), null=True, blank=True)
    pop3_security = models.CharField(
        _("POP3 security"), max_length=10, choices=Security.choices, default=Security.TLS
    )
    smtp_host = models.CharField(_("SMTP host"), max_length=253)
    smtp_port = _port_field(_("SMTP port"))
    smtp_security = models.CharField(
        _("SMTP security"), max_length=10, choices=Security.choices, default=Security.STARTTLS
    )

    class Meta:
        verbose_name = _("server preset")
        verbose_name_plural = _("server presets")
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.domain})"


class MailAccount(TlsTrust):
    """One mailbox a person reads in Facteur."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="mail_accounts",
        verbose_name=_("person"),
    )
    email = models.EmailField(_("e-mail address"))
    display_name = models.CharField(_("display name"), max_length=200, blank=True)
    preset = models.ForeignKey(
        ServerPreset,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="accounts",
        verbose_name=_("preset"),
    )
    protocol = models.CharField(
        _("incoming protocol"), max_length=4, choices=Protocol.choices, default=Protocol.IMAP
    )
    incoming_host = models.CharField(_("incoming host"), max_length=253)
    incoming_port = _port_field(_("incoming port"))
    incoming_security = models.CharField(
        _("incoming security"), max_length=10, choices=Security.choices, default=Security.TLS
    )
    login = models.CharField(_("login"), max_length=254)
    password_encrypted = models.TextField(_("password (encrypted)"), editable=False)
    smtp_host = models.CharField(_("SMTP host"), max_length=253)
    smtp_port = _port_field(_("SMTP port"))
    smtp_security = models.CharField(
        _("SMTP security"), max_length=10, choices=Security.choices, default=Security.STARTTLS
    )
    smtp_login = models.CharField(
        _("SMTP login"), max_length=254, blank=True, help_text=_("Empty: the same as the login.")
    )
    smtp_password_encrypted = models.TextField(
        _("SMTP password (encrypted)"), blank=True, editable=False
    )
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    created = models.DateTimeField(_("created"), auto_now_add=True)
    pop3_delete_after_days = models.PositiveSmallIntegerField(
        _("delete from the POP3 server after (days)"),
        null=True,
        blank=True,
        help_text=_(
            "Empty: leave mail on the server. Otherwise delete it from the server this many "
            "days after Facteur fetched it."
        ),
    )
    # When a POP3 fetch of this account last began, successful or not.
    pop3_last_fetch = models.DateTimeField(_("last POP3 fetch"), null=True, blank=True)
    pop3_deliver_to = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="pop3_sources",
        verbose_name=_("deliver POP3 mail into"),
        help_text=_(
            "Another account of the same person, an IMAP one: mail fetched over POP3 is "
            "added to its folder below instead of being kept by Facteur. Empty: Facteur "
            "keeps it."
        ),
    )
    pop3_deliver_folder = models.CharField(
        _("folder to deliver into"),
        max_length=1000,
        default="INBOX",
        validators=[validate_one_line],
        help_text=_("A folder of that IMAP account, which must exist. Empty: INBOX."),
    )

    class Meta:
        verbose_name = _("mail account")
        verbose_name_plural = _("mail accounts")
        ordering = ["user", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "email"], name="unique_account_per_person")
        ]

    def __str__(self) -> str:
        return self.email

    def save(self, *args, **kwargs) -> None:
        adding = self._state.adding
        with transaction.atomic():
            super().save(*args, **kwargs)
            # Every account can send from the start, and no page has to make this
            # identity when it is first shown (a GET writes nothing).
            if adding and not self.identities.exists():
                self.identities.create(name=self.default_sender_name(), email=self.email)

    def default_sender_name(self) -> str:
        return self.display_name or self.user.get_full_name()

    def clean(self) -> None:
        super().clean()
        errors: dict[str, str] = {}
        target = self.pop3_deliver_to if self.pop3_deliver_to_id is not None else None
        if target is not None:
            if self.protocol != Protocol.POP3:
                errors["pop3_deliver_to"] = _("Only a POP3 account delivers into another account.")
            elif target.pk == self.pk:
                errors["pop3_deliver_to"] = _("An account cannot deliver into itself.")
            elif target.protocol != Protocol.IMAP:
                errors["pop3_deliver_to"] = _("Choose an IMAP account.")
            elif self.user_id is not None and target.user_id != self.user_id:
                errors["pop3_deliver_to"] = _("Choose an account of the same person.")
        if (
            self.pk is not None
            and self.protocol != Protocol.IMAP
            and MailAccount.objects.filter(pop3_deliver_to=self.pk).exists()
        ):
            errors["protocol"] = _(
                "POP3 accounts deliver into this one: it must stay an IMAP account."
            )
        if errors:
            raise ValidationError(errors)

    @property
    def delivers_into(self) -> MailAccount | None:
        """The IMAP account this POP3 account's mail goes into; None when Facteur keeps it."""
        if self.protocol != Protocol.POP3 or self.pop3_deliver_to_id is None:
            return None
        return self.pop3_deliver_to

    def set_password(self, raw: str) -> None:
        self.password_encrypted = crypto.encrypt(raw)

    def set_smtp_password(self, raw: str) -> None:
        """An empty password means: use the incoming password."""
        self.smtp_password_encrypted = crypto.encrypt(raw) if raw else ""

    #: What apply_preset() sets: the servers and how their certificates are trusted.
    SERVER_FIELDS = (
        "incoming_host",
        "incoming_port",
        "incoming_security",
        "smtp_host",
        "smtp_port",
        "smtp_security",
        "ca_file",
        "accept_untrusted",
    )

    def apply_preset(self, preset: ServerPreset) -> None:
        self.preset = preset
        if self.protocol == Protocol.POP3:
            self.incoming_host = preset.pop3_host
            self.incoming_port = preset.pop3_port
            self.incoming_security = preset.pop3_security
        else:
            self.incoming_host = preset.imap_host
            self.incoming_port = preset.imap_port
            self.incoming_security = preset.imap_security
        self.smtp_host = preset.smtp_host
        self.smtp_port = preset.smtp_port
        self.smtp_security = preset.smtp_security
        self.ca_file = preset.ca_file
        self.accept_untrusted = preset.accept_untrusted

    def _ca_file(self) -> str | None:
        return self.ca_file or settings.MAIL_CA_FILE

    def incoming_endpoint(self) -> Endpoint:
        """The incoming server with the decrypted password: call only to connect."""
        return Endpoint(
            host=self.incoming_host,
            port=self.incoming_port,
            security=self.incoming_security,
            login=self.login,
            password=crypto.decrypt(self.password_encrypted),
            ca_file=self._ca_file(),
            verify=not self.accept_untrusted,
            timeout=settings.MAIL_CONNECT_TIMEOUT,
        )

    def sending_identities(self) -> list[Identity]:
        """The identities this account may send as, in their order.

        An account gets one for its own address when it is made; a person cannot
        delete the last one that may send.
        """
        return self._allowed_identities()

    def _allowed_identities(self) -> list[Identity]:
        # Identities made before the administrator's rules, or since disallowed, cannot send.
        grants = list(self.send_as_grants.all())
        return [i for i in self.identities.all() if _grants_allow(grants, self.email, i.email)]

    def may_send_as(self, email: str) -> bool:
        """Whether this account may send with ``email`` in From: its own address, or one
        the administrator granted, by itself or by its domain."""
        return _grants_allow(self.send_as_grants.all(), self.email, email)

    def own_addresses(self) -> set[str]:
        """Every address that is this account's own, lowercased: not to be replied to."""
        emails = self.identities.values_list("email", flat=True)
        return {self.email.lower(), *(email.lower() for email in emails)}

    def smtp_endpoint(self) -> Endpoint:
        """The submission server with the decrypted password: call only to connect."""
        token = self.smtp_password_encrypted or self.password_encrypted
        return Endpoint(
            host=self.smtp_host,
            port=self.smtp_port,
            security=self.smtp_security,
            login=self.smtp_login or self.login,
            password=crypto.decrypt(token),
            ca_file=self._ca_file(),
            verify=not self.accept_untrusted,
            timeout=settings.MAIL_CONNECT_TIMEOUT,
        )


def _grants_allow(grants: Iterable[SendAsGrant], own: str, email: str) -> bool:
    email = email.strip().lower()
    local, at, domain = email.rpartition("@")
    if not (local and at and domain):
        return False
    if email == own.lower():
        return True
    return any(
        grant.value == (email if grant.kind == SendAsGrant.Kind.ADDRESS else domain)
        for grant in grants
    )


class Identity(models.Model):
    """An address and name an account sends as, with the signature that goes with them."""

    account = models.ForeignKey(
        MailAccount,
        on_delete=models.CASCADE,
        related_name="identities",
        verbose_name=_("mail account"),
    )
    name = models.CharField(_("name"), max_length=200, blank=True, validators=[validate_one_line])
    email = models.CharField(_("e-mail address"), max_length=254, validators=[validate_email])
    # Plain text; the HTML version is made from it by escaping and line breaks.
    signature = models.TextField(_("signature"), blank=True)
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        verbose_name = _("identity")
        verbose_name_plural = _("identities")
        ordering = ["position", "pk"]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>" if self.name else self.email

    def address(self) -> Address:
        return Address(name=self.name, email=self.email)


class SendAsGrant(models.Model):
    """An address, or every address of a domain, that an administrator lets an account send as.

    Without one, an account sends only as its own address: nobody can add an
    identity "Director <director@office>" and write in someone else's name.
    """

    class Kind(models.TextChoices):
        ADDRESS = "address", _("this address")
        DOMAIN = "domain", _("any address in this domain")

    account = models.ForeignKey(
        MailAccount,
        on_delete=models.CASCADE,
        related_name="send_as_grants",
        verbose_name=_("mail account"),
    )
    kind = models.CharField(_("may send as"), max_length=7, choices=Kind.choices)
    value = models.CharField(
        _("address or domain"),
        max_length=254,
        help_text=_("An e-mail address, or a domain such as example.org."),
    )

    class Meta:
        verbose_name = _("address the account may send as")
        verbose_name_plural = _("addresses the account may send as")
        ordering = ["kind", "value"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "kind", "value"], name="unique_send_as_grant"
            )
        ]

    def __str__(self) -> str:
        return f"*@{self.value}" if self.kind == self.Kind.DOMAIN else self.value

    def clean(self) -> None:
        super().clean()
        self.value = self.value.strip().lower().removeprefix("@").rstrip(".")
        validator = validate_email if self.kind == self.Kind.ADDRESS else DomainNameValidator()
        try:
            validator(self.value)
        except ValidationError as exc:
            raise ValidationError({"value": exc.messages}) from exc
