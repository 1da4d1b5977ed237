"""ImapStore and the session pool against the suite's real Dovecot."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from imapclient import IMAPClient

from accounts.models import MailAccount, Security
from tests.support.accounts import make_account
from webmail import mailstore
from webmail.mailstore.base import FolderNotFound, MessageNotFound
from webmail.mailstore.imap import ImapStore
from webmail.mailstore.pool import ImapSession, SessionPool
from webmail.transport.endpoint import Endpoint
from webmail.transport.imap import close_quietly, open_imap

pytestmark = pytest.mark.integration


class CountingConnector:
    """open_imap, counting the LOGINs and the connections open at once."""

    def __init__(self) -> None:
        self.logins = 0
        self.open = 0
        self.most_open = 0
        self.lock = threading.Lock()

    def __call__(self, endpoint: Endpoint) -> IMAPClient:
        client = open_imap(endpoint)
        with self.lock:
            self.logins += 1
            self.open += 1
            self.most_open = max(self.most_open, self.open)
        closed = False

        def counted(close):
            def close_and_count(*args):
                nonlocal closed
                with self.lock:
                    if not closed:
                        closed = True
                        self.open -= 1
                return close(*args)

            return close_and_count

        client.logout = counted(client.logout)
        client.shutdown = counted(client.shutdown)
        return client


@pytest.fixture
def connector() -> CountingConnector:
    return CountingConnector()


@pytest.fixture
def sessions(connector: CountingConnector) -> Iterator[SessionPool]:
    pool = SessionPool(connect=connector, size=2, wait=30, idle_timeout=300, reaper=False)
    yield pool
    pool.close_all()


def _account(mail_server, mail_user, security: str = Security.STARTTLS) -> MailAccount:
    person = get_user_model().objects.create_user(username=mail_user.address)
    return make_account(person, mail_server, mail_user, security=security)


@pytest.fixture
def account(db, mail_server, mail_user) -> MailAccount:
    return _account(mail_server, mail_user)


@pytest.fixture
def store(account, sessions) -> ImapStore:
    return ImapStore(account, sessions=sessions)


@pytest.fixture
def imap(account) -> Iterator[IMAPClient]:
    """A separate connection, to arrange the mailbox and to check what the store did."""
    client = open_imap(account.incoming_endpoint())
    yield client
    close_quietly(client)


def _message(
    number: int,
    *,
    subject: str | None = None,
    sender: str = "Bob Martin <bob@example.test>",
    body: str = "Hello.",
) -> bytes:
    date = datetime(2024, 3, 1, 9, 0, tzinfo=UTC) + timedelta(minutes=number)
    return (
        f"From: {sender}\r\n"
        f"To: Alice <alice@example.test>\r\n"
        f"Subject: {subject if subject is not None else f'Message {number:03d}'}\r\n"
        f"Date: {date.strftime('%a, %d %b %Y %H:%M:%S +0000')}\r\n"
        f"Message-ID: <{number}@example.test>\r\n"
        f"MIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n"
        f"\r\n"
        f"{body}\r\n"
    ).encode()


def _append(imap: IMAPClient, messages: list[bytes], folder: str = "INBOX") -> None:
    imap.multiappend(folder, messages)


def test_for_account_gives_an_imap_store(account):
    assert isinstance(mailstore.for_account(account), ImapStore)


def test_folders_in_special_use_order_with_non_ascii_names(store, imap):
    for name in ("Café/Réunions", "日本語", "Projets", "Archive/2023"):
        imap.create_folder(name)

    folders = store.folders()

    assert [f.name for f in folders] == [
        "INBOX",
        "Drafts",
        "Sent",
        "Archive",
        "Archive/2023",
        "Junk",
        "Trash",
        "Café",
        "Café/Réunions",
        "Projets",
        "日本語",
    ]
    by_name = {f.name: f for f in folders}
    assert [f.special_use for f in folders[:7]] == [
        "\\Inbox",
        "\\Drafts",
        "\\Sent",
        "\\Archive",
        None,
        "\\Junk",
        "\\Trash",
    ]
    assert by_name["Café/Réunions"].leaf == "Réunions"
    assert by_name["Café/Réunions"].depth == 1
    # Dovecot lists the parent it made for "Café/Réunions" but it holds no mail.
    assert not by_name["Café"].selectable


def test_unread_counts_are_cached_and_follow_mark_seen(store, imap):
    _append(imap, [_message(n) for n in range(3)])
    imap.select_folder("INBOX")
    imap.add_flags([1], [b"\\Seen"])

    inbox = store.folders()[0]
    assert (inbox.unread, inbox.total) == (2, 3)

    _append(imap, [_message(3)])
    # Counts are kept for a while rather than asked again on every page.
    assert store.folders()[0].total == 3

    store.mark_seen("INBOX", 2)
    inbox = store.folders()[0]
    assert (inbox.unread, inbox.total) == (2, 4)


def test_pages_are_newest_first_by_arrival(store, imap):
    _append(imap, [_message(n) for n in range(1, 121)])

    first = store.page("INBOX", 1, per_page=50)
    assert first.total == 120
    assert first.num_pages == 3
    assert [m.subject for m in first.items] == [f"Message {n:03d}" for n in range(120, 70, -1)]
    assert first.folder.name == "INBOX"
    assert first.folder.special_use == "\\Inbox"

    third = store.page("INBOX", 3, per_page=50)
    assert [m.subject for m in third.items] == [f"Message {n:03d}" for n in range(20, 0, -1)]
    assert (third.first_index, third.last_index) == (101, 120)

    oldest_first = store.page("INBOX", 1, per_page=50, reverse=False)
    assert [m.uid for m in oldest_first.items] == list(range(1, 51))

    # A page past the end shows the last one.
    assert store.page("INBOX", 9, per_page=50).number == 3


def test_summaries(store, imap):
    _append(imap, [_message(1, subject="=?utf-8?q?R=C3=A9union_de_lundi?=")])
    [summary] = store.page("INBOX", 1, per_page=50).items
    assert summary.subject == "Réunion de lundi"
    assert (summary.sender.name, summary.sender.email) == ("Bob Martin", "bob@example.test")
    assert [r.email for r in summary.recipients] == ["alice@example.test"]
    assert summary.date == datetime(2024, 3, 1, 9, 1, tzinfo=UTC)
    assert summary.date.tzinfo is not None
    assert summary.size > 0
    assert not (summary.seen or summary.flagged or summary.answered or summary.has_attachments)


def _multipart(subtype: str, *parts: str) -> str:
    body = "".join(f"--b\r\n{part}\r\n" for part in parts)
    return f'Content-Type: multipart/{subtype}; boundary="b"\r\n\r\n{body}--b--\r\n'


def test_attachments_are_found_in_the_structure(store, imap):
    text = "Content-Type: text/plain\r\n\r\nSee attached."
    html = "Content-Type: text/html\r\n\r\n<img src=cid:logo>"
    pdf = (
        "Content-Type: application/pdf\r\nContent-Disposition: attachment; filename=a.pdf\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n"
    )
    logo = (
        "Content-Type: image/png\r\nContent-ID: <logo>\r\nContent-Disposition: inline\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\niVBORw0=\r\n"
    )
    notes = "Content-Type: text/plain\r\nContent-Disposition: attachment; filename=n.txt\r\n\r\nx"
    signature = "Content-Type: application/pgp-signature\r\n\r\nsig"
    head = "From: a@example.test\r\nSubject: {}\r\nMIME-Version: 1.0\r\n"
    messages = {
        "plain": "Content-Type: text/plain\r\n\r\nhi\r\n",
        "pdf": _multipart("mixed", text, pdf),
        "inline image": _multipart("related", html, logo),
        "text attachment": _multipart("mixed", text, notes),
        "signed": _multipart("signed", text, signature),
    }
    _append(imap, [(head.format(name) + body).encode() for name, body in messages.items()])

    found = {m.subject: m.has_attachments for m in store.page("INBOX", 1, per_page=50).items}

    assert found == {
        "plain": False,
        "pdf": True,
        "inline image": False,
        "text attachment": True,
        "signed": False,
    }


def _sort_fixture(imap: IMAPClient) -> dict[str, list[int]]:
    """Three messages arriving in an order that no sort key follows; the expected UIDs."""
    _append(
        imap,
        [
            _message(3, subject="bananas", sender="Chloé <m@example.test>", body="x" * 500),
            _message(1, subject="Re: Cherries", sender="Anna <zed@example.test>", body="x"),
            _message(2, subject="Apples", sender="Bruno <abe@example.test>", body="x" * 5000),
        ],
    )
    return {"subject": [3, 1, 2], "from": [2, 3, 1], "size": [2, 1, 3], "date": [2, 3, 1]}


@pytest.mark.parametrize("sort", ["subject", "from", "size", "date"])
def test_sorted_pages(store, imap, sort):
    expected = _sort_fixture(imap)[sort]
    ascending = store.page("INBOX", 1, per_page=50, sort=sort, reverse=False)
    assert [m.uid for m in ascending.items] == expected
    descending = store.page("INBOX", 1, per_page=50, sort=sort, reverse=True)
    assert [m.uid for m in descending.items] == expected[::-1]
    assert descending.total == 3


@pytest.mark.parametrize("sort", ["subject", "from", "size", "date"])
def test_sorted_pages_without_server_side_sort(store, imap, sort, monkeypatch):
    has = ImapSession.has
    monkeypatch.setattr(ImapSession, "has", lambda self, cap: cap != "SORT" and has(self, cap))
    expected = _sort_fixture(imap)[sort]
    ascending = store.page("INBOX", 1, per_page=50, sort=sort, reverse=False)
    assert [m.uid for m in ascending.items] == expected
    descending = store.page("INBOX", 1, per_page=50, sort=sort, reverse=True)
    assert [m.uid for m in descending.items] == expected[::-1]


def test_sorted_pages_follow_new_mail(store, imap):
    _sort_fixture(imap)
    assert len(store.page("INBOX", 1, per_page=2, sort="subject", reverse=False).items) == 2
    _append(imap, [_message(9, subject="Aardvark")])
    first = store.page("INBOX", 1, per_page=2, sort="subject", reverse=False)
    assert [m.subject for m in first.items] == ["Aardvark", "Apples"]
    assert first.total == 4


def test_message_is_exact_and_unread_until_marked(store, imap):
    raw = _message(1, body="Bonjour,\r\n\r\nà demain.")
    _append(imap, [raw])

    message = store.message("INBOX", 1)

    assert message.raw == raw
    assert message.uid == 1
    assert message.uidvalidity == imap.folder_status("INBOX", ["UIDVALIDITY"])[b"UIDVALIDITY"]
    assert "\\Seen" not in message.flags
    imap.select_folder("INBOX", readonly=True)
    assert b"\\Seen" not in imap.get_flags([1])[1]

    store.mark_seen("INBOX", 1)

    assert b"\\Seen" in imap.get_flags([1])[1]
    assert "\\Seen" in store.message("INBOX", 1).flags


def test_missing_message_and_folder(store, imap):
    _append(imap, [_message(1)])
    with pytest.raises(MessageNotFound):
        store.message("INBOX", 99)
    with pytest.raises(FolderNotFound):
        store.page("Nowhere", 1, per_page=50)
    with pytest.raises(FolderNotFound):
        store.message("Nowhere", 1)
    # The connection survives both.
    assert store.message("INBOX", 1).uid == 1


def test_new_mail_shows_on_a_live_session(store, imap):
    _append(imap, [_message(1)])
    assert store.page("INBOX", 1, per_page=50).total == 1
    _append(imap, [_message(2), _message(3)])
    page = store.page("INBOX", 1, per_page=50)
    assert page.total == 3
    assert [m.uid for m in page.items] == [3, 2, 1]
    imap.select_folder("INBOX")
    imap.delete_messages([2])
    imap.expunge()
    assert [m.uid for m in store.page("INBOX", 1, per_page=50).items] == [3, 1]


def test_one_login_serves_many_calls(store, imap, connector):
    _append(imap, [_message(n) for n in range(5)])
    store.folders()
    for number in (1, 2, 1):
        store.page("INBOX", number, per_page=2)
    store.message("INBOX", 1)
    store.mark_seen("INBOX", 1)
    store.page("INBOX", 1, per_page=2, sort="subject")
    assert connector.logins == 1


def _kick(mail_server, mail_user) -> None:
    """Make Dovecot drop the user's connections."""
    config = mail_server.root / "dovecot" / "dovecot.conf"
    subprocess.run(["doveadm", "-c", str(config), "kick", mail_user.address], check=True)


