"""People and mail accounts pointing at the suite's real mail server."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from django.core.cache import cache
from imapclient import IMAPClient

from accounts.models import MailAccount
from tests.support.accounts import make_account
from webmail.transport.imap import close_quietly, open_imap

_people = itertools.count(1)


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    """Folder counts and parsed messages cached by one test never reach the next."""
    cache.clear()
    yield
    cache.clear()


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


@pytest.fixture
def imap(mail_account) -> Iterator[IMAPClient]:
    """A connection of its own to the account's mailbox, to arrange it and to check it."""
    client = open_imap(mail_account.incoming_endpoint())
    yield client
    close_quietly(client)
