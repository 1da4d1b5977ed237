"""What Facteur adds between pressing Send and the message in the recipient's INBOX.

Starts a private LocalMailServer, a private redis-server and a real Celery
worker process (``celery -A webmail worker``, prefork), all on loopback, and
measures:

- latency: alice's compose form POSTed through Django's test client (the
  view, the outbox row, the task through Redis, the worker's SMTP submission,
  Postfix, Dovecot's LMTP delivery) until bob's INBOX has the message, beside
  the same message submitted straight to Postfix's submission port with
  smtplib (STARTTLS and AUTH) until it is in the INBOX; medians of
  ``--repeat`` runs of each, taken in turns, and the ratio;
- throughput: a burst of ``--burst`` messages queued with ``outbox.queue()``
  while the worker is paused, then the time from its resuming until it has
  marked all of them sent and until all are in the INBOX, beside the same
  messages submitted with smtplib by as many threads as the worker has
  processes, one SMTP session per message as the worker does.

Run as root (the mail server needs it): ``.venv/bin/python bench/send_mail.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import secrets
import shutil
import signal
import smtplib
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webmail.settings")
os.environ.setdefault("FACTEUR_DEBUG", "1")
# Holds the database (unless the environment names one) and the services' logs.
WORK_DIR = Path(tempfile.mkdtemp(prefix="facteur-bench-send-"))
os.environ.setdefault("DATABASE_URL", f"sqlite:///{WORK_DIR}/db.sqlite3")
# For this process and the worker alike: no undo delay, which would only add its
# seconds to every send, and no hourly limit on the hundreds of messages sent here.
os.environ["FACTEUR_SEND_UNDO_SECONDS"] = "0"
os.environ["FACTEUR_SEND_RATE_LIMIT"] = "1000000"

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from django.urls import reverse  # noqa: E402
from imapclient import IMAPClient  # noqa: E402

from accounts.models import MailAccount  # noqa: E402
from tests.integration.celery_worker import (  # noqa: E402
    STARTUP_TIMEOUT,
    CeleryWorker,
    RedisServer,
    wait_for,
)
from tests.support.accounts import make_account  # noqa: E402
from webmail import celery_app, outbox  # noqa: E402
from webmail.localmail import LocalMailServer  # noqa: E402
from webmail.mime import Address, build_message  # noqa: E402
from webmail.mime.build import as_bytes  # noqa: E402
from webmail.models import OutgoingMessage  # noqa: E402
from webmail.transport.endpoint import STARTTLS, Endpoint  # noqa: E402
from webmail.transport.imap import close_quietly, open_imap  # noqa: E402

Status = OutgoingMessage.Status

HTML = "<div>hello</div>"
TEXT = "hello"
#: Seconds between two looks at the INBOX (NOOP, then UID SEARCH) while one message travels.
LATENCY_POLL = 0.005
#: The same during a burst, which lasts seconds.
BURST_POLL = 0.05
#: Bound on one message's way to the INBOX, and added to a burst's bound.
DELIVERY_TIMEOUT = 60.0
#: Bound on each message of a burst (a slow machine still sends more than one a second).
BURST_TIMEOUT_PER_MESSAGE = 1.0
#: Held while a child process starts, so that an interruption never leaves one unknown.
HELD_SIGNALS = {signal.SIGINT, signal.SIGTERM}


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Ctrl-C and kill wait until the process being started is known, and so stopped.

    A child started meanwhile inherits the held signals.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, HELD_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, HELD_SIGNALS)


def _release_signals() -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, HELD_SIGNALS)


class BenchWorker(CeleryWorker):
    """The tests' worker process, with this benchmark's settings, and able to pause.

    It keeps this process's settings: ``tests.settings`` has keys of its own that
    could not decrypt the mail passwords this process stored.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(settings_module=None, **kwargs)

    def start(self) -> None:
        with signals_held():
            super().start()

    def popen_options(self) -> dict:
        # Its own group keeps it out of reach of the terminal's Ctrl-C (this process
        # stops it); it is stopped by SIGTERM, so it must not inherit it held.
        return {"preexec_fn": _release_signals}

    def _control(self, command: str) -> None:
        """Stop or resume taking tasks from the default queue, once the worker says it has."""
        queue = celery_app.conf.task_default_queue
        replies = getattr(celery_app.control, command)(
            queue, destination=[self.nodename], reply=True, timeout=STARTUP_TIMEOUT
        )
        if not replies:
            raise RuntimeError(f"The Celery worker did not answer {command}")

    def pause(self) -> None:
        """Leave new tasks in Redis, once the tasks under way are done."""
        inspect = celery_app.control.inspect([self.nodename], timeout=STARTUP_TIMEOUT)
        wait_for(lambda: inspect.active() == {self.nodename: []}, what="an idle worker")
        self._control("cancel_consumer")

    def resume(self) -> None:
        self._control("add_consumer")