def test_recovers_after_a_server_restart(store, imap, connector, mail_server, mail_user):
    _append(imap, [_message(1)])
    assert store.page("INBOX", 1, per_page=50).total == 1
    # Dovecot lets the sessions of a stopped master run on: close them first, as
    # a restart with shutdown_clients would.
    _kick(mail_server, mail_user)
    mail_server.restart_dovecot()
    assert store.page("INBOX", 1, per_page=50).total == 1
    assert store.message("INBOX", 1).uid == 1
    assert connector.logins == 2


def test_an_operation_on_a_dropped_connection_is_retried(
    store, imap, connector, mail_server, mail_user, monkeypatch
):
    _append(imap, [_message(1)])
    assert store.page("INBOX", 1, per_page=50).total == 1
    _kick(mail_server, mail_user)
    # Without the check on borrowing, the drop is found by the operation itself.
    monkeypatch.setattr(ImapSession, "is_dead", lambda session: False)
    assert [m.uid for m in store.page("INBOX", 1, per_page=50).items] == [1]
    assert connector.logins == 2
    assert connector.open == 1


def test_two_threads_never_use_more_than_two_connections(store, imap, connector):
    _append(imap, [_message(n) for n in range(10)])
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for number in range(20):
                store.page("INBOX", 1 + number % 3, per_page=4)
                store.message("INBOX", 1 + number % 10)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert connector.most_open <= 2
    assert connector.logins <= 2


