"""A NUL character anywhere a request carries text is refused before any view or query."""

from __future__ import annotations

import pytest
from django.core.exceptions import BadRequest
from django.http import HttpResponse
from django.test import RequestFactory

from webmail.middleware import RefuseNulMiddleware

factory = RequestFactory()


def answer(request):
    return RefuseNulMiddleware(lambda request: HttpResponse("reached"))(request)


@pytest.mark.parametrize(
    "request_",
    [
        factory.get("/contacts/", {"q": "a\x00b"}),
        factory.get("/contacts/", {"q\x00": "x"}),
        factory.get("/a/1/%00/"),
        factory.get("/", HTTP_COOKIE="csrftoken=a\x00b"),
        factory.post("/list-mode/", {"next": "/\x00"}),
        factory.post("/a/1/selection/move/", {"uid": ["1", "2\x00"]}),
    ],
    ids=["query value", "query name", "path", "cookie", "form field", "second value of a list"],
)
def test_a_nul_is_a_bad_request(request_):
    with pytest.raises(BadRequest):
        answer(request_)


def test_other_requests_go_through_unread():
    assert answer(factory.get("/contacts/", {"q": "zoé\u2028"})).content == b"reached"
    assert answer(factory.post("/x/", '{"a": "\\u0000"}', "application/json")).content == (
        b"reached"
    )
