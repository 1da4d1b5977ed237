"""The per-process pool of signed-in IMAP sessions, keyed by mail account.

A new IMAP session costs a LOGIN (25-30 ms) and, on a big folder, a SELECT
that costs more than the page itself; so sessions are kept alive with their
folder selected, a few per account:

    with pool.session(account) as session:
        state = session.select("INBOX")
        session.client.fetch(...)

or, to have an idempotent operation retried once on a fresh connection when
the one it got turns out to be broken (server restart, timeout, BYE):

    pool.run(account, lambda session: ...)

At most ``settings.IMAP_POOL_SIZE`` connections per account are open in one
process (Dovecot allows 10 per user and client address, and an office puts
everyone behind one address); further borrowers wait up to
``settings.IMAP_POOL_WAIT`` seconds. Idle connections are logged out after
``settings.IMAP_POOL_IDLE_TIMEOUT`` seconds. Credentials are decrypted only to
open a connection.
"""

from __future__ import annotations

import hashlib
import imaplib
import logging
import os
import select
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.conf import settings
from django.utils.translation import gettext as _
from imapclient import IMAPClient

from webmail.mailstore.base import FolderNotFound, MailStoreError
from webmail.metrics import IMAP_CONNECTIONS, IMAP_ERRORS, IMAP_WAITS, server_label
from webmail.transport.endpoint import Endpoint
from webmail.transport.imap import ConnectionProblem, close_quietly, open_imap, server_reply

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Errors after which a connection's protocol state is lost: it must be replaced.
BROKEN = (OSError, EOFError, imaplib.IMAP4.abort)

#: The account fields that, when changed, make existing connections obsolete.
_CONNECTION_FIELDS = (
    "protocol",
    "incoming_host",
    "incoming_port",
    "incoming_security",
    "login",
    "password_encrypted",
    "ca_file",
    "accept_untrusted",
)


@dataclass(frozen=True)
class SelectState:
    """What the session knows of its selected folder, kept current by NOOP."""

    uidvalidity: int
    exists: int
    uidnext: int | None  # None once new messages arrived on the live session
    highestmodseq: int | None  # only from servers with CONDSTORE


