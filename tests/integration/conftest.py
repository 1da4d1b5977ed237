"""People and mail accounts pointing at the suite's real mail server."""

from __future__ import annotations

import itertools

import pytest

from accounts.models import MailAccount, Security

_people = itertools.count(1)


def make_account(user, mail_server, mail_user, *, security: str = Security.STARTTLS) -> MailAccount:
    account = MailAccount(
        user=user,
        email=mail_user.address,
        login=mail_user.address,
        incoming_host=mail_server.host,
        incoming_port=mail_server.imaps_port if security == Security.TLS else mail_server.imap_port,
        incoming_security=security,
        smtp_host=mail_server.host,
        smtp_port=mail_server.submission_port,
        smtp_security=Security.STARTTLS,
        ca_file=str(mail_server.ca_file),
    )
    account.set_password(mail_user.password)
    account.save()
    return account


@pytest.fixture
def person(db, django_user_model):
    number = next(_people)
    return django_user_model.objects.create_user(
        username=f"person{number}", email=f"person{number}@office.test", password="s3cret-Pass!"
    )


@pytest.fixture
def mail_account(person, mail_server, mail_user) -> MailAccount:
    return make_account(person, mail_server, mail_user)


@pytest.fixture
def signed_in_client(client, person):
    client.force_login(person)
    return client
