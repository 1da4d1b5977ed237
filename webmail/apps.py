from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WebmailConfig(AppConfig):
    name = "webmail"
    verbose_name = _("Mail")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from webmail import signals  # noqa: F401 - connects the receivers
