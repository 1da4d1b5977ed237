"""Every view, fed hostile values in its path, query string, form fields and cookies, answers
4xx or a page: never a 500. Run for a person whose account reads the suite's Dovecot over
IMAP, and for one whose mail Facteur fetched from it over POP3 and keeps.

The URLs come from the resolver and the parameter names from the views' source and the
project's forms, so a new view or field is covered without touching this file.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

import pytest
from django import forms
from django.urls import URLPattern, URLResolver, get_resolver

from accounts.models import Identity, Protocol
from tests.support.accounts import make_account, unreachable_account
from webmail import pop3fetch
from webmail.models import TrustedSender
from webmail.views.compose import STARTS

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
#: Django's own admin is Django's to test.
SKIPPED_PREFIXES = ("admin/",)

#: Hostile values, already percent-encoded as they travel in a query string or a form body.
HOSTILE = {
    "huge": "A" * 50_000,
    "nul": "a%00b",
    "surrogate": "%ED%A0%80",
    "not utf-8": "%FF%FE%C0%AF",
    "crlf": "a%0D%0ABcc:%20x@example.org",
    "line separators": "a%E2%80%A8b%E2%80%A9c%C2%85d%0Be%0Cf",
    "negative": "-1",
    "huge number": "9" * 40,
    "float": "1e309",
    "traversal": "..%2F..%2F..%2Fetc%2Fpasswd",
    "empty": "",
    "brackets": "%22%27%3C%3E()%5B%5D%7B5%7D%5C",
}

THEIR_ADDRESS = "other-person@example.test"

#: Cookies a browser may send whatever Facteur set.
HOSTILE_COOKIES = {
    "facteur_tz": ["Europe", "../../etc", "", "Z" * 10_000, "Europe/Paris/../../x", "right"],
    "django_language": ["../../etc", "x" * 5_000],
}

_PARAMETER_RE = re.compile(
    r"""(?:GET|POST|COOKIES|query|data)(?:\.get(?:list)?\(|\[)\s*["']([\w-]+)["']"""
)


def parameter_names() -> list[str]:
    """Names views read from requests, and the fields of every form of the project."""
    names = set(STARTS) | {"outgoing"}
    for folder in ("webmail", "accounts"):
        for source in (ROOT / folder).rglob("*.py"):
            names.update(_PARAMETER_RE.findall(source.read_text()))
    pending = [forms.BaseForm]
    while pending:
        form = pending.pop()
        pending.extend(form.__subclasses__())
        if form.__module__.startswith(("webmail.", "accounts.")):
            names.update(getattr(form, "base_fields", {}))
    return sorted(names)


def routes() -> list[str]:
    """Every route of the resolver, as "a/<int:account_id>/m/<int:uid>/"."""
    found: list[str] = []

    def walk(patterns: list, prefix: str) -> None:
        for entry in patterns:
            route = prefix + str(entry.pattern)
            if route.startswith(SKIPPED_PREFIXES):
                continue
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, route)
            elif isinstance(entry, URLPattern):
                found.append(route)

    walk(get_resolver().url_patterns, "")
    return found


_CONVERTER_RE = re.compile(r"<(?:(\w+):)?(\w+)>")


def paths(route: str, own: dict[str, str], hostile_ints: list[str]) -> Iterator[str]:
    """The route with the person's own values, then with each argument made hostile alone."""
    arguments = _CONVERTER_RE.findall(route)

    def fill(replace: str | None, value: str) -> str:
        def one(match: re.Match) -> str:
            name = match.group(2)
            if name == replace:
                return value
            return own.get(name, "1")

        return "/" + _CONVERTER_RE.sub(one, route)

    yield fill(None, "")
    for kind, name in arguments:
        if kind == "int":
            values = hostile_ints
        else:  # a str converter stops at "/"
            values = [v for v in HOSTILE.values() if v and "%2F" not in v]
        for value in values:
            yield fill(name, value)


@dataclass
class PageForm:
    action: str
    text: dict[str, str]  # fields a person types into, or the page fills in, and their value
    fixed: dict[str, list[str]]  # choices: selects, checkboxes, buttons, with every value


class _Forms(HTMLParser):
    """The POST forms of a page: what a hostile browser would fill in."""

    def __init__(self, page_path: str) -> None:
        super().__init__()
        self.page_path = page_path
        self.found: list[PageForm] = []
        self.current: PageForm | None = None
        self.select: str | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attrs = dict(attrs)
        if tag == "option" and self.current is not None and self.select:
            self.current.fixed.setdefault(self.select, []).append(attrs.get("value") or "")
            return
        if tag == "select":
            self.select = attrs.get("name")
            return
        if tag == "form" and (attrs.get("method") or "").lower() == "post":
            self.current = PageForm(attrs.get("action") or self.page_path, {}, {})
            self.found.append(self.current)
            return
        name = attrs.get("name")
        if self.current is None or not name or name == "csrfmiddlewaretoken":
            return
        kind = (attrs.get("type") or "").lower()
        if tag == "textarea" or (tag == "input" and kind not in _CHOICE_INPUTS):
            self.current.text.setdefault(name, attrs.get("value") or "")
        elif tag in ("button", "input"):
            self.current.fixed.setdefault(name, []).append(attrs.get("value") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.current = None


_CHOICE_INPUTS = {"checkbox", "radio", "submit", "button", "file", "image", "reset"}


def page_forms(client, person, path: str) -> list[PageForm]:
    response = _request(client, person, "GET", path)
    if response.status_code != 200 or "html" not in response.get("Content-Type", ""):
        return []
    reader = _Forms(path)
    reader.feed(response.content.decode())
    return reader.found


_TAKES_AWAY_RE = re.compile(r"delete|discard|revoke|logout|empty-trash|move|archive|junk")

#: Values tried in one field at a time, the others as the page filled them in.
ONE_AT_A_TIME = ("huge", "surrogate", "crlf", "line separators", "brackets")


def form_bodies(form: PageForm, value: str, *, alone: bool) -> Iterator[str]:
    """The form with every typed field hostile, then (``alone``) with each in turn, once for
    each value of each choice."""
    fillings = [{name: value for name in form.text}]
    if alone:
        filled = {name: quote(default) for name, default in form.text.items()}
        fillings += [{**filled, name: value} for name in form.text]
    firsts = {name: values[0] for name, values in form.fixed.items()}
    variants = [firsts] + [
        {**firsts, name: other}
        for name, values in form.fixed.items()
        for other in dict.fromkeys(values[1:])
    ]
    for typed in fillings:
        for choices in variants:
            fields = [f"{name}={v}" for name, v in typed.items()]
            yield "&".join(fields + [f"{name}={quote(v)}" for name, v in choices.items()])


def _messages(address: str) -> list[bytes]:
    """A plain message, then one whose subject holds line separators."""
    return [
        (
            f"From: Alice <alice@example.org>\r\nTo: {address}\r\n"
            f"Subject: =?utf-8?b?{_b64(subject)}?=\r\nMessage-ID: <h{number}@example.org>\r\n"
            f"Date: Tue, 04 Mar 2025 09:00:00 +0000\r\n\r\nText {number}.\r\n"
        ).encode()
        for number, subject in enumerate(["Plain", "Line\u2028separated\u2029subject"], start=1)
    ]


@pytest.fixture(params=["imap", "local"])
def stage(request, person, mail_server, mail_user, django_user_model):
    """The person's account (IMAP on the suite's Dovecot, or a POP3 one whose mail Facteur
    keeps) holding two messages, and the ids of what another person has."""
    if request.param == "imap":
        account = request.getfixturevalue("mail_account")
        imap = request.getfixturevalue("imap")
        for raw in _messages(account.email):
            imap.append("INBOX", raw)
    else:
        account = make_account(person, mail_server, mail_user, protocol=Protocol.POP3)
        for raw in _messages(account.email):
            mail_server.deliver(mail_user.address, raw)
        assert pop3fetch.fetch(account).new == 2
    other = django_user_model.objects.create_user(username="other", password="x-Pass-12345")
    theirs = unreachable_account(other, email=THEIR_ADDRESS)
    trusted = TrustedSender.objects.create(user=other, email="zoe@example.org")
    identity = Identity.objects.create(account=theirs, email=theirs.email)
    # uid 2: the message whose subject holds line separators.
    own = {"account_id": str(account.pk), "uid": "2"}
    return own, sorted({str(theirs.pk), str(trusted.pk), str(identity.pk)})


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _request(client, person, method: str, path: str, query: str = "", body: str = ""):
    client.force_login(person)
    if method == "GET":
        return client.generic("GET", path, QUERY_STRING=query)
    extra = {"QUERY_STRING": query} if query else {}
    return client.generic(
        "POST",
        path,
        body.encode("latin-1"),
        content_type="application/x-www-form-urlencoded",
        **extra,
    )


def test_no_view_answers_hostile_input_with_a_server_error(client, person, stage):
    own, their_ids = stage
    hostile_ints = ["0", *their_ids, "9" * 30, str(2**63)]
    names = parameter_names()
    failures: list[str] = []

    def attempt(method: str, path: str, query: str = "", body: str = "") -> None:
        label = f"{method} {path[:120]}?{query[:120]} body={body[:120]}"
        try:
            response = _request(client, person, method, path, query, body)
        except Exception as exc:  # the test client re-raises what the view raised
            failures.append(f"{label}: {type(exc).__name__}: {str(exc)[:200]}")
            return
        if response.status_code >= 500:
            failures.append(f"{label}: {response.status_code}")
        content = b"" if response.streaming else response.content
        if THEIR_ADDRESS.encode() in content:
            failures.append(f"{label}: shows another person's account")

    # Every GET first, while the person's messages are where the page expects them.
    forms_found: list[PageForm] = []
    posts: list[tuple[str, str, str]] = []
    for route in routes():
        own_path, *hostile_paths = list(paths(route, own, hostile_ints))
        for path in hostile_paths:
            attempt("GET", path)
            posts.append((path, "", ""))
        for value in HOSTILE.values():
            encoded = "&".join(f"{name}={value}" for name in names)
            attempt("GET", own_path, query=encoded)
            posts.append((own_path, "folder=INBOX", encoded))
        for name, values in HOSTILE_COOKIES.items():
            for value in values:
                client.cookies[name] = value
                attempt("GET", own_path)
                del client.cookies[name]
        forms_found += page_forms(client, person, own_path)
    # The pages' own forms next, those that take things away last, so that the others
    # still find what they name; then the rest, whose ids may be the person's own.
    unique = {form.action: form for form in forms_found}.values()
    for form in sorted(unique, key=lambda form: bool(_TAKES_AWAY_RE.search(form.action))):
        for label, value in HOSTILE.items():
            for body in form_bodies(form, value, alone=label in ONE_AT_A_TIME):
                attempt("POST", form.action, body=body)
    for path, query, body in posts:
        attempt("POST", path, query=query, body=body)

    assert not failures, "\n".join(failures)
