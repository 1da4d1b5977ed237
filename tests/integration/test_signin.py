"""Signing in and out through the real views, and the brute-force protection."""

import logging
import threading

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from accounts.throttle import ADDRESS_LIMIT_FACTOR
from tests.support.concurrency import in_thread

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

PASSWORD = "Correct-horse-7"
LOCKED = "Too many failed sign-in attempts"
WRONG = "The username, e-mail address or password is not right."


@pytest.fixture(autouse=True)
def empty_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def person(db):
    return get_user_model().objects.create_user(
        "alice", email="Alice@Example.org", password=PASSWORD
    )


@pytest.fixture
def limit(settings) -> int:
    settings.LOGIN_FAILURE_LIMIT = 3
    return 3


def sign_in(client: Client, username: str, password: str, **extra):
    return client.post(
        reverse("accounts:login"), {"username": username, "password": password}, **extra
    )


def signed_in_user(client: Client):
    return client.session.get("_auth_user_id")


def test_sign_in_page_renders(client):
    response = client.get(reverse("accounts:login"))
    assert response.status_code == 200
    content = response.content.decode()
    assert 'class="auth-card"' in content
    assert "Username or e-mail address" in content
    assert 'autocomplete="current-password"' in content


@pytest.mark.parametrize("username", ["alice", "alice@example.org", "ALICE@EXAMPLE.ORG"])
def test_sign_in_with_username_or_email(client, person, username):
    response = sign_in(client, username, PASSWORD)
    assert response.status_code == 302
    assert response.url == reverse("webmail:home")
    assert signed_in_user(client) == str(person.pk)


def test_sign_in_follows_a_safe_next(client, person):
    response = client.post(
        reverse("accounts:login"),
        {"username": "alice", "password": PASSWORD, "next": "/a/1/"},
    )
    assert response.url == "/a/1/"


def test_sign_in_ignores_an_offsite_next(client, person):
    response = client.post(
        reverse("accounts:login"),
        {"username": "alice", "password": PASSWORD, "next": "https://evil.example/"},
    )
    assert response.url == reverse("webmail:home")


def test_wrong_password(client, person):
    response = sign_in(client, "alice", "wrong")
    assert response.status_code == 200
    assert WRONG in response.content.decode()
    assert signed_in_user(client) is None


def test_inactive_person_cannot_sign_in(client, person):
    person.is_active = False
    person.save()
    response = sign_in(client, "alice", PASSWORD)
    assert response.status_code == 200
    assert signed_in_user(client) is None


def test_lockout_after_the_limit(client, person, limit):
    for _attempt in range(limit):
        assert LOCKED not in sign_in(client, "alice", "wrong").content.decode()
    # Now even the right password is refused, without being checked.
    response = sign_in(client, "alice", PASSWORD)
    assert response.status_code == 429
    assert LOCKED in response.content.decode()
    assert signed_in_user(client) is None


def test_lockout_counts_the_normalised_username(client, person, limit):
    for username in ("alice", " Alice", "ALICE ")[:limit]:
        sign_in(client, username, "wrong")
    assert sign_in(client, "alice", PASSWORD).status_code == 429


def test_lockout_looks_the_same_for_unknown_people(client, person, limit):
    for _attempt in range(limit):
        sign_in(client, "alice", "wrong")
        sign_in(client, "nobody", "wrong")
    known = sign_in(client, "alice", "wrong")
    unknown = sign_in(client, "nobody", "wrong")
    assert known.status_code == unknown.status_code == 429
    assert known.context["form"].errors == unknown.context["form"].errors


def test_success_clears_the_username_counter(client, person, limit):
    for _attempt in range(limit - 1):
        sign_in(client, "alice", "wrong")
    assert sign_in(client, "alice", PASSWORD).status_code == 302
    client.logout()
    for _attempt in range(limit - 1):
        sign_in(client, "alice", "wrong")
    assert sign_in(client, "alice", PASSWORD).status_code == 302


def test_lockout_is_per_username(client, person, limit):
    for _attempt in range(limit):
        sign_in(client, "mallory", "wrong")
    assert sign_in(client, "alice", PASSWORD).status_code == 302


def test_lockout_per_address(client, person, limit):
    for number in range(limit * ADDRESS_LIMIT_FACTOR):
        sign_in(client, f"user{number}", "wrong")
    assert sign_in(client, "alice", PASSWORD).status_code == 429
    # Another address is not concerned.
    other = Client(REMOTE_ADDR="192.0.2.44")
    assert sign_in(other, "alice", PASSWORD).status_code == 302


def test_forwarded_address_is_not_trusted(client, person, limit):
    for number in range(limit * ADDRESS_LIMIT_FACTOR):
        sign_in(client, f"user{number}", "wrong", HTTP_X_FORWARDED_FOR=f"198.51.100.{number}")
    assert sign_in(client, "alice", PASSWORD).status_code == 429


def test_admin_sign_in_is_throttled_too(client, limit):
    get_user_model().objects.create_superuser("root", "root@example.org", PASSWORD)
    for _attempt in range(limit):
        client.post(reverse("admin:login"), {"username": "root", "password": "wrong"})
    response = client.post(reverse("admin:login"), {"username": "root", "password": PASSWORD})
    assert LOCKED in response.content.decode()
    assert signed_in_user(client) is None