def test_implicit_tls(db, mail_server, mail_user, sessions):
    account = _account(mail_server, mail_user, security=Security.TLS)
    store = ImapStore(account, sessions=sessions)
    assert store.folders()[0].name == "INBOX"
    assert store.page("INBOX", 1, per_page=50).total == 0


def test_deleting_an_account_closes_its_pooled_sessions(
    mail_server, mail_user, db, django_user_model
):
    from tests.integration.conftest import make_account
    from webmail.mailstore.pool import pool

    person = django_user_model.objects.create_user(username="leaving", password="x-Pass-123!")
    account = make_account(person, mail_server, mail_user)
    ImapStore(account).folders()
    account_id = account.pk
    assert pool.stats(account_id) == (1, 1)
    account.delete()
    assert pool.stats(account_id) == (0, 0)


# Writing: special folders, APPEND, delete, flags ---------------------------------


def without(capability: str, monkeypatch) -> None:
    """Make the store believe the server lacks ``capability``."""
    has = ImapSession.has
    monkeypatch.setattr(ImapSession, "has", lambda self, cap: cap != capability and has(self, cap))


def test_special_folders_by_their_use(store):
    assert store.special_folder("\\Drafts") == "Drafts"
    assert store.special_folder("\\Sent") == "Sent"
    assert store.special_folder("\\Trash") == "Trash"
    assert store.special_folder("\\All") is None


