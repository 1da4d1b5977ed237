"""Facteur in production under N simulated people, then with its parts failing one by one.

Starts a stack private to the benchmark, so that it can stop and restart its
parts without touching the machine's own services: a PostgreSQL cluster
(``initdb``/``pg_ctl``), a ``redis-server`` that keeps its queue on disk as
``docker-compose.yml``'s does, a ``LocalMailServer`` (Dovecot and Postfix), and
Facteur with production settings (no ``FACTEUR_DEBUG``, static files collected
by the manifest storage) run by the commands of ``docker-compose.yml``: the web
service's gunicorn, the worker and beat.

Seeds N people (``--people``), each with an account on the mail server whose
INBOX holds ``--messages`` messages (one Maildir written by ``bench/seed.py``,
hard-linked for the others), and has them sign in and then, with think times,
list the INBOX, open a message (its page and its body frame), search, go to
the next page, and send a message to another person once a minute through the
compose form, for ``--duration`` seconds. Then, under the same load, it stops
and restarts Dovecot, Redis and PostgreSQL, and kills the Celery worker with
SIGKILL and starts it again as a supervisor would; lets the outbox drain; and
checks every queued message against its recipient's INBOX by Message-ID.

It prints Markdown tables: latency per action, errors, IMAP connections per
account seen by Dovecot, the memory of each process, and per fault the
answers during the outage and the time to recover once the part was back.

Run as root (the mail server needs it): ``.venv/bin/python bench/load.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import secrets
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path
from types import SimpleNamespace

import httpx
import yaml
from imapclient import IMAPClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.integration.celery_worker import free_port, signal_group, wait_for  # noqa: E402
from webmail.localmail import LocalMailServer  # noqa: E402

BIN = Path(sys.executable).parent
PG_BIN = Path(sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1])
GUNICORN_CONF = ROOT / "webmail" / "gunicorn_conf.py"
#: Every person's password for Facteur (the mail server's differ per person).
WEB_PASSWORD = "load-bench-password"
#: Words the quick searches look for: senders, subjects and body words of bench/seed.py.
SEARCH_WORDS = ("Martin", "Budget", "invoice", "réunion", "deadline", "Chloé", "report")
#: Relative weights of what a person does between two sends.
MIX = {"inbox": 35, "open": 35, "next page": 20, "search": 10}
#: The actions that are page views, for the target on their 95th percentile.
PAGE_VIEWS = ("inbox", "open", "next page", "search", "compose")
SEND_INTERVAL = 60.0
#: Seconds between two looks at Dovecot's sessions and at the processes' memory.
SAMPLE_INTERVAL = 5.0
UID_RE = re.compile(r'href="/a/\d+/(?:m|t)/(\d+)/')
BODY_RE = re.compile(r'<iframe class="message-body[^"]*"[^>]*\ssrc="([^"]+)"')
IDENTITY_RE = re.compile(r'<select name="identity"[^>]*>\s*<option value="(\d+)"')
CSRF_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
SENT_RE = re.compile(r"[?&]sent=(\d+)")


class Postgres:
    """A PostgreSQL cluster of its own, on loopback and a free port."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.port = free_port()
        self.log = root / "postgresql.log"

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/facteur"

    def create(self) -> None:
        self.root.mkdir(mode=0o700)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self.start()
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "facteur")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self) -> None:
        if self.data.exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)

    @staticmethod
    def _run(program: str, *arguments: str, check: bool = True) -> None:
        command = [str(PG_BIN / program), *arguments]
        if os.geteuid() == 0:
            # PostgreSQL refuses to run as root.
            command = ["/usr/sbin/runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=check, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Redis:
    """A ``redis-server`` on loopback that keeps its data in an append-only file, as
    compose's does, so that queued tasks outlive a restart."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def url(self, database: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        self.root.mkdir(exist_ok=True)
        with (self.root / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(
                [
                    *(shutil.which("redis-server") or "redis-server", "--port", str(self.port)),
                    *("--bind", "127.0.0.1", "--dir", str(self.root), "--appendonly", "yes"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        wait_for(self._answers, what=f"redis-server on port {self.port}")

    def stop(self) -> None:
        """Stopped as a service manager stops it: SIGTERM, and it writes its file."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)
            self.process = None

    def _answers(self) -> bool:
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock,
        ):
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
        return False


