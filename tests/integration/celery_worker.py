"""A real Celery worker process, and a private Redis, for the send path's tests.

The worker runs ``celery -A webmail worker`` with the test settings and the
test database: it is given the database the test process is connected to (for
SQLite, tests/settings.py makes the test database a file, so both processes
open the same one; PostgreSQL's test database is shared by nature). Tests that
write rows for it use ``transactional_db`` so the rows are committed.

Redis is a ``redis-server`` of the test's own on a free port, not the
machine's: tests stop and start it, and its queues hold nothing of anyone else.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

from django.db import connection

ROOT = Path(__file__).resolve().parents[2]

#: Bound on every wait for a process to come up or go away.
STARTUP_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition, *, timeout: float = STARTUP_TIMEOUT, interval: float = 0.1, what: str):
    """Poll ``condition`` until it returns something true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def database_url() -> str:
    """The URL of the database this process uses now (the test database, during tests)."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings['NAME']}"
    if connection.vendor == "postgresql":
        credentials = quote(settings["USER"] or "", safe="")
        if settings["PASSWORD"]:
            credentials += ":" + quote(settings["PASSWORD"], safe="")
        host = settings["HOST"] or "localhost"
        port = f":{settings['PORT']}" if settings["PORT"] else ""
        at = "@" if credentials else ""
        return f"postgres://{credentials}{at}{host}{port}/{quote(settings['NAME'], safe='')}"
    raise RuntimeError(f"No worker database URL for {connection.vendor}")


class RedisServer:
    """A ``redis-server`` on loopback that keeps nothing on disk."""

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.log = log
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (Debian package redis-server)")
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        wait_for(self._answers, what=f"redis-server on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=STARTUP_TIMEOUT)
            self.process = None

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False


class CeleryWorker:
    """``celery -A webmail worker`` in its own process group, logging to ``log``."""

    #: What the log says once it is up.
    READY = b" ready."

    def __init__(
        self,
        *,
        broker_url: str,
        log: Path,
        environment: dict[str, str],
        settings_module: str | None = "tests.settings",
        concurrency: int = 2,
    ) -> None:
        self.broker_url = broker_url
        self.log = log
        self.environment = environment
        # None: the caller's own DJANGO_SETTINGS_MODULE, inherited with its environment.
        self.settings_module = settings_module
        self.concurrency = concurrency
        self.nodename = f"t{uuid.uuid4().hex[:8]}@{socket.gethostname()}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            **self.environment,
            "PYTHONPATH": str(ROOT),
            "FACTEUR_BROKER_URL": self.broker_url,
            "DATABASE_URL": database_url(),
        }
        if self.settings_module:
            env["DJANGO_SETTINGS_MODULE"] = self.settings_module
        celery = Path(sys.executable).with_name("celery")
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(celery), "-A", "webmail", *self.arguments()],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Its own group, so that a kill reaches the pool's children too.
                start_new_session=True,
                **self.popen_options(),
            )
        wait_for(lambda: self._ready(offset), what=f"celery {self.arguments()[0]} to be ready")

    def arguments(self) -> list[str]:
        """What follows ``celery -A webmail``."""
        return [
            *("worker", "--loglevel=INFO"),
            *("--pool=prefork", f"--concurrency={self.concurrency}"),
            *("--hostname", self.nodename),
            *("--without-gossip", "--without-mingle", "--without-heartbeat"),
        ]

    def popen_options(self) -> dict:
        """More arguments for the worker's ``subprocess.Popen``."""
        return {}

    def kill(self) -> None:
        """SIGKILL the worker and its children at once, as a crash or an OOM kill would."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        self._signal(signal.SIGTERM)

    def _signal(self, number: int) -> None:
        if self.process is None:
            return
        signal_group(self.process, number)
        self.process = None

    def _ready(self, offset: int) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"The Celery worker exited; see {self.log}")
        with self.log.open("rb") as log:
            log.seek(offset)
            return self.READY in log.read()


def signal_group(process: subprocess.Popen, number: int) -> None:
    """Send ``number`` to the process group ``process`` leads, and wait until it has gone."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, number)
    try:
        process.wait(timeout=STARTUP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=STARTUP_TIMEOUT)
    # Children left over (a pool process finishing a task) go with their group.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def publish_to(broker_url: str) -> str:
    """Make this process publish tasks to ``broker_url``; the URL it published to before.

    Celery keeps both a connection pool and a producer pool made for the broker
    URL it first saw: both are dropped, or tasks would still go to the old Redis.
    """
    from webmail import celery_app

    previous = celery_app.conf.broker_url
    celery_app.conf.broker_url = broker_url
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    return previous


@contextlib.contextmanager
def published_redis(log: Path) -> Iterator[RedisServer]:
    """A private Redis that this process publishes its tasks to while it runs."""
    server = RedisServer(log)
    server.start()
    previous = publish_to(server.url)
    try:
        yield server
    finally:
        publish_to(previous)
        server.stop()
