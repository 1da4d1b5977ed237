"""What Facteur keeps of its own beside the mail servers."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


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

    class Meta:
        verbose_name = _("outgoing message")
        verbose_name_plural = _("outgoing messages")
        ordering = ["-created"]
        indexes = [models.Index(fields=["status", "send_after"], name="outgoing_due")]

    def __str__(self) -> str:
        return self.message_id
