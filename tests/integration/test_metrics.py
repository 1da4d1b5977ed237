"""/metrics: protected, and scraped for real after real work (Dovecot, gunicorn, a worker)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.celery_worker import (
    ROOT,
    STARTUP_TIMEOUT,
    CeleryWorker,
    RedisServer,
    database_url,
    free_port,
    publish_to,
    wait_for,
)
from webmail import celery_app
from webmail.models import OutgoingMessage, SyncState

pytestmark = [pytest.mark.integration]

TOKEN = "scrape-token-for-tests"


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of a scrape, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, frozenset(labels.items())), 0.0)


def scrape(client) -> str:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


def test_metrics_are_off_unless_a_token_or_addresses_are_set(client):
    with override_settings(METRICS_TOKEN="", METRICS_ALLOWED_ADDRESSES=[]):
        assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 404


@pytest.mark.django_db
def test_metrics_want_the_token_and_an_allowed_address_when_set(client):
    with override_settings(METRICS_TOKEN=TOKEN):
        assert client.get("/metrics").status_code == 404
        assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 404
        assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200
    with override_settings(METRICS_TOKEN="", METRICS_ALLOWED_ADDRESSES=["10.1.0.0/16"]):
        assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
        assert client.get("/metrics", REMOTE_ADDR="10.2.0.1").status_code == 404
        # A forwarded address is not the peer's, and through the proxy (whose own
        # address may be allowed) nobody passes by address.
        for peer in ("192.0.2.1", "10.1.0.1"):
            forwarded = client.get("/metrics", REMOTE_ADDR=peer, HTTP_X_FORWARDED_FOR="10.1.2.3")
            assert forwarded.status_code == 404
    with override_settings(METRICS_TOKEN=TOKEN, METRICS_ALLOWED_ADDRESSES=["10.1.0.0/16"]):
        assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 404
        allowed = client.get(
            "/metrics", REMOTE_ADDR="10.1.2.3", HTTP_AUTHORIZATION=f"Bearer {TOKEN}"
        )
        assert allowed.status_code == 200


@pytest.mark.django_db
@override_settings(METRICS_TOKEN=TOKEN)
def test_a_scrape_shows_the_pool_requests_outbox_and_sync_lag(
    client, signed_in_client, mail_account, mail_server, mail_user
):
    server = f"{mail_server.host}:{mail_account.incoming_port}"
    before = scrape(client)
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "a@example.org", mail_user.address, "Hi"
    msg.set_content("Hello")
    mail_server.deliver(mail_user.address, msg.as_bytes())

    url = reverse("webmail:message", args=[mail_account.pk, 1]) + "?folder=INBOX"
    assert signed_in_client.get(url).status_code == 200
    assert client.get("/static/css/facteur.css").status_code == 200
    queued = OutgoingMessage.objects.create(
        user=mail_account.user,
        account=mail_account,
        message_id="<m@example.test>",
        raw=b"",
        envelope_from=mail_account.email,
        envelope_to=["b@example.org"],
        send_after=timezone.now() - timedelta(minutes=5),
    )
    SyncState.objects.update_or_create(
        account=mail_account,
        defaults={"checked_at": timezone.now() - timedelta(minutes=10), "problem": "Refused"},
    )
    after = scrape(client)

    assert value(after, "facteur_imap_pool_connections", server=server) >= 1
    views = {"view": "webmail:message", "method": "GET", "status": "200"}
    assert value(after, "facteur_request_duration_seconds_count", **views) == (
        value(before, "facteur_request_duration_seconds_count", **views) + 1
    )
    static = {"view": "static", "method": "GET", "status": "200"}
    assert value(after, "facteur_request_duration_seconds_count", **static) == (
        value(before, "facteur_request_duration_seconds_count", **static) + 1
    )
    assert value(after, "facteur_outbox_messages", state="queued") == 1
    assert value(after, "facteur_outbox_oldest_queued_seconds") >= 300
    assert value(after, "facteur_sync_lag_seconds") >= 600
    assert value(after, "facteur_accounts_failing", protocol="imap") == 1
    queued.delete()


# Several processes: gunicorn's two and a Celery worker's, one folder of metrics -----


def get(url: str, **headers: str) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""
    except OSError:
        return 0, ""


@pytest.fixture
def multiproc_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "metrics"
    folder.mkdir()
    return folder


@pytest.mark.django_db(transaction=True)
def test_one_scrape_adds_up_every_web_and_worker_process(
    tmp_path, multiproc_dir, django_db_blocker
):
    environment = {
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir),
        "FACTEUR_METRICS_TOKEN": TOKEN,
        "FACTEUR_LOG_FORMAT": "json",
    }
    redis_server = RedisServer(tmp_path / "redis.log")
    redis_server.start()
    previous = publish_to(redis_server.url)
    worker = CeleryWorker(
        broker_url=redis_server.url, log=tmp_path / "worker.log", environment=environment
    )
    port = free_port()
    with (tmp_path / "gunicorn.log").open("ab") as log:
        web = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("gunicorn")),
                *("-c", "python:webmail.gunicorn_conf", "webmail.wsgi"),
                *("--bind", f"127.0.0.1:{port}", "--worker-class", "gthread"),
                *("--workers", "2", "--threads", "4"),
            ],
            cwd=ROOT,
            env={
                **os.environ,
                **environment,
                "PYTHONPATH": str(ROOT),
                "DJANGO_SETTINGS_MODULE": "tests.settings",
                "DATABASE_URL": database_url(),
                "FACTEUR_BROKER_URL": redis_server.url,
            },
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        with django_db_blocker.unblock():
            worker.start()
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: get(f"{base}/healthz")[0] == 200, what="gunicorn to answer")
        for _ in range(10):
            assert get(f"{base}/accounts/login/")[0] == 200
        # A task that raises in the worker: called with an argument it does not take.
        celery_app.send_task("ops.tasks.heartbeat", args=("unexpected",))

        def scraped_failure() -> str | None:
            status, text = get(f"{base}/metrics", Authorization=f"Bearer {TOKEN}")
            failed = status == 200 and value(
                text, "facteur_task_failures_total", task="ops.tasks.heartbeat"
            )
            return text if failed else None

        text = wait_for(scraped_failure, what="the worker's task failure in a scrape")
        login = {"view": "accounts:login", "method": "GET", "status": "200"}
        # Whichever process answered each request, the scrape counts all ten.
        assert value(text, "facteur_request_duration_seconds_count", **login) == 10
        assert value(text, "facteur_task_failures_total", task="ops.tasks.heartbeat") == 1
        assert get(f"{base}/metrics")[0] == 404
        # Gunicorn's own lines and the app's alike are JSON.
        lines = (tmp_path / "gunicorn.log").read_text().splitlines()
        events = [json.loads(line) for line in lines]
        assert any(e["logger"] == "gunicorn.error" and "Booting" in e["message"] for e in events)
        assert any(e["logger"] == "facteur.requests" for e in events)
    finally:
        os.killpg(web.pid, signal.SIGTERM)
        web.wait(timeout=STARTUP_TIMEOUT)
        worker.stop()
        publish_to(previous)
        redis_server.stop()
