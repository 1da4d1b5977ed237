"""The suite's real mail server: one Dovecot and Postfix pair per test session."""

from __future__ import annotations

import secrets
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from webmail.localmail import LocalMailServer


@dataclass(frozen=True)
class MailUser:
    address: str
    password: str


@pytest.fixture(scope="session")
def mail_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMailServer]:
    """A started LocalMailServer for the whole session; its logs are kept with pytest's."""
    LocalMailServer.ensure_installed()
    # Not under pytest's base folder: the mail servers' unprivileged users must
    # reach the files, and pytest makes that folder private again whenever
    # another session starts.
    root = Path(tempfile.mkdtemp(prefix="facteur-mail-"))
    server = LocalMailServer(root)
    try:
        with server:
            yield server
    finally:
        logs = tmp_path_factory.mktemp("mail-logs")
        for log in (server.dovecot_log, server.postfix_log):
            if log.exists():
                shutil.copy(log, logs)
        shutil.rmtree(root, ignore_errors=True)


#: What a basic IMAP4rev1 server announces: no SORT, THREAD, ESEARCH, MOVE, UIDPLUS,
#: LIST-STATUS or SPECIAL-USE, so that every fallback is taken.
BASIC_IMAP_CAPABILITY = "IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE IDLE NAMESPACE"


@pytest.fixture(scope="session")
def basic_mail_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMailServer]:
    """A second Dovecot and Postfix whose IMAP announces only ``BASIC_IMAP_CAPABILITY``."""
    LocalMailServer.ensure_installed()
    root = Path(tempfile.mkdtemp(prefix="facteur-basic-mail-"))
    server = LocalMailServer(root, imap_capability=BASIC_IMAP_CAPABILITY)
    try:
        with server:
            yield server
    finally:
        logs = tmp_path_factory.mktemp("basic-mail-logs")
        for log in (server.dovecot_log, server.postfix_log):
            if log.exists():
                shutil.copy(log, logs)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def basic_mail_user(basic_mail_server: LocalMailServer) -> MailUser:
    """A new mailbox on the basic mail server, unique to this test."""
    user = MailUser(
        address=f"user-{uuid.uuid4().hex[:12]}@{basic_mail_server.domain}",
        password=secrets.token_urlsafe(12),
    )
    basic_mail_server.add_user(user.address, user.password)
    return user


@pytest.fixture
def mail_user(mail_server: LocalMailServer) -> MailUser:
    """A new mailbox on the suite's mail server, unique to this test."""
    user = MailUser(
        address=f"user-{uuid.uuid4().hex[:12]}@{mail_server.domain}",
        password=secrets.token_urlsafe(12),
    )
    mail_server.add_user(user.address, user.password)
    return user


@pytest.fixture(scope="session")
def send_worker(tmp_path_factory: pytest.TempPathFactory, django_db_setup, django_db_blocker):
    """A real Celery worker on a private Redis, for tests that send through the app.

    The send path's own fault tests start and stop theirs; this one stays up for
    the session. The test process publishes to the same Redis.
    """
    from tests.integration.celery_worker import CeleryWorker, RedisServer, publish_to

    logs = tmp_path_factory.mktemp("send-worker-logs")
    redis_server = RedisServer(logs / "redis.log")
    redis_server.start()
    previous = publish_to(redis_server.url)
    worker = CeleryWorker(broker_url=redis_server.url, log=logs / "worker.log", environment={})
    try:
        with django_db_blocker.unblock():
            worker.start()
        yield worker
    finally:
        worker.stop()
        publish_to(previous)
        redis_server.stop()
