"""Mail credentials are encrypted at rest, and keys can be rotated."""

import io

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from accounts import crypto
from accounts.models import MailAccount
from accounts.provisioning import ProvisioningError, rotate_credentials

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


def test_round_trip():
    token = crypto.encrypt("correct horse battery staple")
    assert "correct horse" not in token
    assert crypto.decrypt(token) == "correct horse battery staple"


def test_non_ascii_secret_round_trips():
    assert crypto.decrypt(crypto.encrypt("mot de passe à l'été ✉")) == "mot de passe à l'été ✉"


def test_same_secret_gives_a_new_token_each_time():
    assert crypto.encrypt("secret") != crypto.encrypt("secret")


def test_generated_key_is_a_fernet_key():
    key = crypto.generate_key()
    assert Fernet(key.encode()).decrypt(Fernet(key.encode()).encrypt(b"x")) == b"x"


def test_generate_credentials_key_command_prints_a_usable_key():
    out = io.StringIO()
    call_command("generate_credentials_key", stdout=out)
    key = out.getvalue().strip()
    with override_settings(CREDENTIALS_KEYS=[key]):
        assert crypto.decrypt(crypto.encrypt("secret")) == "secret"


def test_rotation_with_two_keys():
    with override_settings(CREDENTIALS_KEYS=[OLD_KEY]):
        old_token = crypto.encrypt("secret")
    with override_settings(CREDENTIALS_KEYS=[NEW_KEY, OLD_KEY]):
        assert crypto.decrypt(old_token) == "secret"
        new_token = crypto.rotate(old_token)
    with override_settings(CREDENTIALS_KEYS=[NEW_KEY]):
        assert crypto.decrypt(new_token) == "secret"
        with pytest.raises(crypto.CredentialError):
            crypto.decrypt(old_token)


def test_unknown_key_is_a_credential_error():
    with override_settings(CREDENTIALS_KEYS=[OLD_KEY]):
        token = crypto.encrypt("secret")
    with override_settings(CREDENTIALS_KEYS=[NEW_KEY]), pytest.raises(crypto.CredentialError):
        crypto.decrypt(token)


def make_account(email: str = "alice@example.org") -> MailAccount:
    user, _created = get_user_model().objects.get_or_create(username=email.partition("@")[0])
    account = MailAccount(
        user=user,
        email=email,
        login=email,
        incoming_host="imap.example.org",
        incoming_port=993,
        smtp_host="smtp.example.org",
        smtp_port=587,
    )
    account.set_password("imap-secret-1")
    account.set_smtp_password("smtp-secret-2")
    account.save()
    return account


def stored_credentials(account: MailAccount) -> tuple[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT password_encrypted, smtp_password_encrypted FROM accounts_mailaccount"
            " WHERE id = %s",
            [account.pk],
        )
        return cursor.fetchone()


@pytest.mark.django_db
def test_passwords_are_never_stored_in_clear():
    account = make_account()
    password, smtp_password = stored_credentials(account)
    assert "imap-secret-1" not in password
    assert "smtp-secret-2" not in smtp_password
    assert crypto.decrypt(password) == "imap-secret-1"
    assert crypto.decrypt(smtp_password) == "smtp-secret-2"


@pytest.mark.django_db
def test_empty_smtp_password_means_the_incoming_one():
    account = make_account()
    account.set_smtp_password("")
    account.save()
    assert stored_credentials(account)[1] == ""
    assert account.smtp_endpoint().password == "imap-secret-1"


@pytest.mark.django_db
def test_rotate_credentials_reencrypts_with_the_first_key_once():
    with override_settings(CREDENTIALS_KEYS=[OLD_KEY]):
        first, second = make_account(), make_account("bob@example.org")
        second.set_smtp_password("")
        second.save()
    with override_settings(CREDENTIALS_KEYS=[NEW_KEY, OLD_KEY]):
        assert rotate_credentials() == 3
        rotated = {account.pk: stored_credentials(account) for account in (first, second)}
        # Everything is now under the first key, so a second run has nothing to do.
        assert rotate_credentials() == 0
        assert {account.pk: stored_credentials(account) for account in (first, second)} == rotated
    with override_settings(CREDENTIALS_KEYS=[NEW_KEY]):
        first.refresh_from_db()
        assert first.incoming_endpoint().password == "imap-secret-1"
        assert first.smtp_endpoint().password == "smtp-secret-2"
        second.refresh_from_db()
        assert second.smtp_endpoint().password == "imap-secret-1"


@pytest.mark.django_db
def test_rotate_credentials_writes_nothing_if_one_token_is_unreadable():
    with override_settings(CREDENTIALS_KEYS=[OLD_KEY]):
        readable = make_account()
    with override_settings(CREDENTIALS_KEYS=[Fernet.generate_key().decode()]):
        lost = make_account("bob@example.org")
    before = stored_credentials(readable)
    with override_settings(CREDENTIALS_KEYS=[NEW_KEY, OLD_KEY]):
        with pytest.raises(ProvisioningError) as excinfo:
            rotate_credentials()
        assert stored_credentials(readable) == before
    assert len(excinfo.value.errors) == 2
    assert all(f"bob@example.org (id {lost.pk})" in error for error in excinfo.value.errors)


@pytest.mark.django_db
def test_rotate_credentials_command_reports_the_count():
    with override_settings(CREDENTIALS_KEYS=[OLD_KEY]):
        make_account()
    out = io.StringIO()
    with override_settings(CREDENTIALS_KEYS=[NEW_KEY, OLD_KEY]):
        call_command("rotate_credentials", stdout=out)
    assert out.getvalue().startswith("2 ")
