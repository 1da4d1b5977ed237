"""What Facteur keeps of its own beside the mail servers."""

from django.conf import settings
from django.db import models
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