class Service:
    """One command of the stack, in a process group of its own, logging to a file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], logs: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log = logs / f"{name}.log"
        self.process: subprocess.Popen | None = None

    def start(self, ready: Callable[[int], bool]) -> None:
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        wait_for(lambda: self._alive() and ready(offset), timeout=60, what=self.name)

    def logged_since(self, offset: int, text: bytes) -> bool:
        with self.log.open("rb") as log:
            log.seek(offset)
            return text in log.read()

    def kill(self) -> None:
        """SIGKILL to the whole group at once, as a crash or the OOM killer would."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        self._signal(signal.SIGTERM)

    def _signal(self, number: int) -> None:
        if self.process is not None:
            signal_group(self.process, number)
            self.process = None

    def _alive(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited; see {self.log}")
        return True


def compose_commands() -> dict[str, list[str]]:
    """The web, worker and beat commands of docker-compose.yml, split into arguments."""
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    commands = {}
    for name in ("web", "worker", "beat"):
        command = services[name]["command"]
        if isinstance(command, list):
            command = shlex.join(command)
        if command.startswith("sh -c "):
            command = shlex.split(command)[2]
        # The web service migrates first: the benchmark has done that already.
        command = next(
            part for part in command.split("&&") if part.split()[0] in {"gunicorn", "celery"}
        )
        commands[name] = shlex.split(command)
    return commands


def without_option(argv: list[str], *names: str) -> list[str]:
    """``argv`` without the options ``names`` and their values."""
    kept: list[str] = []
    skip = False
    for argument in argv:
        if skip:
            skip = False
        elif argument in names:
            skip = True
        elif not any(argument.startswith(f"{name}=") for name in names):
            kept.append(argument)
    return kept


def web_argv(command: list[str], port: int) -> list[str]:
    argv = [str(BIN / "gunicorn"), *without_option(command[1:], "--bind", "-b")]
    uses_config = any(a in {"-c", "--config"} or a.startswith("--config=") for a in argv)
    if GUNICORN_CONF.exists() and not uses_config:
        argv += ["--config", str(GUNICORN_CONF)]
    return [*argv, "--bind", f"127.0.0.1:{port}"]


def celery_argv(command: list[str], work: Path) -> list[str]:
    argv = [str(BIN / "celery"), *without_option(command[1:], "--schedule", "-s")]
    if "beat" in argv:
        argv += ["--schedule", str(work / "celerybeat-schedule")]
    return argv


# Processes and their memory -------------------------------------------------------------


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(stat.parent.name))
    return sorted(found)


def rss_kib(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# The simulated people ----------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    index: int
    username: str
    address: str
    mail_password: str
    account_id: int


@dataclass(frozen=True)
class Sample:
    started: float
    action: str
    seconds: float
    status: int | None  # None: no answer (connection refused or reset, timeout)


@dataclass
class Results:
    samples: list[Sample] = field(default_factory=list)
    sends: list[int] = field(default_factory=list)  # outbox rows the compose form answered with
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, sample: Sample) -> None:
        with self.lock:
            self.samples.append(sample)


def failed(sample: Sample) -> bool:
    return sample.status is None or sample.status >= 500


