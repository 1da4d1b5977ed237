"""The probes' and the scraper's endpoints, and what every request leaves in metrics and logs."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from ops import logs, views
from webmail.metrics import REQUEST_DURATION

logger = logging.getLogger("facteur.requests")

Handler = Callable[[HttpRequest], HttpResponse]

#: Served before anything else: no host check, session, locale or CSRF is needed or wanted.
ENDPOINTS: dict[str, Handler] = {
    "/healthz": views.healthz,
    "/readyz": views.readyz,
    "/metrics": views.metrics,
}

#: A request id the proxy may pass on; anything else is replaced by our own.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


class OperationsEndpointsMiddleware:
    """Answers /healthz, /readyz and /metrics, whatever name the app was reached by.

    Container probes and Prometheus reach the app as ``127.0.0.1`` or by a service
    name that ``FACTEUR_ALLOWED_HOSTS`` rightly does not list.
    """

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        endpoint = ENDPOINTS.get(request.path_info)
        if endpoint is not None and request.method in ("GET", "HEAD"):
            return endpoint(request)
        return self.get_response(request)


class RequestObservationMiddleware:
    """Times each request by view for the metrics, and logs one line for it with an id."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.headers.get("X-Request-ID", "")
        request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        token = logs.request_id.set(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            duration = time.perf_counter() - started
            view = _view_name(request)
            REQUEST_DURATION.labels(view, request.method, str(response.status_code)).observe(
                duration
            )
            logger.info(
                "%s %s %s",
                request.method,
                request.path,
                response.status_code,
                extra={
                    "method": request.method,
                    "path": request.path,
                    "view": view,
                    "status": response.status_code,
                    "duration_ms": round(duration * 1000, 1),
                },
            )
            response["X-Request-ID"] = request_id
            return response
        finally:
            logs.request_id.reset(token)


def _view_name(request: HttpRequest) -> str:
    """The URL name of the view that answered; "static" for WhiteNoise's files."""
    if request.resolver_match is not None:
        return request.resolver_match.view_name
    if request.path_info.startswith("/" + settings.STATIC_URL.lstrip("/")):
        return "static"
    return "unmatched"