def test_append_gives_the_new_uid_with_the_flags_asked(store, imap):
    _append(imap, [_message(1)], folder="Drafts")

    uid = store.append("Drafts", _message(2), seen=True, draft=True)

    assert uid == 2
    imap.select_folder("Drafts", readonly=True)
    flags = imap.get_flags([uid])[uid]
    assert set(flags) >= {b"\\Seen", b"\\Draft"}
    assert store.message("Drafts", uid).raw == _message(2)
    plain = store.append("Drafts", _message(3))
    assert plain == 3
    imap.select_folder("Drafts", readonly=True)
    assert imap.get_flags([plain])[plain] == ()


def test_append_without_uidplus_gives_no_uid(store, imap, monkeypatch):
    without("UIDPLUS", monkeypatch)
    assert store.append("INBOX", _message(1)) is None
    assert imap.select_folder("INBOX", readonly=True)[b"EXISTS"] == 1


def test_append_and_delete_refresh_the_unread_count(store):
    assert store.folders()[0].total == 0
    uid = store.append("INBOX", _message(1))
    assert (store.folders()[0].unread, store.folders()[0].total) == (1, 1)
    store.delete("INBOX", [uid])
    assert store.folders()[0].total == 0


def test_delete_removes_only_the_given_messages(store, imap):
    _append(imap, [_message(n) for n in range(1, 6)])
    imap.select_folder("INBOX")
    # Marked deleted by another program, and kept until it expunges it.
    imap.add_flags([5], [b"\\Deleted"])

    store.delete("INBOX", [2, 4])

    imap.select_folder("INBOX", readonly=True)
    assert imap.search(["ALL"]) == [1, 3, 5]
    assert b"\\Deleted" in imap.get_flags([5])[5]
    # Messages already gone are no error.
    store.delete("INBOX", [2, 99])
    assert [m.uid for m in store.page("INBOX", 1, per_page=50).items] == [5, 3, 1]


def test_delete_without_uidplus_only_marks_the_messages(store, imap, monkeypatch):
    without("UIDPLUS", monkeypatch)
    _append(imap, [_message(n) for n in range(1, 4)])

    store.delete("INBOX", [2])

    imap.select_folder("INBOX", readonly=True)
    assert imap.search(["ALL"]) == [1, 2, 3]
    assert imap.search(["DELETED"]) == [2]


def test_add_flags_sets_system_flags_and_keywords(store, imap):
    _append(imap, [_message(1), _message(2)])

    store.add_flags("INBOX", [1], ["\\Answered"])
    store.add_flags("INBOX", [2], ["$Forwarded"])
    store.add_flags("INBOX", [2], ["$Forwarded"])

    imap.select_folder("INBOX", readonly=True)
    flags = imap.get_flags([1, 2])
    assert flags[1] == (b"\\Answered",)
    assert flags[2] == (b"$Forwarded",)
    assert store.page("INBOX", 1, per_page=50).items[1].answered
    with pytest.raises(FolderNotFound):
        store.add_flags("Nowhere", [1], ["\\Answered"])


def test_message_ids_are_found_by_uid(store, imap):
    _append(imap, [_message(1), _message(2), _message(1)])
    assert store.message_id_uids("INBOX", "<1@example.test>") == [1, 3]
    assert store.find_message_id("INBOX", "<2@example.test>")
    assert store.message_id_uids("INBOX", "<9@example.test>") == []
