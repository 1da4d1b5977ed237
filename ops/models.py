"""The one row the workers write for the readiness probe."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Heartbeat(models.Model):
    """When a worker last ran the heartbeat that beat queues: both are alive if it is recent."""

    name = models.CharField(_("name"), max_length=50, primary_key=True)
    seen_at = models.DateTimeField(_("seen at"))

    class Meta:
        verbose_name = _("heartbeat")
        verbose_name_plural = _("heartbeats")

    def __str__(self) -> str:
        return self.name
