"""The Celery application: sends and background syncs run in its workers."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webmail.settings")

app = Celery("facteur")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
