import logging

from django.apps import AppConfig
from django.conf import settings
from django.utils.translation import gettext_lazy as _


class OpsConfig(AppConfig):
    name = "ops"
    verbose_name = _("Operations")

    def ready(self) -> None:
        # Celery's signals: task names in the logs, task failures in the metrics.
        from ops import signals  # noqa: F401

        if settings.LOG_FORMAT == "json":
            # Python's warnings too, or they would be the only lines that are not JSON.
            logging.captureWarnings(True)
