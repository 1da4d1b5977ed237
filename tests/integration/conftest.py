"""People and mail accounts pointing at the suite's real mail server."""

from __future__ import annotations

import itertools

import pytest

from accounts.models import MailAccount
from tests.support.accounts import make_account

_people = itertools.count(1)


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
