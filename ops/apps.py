from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OpsConfig(AppConfig):
    name = "ops"
    verbose_name = _("Operations")

    def ready(self) -> None:
        # Celery's signals: task names in the logs, task failures in the metrics.
        from ops import signals  # noqa: F401