class ImapSession:
    """One signed-in connection and the folder it has selected.

    Select folders only through ``select()`` so that the pool knows what is
    selected; every other command goes to ``client`` directly.
    """

    def __init__(self, client: IMAPClient, entry: _Entry) -> None:
        self.client = client
        self.capabilities: frozenset[str] = frozenset(
            c.decode("ascii", "replace").upper() for c in client.capabilities()
        )
        self.folder: str | None = None
        self.readonly = True
        self.state: SelectState | None = None
        self._read_only_folders: set[str] = set()  # those the server lets us only read
        self.last_used = 0.0
        self.server = ""  # host:port, the label of its metrics
        self._entry = entry
        self._generation = entry.generation

    def has(self, capability: str) -> bool:
        return capability.upper() in self.capabilities

    def select(self, folder: str, readonly: bool = True, *, refresh: bool = True) -> SelectState:
        """Select ``folder`` unless it already is, in a mode that allows what is asked.

        A read-write selection serves read-only requests too, and a read-only one
        serves every request on a folder the server lets us only read (it refuses
        the changes itself). On a folder that is already selected a NOOP (one short
        round trip) brings the message count up to date; a SELECT would cost far
        more on a big folder. Commands by UID do not need the count: they pass
        ``refresh=False`` and save the round trip.
        """
        as_writable = not self.readonly or folder in self._read_only_folders
        if self.folder == folder and self.state is not None and (readonly or as_writable):
            if not refresh:
                # Flag changes announced earlier would be mixed into the next FETCH's
                # results; what they said is fetched again anyway.
                self._untagged().pop("FETCH", None)
                return self.state
            state = self._sync()
            if state is not None:
                return state
        return self._select(folder, readonly)

    def is_dead(self) -> bool:
        """Whether the server has spoken or hung up while nobody was asking.

        An idle IMAP connection receives nothing, so a readable socket means a BYE
        or a closed connection (a server restart, an idle timeout): found without a
        round trip.
        """
        try:
            sock = self.client.socket()
            if isinstance(sock, ssl.SSLSocket) and sock.pending():
                return True
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(0))
        except (OSError, ValueError):
            return True

    def _untagged(self) -> dict[str, list[Any]]:
        # imaplib files every untagged response here; imapclient reads the same dict.
        return self.client._imap.untagged_responses

    def _select(self, folder: str, readonly: bool) -> SelectState:
        self.folder = self.state = None
        try:
            response = self.client.select_folder(folder, readonly=readonly)
        except imaplib.IMAP4.readonly:
            # Shared folders may be readable only: show them all the same, and let the
            # server refuse what would change them.
            self._read_only_folders.add(folder)
            return self._select(folder, readonly=True)
        except imaplib.IMAP4.abort:
            raise
        except imaplib.IMAP4.error as exc:
            raise self._select_failed(folder, exc) from None
        self._untagged().clear()
        self.folder, self.readonly = folder, readonly
        self.state = SelectState(
            uidvalidity=response.get(b"UIDVALIDITY", 0),
            exists=response.get(b"EXISTS", 0),
            uidnext=response.get(b"UIDNEXT"),
            highestmodseq=response.get(b"HIGHESTMODSEQ"),
        )
        return self.state

    def _select_failed(self, folder: str, exc: imaplib.IMAP4.error) -> MailStoreError:
        reply = server_reply(exc)
        if "[NONEXISTENT]" in reply.upper() or not self.client.folder_exists(folder):
            return FolderNotFound(_("The folder %(name)s does not exist.") % {"name": folder})
        return MailStoreError(
            _("The server could not open the folder %(name)s: %(reply)s")
            % {"name": folder, "reply": reply}
        )

    def _sync(self) -> SelectState | None:
        """Bring the message count up to date with a NOOP; None when it cannot be known."""
        assert self.state is not None
        untagged = self._untagged()
        if "BYE" in untagged:
            raise imaplib.IMAP4.abort(server_reply(untagged["BYE"][-1]))
        exists, uidnext = self.state.exists, self.state.uidnext
        # Responses that came with earlier commands: their relative order is lost,
        # so when new and expunged messages are both pending the count is unknown.
        pending_exists, pending_expunges = untagged.get("EXISTS"), untagged.get("EXPUNGE")
        if pending_exists and pending_expunges:
            return None
        if pending_exists:
            exists, uidnext = int(pending_exists[-1]), None
        exists -= len(pending_expunges or ())
        untagged.clear()
        __, responses = self.client.noop()
        for response in responses:
            if len(response) < 2:
                continue
            if response[1] == b"EXISTS":
                exists, uidnext = response[0], None
            elif response[1] == b"EXPUNGE":
                exists -= 1
        untagged.clear()
        self.state = SelectState(self.state.uidvalidity, exists, uidnext, self.state.highestmodseq)
        return self.state


@dataclass(eq=False)
class _Entry:
    """The connections of one account in this process."""

    fingerprint: str
    live: int = 0  # open connections: idle, borrowed, or being opened
    idle: list[ImapSession] = field(default_factory=list)  # most recently used last
    generation: int = 0  # bumped to retire every connection opened before

    def retire(self) -> list[ImapSession]:
        """Make every connection obsolete; return the idle ones, to be closed."""
        self.generation += 1
        idle, self.idle = self.idle, []
        self.live -= len(idle)
        return idle


def fingerprint(account: Any) -> str:
    """A digest of what a connection depends on; no secret is decrypted for it."""
    material = "\x00".join(str(getattr(account, name, "")) for name in _CONNECTION_FIELDS)
    return hashlib.sha256(material.encode()).hexdigest()


def _account_key(account: Any) -> int:
    return account if isinstance(account, int) else account.pk


