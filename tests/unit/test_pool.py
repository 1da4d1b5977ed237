"""The IMAP session pool, against fake connections: bounds, waiting, reaping, recovery, SELECTs."""

from __future__ import annotations

import imaplib
import socket
import threading
from dataclasses import dataclass, field

import pytest
from prometheus_client import REGISTRY

from webmail.mailstore.base import FolderNotFound, MailStoreError
from webmail.mailstore.pool import SessionPool
from webmail.transport.endpoint import Endpoint
from webmail.transport.imap import Cause, ConnectionProblem


class FakeImaplib:
    def __init__(self) -> None:
        self.untagged_responses: dict[str, list] = {}


class FakeClient:
    """Just enough of IMAPClient for the pool, recording what the pool asks of it."""

    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self._imap = FakeImaplib()
        self._sock, self.peer = socket.socketpair()
        self.selects: list[tuple[str, bool]] = []
        self.noops = 0
        self.noop_responses: list[tuple] = []
        self.fail_next: BaseException | None = None
        self.logged_out = self.shut_down = False

    def capabilities(self) -> tuple[bytes, ...]:
        return (b"IMAP4REV1", b"SORT", b"LIST-STATUS")

    def socket(self) -> socket.socket:
        return self._sock

    def _maybe_fail(self) -> None:
        if self.fail_next is not None:
            exc, self.fail_next = self.fail_next, None
            raise exc

    def select_folder(self, folder: str, readonly: bool = False) -> dict:
        self._maybe_fail()
        if folder not in self.server.folders:
            raise imaplib.IMAP4.error("select failed: [NONEXISTENT] Mailbox doesn't exist")
        self.selects.append((folder, readonly))
        if folder in self.server.read_only and not readonly:
            raise imaplib.IMAP4.readonly(f"{folder} is not writable")
        self._imap.untagged_responses["EXISTS"] = [b"%d" % self.server.folders[folder]]
        return {b"EXISTS": self.server.folders[folder], b"UIDVALIDITY": 7, b"UIDNEXT": 100}

    def folder_exists(self, folder: str) -> bool:
        return folder in self.server.folders

    def noop(self) -> tuple[bytes, list[tuple]]:
        self._maybe_fail()
        self.noops += 1
        responses, self.noop_responses = self.noop_responses, []
        return b"NOOP completed", responses

    def logout(self) -> None:
        self.logged_out = True
        self._close()

    def shutdown(self) -> None:
        self.shut_down = True
        self._close()

    def _close(self) -> None:
        if not self._sock._closed:
            self._sock.close()
            self.peer.close()
            with self.server.lock:
                self.server.open -= 1


@dataclass
class FakeServer:
    folders: dict[str, int] = field(default_factory=lambda: {"INBOX": 10, "Archive": 5})
    clients: list[FakeClient] = field(default_factory=list)
    open: int = 0
    most_open: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    refuse: ConnectionProblem | None = None
    read_only: set[str] = field(default_factory=set)

    def connect(self, endpoint: Endpoint) -> FakeClient:
        assert endpoint.password == "secret"
        if self.refuse is not None:
            raise self.refuse
        client = FakeClient(self)
        with self.lock:
            self.clients.append(client)
            self.open += 1
            self.most_open = max(self.most_open, self.open)
        return client


@dataclass
class FakeAccount:
    pk: int = 1
    protocol: str = "imap"
    incoming_host: str = "mail.example.test"
    incoming_port: int = 993
    incoming_security: str = "tls"
    login: str = "alice"
    password_encrypted: str = "token-1"
    ca_file: str = ""
    accept_untrusted: bool = False

    def incoming_endpoint(self) -> Endpoint:
        return Endpoint(
            self.incoming_host, self.incoming_port, self.incoming_security, self.login, "secret"
        )


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def pool(server: FakeServer, clock: Clock) -> SessionPool:
    pool = SessionPool(
        connect=server.connect, size=2, wait=5, idle_timeout=300, clock=clock, reaper=False
    )
    yield pool
    pool.close_all()


def test_sequential_borrows_share_one_connection(pool, server):
    account = FakeAccount()
    for _ in range(5):
        with pool.session(account) as session:
            assert session.has("sort")
    assert len(server.clients) == 1
    assert pool.stats(account) == (1, 1)


def test_accounts_do_not_share_connections(pool, server):
    with pool.session(FakeAccount(pk=1)) as one, pool.session(FakeAccount(pk=2)) as two:
        assert one.client is not two.client
    assert len(server.clients) == 2


def test_bound_respected_under_threads(pool, server):
    account = FakeAccount()
    inside = 0
    most_inside = 0
    lock = threading.Lock()
    errors: list[BaseException] = []

    def work() -> None:
        nonlocal inside, most_inside
        try:
            for _ in range(40):
                with pool.session(account) as session:
                    with lock:
                        inside += 1
                        most_inside = max(most_inside, inside)
                    session.select("INBOX")
                    with lock:
                        inside -= 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert server.most_open <= 2
    assert most_inside <= 2
    assert len(server.clients) <= 2


