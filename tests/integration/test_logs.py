"""Structured logs: one JSON object a line from the web app and a real worker, and neither
the content of a message nor a password in them, through a whole sign-in, send and read."""

from __future__ import annotations

import html
import io
import json
import logging
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.urls import reverse

from ops.logs import JsonFormatter
from tests.integration.celery_worker import CeleryWorker, RedisServer, publish_to, wait_for
from tests.support.accounts import make_account
from tests.support.compose import compose_url, form_fields
from tests.support.mailboxes import DELIVERY_TIMEOUT, arrived
from webmail.models import OutgoingMessage

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

MARK = uuid.uuid4().hex[:10]
SIGN_IN_PASSWORD = f"Sign-in-{MARK}"
MAIL_PASSWORD = f"Mail-pass-{MARK}"
BODY = f"Body-text-{MARK}"
SUBJECT = f"Subject-{MARK}"


@pytest.fixture
def json_worker(tmp_path: Path, django_db_blocker) -> Iterator[CeleryWorker]:
    redis_server = RedisServer(tmp_path / "redis.log")
    redis_server.start()
    previous = publish_to(redis_server.url)
    worker = CeleryWorker(
        broker_url=redis_server.url,
        log=tmp_path / "worker.log",
        environment={"FACTEUR_LOG_FORMAT": "json"},
    )
    with django_db_blocker.unblock():
        worker.start()
    yield worker
    worker.stop()
    publish_to(previous)
    redis_server.stop()


@pytest.fixture
def web_log() -> Iterator[io.StringIO]:
    """What this process (the web app under test) logs, formatted as FACTEUR_LOG_FORMAT=json."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    level, root.level = root.level, logging.DEBUG
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def events(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_a_send_and_a_read_log_json_without_content_or_passwords(
    client, django_user_model, mail_server, json_worker, web_log, settings
):
    settings.SEND_UNDO_SECONDS = 0
    person = django_user_model.objects.create_user("grace", password=SIGN_IN_PASSWORD)
    mailbox = type("Mailbox", (), {"address": f"grace-{uuid.uuid4().hex[:8]}@{mail_server.domain}"})
    mailbox.password = MAIL_PASSWORD
    mail_server.add_user(mailbox.address, mailbox.password)
    account = make_account(person, mail_server, mailbox)

    signed_in = client.post(
        reverse("accounts:login"), {"username": "grace", "password": SIGN_IN_PASSWORD}
    )
    assert signed_in.status_code == 302
    fields = form_fields(client, compose_url(account))
    fields.update(to=account.email, subject=SUBJECT, html=f"<div>{BODY}</div>", action="send")
    assert client.post(compose_url(account), fields).status_code == 302
    row = OutgoingMessage.objects.get()
    arrived(mail_server, mailbox, row.message_id)
    wait_for(
        lambda: OutgoingMessage.objects.filter(pk=row.pk, status="sent").exists(),
        timeout=DELIVERY_TIMEOUT,
        what="the message to be marked sent",
    )
    opened = client.get(reverse("webmail:message", args=[account.pk, 1]) + "?folder=INBOX")
    page = opened.content.decode()
    assert SUBJECT in page
    frame = re.search(r'<iframe class="message-body html-body"[^>]* src="([^"]+)"', page)
    body = client.get(html.unescape(frame.group(1)))
    assert BODY in body.content.decode()

    worker_text = json_worker.log.read_text(errors="replace")
    web_text = web_log.getvalue()
    for secret in (SIGN_IN_PASSWORD, MAIL_PASSWORD, BODY, SUBJECT):
        assert secret not in web_text
        assert secret not in worker_text

    web = events(web_text)
    requests = [e for e in web if e["logger"] == "facteur.requests"]
    sign_in = next(e for e in requests if e["path"] == reverse("accounts:login"))
    assert sign_in["method"] == "POST"
    assert sign_in["status"] == 302
    assert sign_in["view"] == "accounts:login"
    assert isinstance(sign_in["duration_ms"], float)
    assert sign_in["request_id"] and {"time", "level", "message"} <= set(sign_in)
    assert len({e["request_id"] for e in requests}) == len(requests)

    # The worker's own lines: JSON from its start on, the task's named in them.
    worker_events = [json.loads(line) for line in worker_text.splitlines() if line.startswith("{")]
    sent = [e for e in worker_events if e.get("task") == "webmail.tasks.send_outgoing"]
    assert any(f"Outgoing message {row.pk}" in e["message"] for e in sent)
