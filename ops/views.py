"""Liveness, readiness and metrics: for probes and scrapers, not for people."""

from __future__ import annotations

import hmac
import ipaddress
import os

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)

from ops import readiness
from ops.collectors import DatabaseCollector


def _plain(text: str, status: int = 200) -> HttpResponse:
    response = HttpResponse(text, content_type="text/plain; charset=utf-8", status=status)
    response["Cache-Control"] = "no-store"
    return response


def healthz(request: HttpRequest) -> HttpResponse:
    """The process answers: nothing else is asked (no database, no Redis)."""
    return _plain("ok")


def readyz(request: HttpRequest) -> HttpResponse:
    """The database, Redis (broker and cache) and a recent worker heartbeat; reasons in the log."""
    if readiness.failures():
        return _plain("unavailable", status=503)
    return _plain("ok")


def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus' text format, for a scraper holding the token or at an allowed address."""
    if not _metrics_allowed(request):
        # Off, or not for this client: the same answer, so that nobody learns which.
        raise Http404
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Every process's numbers, added up from the files they share.
        processes = CollectorRegistry()
        multiprocess.MultiProcessCollector(processes)
    else:
        processes = REGISTRY
    database = CollectorRegistry()
    database.register(DatabaseCollector())
    body = generate_latest(processes) + generate_latest(database)
    response = HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response


def _metrics_allowed(request: HttpRequest) -> bool:
    token, networks = settings.METRICS_TOKEN, settings.METRICS_ALLOWED_ADDRESSES
    if not token and not networks:
        return False
    if token:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return False
    if networks:
        # The peer itself. Through the reverse proxy the peer is the proxy, which an
        # allowed network may well contain: a forwarded request never passes by address.
        if "X-Forwarded-For" in request.headers:
            return False
        try:
            address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
        except ValueError:
            return False
        if not any(address in ipaddress.ip_network(net, strict=False) for net in networks):
            return False
    return True