class Mailbox:
    """Bob's INBOX on a connection that is signed in and has it selected."""

    def __init__(self, server: LocalMailServer, address: str, password: str) -> None:
        endpoint = Endpoint(
            host=server.host,
            port=server.imap_port,
            security=STARTTLS,
            login=address,
            password=password,
            ca_file=str(server.ca_file),
        )
        self.client: IMAPClient = open_imap(endpoint)
        self.client.select_folder("INBOX")

    def count(self, subject: str) -> int:
        """Messages whose subject contains ``subject``, as of now."""
        self.client.noop()
        return len(self.client.search(["SUBJECT", subject]))

    def wait(self, subject: str) -> float:
        """``perf_counter()`` when a message with ``subject`` is in the INBOX."""
        deadline = time.perf_counter() + DELIVERY_TIMEOUT
        while not self.count(subject):
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{subject} did not arrive within {DELIVERY_TIMEOUT:.0f} s")
            time.sleep(LATENCY_POLL)
        return time.perf_counter()

    def close(self) -> None:
        close_quietly(self.client)


class Submitter:
    """Submission straight to Postfix with smtplib: STARTTLS, AUTH, one session per message."""

    def __init__(self, server: LocalMailServer, address: str, password: str) -> None:
        self.server = server
        self.address = address
        self.password = password
        self.context = ssl.create_default_context(cafile=str(server.ca_file))

    def send(self, raw: bytes, recipient: str) -> None:
        with smtplib.SMTP(self.server.host, self.server.submission_port, timeout=30) as client:
            client.starttls(context=self.context)
            client.login(self.address, self.password)
            client.sendmail(self.address, [recipient], raw)


class ComposeFailed(Exception):
    """The compose view did not send: what it answered, for the report."""


class Composer:
    """Alice at the compose page: the form POSTed as the editor sends it, rich text."""

    def __init__(self, account: MailAccount) -> None:
        self.account = account
        self.browser = Client(HTTP_HOST="localhost")
        self.browser.force_login(account.user)
        try:
            self.url = reverse("webmail:compose", args=[account.pk])
            self.identity = account.sending_identities()[0].pk
        except Exception as exc:
            raise ComposeFailed(repr(exc)) from exc

    def send(self, to: str, subject: str) -> OutgoingMessage:
        """The outbox row the POST made."""
        fields = {
            "identity": self.identity,
            "to": to,
            "subject": subject,
            "rich": "1",
            "html": HTML,
            "action": "send",
        }
        # Whatever the view raises is reported, and the burst, which needs no view, still runs.
        try:
            response = self.browser.post(self.url, fields)
        except Exception as exc:
            raise ComposeFailed(f"the view raised {exc!r}") from exc
        if response.status_code != 302:
            lines = response.content.decode("utf-8", "replace").strip().splitlines()[:15]
            raise ComposeFailed(
                f"status {response.status_code}\n" + "\n".join(f"    {line}" for line in lines)
            )
        return OutgoingMessage.objects.filter(account=self.account).latest("pk")


