"""Which client a request comes from, and which forwarded headers are believed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from webmail.proxies import client_address, parse_networks

ROOT = Path(__file__).resolve().parents[2]
TRUSTED = parse_networks(["10.0.0.0/8", "192.0.2.1", "fd00::/8"])


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        # A peer that is no trusted proxy is the client, whatever it claims.
        ("198.51.100.7", "203.0.113.9", "198.51.100.7"),
        # The proxy's own entry is the client; what the client sent before it is not.
        ("192.0.2.1", "1.2.3.4, 203.0.113.9", "203.0.113.9"),
        # Several trusted hops are walked past, from the right.
        ("192.0.2.1", "1.2.3.4, 203.0.113.9, 10.1.1.1, 10.2.2.2", "203.0.113.9"),
        # A malformed entry stops the walk at the last trusted hop.
        ("192.0.2.1", "203.0.113.9, bogus\nline", "192.0.2.1"),
        ("192.0.2.1", "203.0.113.9, bogus, 10.1.1.1", "10.1.1.1"),
        # Only proxies: the leftmost of them.
        ("192.0.2.1", "10.3.3.3, 10.1.1.1", "10.3.3.3"),
        ("192.0.2.1", "", "192.0.2.1"),
        ("fd00::1", "2001:db8::5", "2001:db8::5"),
    ],
)
def test_client_address(peer, forwarded, client):
    assert client_address(peer, forwarded, TRUSTED) == client


def test_nothing_is_trusted_by_default():
    assert client_address("127.0.0.1", "203.0.113.9", parse_networks([])) == "127.0.0.1"


def _start(**variables: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACTEUR_")}
    env.update(
        DJANGO_SETTINGS_MODULE="webmail.settings",
        FACTEUR_SECRET_KEY="k",
        FACTEUR_CREDENTIALS_KEYS="mdWNpC9yrQXkxRzdpVnmwTDwydsO35jcRUo0Sn4Rz3g=",
        **variables,
    )
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
        timeout=60,
    )


def test_the_old_proxy_switch_alone_refuses_to_start():
    result = _start(FACTEUR_BEHIND_TLS_PROXY="true")
    assert result.returncode != 0
    assert "FACTEUR_TRUSTED_PROXIES" in result.stderr
    assert (
        _start(FACTEUR_BEHIND_TLS_PROXY="true", FACTEUR_TRUSTED_PROXIES="10.0.0.2").returncode == 0
    )


def test_a_malformed_proxy_address_refuses_to_start():
    result = _start(FACTEUR_TRUSTED_PROXIES="10.0.0.2, proxy.example")
    assert result.returncode != 0
    assert "FACTEUR_TRUSTED_PROXIES" in result.stderr


@pytest.mark.parametrize(
    ("peer", "headers", "secure"),
    [
        ("192.0.2.1", {"HTTP_X_FORWARDED_PROTO": "https"}, True),
        ("192.0.2.1", {"HTTP_X_FORWARDED_PROTO": "http, https"}, True),
        ("192.0.2.1", {}, False),
        # gunicorn set the scheme from a header of a peer it trusts and Facteur does not.
        ("127.0.0.1", {"HTTP_X_FORWARDED_PROTO": "https", "wsgi.url_scheme": "https"}, False),
        ("127.0.0.1", {"HTTP_X_FORWARDED_SSL": "on", "wsgi.url_scheme": "https"}, False),
    ],
)
def test_the_scheme_comes_only_from_a_trusted_proxy(settings, peer, headers, secure):
    from django.http import HttpResponse
    from django.test import RequestFactory

    from webmail.proxies import TrustedProxyMiddleware

    settings.TRUSTED_PROXIES = ["192.0.2.1"]
    request = RequestFactory().get("/", REMOTE_ADDR=peer, **headers)
    seen = {}

    def view(request):
        seen["secure"] = request.is_secure()
        return HttpResponse()

    TrustedProxyMiddleware(view)(request)
    assert seen["secure"] is secure
