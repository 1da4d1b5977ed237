"""The demo's administration is not open to whoever knows a published password."""

from dataclasses import dataclass

import pytest

from webmail.management.commands.demo import Command, admin_password


@dataclass(frozen=True)
class _Ports:
    """What provisioning reads of the demo's mail server."""

    host: str = "127.0.0.1"
    imap_port: int = 1143
    pop3_port: int = 1110
    submission_port: int = 1587
    ca_file: str = "/nonexistent/ca.pem"


def test_the_admin_password_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("FACTEUR_DEMO_ADMIN_PASSWORD", "chosen-by-the-operator")
    assert admin_password() == "chosen-by-the-operator"


def test_otherwise_each_run_makes_a_new_admin_password(monkeypatch):
    monkeypatch.delenv("FACTEUR_DEMO_ADMIN_PASSWORD", raising=False)
    first, second = admin_password(), admin_password()
    assert first != second
    assert len(first) >= 16
    assert "facteur-admin" not in {first, second}


@pytest.mark.django_db
def test_each_run_gives_the_admin_that_runs_password(django_user_model):
    Command()._provision(_Ports(), "first-run-password")
    admin = django_user_model.objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff
    assert admin.check_password("first-run-password")

    Command()._provision(_Ports(), "second-run-password")
    admin.refresh_from_db()
    assert admin.check_password("second-run-password")
    assert not admin.check_password("first-run-password")