def test_waiter_gets_the_connection_given_back(server, clock):
    pool = SessionPool(connect=server.connect, size=1, wait=30, clock=clock, reaper=False)
    account = FakeAccount()
    borrowed = threading.Event()
    got: list[FakeClient] = []

    def second_borrower() -> None:
        borrowed.wait()
        with pool.session(account) as session:
            got.append(session.client)

    thread = threading.Thread(target=second_borrower)
    thread.start()
    with pool.session(account) as session:
        first = session.client
        borrowed.set()
        # The second borrower cannot get a connection while this one is out.
        thread.join(timeout=0.2)
        assert thread.is_alive()
        assert got == []
    thread.join()
    assert got == [first]
    assert len(server.clients) == 1


def test_waiter_gives_up_with_a_clear_error(server, clock):
    pool = SessionPool(connect=server.connect, size=1, wait=0, clock=clock, reaper=False)
    account = FakeAccount()
    with pool.session(account), pytest.raises(MailStoreError, match="busy"), pool.session(account):
        pass
    assert len(server.clients) == 1


def test_idle_connections_are_reaped(pool, server, clock):
    account = FakeAccount()
    with pool.session(account):
        pass
    clock.now += 299
    pool.reap()
    assert pool.stats(account) == (1, 1)
    clock.now += 2
    pool.reap()
    assert pool.stats(account) == (0, 0)
    assert server.clients[0].logged_out


def test_idle_connections_are_reaped_lazily_on_borrow(pool, server, clock):
    account = FakeAccount()
    with pool.session(account):
        pass
    clock.now += 301
    with pool.session(account) as session:
        assert session.client is server.clients[1]
    assert server.clients[0].logged_out
    assert pool.stats(account) == (1, 1)


def test_broken_connection_is_replaced_and_the_operation_retried_once(pool, server):
    account = FakeAccount()
    with pool.session(account) as session:
        session.select("INBOX")
    first = server.clients[0]
    first.fail_next = imaplib.IMAP4.abort("socket error: EOF")

    calls = []

    def operation(session):
        calls.append(session.client)
        return session.select("INBOX").exists

    assert pool.run(account, operation) == 10
    assert calls == [first, server.clients[1]]
    assert first.shut_down and not first.logged_out
    assert pool.stats(account) == (1, 1)


def test_an_operation_broken_twice_fails_with_a_clear_error(pool, server):
    account = FakeAccount()

    def operation(session):
        raise ConnectionResetError("reset")

    with pytest.raises(MailStoreError, match="connection to the mail server was lost"):
        pool.run(account, operation)
    assert len(server.clients) == 2
    assert pool.stats(account) == (0, 0)


def test_a_non_idempotent_operation_is_not_retried(pool, server):
    account = FakeAccount()
    calls = []

    def operation(session):
        calls.append(session)
        raise TimeoutError("timed out")

    with pytest.raises(MailStoreError, match="did not answer in time"):
        pool.run(account, operation, idempotent=False)
    assert len(calls) == 1


def test_a_no_reply_keeps_the_connection(pool, server):
    account = FakeAccount()
    with pytest.raises(imaplib.IMAP4.error), pool.session(account):
        raise imaplib.IMAP4.error("STORE failed: [CANNOT] no")
    with pool.session(account) as session:
        assert session.client is server.clients[0]


def test_a_broken_connection_takes_its_idle_siblings_with_it(pool, server):
    account = FakeAccount()
    with pool.session(account), pool.session(account):
        pass
    assert pool.stats(account) == (2, 2)
    with pytest.raises(OSError), pool.session(account):
        raise OSError("broken pipe")
    assert pool.stats(account) == (0, 0)


def test_a_connection_the_server_closed_is_replaced_without_a_round_trip(pool, server):
    account = FakeAccount()
    with pool.session(account):
        pass
    first = server.clients[0]
    first.peer.sendall(b"* BYE Server shutting down.\r\n")
    with pool.session(account) as session:
        assert session.client is server.clients[1]
    assert first.noops == 0
    assert first.shut_down


def test_connection_problems_become_mailstore_errors(pool, server):
    server.refuse = ConnectionProblem(Cause.LOGIN, "The server refused the login or password.")
    account = FakeAccount()
    with pytest.raises(MailStoreError, match="refused the login"), pool.session(account):
        pass
    assert pool.stats(account) == (0, 0)
    server.refuse = None
    with pool.session(account):
        pass


def test_changed_settings_reconnect(pool, server):
    account = FakeAccount()
    with pool.session(account):
        pass
    account.password_encrypted = "token-2"
    with pool.session(account) as session:
        assert session.client is server.clients[1]
    assert server.clients[0].logged_out
    assert pool.stats(account) == (1, 1)