def test_failures_are_logged_without_the_password_or_username(client, person, caplog):
    with caplog.at_level(logging.WARNING, logger="accounts.signin"):
        sign_in(client, "alice", "Secret-typed-9")
        sign_in(client, "Secret-typed-into-username", "x")
    assert len(caplog.records) == 2
    assert "sign-in failed" in caplog.text
    assert "127.0.0.1" in caplog.text
    assert "Secret-typed" not in caplog.text
    assert "alice" not in caplog.text


def test_sign_out_is_post_only(client, person):
    client.force_login(person)
    assert client.get(reverse("accounts:logout")).status_code == 405
    assert signed_in_user(client) == str(person.pk)
    response = client.post(reverse("accounts:logout"))
    assert response.status_code == 302
    assert response.url == reverse("accounts:login")
    assert signed_in_user(client) is None


def test_sign_out_needs_the_csrf_token(person):
    client = Client(enforce_csrf_checks=True)
    client.force_login(person)
    assert client.post(reverse("accounts:logout")).status_code == 403
    assert signed_in_user(client) == str(person.pk)


def test_signed_in_person_skips_the_sign_in_page(client, person):
    client.force_login(person)
    response = client.get(reverse("accounts:login"))
    assert response.status_code == 302
    assert response.url == reverse("webmail:home")


def test_a_person_who_is_not_staff_cannot_reach_the_admin(client, person):
    client.force_login(person)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login"))
    response = client.get(reverse("admin:accounts_mailaccount_changelist"))
    assert response.status_code == 302
    # Signing in to the admin with a person's valid password does not open it either.
    client.logout()
    client.post(reverse("admin:login"), {"username": "alice", "password": PASSWORD})
    assert client.get("/admin/").status_code == 302


OFFSITE = [
    "//evil.example/",
    "/\\evil.example/",
    "\\\\evil.example/",
    "https:evil.example",
    "http:///evil.example",
    " https://evil.example/",
    "javascript:alert(1)",
]


@pytest.mark.parametrize("target", OFFSITE)
def test_sign_in_never_leaves_the_site(client, person, target):
    page = client.get(reverse("accounts:login"), {"next": target}).content.decode()
    # The sign-in form carries no "next" at all (the language form's is this page).
    assert 'type="hidden" name="next"' not in page
    response = client.post(
        reverse("accounts:login"), {"username": "alice", "password": PASSWORD, "next": target}
    )
    assert response.url == reverse("webmail:home")


@pytest.mark.parametrize("target", OFFSITE)
def test_admin_sign_in_never_leaves_the_site(client, target):
    get_user_model().objects.create_superuser("root", "root@example.org", PASSWORD)
    response = client.post(
        reverse("admin:login"), {"username": "root", "password": PASSWORD, "next": target}
    )
    assert response.status_code == 302
    assert response.url == reverse("webmail:home")


def test_signing_in_gives_a_new_session(client, person):
    client.get(reverse("accounts:login"))
    session = client.session
    session["planted"] = True
    session.save()
    planted = session.session_key
    sign_in(client, "alice", PASSWORD)
    assert client.session.session_key != planted
    assert signed_in_user(client) == str(person.pk)


def test_unknown_and_known_people_get_the_same_refusal(client, person):
    known = sign_in(client, "alice", "wrong").content.decode()
    unknown = sign_in(client, "nobody-here", "wrong").content.decode()
    by_address = sign_in(client, "nobody@example.org", "wrong").content.decode()
    for page in (known, unknown, by_address):
        assert WRONG in page


def test_a_next_back_to_the_sign_in_page_goes_home(client, person):
    client.force_login(person)
    login = reverse("accounts:login")
    for target in (login, login + "?next=/"):
        response = client.get(login, {"next": target})
        assert response.status_code == 302
        assert response.url == reverse("webmail:home")


@pytest.fixture
def behind_proxy(settings):
    # The test client's requests come from 127.0.0.1: the proxy.
    settings.TRUSTED_PROXIES = ["127.0.0.1"]


