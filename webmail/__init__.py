"""Facteur: a self-hosted webmail for offices."""

from webmail.celery import app as celery_app

__all__ = ["celery_app"]