def test_discard_closes_idle_now_and_borrowed_on_return(pool, server):
    account = FakeAccount()
    with pool.session(account), pool.session(account) as borrowed:
        pass
    with pool.session(account) as borrowed:
        pool.discard(account)
        idle = next(c for c in server.clients if c is not borrowed.client)
        assert idle.logged_out
        assert not borrowed.client.logged_out
    assert borrowed.client.logged_out
    assert pool.stats(account) == (0, 0)


def test_no_redundant_select(pool, server):
    account = FakeAccount()
    with pool.session(account) as session:
        assert session.select("INBOX").exists == 10
        assert session.select("INBOX").exists == 10
    with pool.session(account) as session:
        session.select("INBOX")
        client = session.client
    assert client.selects == [("INBOX", True)]
    assert client.noops == 2


def test_a_read_write_selection_serves_read_only_requests(pool):
    with pool.session(FakeAccount()) as session:
        session.select("INBOX", readonly=True)
        session.select("INBOX", readonly=False)
        session.select("INBOX", readonly=True)
        session.select("Archive")
        session.select("INBOX")
        assert session.client.selects == [
            ("INBOX", True),
            ("INBOX", False),
            ("Archive", True),
            ("INBOX", True),
        ]


def test_noop_keeps_the_message_count_current(pool):
    with pool.session(FakeAccount()) as session:
        assert session.select("INBOX").uidnext == 100
        session.client.noop_responses = [(3, b"EXPUNGE"), (12, b"EXISTS"), (4, b"EXPUNGE")]
        state = session.select("INBOX")
        assert state.exists == 11
        assert state.uidnext is None
        assert state.uidvalidity == 7
        assert session.client.selects == [("INBOX", True)]


def test_responses_to_earlier_commands_count_too(pool):
    with pool.session(FakeAccount()) as session:
        session.select("INBOX")
        untagged = session.client._imap.untagged_responses
        untagged["EXPUNGE"] = [b"2", b"2"]
        assert session.select("INBOX").exists == 8
        untagged["EXISTS"] = [b"9", b"10"]
        assert session.select("INBOX").exists == 10
        assert session.client.selects == [("INBOX", True)]
        # New and expunged messages together: their order is lost, so SELECT again.
        untagged["EXISTS"], untagged["EXPUNGE"] = [b"11"], [b"1"]
        assert session.select("INBOX").exists == 10
        assert session.client.selects == [("INBOX", True), ("INBOX", True)]


def test_missing_folder(pool):
    with pool.session(FakeAccount()) as session:
        session.select("INBOX")
        with pytest.raises(FolderNotFound):
            session.select("Nowhere")
        # A failed SELECT leaves no folder selected: the next one is sent.
        session.select("INBOX")
        assert session.client.selects == [("INBOX", True), ("INBOX", True)]


def test_commands_by_uid_can_skip_the_noop(pool):
    with pool.session(FakeAccount()) as session:
        session.select("INBOX")
        session.client._imap.untagged_responses["FETCH"] = [b"3 (FLAGS (\\Seen))"]
        assert session.select("INBOX", refresh=False).exists == 10
        assert session.client.noops == 0
        assert "FETCH" not in session.client._imap.untagged_responses
        # A folder not selected yet is selected all the same.
        assert session.select("Archive", refresh=False).exists == 5


def test_a_folder_the_server_lets_us_only_read_is_examined(pool, server):
    server.read_only.add("Archive")
    with pool.session(FakeAccount()) as session:
        assert session.select("Archive", readonly=False).exists == 5
        assert session.select("Archive", readonly=False).exists == 5
        assert session.client.selects == [("Archive", False), ("Archive", True)]


def test_the_pool_counts_connections_waits_and_errors_per_server(server, clock):
    account = FakeAccount(pk=99, incoming_host="metrics.example.test")

    def sample(name: str, **labels: str) -> float:
        labels = {"server": "metrics.example.test:993", **labels}
        return REGISTRY.get_sample_value(name, labels) or 0.0

    pool = SessionPool(connect=server.connect, size=1, wait=0, clock=clock, reaper=False)
    with pool.session(account):
        assert sample("facteur_imap_pool_connections") == 1
        with pytest.raises(MailStoreError, match="busy"), pool.session(account):
            pass
    assert sample("facteur_imap_pool_waits_total") == 1
    assert sample("facteur_imap_pool_errors_total", kind="busy") == 1
    assert sample("facteur_imap_pool_connections") == 1  # idle, kept

    with pytest.raises(imaplib.IMAP4.abort), pool.session(account):
        raise imaplib.IMAP4.abort("socket error: EOF")
    assert sample("facteur_imap_pool_errors_total", kind="broken") == 1
    assert sample("facteur_imap_pool_connections") == 0

    server.refuse = ConnectionProblem(Cause.LOGIN, "The server refused the login or password.")
    with pytest.raises(MailStoreError), pool.session(account):
        pass
    assert sample("facteur_imap_pool_errors_total", kind="connect") == 1
    assert sample("facteur_imap_pool_connections") == 0
