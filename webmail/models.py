"""What Facteur keeps of its own beside the mail servers."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from webmail.mime.headers import Address


class TrustedSender(models.Model):
    """A sender whose messages may load remote content for this person."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="trusted_senders",
        verbose_name=_("person"),
    )
    email = models.CharField(_("e-mail address"), max_length=254)
    created = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("trusted sender")
        verbose_name_plural = _("trusted senders")
        constraints = [
            models.UniqueConstraint(fields=["user", "email"], name="unique_trusted_sender")
        ]

    def __str__(self) -> str:
        return self.email

    @classmethod
    def is_trusted(cls, user, email: str | None) -> bool:
        return bool(email) and cls.objects.filter(user=user, email=email.lower()).exists()


class Contact(models.Model):
    """Someone this person wrote to: what the recipient fields suggest while typing."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="contacts",
        verbose_name=_("person"),
    )
    email = models.CharField(_("e-mail address"), max_length=254)  # lowercased
    name = models.CharField(_("name"), max_length=200, blank=True)
    times_used = models.PositiveIntegerField(_("times used"), default=0)
    last_used = models.DateTimeField(_("last used"), default=timezone.now)

    class Meta:
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        constraints = [models.UniqueConstraint(fields=["user", "email"], name="unique_contact")]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>" if self.name else self.email

    def address(self) -> Address:
        return Address(name=self.name, email=self.email)

    @classmethod
    def remember(cls, user, addresses: Iterable[Address]) -> None:
        """Count one more message to each address; a name, once known, is not lost."""
        names: dict[str, str] = {}
        for address in addresses:
            email = address.email.strip().lower()
            if "@" not in email or len(email) > 254:
                continue
            name = " ".join(address.name.split())[:200]
            names[email] = name or names.get(email, "")
        now = timezone.now()
        for email, name in names.items():
            if cls._bump(user, email, name, now):
                continue
            try:
                with transaction.atomic():
                    cls.objects.create(
                        user=user, email=email, name=name, times_used=1, last_used=now
                    )
            except IntegrityError:
                # Made meanwhile by another message to the same address.
                cls._bump(user, email, name, now)

    @classmethod
    def _bump(cls, user, email: str, name: str, now: datetime) -> bool:
        fields = {"times_used": F("times_used") + 1, "last_used": now}
        if name:
            fields["name"] = name
        return cls.objects.filter(user=user, email=email).update(**fields) == 1

    @classmethod
    def suggest(cls, user, query: str, limit: int = 8) -> list[Contact]:
        """Contacts whose address or a word of whose name starts with ``query``, most used first."""
        query = " ".join(query.split())[:254]
        if not query:
            return []
        matches = (
            Q(email__istartswith=query)
            | Q(name__istartswith=query)
            | Q(name__icontains=" " + query)
        )
        return list(
            cls.objects.filter(matches, user=user).order_by("-times_used", "-last_used", "email")[
                :limit
            ]
        )


class Upload(models.Model):
    """An attachment uploaded while a message is being written, until it is sent or dropped.

    Always looked up with ``user=request.user``.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="uploads",
        verbose_name=_("person"),
    )
    filename = models.CharField(_("file name"), max_length=255)
    content_type = models.CharField(_("content type"), max_length=255)
    size = models.PositiveBigIntegerField(_("size"))
    content = models.BinaryField(_("content"))
    created = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("upload")
        verbose_name_plural = _("uploads")
        ordering = ["created", "pk"]

    def __str__(self) -> str:
        return self.filename

    @classmethod
    def delete_expired(cls, now: datetime | None = None) -> int:
        """Delete the uploads older than ``settings.UPLOAD_MAX_AGE``; how many there were."""
        cutoff = (now or timezone.now()) - timedelta(seconds=settings.UPLOAD_MAX_AGE)
        deleted, __ = cls.objects.filter(created__lt=cutoff).delete()
        return deleted


class OutgoingMessage(models.Model):
    """A message on its way out: the exact bytes to submit, and how far they got.

    ``status`` moves only by compare-and-set updates in ``webmail.outbox``, so two
    workers (or a worker and the sweep) can never both send one message.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        SENDING = "sending", _("sending")
        SENT = "sent", _("sent")
        FAILED = "failed", _("failed")
        CANCELLED = "cancelled", _("cancelled")

    class Origin(models.TextChoices):
        NONE = "", _("new message")
        REPLY = "reply", _("reply")
        FORWARD = "forward", _("forward")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="outgoing_messages",
        verbose_name=_("person"),
    )
    account = models.ForeignKey(
        "accounts.MailAccount",
        on_delete=models.CASCADE,
        related_name="outgoing_messages",
        verbose_name=_("mail account"),
    )
    message_id = models.CharField(_("Message-ID"), max_length=255, db_index=True)
    # Decoded, for the outbox list: it is shown without reading the whole message.
    subject = models.TextField(_("subject"), blank=True)
    raw = models.BinaryField(_("message"))
    envelope_from = models.CharField(_("envelope sender"), max_length=320)
    envelope_to = models.JSONField(_("envelope recipients"), default=list)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.QUEUED
    )
    send_after = models.DateTimeField(_("send after"))
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    # Set just before the final dot of an attempt: from then on the server may have
    # the message, and a worker that dies leaves it sent rather than send it twice.
    handed_over = models.BooleanField(_("handed over"), default=False)
    # The server's reply or the network problem, for the person: never the content.
    last_error = models.TextField(_("last error"), blank=True)
    task_id = models.CharField(_("task"), max_length=255, blank=True)
    created = models.DateTimeField(_("created"), auto_now_add=True)
    updated = models.DateTimeField(_("updated"), default=timezone.now)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    # The message this one answers or forwards, flagged once this one is sent.
    origin_kind = models.CharField(
        _("origin"), max_length=10, choices=Origin.choices, default=Origin.NONE, blank=True
    )
    origin_folder = models.CharField(_("origin folder"), max_length=1000, blank=True)
    origin_uid = models.PositiveBigIntegerField(_("origin UID"), null=True, blank=True)
    # The draft it was sent from in the Drafts folder, deleted once this one is sent.
    draft_uid = models.PositiveBigIntegerField(_("draft UID"), null=True, blank=True)

    class Meta:
        verbose_name = _("outgoing message")
        verbose_name_plural = _("outgoing messages")
        ordering = ["-created"]
        indexes = [models.Index(fields=["status", "send_after"], name="outgoing_due")]

    def __str__(self) -> str:
        return self.message_id