@dataclass
class Scene:
    """Alice, who sends, and bob's INBOX, where every message goes."""

    account: MailAccount
    sender: Address
    submitter: Submitter
    recipient: str
    inbox: Mailbox
    token: str

    def message(self, subject: str) -> tuple[EmailMessage, list[str]]:
        """The message the compose form makes of ``HTML``, with its envelope recipients."""
        return build_message(
            sender=self.sender,
            to=self.recipient,
            subject=subject,
            text=TEXT,
            html=HTML,
            message_id_domain=self.sender.email.partition("@")[2],
        )


def watch(
    started: float, checks: dict[str, Callable[[], bool]], timeout: float
) -> dict[str, float]:
    """Seconds from ``started`` until each check first held."""
    reached: dict[str, float] = {}
    deadline = started + timeout
    while len(reached) < len(checks):
        for name, check in checks.items():
            if name not in reached and check():
                reached[name] = time.perf_counter() - started
        if len(reached) < len(checks):
            if time.perf_counter() > deadline:
                missing = ", ".join(name for name in checks if name not in reached)
                raise TimeoutError(f"Not reached within {timeout:.0f} s: {missing}")
            time.sleep(BURST_POLL)
    return reached


def warm(scene: Scene, processes: int) -> None:
    """Messages through the worker (one per process) and one raw, before anything is timed."""
    prefix = f"warm-{scene.token}"
    for number in range(processes):
        outbox.queue(scene.account, *scene.message(f"{prefix}-{number:05d}"))
    scene.submitter.send(as_bytes(scene.message(f"{prefix}-raw")[0]), scene.recipient)
    checks = {"warm": lambda: scene.inbox.count(prefix) >= processes + 1}
    watch(time.perf_counter(), checks, DELIVERY_TIMEOUT)


def measure_latency(scene: Scene, composer: Composer, repeat: int) -> dict[str, list[float]]:
    """Milliseconds from just before the SMTP connection, or the POST, to each stage.

    The two paths run in turns, so that a busy machine slows both alike.
    """
    timings: dict[str, list[float]] = {
        name: [] for name in ("raw accepted", "raw inbox", "POST", "accepted", "inbox")
    }
    for number in range(repeat):
        subject = f"raw-{scene.token}-{number:05d}"
        raw = as_bytes(scene.message(subject)[0])
        started = time.perf_counter()
        scene.submitter.send(raw, scene.recipient)
        timings["raw accepted"].append((time.perf_counter() - started) * 1000)
        timings["raw inbox"].append((scene.inbox.wait(subject) - started) * 1000)

        subject = f"compose-{scene.token}-{number:05d}"
        wall_clock = time.time()
        started = time.perf_counter()
        row = composer.send(scene.recipient, subject)
        timings["POST"].append((time.perf_counter() - started) * 1000)
        timings["inbox"].append((scene.inbox.wait(subject) - started) * 1000)
        # The worker marks it sent as Postfix accepts it, before copying it to
        # Sent: the mark may come just after the delivery.
        sent_at = wait_for(
            lambda row=row: OutgoingMessage.objects.get(pk=row.pk).sent_at,
            timeout=DELIVERY_TIMEOUT,
            interval=LATENCY_POLL,
            what=f"outgoing message {row.pk} to be marked sent",
        )
        timings["accepted"].append((sent_at.timestamp() - wall_clock) * 1000)
    return timings


