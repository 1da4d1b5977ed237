"""Forwarded headers, believed only from the reverse proxies the administrator names.

``FACTEUR_TRUSTED_PROXIES`` lists their addresses or networks. A request whose
peer is one of them has its client address taken from ``X-Forwarded-For``,
walked from the right past the trusted proxies (entries further left are the
client's own and spoofable), and its scheme from ``X-Forwarded-Proto``. From
any other peer both headers are ignored, so a client reaching the app directly
can neither pose as another address nor as a secure connection.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import TYPE_CHECKING

from django.conf import settings

if TYPE_CHECKING:
    # Only for annotations: the settings module imports this one.
    from django.http import HttpRequest, HttpResponse

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Where the middleware leaves the scheme a trusted proxy reported. Not an HTTP_
#: key, so no client can send it; settings.SECURE_PROXY_SSL_HEADER names it.
FORWARDED_PROTO_KEY = "FACTEUR_FORWARDED_PROTO"

#: The headers by which a server in front (gunicorn's secure_scheme_headers) may set the scheme.
_SCHEME_HEADERS = ("HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_PROTOCOL", "HTTP_X_FORWARDED_SSL")


def parse_networks(entries: Iterable[str]) -> tuple[IPNetwork, ...]:
    """The networks of ``entries`` (addresses or CIDRs); ValueError on a malformed one."""
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries)


@lru_cache(maxsize=8)
def _trusted(entries: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return parse_networks(entries)


def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def _is_trusted(address, networks: tuple[IPNetwork, ...]) -> bool:
    return address is not None and any(address in network for network in networks)


def client_address(peer: str, forwarded_for: str, networks: tuple[IPNetwork, ...]) -> str:
    """The client's address: the rightmost ``forwarded_for`` entry that is no trusted proxy.

    A malformed entry ends the walk at the last trusted hop, which is all that
    can be known; a chain of trusted proxies alone gives its leftmost one.
    """
    client = peer
    if not _is_trusted(_address(peer), networks):
        return peer
    for entry in reversed(forwarded_for.split(",")):
        address = _address(entry)
        if address is None:
            break
        client = str(address)
        if not _is_trusted(address, networks):
            break
    return client


class TrustedProxyMiddleware:
    """Puts the client's address in REMOTE_ADDR and the forwarded scheme where Django reads it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        networks = _trusted(tuple(settings.TRUSTED_PROXIES))
        peer = request.META.get("REMOTE_ADDR", "")
        if networks and _is_trusted(_address(peer), networks):
            request.META["REMOTE_ADDR"] = client_address(
                peer, request.META.get("HTTP_X_FORWARDED_FOR", ""), networks
            )
            proto = request.META.get("HTTP_X_FORWARDED_PROTO", "").rpartition(",")[2].strip()
            if proto:
                request.META[FORWARDED_PROTO_KEY] = proto.lower()
        elif any(header in request.META for header in _SCHEME_HEADERS):
            # gunicorn believes these headers from its own list of peers (loopback by
            # default) and sets the scheme from them: from anyone not trusted here,
            # the connection is taken as the plain HTTP it came in on.
            request.META[FORWARDED_PROTO_KEY] = "http"
        return self.get_response(request)
