"""Signing in and out through the real views, and the brute-force protection."""

import logging

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from accounts.throttle import ADDRESS_LIMIT_FACTOR

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
