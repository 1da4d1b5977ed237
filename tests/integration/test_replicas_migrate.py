"""Web replicas started together all run ``migrate`` on one PostgreSQL database, and all start.

docker-compose.yml runs ``manage.py migrate`` before gunicorn in every web
replica; docker-compose.scale.yml starts two of them at once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from django.db import connection

from tests.integration.celery_worker import STARTUP_TIMEOUT, database_url

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

ROOT = Path(__file__).resolve().parents[2]
REPLICAS = 3


def admin_connection() -> psycopg.Connection:
    settings = connection.settings_dict
    return psycopg.connect(
        dbname="postgres",
        user=settings["USER"] or None,
        password=settings["PASSWORD"] or None,
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
        autocommit=True,
    )


@pytest.fixture
def empty_database() -> str:
    """The URL of a new, empty PostgreSQL database, dropped afterwards."""
    if connection.vendor != "postgresql":
        pytest.skip("replicas share a PostgreSQL database; this run uses SQLite")
    name = f"facteur_replicas_{uuid.uuid4().hex[:12]}"
    with admin_connection() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield database_url().rsplit("/", 1)[0] + "/" + name
    with admin_connection() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_replicas_migrating_at_once_take_turns_and_all_succeed(empty_database):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": empty_database,
    }
    replicas = [
        subprocess.Popen(
            [sys.executable, "manage.py", "migrate", "--noinput"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(REPLICAS)
    ]
    outputs = [replica.communicate(timeout=STARTUP_TIMEOUT * 4)[0] for replica in replicas]
    assert [r.returncode for r in replicas] == [0] * REPLICAS, "\n".join(outputs)
    # One of them applied everything; the others found nothing left to do.
    assert sum("No migrations to apply." in output for output in outputs) == REPLICAS - 1
    with psycopg.connect(empty_database) as migrated:
        applied = migrated.execute(
            "SELECT count(*), count(DISTINCT (app, name)) FROM django_migrations"
        ).fetchone()
    assert applied[0] == applied[1]