def burst_raw(scene: Scene, count: int, threads: int) -> dict[str, float]:
    """Seconds until ``count`` submissions by ``threads`` threads were all accepted / arrived."""
    prefix = f"smtpburst-{scene.token}"
    messages = [as_bytes(scene.message(f"{prefix}-{n:05d}")[0]) for n in range(count)]
    pool = ThreadPoolExecutor(max_workers=threads)
    try:
        started = time.perf_counter()
        futures: list[Future] = [
            pool.submit(scene.submitter.send, raw, scene.recipient) for raw in messages
        ]

        def accepted() -> bool:
            if not all(future.done() for future in futures):
                return False
            for future in futures:
                future.result()  # a refused submission ends the benchmark with its reason
            return True

        checks = {"sent": accepted, "inbox": lambda: scene.inbox.count(prefix) >= count}
        return watch(started, checks, DELIVERY_TIMEOUT + count * BURST_TIMEOUT_PER_MESSAGE)
    finally:
        # Interrupted, it drops the submissions not yet begun.
        pool.shutdown(cancel_futures=True)


def burst_facteur(scene: Scene, worker: BenchWorker, count: int) -> dict[str, float]:
    """Seconds from the worker's resuming with ``count`` messages queued until all are sent /
    arrived, and the seconds ``outbox.queue()`` took for them while it was paused.
    """
    prefix = f"queueburst-{scene.token}"
    messages = [scene.message(f"{prefix}-{number:05d}") for number in range(count)]
    worker.pause()
    started = time.perf_counter()
    pks = [outbox.queue(scene.account, *message).pk for message in messages]
    queued = time.perf_counter() - started
    rows = OutgoingMessage.objects.filter(pk__in=pks)

    def all_sent() -> bool:
        failed = rows.filter(status=Status.FAILED).values_list("last_error", flat=True)[:1]
        if failed:
            raise RuntimeError(f"A message of the burst failed: {failed[0]}")
        return rows.filter(status=Status.SENT).count() == count

    checks = {"sent": all_sent, "inbox": lambda: scene.inbox.count(prefix) >= count}
    started = time.perf_counter()
    worker.resume()
    reached = watch(started, checks, DELIVERY_TIMEOUT + count * BURST_TIMEOUT_PER_MESSAGE)
    return {"queued": queued, **reached}


def report(latency: dict[str, list[float]] | None, bursts: dict, args) -> None:
    if latency is not None:
        median = {name: statistics.median(values) for name, values in latency.items()}
        print(f"Send to INBOX, median of {args.repeat}, ms      raw   Facteur   ratio")
        print(f"  the POST answered                          {median['POST']:>8.1f}")
        for name, label in (("accepted", "accepted by Postfix"), ("inbox", "in bob's INBOX")):
            raw, facteur = median[f"raw {name}"], median[name]
            print(f"  {label:<30} {raw:>8.1f}  {facteur:>8.1f}  {facteur / raw:>5.2f}x")
        print()
    count = args.burst
    raw_burst, facteur_burst = bursts["raw"], bursts["Facteur"]
    print(f"Burst of {count}, messages per second          raw   Facteur   ratio")
    for name, label in (("sent", "all accepted by Postfix"), ("inbox", "all in bob's INBOX")):
        raw_rate, facteur_rate = count / raw_burst[name], count / facteur_burst[name]
        print(
            f"  {label:<30} {raw_rate:>8.1f}  {facteur_rate:>8.1f}  "
            f"{raw_rate / facteur_rate:>5.2f}x"
        )
    queued = facteur_burst["queued"]
    print(f"  outbox.queue(), worker paused:  {queued / count * 1000:.1f} ms a message")
    print(
        "\nlatency: raw = smtplib to Postfix's submission port (STARTTLS, AUTH) with the same"
        "\n         message; Facteur = the compose form POSTed (rich text), the outbox row,"
        "\n         Redis, the worker's submission; accepted = the row's sent_at. INBOX ="
        "\n         found by NOOP and UID SEARCH SUBJECT on a signed-in connection."
        f"\nburst:   raw = {args.concurrency} threads, one SMTP session per message; Facteur ="
        f"\n         a worker of concurrency {args.concurrency} resumed with {count} rows queued;"
        "\n         accepted = all rows sent. Ratio: raw rate over Facteur's, so that above"
        "\n         1 means slower, as for latency."
    )


