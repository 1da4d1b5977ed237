"""Response headers every page needs, requests refused for a NUL, and the person's time zone."""

from __future__ import annotations

import functools
import zoneinfo
from collections.abc import Callable

from django.core.exceptions import BadRequest
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.cache import patch_cache_control

#: The application's own pages load nothing from elsewhere and run only our own scripts.
DEFAULT_CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "frame-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

TIMEZONE_COOKIE = "facteur_tz"


class SecurityHeadersMiddleware:
    """Content-Security-Policy and Permissions-Policy unless a view set its own."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", DEFAULT_CSP)
        response.headers.setdefault(
            "Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()"
        )
        return response


_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _holds_nul(request: HttpRequest) -> bool:
    if "\x00" in request.path:
        return True
    fields = [request.GET, request.COOKIES]
    if request.method == "POST" and request.content_type in _FORM_TYPES:
        fields.append(request.POST)
    for data in fields:
        items = data.lists() if hasattr(data, "lists") else ((k, [v]) for k, v in data.items())
        for key, values in items:
            if "\x00" in key or any("\x00" in value for value in values):
                return True
    return False


class RefuseNulMiddleware:
    """A NUL character in the path, the query string, a form field or a cookie is a 400.

    No text Facteur keeps or looks up holds one, and PostgreSQL refuses it in any
    query: refused here, before anything reaches the database. Django's forms do
    the same for their own fields.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if _holds_nul(request):
            raise BadRequest("NUL character in the request")
        return self.get_response(request)


@functools.cache
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def zone_from_name(name: str | None) -> zoneinfo.ZoneInfo | None:
    """The zone a browser named, or None for anything that is not one.

    Only names of the zone database are tried: a folder of it ("Europe") or a
    path may otherwise reach the file system, where some setups raise errors
    ZoneInfo does not turn into "not found".
    """
    if not name or name not in _zone_names():
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return None


class UserTimezoneMiddleware:
    """Show dates in the zone the person's browser reports (a cookie set by facteur.js)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        zone = zone_from_name(request.COOKIES.get(TIMEZONE_COOKIE))
        if zone is None:
            timezone.deactivate()
        else:
            timezone.activate(zone)
        return self.get_response(request)


class PrivateResponsesMiddleware:
    """Nothing answered to a signed-in person is kept by the browser or a shared cache.

    Every such page may carry mail or addresses, which must not outlive the
    session on a shared computer; views that say so themselves keep their word.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            patch_cache_control(response, private=True, no_store=True)
        return response
