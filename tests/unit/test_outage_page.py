"""A database or Redis outage answers 503 with a page, never the 500 page."""

from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.db import InterfaceError, OperationalError
from django.test import Client
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from accounts.models import MailAccount

pytestmark = pytest.mark.django_db

ALL_INBOXES = "/all/"


@pytest.fixture
def client():
    client = Client(raise_request_exception=False)
    client.force_login(get_user_model().objects.create_user("alice"))
    return client


@pytest.mark.parametrize(
    "error",
    [
        OperationalError("terminating connection due to administrator command"),
        InterfaceError("connection already closed"),
        RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused."),
        RedisTimeoutError("Timeout reading from socket"),
    ],
    ids=type,
)
def test_an_outage_is_a_503_page_that_says_to_try_again(client, error):
    with mock.patch.object(MailAccount.objects, "filter", side_effect=error):
        response = client.get(ALL_INBOXES)
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    page = response.content.decode()
    assert "Facteur is briefly unavailable" in page
    assert "Your mail is safe" in page
    assert str(error) not in page


def test_any_other_error_keeps_the_500_page(client):
    with mock.patch.object(MailAccount.objects, "filter", side_effect=ValueError("a bug")):
        response = client.get(ALL_INBOXES)
    assert response.status_code == 500
    assert "Something went wrong" in response.content.decode()
