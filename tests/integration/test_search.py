"""Finding mail: server-side SEARCH on the suite's two Dovecots, LocalStore, and the pages."""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import pytest
from django.core.cache import cache
from django.urls import reverse
from imapclient import IMAPClient

from accounts.models import MailAccount, Protocol
from bench.seed import seed_maildir
from tests.support.accounts import make_account
from webmail import pop3fetch
from webmail.mailstore.base import SearchResults
from webmail.mailstore.imap import SEARCH_TIMEOUT, ImapStore
from webmail.mailstore.local import LocalStore
from webmail.mailstore.pool import SessionPool
from webmail.models import LocalMessage
from webmail.search import SearchForm, SearchQuery
from webmail.transport.endpoint import Endpoint
from webmail.transport.imap import close_quietly, open_imap

pytestmark = pytest.mark.integration

START = datetime(2024, 1, 10, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Sample:
    key: str
    subject: str
    sender: str
    to: str
    text: str
    date: datetime
    cc: str = ""
    attachment: bool = False
    seen: bool = True
    flagged: bool = False


#: The INBOX every server test searches, oldest first (UIDs 1, 2, ... in this order).
INBOX = [
    Sample(
        "report",
        "Quarterly report",
        "Alice Martin <alice@example.org>",
        "Bob <bob@office.test>",
        "Here are the budget numbers for the quarter.",
        START,
        attachment=True,
        flagged=True,
    ),
    Sample(
        "reunion",
        "Réunion à 15 h",
        "Zoë Ünal <zoe@example.org>",
        "Équipe <team@office.test>",
        "Ordre du jour : le café et le budget. À tout à l'heure.",
        START + timedelta(days=36),
        seen=False,
    ),
    Sample(
        "lunch",
        "Lunch on Friday",
        "Bruno Petit <bruno@example.org>",
        "Team <team@office.test>",
        "Pizza on Friday? " + "Plenty of room for everyone. " * 1200,
        START + timedelta(days=70),
        cc="Carol <carol@office.test>",
    ),
    Sample(
        "japanese",
        "日本語の件名",
        "Kenji <kenji@example.jp>",
        "Bob <bob@office.test>",
        "こんにちは。予算 budget について。",
        START + timedelta(days=82),
        seen=False,
    ),
]


def build(sample: Sample) -> bytes:
    message = EmailMessage()
    message["From"] = sample.sender
    message["To"] = sample.to
    if sample.cc:
        message["Cc"] = sample.cc
    message["Subject"] = sample.subject
    message["Date"] = format_datetime(sample.date)
    message["Message-ID"] = make_msgid(domain="example.org")
    message.set_content(sample.text)
    if sample.attachment:
        message.add_attachment(
            b"%PDF-1.4\n" + b"0" * 2000, maintype="application", subtype="pdf", filename="q.pdf"
        )
    return message.as_bytes()


def flags_of(sample: Sample) -> list[bytes]:
    return [flag for flag, on in ((b"\\Seen", sample.seen), (b"\\Flagged", sample.flagged)) if on]


class Recorder:
    """open_imap, keeping every command line the pool's connections send."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.timeouts: list[float | None] = []  # the socket's, as each line went

    def __call__(self, endpoint: Endpoint) -> IMAPClient:
        client = open_imap(endpoint)
        imap = client._imap
        send = imap.send

        def recorded(data: bytes) -> None:
            self.lines.append(bytes(data))
            self.timeouts.append(client.socket().gettimeout())
            send(data)

        imap.send = recorded
        return client

    def commands(self, name: bytes) -> list[bytes]:
        """The lines that send command ``name`` ("UID SEARCH", "UID SORT", ...)."""
        pattern = re.compile(rb"^\S+ " + re.escape(name) + rb"(?: |\r\n)")
        return [line for line in self.lines if pattern.match(line)]

    def timeout_of(self, line: bytes) -> float | None:
        return self.timeouts[self.lines.index(line)]

    def clear(self) -> None:
        self.lines.clear()
        self.timeouts.clear()


@pytest.fixture(params=["full", "basic"])
def server(request) -> tuple[str, object, object]:
    """(kind, server, mailbox) of a fresh mailbox on the full or on the basic Dovecot."""
    if request.param == "full":
        return "full", request.getfixturevalue("mail_server"), request.getfixturevalue("mail_user")
    return (
        "basic",
        request.getfixturevalue("basic_mail_server"),
        request.getfixturevalue("basic_mail_user"),
    )


@pytest.fixture
def account(person, server) -> MailAccount:
    __, mail_server, mailbox = server
    return make_account(person, mail_server, mailbox)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def store(account, recorder) -> Iterator[ImapStore]:
    sessions = SessionPool(connect=recorder, size=1, wait=30, reaper=False)
    yield ImapStore(account, sessions=sessions)
    sessions.close_all()


@pytest.fixture
def imap(account) -> Iterator[IMAPClient]:
    client = open_imap(account.incoming_endpoint())
    yield client
    close_quietly(client)


def put(imap: IMAPClient, folder: str, samples: list[Sample]) -> None:
    for sample in samples:
        imap.append(folder, build(sample), flags=flags_of(sample), msg_time=sample.date)


@pytest.fixture
def inbox(imap) -> list[Sample]:
    put(imap, "INBOX", INBOX)
    return INBOX


def query(**data: str) -> SearchQuery:
    form = SearchForm(data)
    assert form.is_valid(), form.errors
    return form.query()


def found(results: SearchResults) -> list[str]:
    return [hit.summary.subject for hit in results.hits]


def keys(results: SearchResults) -> set[str]:
    by_subject = {sample.subject: sample.key for sample in INBOX}
    return {by_subject.get(subject, subject) for subject in found(results)}


CRITERIA = [
    ({"q": "budget"}, {"report", "reunion", "japanese"}),  # in bodies only
    ({"q": "alice"}, {"report"}),  # the sender
    ({"q": "carol"}, {"lunch"}),  # Cc
    ({"q": "bob@office.test"}, {"report", "japanese"}),  # To
    ({"q": "quarterly"}, {"report"}),  # the subject, in another case
    ({"q": "réunion"}, {"reunion"}),  # non-ASCII, in another case
    ({"q": "日本語"}, {"japanese"}),
    ({"q": "こんにちは"}, {"japanese"}),
    ({"q": "budget numbers"}, {"report"}),  # every word, anywhere
    ({"q": '"numbers budget"'}, set()),  # a phrase as it is
    ({"q": '"the budget numbers"'}, {"report"}),
    ({"sender": "zoë"}, {"reunion"}),
    ({"sender": "bruno"}, {"lunch"}),
    ({"recipient": "carol"}, {"lunch"}),
    ({"recipient": "team@office.test"}, {"reunion", "lunch"}),
    ({"subject": "friday lunch"}, {"lunch"}),
    ({"subject": "budget"}, set()),
    ({"body": "pizza"}, {"lunch"}),
    ({"body": "café"}, {"reunion"}),
    ({"after": "2024-02-15"}, {"reunion", "lunch", "japanese"}),
    ({"before": "2024-02-15"}, {"report"}),
    ({"after": "2024-02-01", "before": "2024-04-01"}, {"reunion", "lunch"}),
    ({"attachment": "on"}, {"report"}),
    ({"unread": "on"}, {"reunion", "japanese"}),
    ({"flagged": "on"}, {"report"}),
    ({"larger": "20"}, {"lunch"}),
    ({"smaller": "20"}, {"report", "reunion", "japanese"}),
    ({"q": "budget", "unread": "on", "sender": "kenji"}, {"japanese"}),
]


@pytest.mark.parametrize(("criteria", "expected"), CRITERIA, ids=[str(c) for c, __ in CRITERIA])
def test_each_criterion_finds_exactly_its_messages(store, inbox, criteria, expected):
    results = store.search(query(**criteria), 1, folder="INBOX", per_page=50)
    assert keys(results) == expected
    assert results.total == results.found == len(expected)


def test_results_are_newest_first_with_their_summaries(store, inbox):
    results = store.search(query(q="budget"), 1, folder="INBOX", per_page=50)
    assert [hit.summary.uid for hit in results.hits] == [4, 2, 1]
    assert {hit.folder for hit in results.hits} == {"INBOX"}
    report = results.hits[-1].summary
    assert (report.sender.email, report.flagged, report.has_attachments) == (
        "alice@example.org",
        True,
        True,
    )


def test_esearch_returns_a_compact_set_where_the_server_has_it(store, inbox, recorder, server):
    store.search(query(q="budget"), 1, folder="INBOX", per_page=50)
    searches = recorder.commands(b"UID SEARCH")
    assert len(searches) == 1
    if server[0] == "full":
        assert searches[0].split(b" ")[2:5] == [b"SEARCH", b"RETURN", b"(ALL)"]
    else:
        assert b"RETURN" not in searches[0]
    assert (
        b'OR FROM "budget" OR TO "budget" OR CC "budget" OR SUBJECT "budget" BODY "budget"'
        in (searches[0])
    )


def test_a_search_may_take_longer_than_other_commands(store, inbox, recorder, account):
    store.search(query(q="budget"), 1, folder="INBOX", per_page=50)
    (search,) = recorder.commands(b"UID SEARCH")
    assert recorder.timeout_of(search) == SEARCH_TIMEOUT
    (fetch,) = recorder.commands(b"UID FETCH")
    assert recorder.timeout_of(fetch) == account.incoming_endpoint().timeout


def test_non_ascii_words_go_as_utf8_literals(store, inbox, recorder):
    results = store.search(query(q="Réunion"), 1, folder="INBOX", per_page=50)
    assert found(results) == ["Réunion à 15 h"]
    search = recorder.commands(b"UID SEARCH")[0]
    assert b"CHARSET UTF-8" in search
    # The word itself follows as a literal, not on the command line.
    assert "Réunion".encode() not in search
    assert "Réunion".encode() in b"".join(recorder.lines)


def test_pages_of_results_come_from_one_search(store, imap, recorder):
    samples = [
        Sample(
            f"m{n}",
            f"Invoice {n}",
            "Billing <billing@example.org>",
            "me@office.test",
            "Please pay.",
            START + timedelta(days=n),
        )
        for n in range(7)
    ]
    put(imap, "INBOX", [*samples, INBOX[0]])
    pages = [store.search(query(q="invoice"), n, folder="INBOX", per_page=3) for n in (1, 2, 3)]
    assert [found(page) for page in pages] == [
        ["Invoice 6", "Invoice 5", "Invoice 4"],
        ["Invoice 3", "Invoice 2", "Invoice 1"],
        ["Invoice 0"],
    ]
    assert [(p.number, p.total, p.num_pages, p.has_next) for p in pages] == [
        (1, 7, 3, True),
        (2, 7, 3, True),
        (3, 7, 3, False),
    ]
    assert len(recorder.commands(b"UID SEARCH")) == 1
    # Each page fetched its own summaries and no other.
    fetches = [line for line in recorder.commands(b"UID FETCH") if b"ENVELOPE" in line]
    assert [line.split(b" ")[3] for line in fetches] == [b"7,6,5", b"4,3,2", b"1"]
    # New mail changes the folder's contents: the next page searches again.
    put(imap, "INBOX", samples[:1])
    assert store.search(query(q="invoice"), 1, folder="INBOX", per_page=3).total == 8
    assert len(recorder.commands(b"UID SEARCH")) == 2


@pytest.mark.parametrize(
    ("sort", "reverse", "expected"),
    [
        ("subject", False, ["Quarterly report", "Réunion à 15 h", "日本語の件名"]),
        ("subject", True, ["日本語の件名", "Réunion à 15 h", "Quarterly report"]),
        ("from", False, ["Alice Martin", "Kenji", "Zoë Ünal"]),
        ("date", True, ["日本語の件名", "Réunion à 15 h", "Quarterly report"]),
        ("size", True, None),
    ],
)
def test_sorted_results(store, inbox, recorder, server, sort, reverse, expected):
    results = store.search(
        query(q="budget"), 1, folder="INBOX", per_page=50, sort=sort, reverse=reverse
    )
    if sort == "from":
        assert [hit.summary.sender.name for hit in results.hits] == expected
    elif sort == "size":
        sizes = [hit.summary.size for hit in results.hits]
        assert sizes == sorted(sizes, reverse=True)
        assert found(results)[0] == "Quarterly report"  # the one with an attachment
    else:
        assert found(results) == expected
    if server[0] == "full":
        (sorted_,) = recorder.commands(b"UID SORT")
        assert b"UTF-8" in sorted_ or b"US-ASCII" in sorted_
        assert not recorder.commands(b"UID SEARCH")
    else:
        assert not recorder.commands(b"UID SORT")
        # The sort key is fetched for the matches only.
        (keyed,) = [line for line in recorder.commands(b"UID FETCH") if b"ENVELOPE" not in line]
        assert keyed.split(b" ")[3] == b"1,2,4"


def test_a_missing_folder_is_not_found(store, inbox):
    from webmail.mailstore.base import FolderNotFound

    with pytest.raises(FolderNotFound):
        store.search(query(q="budget"), 1, folder="Nowhere", per_page=50)


# Every folder -------------------------------------------------------------------


def spread(imap: IMAPClient) -> None:
    """Budget mail in INBOX, Archive, a subfolder, Trash and Junk, at known arrival times."""
    imap.create_folder("Archive/2023")
    day = timedelta(days=1)
    mail = {
        "INBOX": [("Budget in the inbox", START + 3 * day)],
        "Archive": [
            ("Budget archived", START + 1 * day),
            ("Budget archived later", START + 5 * day),
        ],
        "Archive/2023": [("Budget of 2023", START)],
        "Trash": [("Budget thrown away", START + 4 * day)],
        "Junk": [("Budget spam", START + 6 * day)],
        "Sent": [("Lunch, not about money", START + 2 * day)],
    }
    for folder, messages in mail.items():
        put(
            imap,
            folder,
            [Sample(s, s, "A <a@example.org>", "b@office.test", "Text.", d) for s, d in messages],
        )


def test_every_folder_newest_first_without_trash_and_junk(store, imap, recorder):
    spread(imap)
    results = store.search(query(q="budget", scope="all"), 1, folder=None, per_page=50)
    assert [(hit.folder, hit.summary.subject) for hit in results.hits] == [
        ("Archive", "Budget archived later"),
        ("INBOX", "Budget in the inbox"),
        ("Archive", "Budget archived"),
        ("Archive/2023", "Budget of 2023"),
    ]
    assert (results.total, results.found, results.capped) == (4, 4, False)
    selected = recorder.commands(b"SELECT")
    assert any(b"Archive/2023" in line for line in selected)
    assert not [line for line in selected if b"Trash" in line or b"Junk" in line]


def test_every_folder_with_trash_and_junk_when_asked(store, imap):
    spread(imap)
    results = store.search(query(q="budget", scope="all", trash="on"), 1, folder=None, per_page=3)
    assert [(hit.folder, hit.summary.subject) for hit in results.hits] == [
        ("Junk", "Budget spam"),
        ("Archive", "Budget archived later"),
        ("Trash", "Budget thrown away"),
    ]
    second = store.search(query(q="budget", scope="all", trash="on"), 2, folder=None, per_page=3)
    assert found(second) == ["Budget in the inbox", "Budget archived", "Budget of 2023"]


def test_every_folder_keeps_the_newest_of_each_when_there_are_many(store, imap, monkeypatch):
    monkeypatch.setattr("webmail.mailstore.imap.EVERYWHERE_PER_FOLDER", 1)
    spread(imap)
    results = store.search(query(q="budget", scope="all"), 1, folder=None, per_page=50)
    assert found(results) == ["Budget archived later", "Budget in the inbox", "Budget of 2023"]
    assert (results.total, results.found, results.capped) == (3, 4, True)


# The mail Facteur keeps ---------------------------------------------------------


@pytest.fixture
def pop3_account(person, mail_server, mail_user) -> MailAccount:
    account = make_account(person, mail_server, mail_user, protocol=Protocol.POP3)
    for sample in INBOX:
        mail_server.deliver(mail_user.address, build(sample))
    assert pop3fetch.fetch(account).new == len(INBOX)
    local = LocalStore(account)
    for uid, sample in enumerate(INBOX, start=1):
        if sample.seen:
            local.add_flags("INBOX", [uid], ["\\Seen"])
        if sample.flagged:
            local.add_flags("INBOX", [uid], ["\\Flagged"])
    return account


#: The body's text is kept casefolded: found in any case on any database.
LOCAL_CRITERIA = [*CRITERIA, ({"body": "CAFÉ"}, {"reunion"})]


@pytest.mark.parametrize(
    ("criteria", "expected"), LOCAL_CRITERIA, ids=[str(c) for c, __ in LOCAL_CRITERIA]
)
def test_local_store_finds_exactly_the_same(pop3_account, criteria, expected):
    results = LocalStore(pop3_account).search(query(**criteria), 1, folder="INBOX", per_page=50)
    assert keys(results) == expected


def test_local_store_pages_every_folder_in_sql(pop3_account):
    local = LocalStore(pop3_account)
    local.move("INBOX", [1], "Archive")
    local.move("INBOX", [2], "Trash")
    everywhere = query(q="budget", scope="all")
    first = local.search(everywhere, 1, folder=None, per_page=1)
    second = local.search(everywhere, 2, folder=None, per_page=1)
    assert [(h.folder, h.summary.uid) for h in first.hits + second.hits] == [
        ("INBOX", 4),
        ("Archive", 1),
    ]
    assert first.total == 2
    with_trash = local.search(
        query(q="budget", scope="all", trash="on"), 1, folder=None, per_page=9
    )
    assert [h.summary.uid for h in with_trash.hits] == [4, 2, 1]


def test_a_local_search_of_a_pop3_account_through_the_page(signed_in_client, pop3_account):
    url = reverse("webmail:search", args=[pop3_account.pk])
    response = signed_in_client.get(url, {"folder": "INBOX", "q": "café"})
    assert response.status_code == 200
    assert "1 result for" in response.content.decode()
    message_url = reverse("webmail:message", args=[pop3_account.pk, 2]) + "?folder=INBOX"
    assert f'href="{message_url}"' in response.content.decode()


def test_messages_kept_before_bodies_were_searchable_are_indexed_by_the_migration(
    pop3_account,
):
    from django.apps import apps

    migration = importlib.import_module("webmail.migrations.0009_localmessage_body_text")
    LocalMessage.objects.filter(account=pop3_account).update(body_text="")
    migration.index_body_text(apps, None)
    local = LocalStore(pop3_account)
    assert found(local.search(query(body="pizza"), 1, folder="INBOX", per_page=9)) == [
        "Lunch on Friday"
    ]
    assert LocalMessage.objects.get(account=pop3_account, uid=4).body_text == (
        "こんにちは。予算 budget について。"
    )


# The pages ----------------------------------------------------------------------


@pytest.fixture
def web_account(person, mail_server, mail_user) -> MailAccount:
    account = make_account(person, mail_server, mail_user)
    client = open_imap(account.incoming_endpoint())
    try:
        put(client, "INBOX", INBOX)
    finally:
        close_quietly(client)
    return account


def search_url(account: MailAccount) -> str:
    return reverse("webmail:search", args=[account.pk])


def test_the_list_has_the_quick_search_box(signed_in_client, web_account):
    page = signed_in_client.get(reverse("webmail:mailbox", args=[web_account.pk]))
    html = page.content.decode()
    assert 'id="search-input"' in html
    assert f'action="{search_url(web_account)}"' in html


def test_results_page_says_how_many_and_links_to_each_message(signed_in_client, web_account):
    response = signed_in_client.get(search_url(web_account), {"folder": "INBOX", "q": "budget"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "3 results for “budget” in Inbox" in html
    assert 'value="budget"' in html  # the box keeps the query
    for uid in (1, 2, 4):
        url = reverse("webmail:message", args=[web_account.pk, uid]) + "?folder=INBOX"
        assert f'href="{url}"' in html
    assert f'href="{reverse("webmail:mailbox", args=[web_account.pk])}?folder=INBOX"' in html


def test_htmx_gets_the_results_alone(signed_in_client, web_account):
    response = signed_in_client.get(
        search_url(web_account),
        {"folder": "INBOX", "q": "pizza"},
        headers={"HX-Request": "true", "HX-Target": "message-list"},
    )
    html = response.content.decode()
    assert "<html" not in html
    assert "1 result for “pizza” in Inbox" in html


def test_nothing_found_offers_every_folder(signed_in_client, web_account):
    response = signed_in_client.get(search_url(web_account), {"folder": "INBOX", "q": "zebra"})
    html = response.content.decode()
    assert "0 results for" in html
    assert "No message matches." in html
    assert "scope=all" in html


def test_an_empty_search_asks_what_to_look_for(signed_in_client, web_account):
    html = signed_in_client.get(search_url(web_account), {"folder": "INBOX", "q": " "}).content
    assert b"Type what to look for" in html


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"q": "budget\r\nA1 LOGOUT"}, "Line breaks"),
        ({"after": "31/12/2024"}, "Enter a valid date"),
        ({"after": "2024-03-01", "before": "2024-02-01"}, "must come after"),
        ({"larger": "-5"}, "greater than or equal to 0"),
        ({"larger": "100", "smaller": "50"}, "both larger and smaller"),
        ({"subject": "x" * 201}, "at most 200 characters"),
        ({"q": " ".join("w" * 11)}, "at most 10 words"),
    ],
)
def test_invalid_searches_are_refused_without_searching(
    signed_in_client, web_account, data, error, monkeypatch
):
    def no_search(*args, **kwargs):
        raise AssertionError("searched")

    monkeypatch.setattr(ImapStore, "search", no_search)
    response = signed_in_client.get(search_url(web_account), {"folder": "INBOX", **data})
    assert response.status_code == 200
    assert error in response.content.decode()


def test_another_persons_account_is_not_found(client, django_user_model, web_account):
    stranger = django_user_model.objects.create_user(username="stranger", password="x-Pass-1!")
    client.force_login(stranger)
    assert client.get(search_url(web_account), {"q": "budget"}).status_code == 404


def test_the_results_page_is_paged_and_keeps_the_query(signed_in_client, web_account, settings):
    settings.MESSAGES_PER_PAGE = 2
    response = signed_in_client.get(
        search_url(web_account), {"folder": "INBOX", "q": "budget", "page": "2"}
    )
    html = response.content.decode().replace("&amp;", "&")
    assert "3\u20133 of 3" in html  # an en dash
    assert (
        f'href="{search_url(web_account)}?folder=INBOX&q=budget&sort=date&dir=desc&page=1"' in html
    )


def test_every_folder_from_the_page_names_each_result_folder(signed_in_client, web_account):
    client = open_imap(web_account.incoming_endpoint())
    try:
        spread(client)
    finally:
        close_quietly(client)
    response = signed_in_client.get(
        search_url(web_account), {"folder": "INBOX", "q": "archived", "scope": "all"}
    )
    html = response.content.decode()
    assert "2 results for “archived” in all folders" in html
    assert html.count('class="result-folder">Archive<') == 2
    url = reverse("webmail:message", args=[web_account.pk, 2]) + "?folder=Archive"
    assert f'href="{url}"' in html


# A big folder -------------------------------------------------------------------


BIG = 100_000


@pytest.fixture(scope="module")
def big_mailbox(mail_server):
    """A user whose INBOX holds 100,000 messages, written straight into its Maildir."""
    address, password = f"search-big@{mail_server.domain}", "search-big-password"
    seed_maildir(mail_server, address, password, BIG)

    @dataclass(frozen=True)
    class Mailbox:
        address: str
        password: str

    return Mailbox(address, password)


def test_a_search_of_100000_messages_fetches_one_page(person, mail_server, big_mailbox):
    account = make_account(person, mail_server, big_mailbox)
    recorder = Recorder()
    sessions = SessionPool(connect=recorder, size=1, wait=120, reaper=False)
    store = ImapStore(account, sessions=sessions)
    # Dovecot indexes the 100,000 files when the folder is first opened: on a busy
    # machine that may take longer than a connection's usual timeout.
    raw = open_imap(replace(account.incoming_endpoint(), timeout=SEARCH_TIMEOUT))
    try:
        raw.select_folder("INBOX", readonly=True)
        # A tenth of the seeded subjects, and no sender, recipient or body, say "Invoice".
        expected = sorted(raw.search(["SUBJECT", "Invoice"]), reverse=True)
        assert len(expected) > 5_000
        first = store.search(query(q="invoice"), 1, folder="INBOX", per_page=50)
        assert first.total == len(expected)
        assert [hit.summary.uid for hit in first.hits] == expected[:50]
        assert all("Invoice" in hit.summary.subject for hit in first.hits)
        (search,) = recorder.commands(b"UID SEARCH")
        assert b"RETURN (ALL)" in search
        # One FETCH of the 50 summaries shown, and nothing else read of the messages.
        (summaries,) = [line for line in recorder.commands(b"UID FETCH") if b"ENVELOPE" in line]
        assert len(summaries.split(b" ")[3].split(b",")) == 50
        assert not [line for line in recorder.lines if b"1:*" in line]
        last = store.search(query(q="invoice"), 10_000, folder="INBOX", per_page=50)
        assert last.number == first.num_pages
        assert [hit.summary.uid for hit in last.hits] == expected[(last.number - 1) * 50 :]
        assert len(recorder.commands(b"UID SEARCH")) == 1
    finally:
        close_quietly(raw)
        sessions.close_all()
        cache.clear()