class Simulated(threading.Thread):
    """One person: signs in, then lists, opens, searches, pages and sends until told to stop."""

    def __init__(
        self,
        person: Person,
        recipient: Person,
        base_url: str,
        results: Results,
        stop: threading.Event,
        think: tuple[float, float],
        delay: float,
    ) -> None:
        super().__init__(name=person.username, daemon=True)
        self.person = person
        self.recipient = recipient
        self.results = results
        self.stopping = stop
        self.think = think
        self.delay = delay
        self.rng = random.Random(person.index)
        self.client = httpx.Client(base_url=base_url, timeout=60)
        self.home = f"/a/{person.account_id}/"
        self.uids: list[int] = []
        self.page = 1
        self.sent = 0
        self.signed_in = threading.Event()

    def run(self) -> None:
        if self.stopping.wait(self.delay):
            return
        next_send = time.monotonic() + self.rng.uniform(0, SEND_INTERVAL)
        while not self.stopping.is_set():
            if not self.signed_in.is_set():
                self.sign_in()
            elif time.monotonic() >= next_send:
                next_send += SEND_INTERVAL
                self.send()
            else:
                action = self.rng.choices(list(MIX), weights=list(MIX.values()))[0]
                getattr(self, action.replace(" ", "_"))()
            self.stopping.wait(self.rng.uniform(*self.think))
        self.client.close()

    def request(self, action: str, method: str, url: str, **kwargs) -> httpx.Response | None:
        started = time.monotonic()
        try:
            response = self.client.request(method, url, **kwargs)
        except httpx.HTTPError:
            self.results.add(Sample(started, action, time.monotonic() - started, None))
            return None
        self.results.add(Sample(started, action, time.monotonic() - started, response.status_code))
        if response.status_code == 302 and "/accounts/login/" in response.headers["location"]:
            self.signed_in.clear()
        return response

    def sign_in(self) -> None:
        self.client.cookies.clear()
        form = self.request("sign-in page", "GET", "/accounts/login/")
        if form is None or form.status_code != 200:
            return
        response = self.request(
            "sign in",
            "POST",
            "/accounts/login/",
            data={
                "username": self.person.username,
                "password": WEB_PASSWORD,
                "csrfmiddlewaretoken": _csrf(form.text),
            },
        )
        if response is not None and response.status_code == 302:
            self.signed_in.set()
            self.inbox_page(1, "inbox")

    def inbox(self) -> None:
        self.inbox_page(1, "inbox")

    def next_page(self) -> None:
        self.inbox_page(self.page % 5 + 1, "next page")

    def inbox_page(self, number: int, action: str) -> None:
        query = {"page": number} if number > 1 else None
        response = self.request(action, "GET", self.home, params=query)
        if response is not None and response.status_code == 200:
            self.page = number
            self.uids = [int(uid) for uid in UID_RE.findall(response.text)] or self.uids

    def open(self) -> None:
        if not self.uids:
            self.inbox()
            return
        uid = self.rng.choice(self.uids)
        response = self.request("open", "GET", f"{self.home}m/{uid}/")
        if response is not None and response.status_code == 200:
            frame = BODY_RE.search(response.text)
            if frame:
                self.request("body frame", "GET", unescape(frame.group(1)))

    def search(self) -> None:
        word = self.rng.choice(SEARCH_WORDS)
        self.request("search", "GET", f"{self.home}search/", params={"q": word})

    def send(self) -> None:
        form = self.request("compose", "GET", f"{self.home}compose/")
        if form is None or form.status_code != 200:
            return
        identity = IDENTITY_RE.search(form.text)
        self.sent += 1
        response = self.request(
            "send",
            "POST",
            f"{self.home}compose/",
            data={
                "csrfmiddlewaretoken": _csrf(form.text),
                "identity": identity.group(1) if identity else "",
                "to": self.recipient.address,
                "subject": f"Load {self.person.index} to {self.recipient.index}, {self.sent}",
                "text": "Hello,\n\nThe minutes of this morning's meeting are below.\n",
                "action": "send",
            },
        )
        if response is not None and response.status_code == 302:
            sent = SENT_RE.search(response.headers["location"])
            if sent:
                with self.results.lock:
                    self.results.sends.append(int(sent.group(1)))


def _csrf(page: str) -> str:
    match = CSRF_RE.search(page)
    return match.group(1) if match else ""


# Watching the stack -----------------------------------------------------------------------