class SessionPool:
    """Sessions of every account in this process; thread-safe."""

    def __init__(
        self,
        *,
        connect: Callable[[Endpoint], IMAPClient] = open_imap,
        size: int | None = None,
        wait: float | None = None,
        idle_timeout: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        reaper: bool = True,
    ) -> None:
        self._connect = connect
        self._size, self._wait, self._idle_timeout = size, wait, idle_timeout
        self._clock = clock
        self._reaper_wanted = reaper
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._entries: dict[int, _Entry] = {}
        self._reaper: threading.Thread | None = None

    @property
    def size(self) -> int:
        return self._size if self._size is not None else settings.IMAP_POOL_SIZE

    @property
    def wait(self) -> float:
        return self._wait if self._wait is not None else settings.IMAP_POOL_WAIT

    @property
    def idle_timeout(self) -> float:
        if self._idle_timeout is not None:
            return self._idle_timeout
        return settings.IMAP_POOL_IDLE_TIMEOUT

    @contextmanager
    def session(self, account: Any) -> Iterator[ImapSession]:
        """Borrow a signed-in session of ``account`` for the duration of the block."""
        session = self._checkout(account)
        try:
            yield session
        except BaseException as exc:
            self._checkin(session, broken=_is_broken(exc))
            raise
        self._checkin(session, broken=False)

    def run(
        self, account: Any, operation: Callable[[ImapSession], T], *, idempotent: bool = True
    ) -> T:
        """Run ``operation`` on a borrowed session; once more on a new one if it broke."""
        for attempt in (1, 2):
            try:
                with self.session(account) as session:
                    return operation(session)
            except BROKEN as exc:
                if attempt == 2 or not idempotent:
                    raise MailStoreError(_lost_connection_message(exc)) from exc
                logger.info(
                    "IMAP connection of account %s broke (%s); retrying on a new one",
                    _account_key(account),
                    type(exc).__name__,
                )

    def discard(self, account: Any) -> None:
        """Close the account's connections (now, or when their borrower is done with them)."""
        with self._lock:
            entry = self._entries.get(_account_key(account))
            stale = entry.retire() if entry is not None else []
            self._changed.notify_all()
        self._close(stale, logout=True)

    def close_all(self) -> None:
        with self._lock:
            stale = [session for entry in self._entries.values() for session in entry.retire()]
            self._changed.notify_all()
        self._close(stale, logout=True)

    def reap(self) -> None:
        """Log out the connections that have been idle for too long."""
        with self._lock:
            stale = self._reap_locked()
        self._close(stale, logout=True)

    def stats(self, account: Any) -> tuple[int, int]:
        """(open connections, idle connections) of an account: for tests and monitoring."""
        with self._lock:
            entry = self._entries.get(_account_key(account))
            return (entry.live, len(entry.idle)) if entry is not None else (0, 0)

    def _reap_locked(self) -> list[ImapSession]:
        deadline = self._clock() - self.idle_timeout
        stale: list[ImapSession] = []
        for key, entry in list(self._entries.items()):
            expired = [s for s in entry.idle if s.last_used <= deadline]
            if expired:
                entry.idle = [s for s in entry.idle if s.last_used > deadline]
                entry.live -= len(expired)
                stale.extend(expired)
            if entry.live == 0:
                # Waiters look their entry up again when they wake: dropping it is safe.
                del self._entries[key]
        if stale:
            self._changed.notify_all()
        return stale

    def _checkout(self, account: Any) -> ImapSession:
        key, print_ = _account_key(account), fingerprint(account)
        stale: list[ImapSession] = []
        session: ImapSession | None = None
        deadline: float | None = None
        with self._lock:
            stale.extend(self._reap_locked())
            while True:
                # Looked up on every pass: the entry may have been reaped while waiting.
                entry = self._entries.get(key)
                if entry is None:
                    entry = self._entries[key] = _Entry(print_)
                elif entry.fingerprint != print_:
                    stale.extend(entry.retire())
                    entry.fingerprint = print_
                if entry.idle:
                    session = entry.idle.pop()
                    break
                if entry.live < self.size:
                    entry.live += 1
                    break
                now = self._clock()
                if deadline is None:
                    deadline = now + self.wait
                    IMAP_WAITS.labels(server_label(account)).inc()
                if now >= deadline:
                    IMAP_ERRORS.labels(server_label(account), "busy").inc()
                    raise MailStoreError(
                        _(
                            "All connections to the mail server for this account are busy. "
                            "Please try again in a moment."
                        )
                    )
                self._changed.wait(deadline - now)
        self._close(stale, logout=True)
        if session is not None and session.is_dead():
            logger.info("IMAP connection of account %s was closed by the server", key)
            self._close([session], logout=False)
            session = None
        if session is None:
            session = self._open(account, entry)
        return session

    def _open(self, account: Any, entry: _Entry) -> ImapSession:
        """Open a connection for a slot already counted in ``entry.live``."""
        client = None
        try:
            client = self._connect(account.incoming_endpoint())
            session = ImapSession(client, entry)
        except BaseException as exc:
            IMAP_ERRORS.labels(server_label(account), "connect").inc()
            if client is not None:
                close_quietly(client, logout=False)
            with self._lock:
                entry.live -= 1
                self._changed.notify_all()
            if isinstance(exc, ConnectionProblem):
                raise MailStoreError(exc.message) from exc
            if isinstance(exc, BROKEN):
                raise MailStoreError(_lost_connection_message(exc)) from exc
            raise
        session.server = server_label(account)
        IMAP_CONNECTIONS.labels(session.server).inc()
        logger.info("IMAP connection opened for account %s", _account_key(account))
        self._start_reaper()
        return session

    def _checkin(self, session: ImapSession, *, broken: bool) -> None:
        entry = session._entry
        stale: list[ImapSession] = []
        with self._lock:
            if broken or session._generation != entry.generation:
                entry.live -= 1
                if broken:
                    IMAP_ERRORS.labels(session.server, "broken").inc()
                    # What broke this one (most often a server restart) broke the idle
                    # ones too: drop them now rather than fail the retry on one of them.
                    stale, entry.idle = entry.idle, []
                    entry.live -= len(stale)
                stale.append(session)
            else:
                session.last_used = self._clock()
                entry.idle.append(session)
            self._changed.notify_all()
        self._close(stale, logout=not broken)

    @staticmethod
    def _close(sessions: list[ImapSession], *, logout: bool) -> None:
        for session in sessions:
            IMAP_CONNECTIONS.labels(session.server).dec()
            close_quietly(session.client, logout=logout)

    def _start_reaper(self) -> None:
        if not self._reaper_wanted or self.idle_timeout <= 0:
            return
        with self._lock:
            if self._reaper is not None and self._reaper.is_alive():
                return
            interval = max(1.0, min(self.idle_timeout / 2, 60.0))
            self._reaper = threading.Thread(
                target=self._reap_forever, args=(interval,), name="imap-pool-reaper", daemon=True
            )
            self._reaper.start()

    def _reap_forever(self, interval: float) -> None:
        while True:
            time.sleep(interval)
            try:
                self.reap()
            except Exception:
                logger.exception("Reaping idle IMAP connections failed")


def _is_broken(exc: BaseException) -> bool:
    """Whether the connection may have lost track of the protocol and must go."""
    if isinstance(exc, MailStoreError):
        return False
    # A NO or BAD reply leaves the connection sound; anything else (socket error,
    # BYE, an exception in the middle of reading a reply) may not.
    return not (isinstance(exc, imaplib.IMAP4.error) and not isinstance(exc, imaplib.IMAP4.abort))


def _lost_connection_message(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError):
        return _("The mail server did not answer in time. Please try again.")
    return _("The connection to the mail server was lost. Please try again.")


#: The pool of this process.
pool = SessionPool()

# A forked child (Celery prefork, gunicorn --preload) must not share its parent's
# sockets, lock or reaper thread: it starts with an empty pool.
os.register_at_fork(after_in_child=pool._reset)
