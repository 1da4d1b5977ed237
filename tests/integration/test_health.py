"""/healthz and /readyz against the real parts: Redis, a Celery worker and beat.

Beat queues the heartbeat every second here, a real worker records it, and the
probe turns ready; stopping beat makes the heartbeat stale and the probe says so.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import override_settings
from django.utils import timezone

from ops import heartbeat
from ops.models import Heartbeat
from tests.integration.celery_worker import (
    CeleryWorker,
    RedisServer,
    free_port,
    published_redis,
    wait_for,
)

pytestmark = [pytest.mark.integration]


def redis_cache(url: str) -> dict:
    return {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}}


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("health-logs")


@pytest.fixture(scope="module")
def redis_server(logs: Path) -> Iterator[RedisServer]:
    with published_redis(logs / "redis.log") as server:
        yield server


@pytest.fixture
def parts_up(redis_server: RedisServer):
    """The test process looks for the broker and the cache on the private Redis."""
    cache_url = redis_server.url.rsplit("/", 1)[0] + "/1"
    with override_settings(CELERY_BROKER_URL=redis_server.url, CACHES=redis_cache(cache_url)):
        yield redis_server


class CeleryBeat(CeleryWorker):
    """``celery -A webmail beat`` on the test database; stopped as a worker is."""

    READY = b"beat: Starting"

    def arguments(self) -> list[str]:
        return ["beat", "--loglevel=INFO", "--schedule", str(self.log.with_name("beat-schedule"))]


@override_settings(ALLOWED_HOSTS=["mail.example.org"])
def test_healthz_answers_without_the_database_whatever_the_host(client):
    # No database fixture: a query would fail the test.
    response = client.get("/healthz", HTTP_HOST="web:8000")
    assert response.status_code == 200
    assert response.content == b"ok"
    # The probe reaches the container by a name the site itself does not answer to.
    assert client.get("/accounts/login/", HTTP_HOST="web:8000").status_code == 400


@pytest.mark.django_db(transaction=True)
def test_readyz_follows_the_worker_heartbeat_that_beat_queues(
    parts_up, logs, django_db_blocker, client
):
    Heartbeat.objects.all().delete()
    assert client.get("/readyz").status_code == 503  # no heartbeat yet

    worker = CeleryWorker(broker_url=parts_up.url, log=logs / "worker.log", environment={})
    # Beat queues the heartbeat every second here.
    beat = CeleryBeat(
        broker_url=parts_up.url,
        log=logs / "beat.log",
        environment={"FACTEUR_HEARTBEAT_SECONDS": "1"},
    )
    with django_db_blocker.unblock():
        worker.start()
    try:
        beat.start()
        response = wait_for(
            lambda: (r := client.get("/readyz", HTTP_HOST="web:8000")).status_code == 200 and r,
            what="readyz to answer 200 once a heartbeat is recorded",
        )
        assert response.content == b"ok"
        assert Heartbeat.objects.get(name=heartbeat.WORKER).seen_at is not None

        beat.stop()
        with override_settings(HEARTBEAT_MAX_AGE=2):
            wait_for(
                lambda: client.get("/readyz").status_code == 503,
                what="readyz to answer 503 once beat is gone",
            )
    finally:
        beat.stop()
        worker.stop()


@pytest.mark.django_db
def test_readyz_answers_503_when_the_heartbeat_is_stale(parts_up, client, caplog):
    heartbeat.record()
    assert client.get("/readyz").status_code == 200
    heartbeat.record(timezone.now() - timedelta(hours=1))
    with caplog.at_level(logging.WARNING, logger="ops.readiness"):
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.content == b"unavailable"
    assert "heartbeat" in caplog.text


@pytest.mark.django_db
@pytest.mark.parametrize("part", ["broker", "cache"])
def test_readyz_answers_503_without_details_when_redis_is_unreachable(
    parts_up, client, caplog, part
):
    heartbeat.record()
    closed = f"redis://127.0.0.1:{free_port()}/0"
    unreachable = (
        {"CELERY_BROKER_URL": closed} if part == "broker" else {"CACHES": redis_cache(closed)}
    )
    with override_settings(**unreachable), caplog.at_level(logging.WARNING, "ops.readiness"):
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.content == b"unavailable"
    assert f"{part} unavailable" in caplog.text
    assert "ConnectionError" in caplog.text


@pytest.mark.django_db
def test_readyz_writes_nothing(parts_up, client, django_assert_num_queries):
    heartbeat.record()
    before = Heartbeat.objects.get().seen_at
    # The database probe and the heartbeat's one read: no write.
    with django_assert_num_queries(2):
        assert client.get("/readyz").status_code == 200
    assert Heartbeat.objects.get().seen_at == before