def interrupted(number: int, frame) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=20, help="sends per latency median")
    parser.add_argument("--burst", type=int, default=200, help="messages in the burst")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=4,
        help="worker processes, and raw sending threads (default: %(default)s, as in "
        "docker-compose.yml)",
    )
    args = parser.parse_args()

    # A plain kill stops everything as Ctrl-C does.
    signal.signal(signal.SIGTERM, interrupted)
    logging.getLogger("webmail.mailstore.pool").setLevel(logging.WARNING)
    LocalMailServer.ensure_installed()
    call_command("migrate", verbosity=0)
    mail_root = Path(tempfile.mkdtemp(prefix="facteur-bench-"))
    log_dir = WORK_DIR / "log"
    log_dir.mkdir()
    print(
        f"Mail server in {mail_root}; worker: celery prefork, concurrency {args.concurrency}.\n",
        flush=True,
    )
    redis = RedisServer(log_dir / "redis.log")
    worker = BenchWorker(
        broker_url=redis.url,
        log=log_dir / "worker.log",
        environment={
            "FACTEUR_SEND_UNDO_SECONDS": os.environ["FACTEUR_SEND_UNDO_SECONDS"],
            "FACTEUR_SEND_RATE_LIMIT": os.environ["FACTEUR_SEND_RATE_LIMIT"],
        },
        concurrency=args.concurrency,
    )
    # This process publishes the tasks: to the private Redis too.
    celery_app.conf.broker_url = redis.url
    inbox: Mailbox | None = None
    failed = False
    latency = None
    server = LocalMailServer(mail_root)
    try:
        server.start()
        # Killed by SIGKILL, it may keep the held signals; its wait is short.
        with signals_held():
            redis.start()
        worker.start()
        alice = SimpleNamespace(
            address=f"alice@{server.domain}", password=secrets.token_urlsafe(12)
        )
        bob = SimpleNamespace(address=f"bob@{server.domain}", password=secrets.token_urlsafe(12))
        for mailbox in (alice, bob):
            server.add_user(mailbox.address, mailbox.password)
        person = get_user_model().objects.create_user(
            username="alice", first_name="Alice", last_name="Martin"
        )
        inbox = Mailbox(server, bob.address, bob.password)
        scene = Scene(
            account=make_account(person, server, alice),
            sender=Address(name="Alice Martin", email=alice.address),
            submitter=Submitter(server, alice.address, alice.password),
            recipient=bob.address,
            inbox=inbox,
            token=secrets.token_hex(4),
        )
        warm(scene, args.concurrency)
        try:
            composer = Composer(scene.account)
            composer.send(scene.recipient, f"compose-{scene.token}-warm")
            scene.inbox.wait(f"compose-{scene.token}-warm")
            latency = measure_latency(scene, composer, args.repeat)
        except ComposeFailed as exc:
            print(f"The compose view did not send, so no latency: {exc}\n", flush=True)
        bursts = {
            "raw": burst_raw(scene, args.burst, args.concurrency),
            "Facteur": burst_facteur(scene, worker, args.burst),
        }
    except Exception:
        failed = True
        raise
    finally:
        # A second Ctrl-C must not cut the stopping short.
        signal.pthread_sigmask(signal.SIG_BLOCK, HELD_SIGNALS)
        if inbox is not None:
            inbox.close()
        worker.stop()
        redis.stop()
        server.stop()
        shutil.rmtree(mail_root, ignore_errors=True)
        if failed:
            print(f"\nLogs kept in {log_dir}", file=sys.stderr)
        else:
            shutil.rmtree(WORK_DIR, ignore_errors=True)
    report(latency, bursts, args)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        # Interrupted before the mail server started, main() had nothing to remove yet.
        shutil.rmtree(WORK_DIR, ignore_errors=True)
        sys.exit("Interrupted; everything it started is stopped.")
