"""The JSON log format, and the line each request leaves."""

from __future__ import annotations

import io
import json
import logging
import sys

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from ops import logs
from ops.logs import JsonFormatter
from ops.middleware import RequestObservationMiddleware


@pytest.fixture
def captured() -> io.StringIO:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("facteur.requests")
    logger.addHandler(handler)
    level, logger.level = logger.level, logging.INFO
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_a_record_is_one_json_line_with_its_context_and_exception():
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord(
            "webmail.sync", logging.ERROR, __file__, 1, "Zoé: %s", ("été",), sys.exc_info()
        )
    token = logs.task_name.set("webmail.tasks.check_mail")
    try:
        line = JsonFormatter().format(record)
    finally:
        logs.task_name.reset(token)
    assert "\n" not in line
    event = json.loads(line)
    assert event["message"] == "Zoé: été"
    assert (event["level"], event["logger"]) == ("ERROR", "webmail.sync")
    assert event["task"] == "webmail.tasks.check_mail"
    assert "ValueError: boom" in event["exception"]
    assert event["time"].endswith("+00:00")


@pytest.mark.parametrize(
    ("given", "kept"), [("abc-123.x_Y", True), ("bad id\nforged", False), ("x" * 65, False)]
)
def test_a_request_leaves_one_line_without_its_query_string(captured, given, kept):
    middleware = RequestObservationMiddleware(lambda request: HttpResponse(status=204))
    request = RequestFactory().get("/a/1/search/", {"q": "private words"}, HTTP_X_REQUEST_ID=given)
    response = middleware(request)
    (event,) = [json.loads(line) for line in captured.getvalue().splitlines()]
    assert "private" not in captured.getvalue()
    assert (event["method"], event["path"], event["status"]) == ("GET", "/a/1/search/", 204)
    assert event["view"] == "unmatched"
    assert (event["request_id"] == given) is kept
    assert response["X-Request-ID"] == event["request_id"]
    assert logs.request_id.get() is None