def test_behind_the_proxy_each_client_has_its_own_address(client, person, limit, behind_proxy):
    # Everyone reaches Facteur from the proxy's address: one person's failures
    # must not lock out everybody else.
    for number in range(limit * ADDRESS_LIMIT_FACTOR):
        sign_in(client, f"user{number}", "wrong", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert sign_in(client, "alice", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 429
    response = sign_in(Client(), "alice", PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.20")
    assert response.status_code == 302


def test_behind_the_proxy_only_its_own_entry_counts(client, person, limit, behind_proxy):
    for number in range(limit * ADDRESS_LIMIT_FACTOR):
        spoofed = f"192.0.2.{number}, 203.0.113.9"
        sign_in(client, f"user{number}", "wrong", HTTP_X_FORWARDED_FOR=spoofed)
    assert sign_in(client, "alice", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 429


def test_behind_the_proxy_a_malformed_entry_falls_back_to_the_peer(
    client, person, behind_proxy, caplog
):
    with caplog.at_level(logging.WARNING, logger="accounts.signin"):
        sign_in(client, "alice", "wrong", HTTP_X_FORWARDED_FOR="1.2.3.4\nforged line")
    assert "forged" not in caplog.text and "127.0.0.1" in caplog.text


def test_a_client_not_among_the_trusted_proxies_cannot_forward(client, person, limit, settings):
    settings.TRUSTED_PROXIES = ["192.0.2.1", "10.0.0.0/8"]
    for number in range(limit * ADDRESS_LIMIT_FACTOR):
        sign_in(client, f"user{number}", "wrong", HTTP_X_FORWARDED_FOR=f"198.51.100.{number}")
    assert sign_in(client, "alice", PASSWORD).status_code == 429


def test_the_walk_skips_every_trusted_proxy(client, person, limit, settings):
    settings.TRUSTED_PROXIES = ["127.0.0.1", "10.0.0.0/8"]
    for number in range(limit * ADDRESS_LIMIT_FACTOR):
        chain = f"192.0.2.{number}, 203.0.113.9, 10.1.2.3"
        sign_in(client, f"user{number}", "wrong", HTTP_X_FORWARDED_FOR=chain)
    assert sign_in(client, "alice", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 429
    other = sign_in(Client(), "alice", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.10, 10.9.9.9")
    assert other.status_code == 302


@pytest.mark.parametrize(
    ("trusted", "secure"), [(["127.0.0.1"], True), (["192.0.2.1"], False), ([], False)]
)
def test_https_is_believed_only_from_a_trusted_proxy(client, settings, trusted, secure):
    settings.TRUSTED_PROXIES = trusted
    settings.SECURE_HSTS_SECONDS = 3600
    response = client.get(reverse("accounts:login"), HTTP_X_FORWARDED_PROTO="https")
    # Django sends HSTS on secure requests only.
    assert ("Strict-Transport-Security" in response) is secure


def test_username_and_address_of_one_person_share_one_counter(client, person, limit):
    for username in ("alice", "Alice@Example.org", "ALICE@example.ORG")[:limit]:
        sign_in(client, username, "wrong")
    assert sign_in(client, "alice", PASSWORD).status_code == 429
    assert sign_in(client, "alice@example.org", PASSWORD).status_code == 429


SPELLINGS = ["ALICE@EXAMPLE.ORG", "al\u0131ce@example.org", "\uff21lice@example.org"]


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_no_spelling_that_signs_in_as_the_person_escapes_the_counter(
    client, person, limit, spelling
):
    from django.contrib.auth import authenticate

    signs_in_as_alice = authenticate(None, username=spelling, password=PASSWORD) == person
    for _attempt in range(limit):
        sign_in(client, "alice", "wrong")
    response = sign_in(client, spelling, PASSWORD)
    if signs_in_as_alice:
        assert response.status_code == 429
    assert signed_in_user(client) is None


def test_on_postgresql_the_dotless_i_signs_in_and_is_counted(client, person, limit):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("only PostgreSQL folds the dotless i to I")
    assert sign_in(Client(), "al\u0131ce@example.org", PASSWORD).status_code == 302
    for _attempt in range(limit):
        sign_in(client, "al\u0131ce@example.org", "wrong")
    assert sign_in(client, "alice", PASSWORD).status_code == 429


def test_unknown_names_are_counted_by_their_normal_form(client, person, limit):
    for name in ("Nobody", "\uff2eobody", "NOBODY ")[:limit]:
        sign_in(client, name, "wrong")
    assert sign_in(client, "nobody", "wrong").status_code == 429


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("username", ["alice", "alice@example.org"])
def test_parallel_attempts_cannot_race_past_the_limit(person, limit, monkeypatch, username):
    """Attempts sent at once: only as many as the limit reach the password check.

    Every request that reaches the password check waits there until all the
    others have reached it too or been answered, so that without an atomic
    count every one of them would pass the check.
    """
    from accounts import forms

    attempts = 4 * limit
    lock = threading.Lock()
    progress = {"checking": 0, "answered": 0}
    everyone_there = threading.Event()

    def note(key: str) -> None:
        with lock:
            progress[key] += 1
            if progress["checking"] + progress["answered"] >= attempts:
                everyone_there.set()

    real_authenticate = forms.authenticate

    def slow_authenticate(*args, **kwargs):
        note("checking")
        everyone_there.wait(timeout=60)
        return real_authenticate(*args, **kwargs)

    monkeypatch.setattr(forms, "authenticate", slow_authenticate)
    start = threading.Barrier(attempts)

    def attempt() -> int:
        start.wait(timeout=60)
        try:
            return sign_in(Client(), username, "wrong").status_code
        finally:
            note("answered")

    runs = [in_thread(attempt) for _ in range(attempts)]
    for thread, _outcome in runs:
        thread.join()
    statuses = sorted(outcome["result"] for _thread, outcome in runs)
    assert progress["checking"] == limit
    assert statuses == [200] * limit + [429] * (attempts - limit)
    assert sign_in(Client(), "alice", PASSWORD).status_code == 429