class Watcher(threading.Thread):
    """Samples Dovecot's IMAP sessions per user every few seconds."""

    def __init__(self, dovecot_conf: Path, stop: threading.Event) -> None:
        super().__init__(name="watcher", daemon=True)
        self.dovecot_conf = dovecot_conf
        self.stopping = stop
        self.most: Counter[str] = Counter()
        self.most_total = 0
        self.looks = 0

    def run(self) -> None:
        while not self.stopping.wait(SAMPLE_INTERVAL):
            sessions = self.imap_sessions()
            if sessions is None:
                continue
            self.looks += 1
            self.most_total = max(self.most_total, sum(sessions.values()))
            for user, count in sessions.items():
                self.most[user] = max(self.most[user], count)

    def imap_sessions(self) -> Counter[str] | None:
        """IMAP sessions per user now, or None while Dovecot does not answer."""
        result = subprocess.run(
            ["/usr/bin/doveadm", "-c", str(self.dovecot_conf), "who", "-1"],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            return None
        sessions: Counter[str] = Counter()
        for line in result.stdout.splitlines()[1:]:
            parts = line.split()
            if len(parts) >= 2 and parts[1] == "imap":
                sessions[parts[0]] += 1
        return sessions


# The bench ---------------------------------------------------------------------------------


class Stack:
    """PostgreSQL, Redis, the mail server and Facteur's web, worker and beat, all private."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.logs = work / "logs"
        self.logs.mkdir()
        self.postgres = Postgres(work / "pg")
        self.redis = Redis(work / "redis")
        self.mail = LocalMailServer(work / "mail")
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.commands = compose_commands()
        self.web: Service | None = None
        self.worker: Service | None = None
        self.beat: Service | None = None

    def environment(self) -> dict[str, str]:
        from cryptography.fernet import Fernet

        env = {key: value for key, value in os.environ.items() if key != "FACTEUR_DEBUG"}
        env.update(
            DJANGO_SETTINGS_MODULE="webmail.settings",
            PYTHONPATH=str(ROOT),
            FACTEUR_SECRET_KEY=secrets.token_urlsafe(50),
            FACTEUR_CREDENTIALS_KEYS=Fernet.generate_key().decode(),
            FACTEUR_ALLOWED_HOSTS="127.0.0.1",
            # Plain HTTP on loopback: no TLS proxy in front, so no Secure cookies.
            FACTEUR_SECURE_COOKIES="false",
            FACTEUR_BEHIND_TLS_PROXY="false",
            FACTEUR_STATIC_ROOT=str(self.work / "static"),
            FACTEUR_DATA_DIR=str(self.work / "data"),
            DATABASE_URL=self.postgres.url,
            FACTEUR_BROKER_URL=self.redis.url(0),
            FACTEUR_CACHE_URL=self.redis.url(1),
            FACTEUR_LOG_LEVEL="WARNING",
        )
        return env

    def start_backing(self) -> None:
        self.postgres.create()
        self.redis.start()
        self.mail.start()

    def prepare(self, env: dict[str, str]) -> None:
        for command in (["collectstatic", "--noinput"], ["migrate", "--noinput"]):
            subprocess.run(
                [sys.executable, "manage.py", *command],
                cwd=ROOT,
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
            )

    def start_facteur(self, env: dict[str, str]) -> None:
        self.web = Service("web", web_argv(self.commands["web"], self.port), env, self.logs)
        self.web.start(lambda _offset: self._answers())
        self.worker = Service(
            "worker", celery_argv(self.commands["worker"], self.work), env, self.logs
        )
        self.start_worker()
        self.beat = Service("beat", celery_argv(self.commands["beat"], self.work), env, self.logs)
        self.beat.start(lambda offset: self.beat.logged_since(offset, b"beat: Starting"))

    def start_worker(self) -> None:
        self.worker.start(lambda offset: self.worker.logged_since(offset, b" ready."))

    def _answers(self) -> bool:
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"{self.base_url}/accounts/login/", timeout=5).status_code == 200
        return False

    def processes(self) -> dict[str, int]:
        """Facteur's processes now, named, with their resident memory in KiB."""
        found = {}
        for service in (self.web, self.worker, self.beat):
            if service is None or service.process is None:
                continue
            main = service.process.pid
            found[f"{service.name} main"] = rss_kib(main)
            for number, pid in enumerate(children(main), 1):
                found[f"{service.name} child {number}"] = rss_kib(pid)
        return found

    def stop(self) -> None:
        for service in (self.beat, self.worker, self.web):
            if service is not None:
                service.stop()
        self.mail.stop()
        self.redis.stop()
        self.postgres.stop()


def seed(stack: Stack, people: int, messages: int) -> list[Person]:
    """The people, their mail accounts and their seeded INBOXes, each indexed by Dovecot once."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    from bench.seed import link_maildir, seed_maildir
    from tests.support.accounts import make_account

    server = stack.mail
    web_password = make_password(WEB_PASSWORD)
    made = []
    for index in range(people):
        address, mail_password = f"person{index}@{server.domain}", f"mail-password-{index}"
        if index == 0:
            seed_maildir(server, address, mail_password, messages)
        else:
            link_maildir(server, made[0].address, address, mail_password)
        user = get_user_model().objects.create(username=f"person{index}", password=web_password)
        mailbox = SimpleNamespace(address=address, password=mail_password)
        account = make_account(user, server, mailbox)
        made.append(Person(index, user.username, address, mail_password, account.pk))
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda person: _select_inbox(stack, person), made))
    return made


def _imap(stack: Stack, person: Person) -> IMAPClient:
    from webmail.transport.endpoint import STARTTLS, Endpoint
    from webmail.transport.imap import ConnectionProblem, open_imap

    endpoint = Endpoint(
        host=stack.mail.host,
        port=stack.mail.imap_port,
        security=STARTTLS,
        login=person.address,
        password=person.mail_password,
        ca_file=str(stack.mail.ca_file),
    )
    # A busy server may drop a new session: try again, as a person would.
    for _attempt in range(2):
        with contextlib.suppress(ConnectionProblem):
            return open_imap(endpoint)
        time.sleep(5)
    return open_imap(endpoint)


def _select_inbox(stack: Stack, person: Person) -> None:
    from webmail.transport.imap import close_quietly

    client = _imap(stack, person)
    try:
        client.select_folder("INBOX")
    finally:
        close_quietly(client)


@dataclass
class Fault:
    part: str
    down: float
    back: float
    until: float


def inject(stack: Stack, part: str, outage: float, observe: float) -> Fault:
    """Take ``part`` away for ``outage`` seconds, bring it back, watch ``observe`` seconds."""
    stop, start = {
        "Dovecot": (stack.mail.stop_dovecot, stack.mail.start_dovecot),
        "Redis": (stack.redis.stop, stack.redis.start),
        "PostgreSQL": (stack.postgres.stop, stack.postgres.start),
        "worker (kill -9)": (stack.worker.kill, stack.start_worker),
    }[part]
    print(f"  {part}: down for {outage:.0f} s", flush=True)
    down = time.monotonic()
    stop()
    time.sleep(outage)
    start()
    back = time.monotonic()
    time.sleep(observe)
    return Fault(part, down, back, time.monotonic())


def drain(timeout: float) -> dict[str, int]:
    """Wait until the outbox holds nothing to send; its rows by state then."""
    from django.db import close_old_connections

    from webmail.models import OutgoingMessage

    close_old_connections()
    pending = (OutgoingMessage.Status.QUEUED, OutgoingMessage.Status.SENDING)
    deadline = time.monotonic() + timeout
    while OutgoingMessage.objects.filter(status__in=pending).exists():
        if time.monotonic() > deadline:
            break
        time.sleep(2)
    return dict(Counter(OutgoingMessage.objects.values_list("status", flat=True)))


def delivered(stack: Stack, people: list[Person]) -> dict[str, int]:
    """For each outbox row, how many copies its recipient's INBOX holds, by Message-ID."""
    from webmail.models import OutgoingMessage
    from webmail.transport.imap import close_quietly

    by_address = {person.address: person for person in people}
    rows = defaultdict(list)
    for row in OutgoingMessage.objects.all():
        rows[row.envelope_to[0]].append(row)
    copies = Counter()
    for address, outgoing in rows.items():
        client = _imap(stack, by_address[address])
        try:
            client.select_folder("INBOX", readonly=True)
            for row in outgoing:
                found = len(client.search(["HEADER", "Message-ID", row.message_id.strip("<>")]))
                copies[(row.status, min(found, 2))] += 1
        finally:
            close_quietly(client)
    return {
        f"{status}, {n if n < 2 else '2 or more'} in INBOX": c for (status, n), c in copies.items()
    }


# Report -------------------------------------------------------------------------------------


def percentile(values: list[float], share: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[share - 1]


def latency_table(samples: list[Sample]) -> str:
    by_action = defaultdict(list)
    for sample in samples:
        by_action[sample.action].append(sample)
    lines = [
        "| action | requests | p50 ms | p95 ms | p99 ms | max ms | 5xx | no answer |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for action, group in sorted(by_action.items()):
        times = [s.seconds * 1000 for s in group if not failed(s)]
        errors = sum(1 for s in group if s.status is not None and s.status >= 500)
        lost = sum(1 for s in group if s.status is None)
        lines.append(
            f"| {action} | {len(group)} | {percentile(times, 50):.0f} | {percentile(times, 95):.0f}"
            f" | {percentile(times, 99):.0f} | {max(times, default=0):.0f} | {errors} | {lost} |"
        )
    views = [s.seconds * 1000 for s in samples if s.action in PAGE_VIEWS and not failed(s)]
    lines.append(
        f"| **page views** | {len(views)} | {percentile(views, 50):.0f} | "
        f"{percentile(views, 95):.0f} | {percentile(views, 99):.0f} | {max(views, default=0):.0f}"
        " | | |"
    )
    return "\n".join(lines)


def fault_table(faults: list[Fault], samples: list[Sample]) -> str:
    lines = [
        "| part | down s | requests while down | 500 | 503 | other 5xx | no answer "
        "| failures after back | recovered after s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for fault in faults:
        during = [s for s in samples if fault.down <= s.started < fault.back]
        # Ended before the next part went down: that one's failures are its own.
        after = [
            s
            for s in samples
            if fault.back <= s.started and s.started + s.seconds < fault.until and failed(s)
        ]
        statuses = Counter(s.status for s in during)
        other = sum(n for code, n in statuses.items() if code and code > 500 and code != 503)
        recovered = max((s.started + s.seconds - fault.back for s in after), default=0.0)
        lines.append(
            f"| {fault.part} | {fault.back - fault.down:.1f} | {len(during)} | {statuses[500]}"
            f" | {statuses[503]} | {other} | {statuses[None]} | {len(after)} | {recovered:.1f} |"
        )
    return "\n".join(lines)


def memory_table(before: dict[str, int], after: dict[str, int]) -> str:
    lines = ["| process | start MiB | end MiB | growth |", "|---|---:|---:|---:|"]
    for name in sorted(before.keys() | after.keys()):
        start, end = before.get(name, 0), after.get(name, 0)
        growth = f"{(end - start) / start:+.1%}" if start and end else "n/a"
        lines.append(f"| {name} | {start / 1024:.1f} | {end / 1024:.1f} | {growth} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=50)
    parser.add_argument("--messages", type=int, default=10_000, help="in each INBOX")
    parser.add_argument("--duration", type=float, default=300, help="seconds of steady load")
    # Long enough for every person's first send, so that each worker process has
    # sent and copied to Sent before its memory is first read.
    parser.add_argument("--warmup", type=float, default=90, help="seconds before measuring")
    parser.add_argument("--think", default="3,9", help="seconds between two actions: min,max")
    parser.add_argument("--outage", type=float, default=10, help="seconds each part stays down")
    parser.add_argument("--observe", type=float, default=40, help="seconds watched after each")
    parser.add_argument("--drain", type=float, default=300, help="bound on the outbox's draining")
    parser.add_argument("--no-faults", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the stack's folder and logs")
    args = parser.parse_args()
    think = tuple(float(value) for value in args.think.split(","))

    # Short: Dovecot's socket paths under it must stay within 107 bytes.
    work = Path(tempfile.mkdtemp(prefix="facteur-load-"))
    work.chmod(0o755)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    LocalMailServer.ensure_installed()
    stack = Stack(work)
    stop = threading.Event()
    try:
        print(f"Starting PostgreSQL, Redis and the mail server under {work}", flush=True)
        stack.start_backing()
        env = stack.environment()
        os.environ.clear()
        os.environ.update(env)
        import django

        django.setup()
        from django.conf import settings

        stack.prepare(env)
        started = time.monotonic()
        people = seed(stack, args.people, args.messages)
        print(
            f"Seeded {len(people)} people with {args.messages:,} messages each "
            f"in {time.monotonic() - started:.0f} s",
            flush=True,
        )
        stack.start_facteur(env)
        results = Results()
        watcher = Watcher(stack.mail.root / "dovecot" / "dovecot.conf", stop)
        watcher.start()
        # Sign-ins spread over the first seconds, as people arrive at work.
        ramp = min(30.0, args.people * 0.5)
        simulated = [
            Simulated(
                person,
                people[(person.index + 1) % len(people)],
                stack.base_url,
                results,
                stop,
                think,
                delay=ramp * person.index / len(people),
            )
            for person in people
        ]
        for thread in simulated:
            thread.start()
        with contextlib.suppress(AssertionError):
            wait_for(
                lambda: all(t.signed_in.is_set() for t in simulated),
                timeout=ramp + 60,
                what="sign-ins",
            )
        print(f"{sum(t.signed_in.is_set() for t in simulated)} people signed in", flush=True)
        # Memory is compared once every process has served every kind of request.
        time.sleep(args.warmup)
        steady_from = time.monotonic()
        memory_start = stack.processes()
        time.sleep(args.duration)
        steady_until = time.monotonic()
        memory_end = stack.processes()
        faults = []
        if not args.no_faults:
            print("Faults, under the same load:", flush=True)
            for part in ("Dovecot", "Redis", "PostgreSQL", "worker (kill -9)"):
                faults.append(inject(stack, part, args.outage, args.observe))
        stop.set()
        for thread in simulated:
            thread.join(timeout=90)
        with results.lock:
            samples = list(results.samples)
            answered = list(results.sends)

        steady = [s for s in samples if steady_from <= s.started < steady_until]
        bound = settings.IMAP_POOL_SIZE
        web_workers = len(children(stack.web.process.pid))
        worker_children = len(children(stack.worker.process.pid))
        print(f"\n## {args.people} people, {args.duration:.0f} s of steady load\n")
        print(latency_table(steady))
        print(f"\n## The whole run, faults included ({len(samples)} requests)\n")
        print(latency_table(samples))
        print("\n## IMAP sessions per account, as Dovecot saw them\n")
        print(
            f"{watcher.looks} looks, every {SAMPLE_INTERVAL:.0f} s: at most "
            f"{max(watcher.most.values(), default=0)} per account "
            f"(bound: pool of {bound} x ({web_workers} web + {worker_children} worker processes)"
            f" = {bound * (web_workers + worker_children)}), {watcher.most_total} in all."
        )
        print("\n## Memory, at the start and the end of the steady load\n")
        print(memory_table(memory_start, memory_end))
        if faults:
            print("\n## Faults\n")
            print(fault_table(faults, samples))
        print("\nWaiting for the outbox to drain", flush=True)
        outbox = drain(args.drain)
        copies = delivered(stack, people)
        print("\n## Outbox\n")
        print(f"Sends answered by the compose form: {len(answered)}; rows by state: {outbox}")
        print(f"Rows by copies in the recipient's INBOX: {copies}")
    finally:
        stop.set()
        stack.stop()
        if args.keep:
            print(f"Kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
