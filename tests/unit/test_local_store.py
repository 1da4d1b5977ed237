"""LocalStore: the mail kept for a POP3 account, read and changed through the MailStore protocol."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import MailAccount, Protocol
from webmail import mailstore
from webmail.compose import drafts
from webmail.mailstore.base import FolderNotFound, MessageNotFound
from webmail.mailstore.local import UIDVALIDITY, LocalStore
from webmail.mime.headers import Address
from webmail.models import LocalMailbox, LocalMessage, Pop3Uidl

pytestmark = pytest.mark.django_db


def message(
    number: int,
    *,
    sender: str | None = None,
    subject: str | None = None,
    date: str | None = None,
    body: str = "",
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender or f"Sender {number} <sender{number}@elsewhere.example>"
    msg["To"] = '"Martin, Léa" <lea@office.test>'
    msg["Cc"] = "cc@office.test"
    msg["Subject"] = subject if subject is not None else f"Message {number}"
    msg["Date"] = date or f"Tue, {number:02d} Mar 2025 10:15:00 +0100"
    msg["Message-ID"] = f"<message-{number}@elsewhere.example>"
    msg.set_content(body or f"Body of message {number}.\n")
    return msg.as_bytes()


def pop3_account(person) -> MailAccount:
    return MailAccount.objects.create(
        user=person,
        email=f"{person.username}@office.test",
        login=f"{person.username}@office.test",
        protocol=Protocol.POP3,
        incoming_host="pop.office.test",
        incoming_port=995,
        smtp_host="smtp.office.test",
        smtp_port=587,
    )


@pytest.fixture
def account(django_user_model) -> MailAccount:
    return pop3_account(django_user_model.objects.create_user(username="lea"))


@pytest.fixture
def store(account) -> LocalStore:
    return LocalStore(account)


def keep(account, uid: int, raw: bytes, *, folder: str = "INBOX", **fields) -> LocalMessage:
    row = LocalMessage.from_bytes(account, raw, uid=uid, folder=folder)
    for name, value in fields.items():
        setattr(row, name, value)
    row.save()
    return row


def test_pop3_accounts_are_read_from_the_local_store(account):
    assert isinstance(mailstore.for_account(account), LocalStore)


def test_folders_are_the_special_ones_then_the_persons_own_with_counts(account, store):
    keep(account, 1, message(1))
    keep(account, 2, message(2), seen=True)
    keep(account, 3, message(3), folder="Sent", seen=True)
    keep(account, 4, message(4), folder="projets/2025")
    keep(account, 5, message(5), folder="Clients")
    folders = store.folders()
    assert [(f.name, f.special_use, f.unread, f.total) for f in folders] == [
        ("INBOX", "\\Inbox", 1, 2),
        ("Drafts", "\\Drafts", 0, 0),
        ("Sent", "\\Sent", 0, 1),
        ("Archive", "\\Archive", 0, 0),
        ("Junk", "\\Junk", 0, 0),
        ("Trash", "\\Trash", 0, 0),
        ("Clients", None, 1, 1),
        ("projets/2025", None, 1, 1),
    ]
    assert folders[-1].path == ["projets", "2025"]


def test_another_accounts_messages_are_not_counted(account, store, django_user_model):
    other = pop3_account(django_user_model.objects.create_user(username="other"))
    keep(other, 1, message(1), folder="Theirs")
    assert [f.total for f in store.folders()] == [0] * 6
    with pytest.raises(FolderNotFound):
        store.page("Theirs", 1, per_page=10)


def test_pages_go_newest_first_without_reading_any_message(account, store):
    for uid in range(1, 8):
        keep(account, uid, message(uid), seen=uid % 2 == 0)
    with CaptureQueriesContext(connection) as queries:
        first = store.page("INBOX", 1, per_page=3)
    assert len(queries) <= 2
    assert not any('."raw"' in query["sql"] for query in queries)
    assert [m.uid for m in first.items] == [7, 6, 5]
    assert (first.total, first.num_pages, first.folder.unread) == (7, 3, 4)
    assert first.folder.special_use == "\\Inbox"
    assert [m.uid for m in store.page("INBOX", 3, per_page=3).items] == [1]
    # A page beyond the last is the last.
    assert store.page("INBOX", 9, per_page=3).number == 3
    assert [m.uid for m in store.page("INBOX", 1, per_page=3, reverse=False).items] == [1, 2, 3]


def test_a_summary_is_made_from_the_indexed_headers(account, store):
    raw = message(1, sender="Léa Martin <lea.martin@elsewhere.example>", subject="Café ☕")
    keep(account, 1, raw, flagged=True)
    (summary,) = store.page("INBOX", 1, per_page=10).items
    assert summary.sender == Address(name="Léa Martin", email="lea.martin@elsewhere.example")
    assert summary.recipients == (
        Address(name="Martin, Léa", email="lea@office.test"),
        Address(name="", email="cc@office.test"),
    )
    assert summary.subject == "Café ☕"
    assert summary.date == datetime(2025, 3, 1, 9, 15, tzinfo=UTC)
    assert summary.size == len(raw)
    assert (summary.seen, summary.flagged, summary.answered) == (False, True, False)
    assert not summary.has_attachments


def test_a_sender_without_a_name_is_its_address(account, store):
    keep(account, 1, message(1, sender="bare@elsewhere.example"))
    (summary,) = store.page("INBOX", 1, per_page=10).items
    assert summary.sender == Address(name="", email="bare@elsewhere.example")


#: (sender, subject, date, body size) of messages 1, 2 and 3, so that each order differs.
SORTABLE = [
    ("Bruno <b@x.example>", "Abricot", "Mon, 31 Mar 2025 08:00:00 +0000", 300),
    ("Anne <a@x.example>", "zèbre", "Sat, 01 Mar 2025 08:00:00 +0000", 900),
    ("yves@x.example", "Melon", "Sat, 15 Mar 2025 08:00:00 +0000", 10),
]


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("arrival", [3, 2, 1]),
        ("date", [1, 3, 2]),
        ("from", [3, 1, 2]),
        ("subject", [2, 3, 1]),
        ("size", [2, 1, 3]),
    ],
)
def test_pages_are_sorted_in_each_order(account, store, sort, expected):
    for uid, (sender, subject, date, size) in enumerate(SORTABLE, start=1):
        keep(account, uid, message(uid, sender=sender, subject=subject, date=date, body="x" * size))
    page = store.page("INBOX", 1, per_page=10, sort=sort)
    assert [m.uid for m in page.items] == expected
    ascending = store.page("INBOX", 1, per_page=10, sort=sort, reverse=False)
    assert [m.uid for m in ascending.items] == expected[::-1]


def test_an_unknown_sort_order_is_refused(store):
    with pytest.raises(ValueError):
        store.page("INBOX", 1, per_page=10, sort="colour")


def test_empty_special_folders_open_and_unknown_ones_do_not(store):
    page = store.page("Drafts", 1, per_page=10)
    assert (page.items, page.total, page.num_pages) == ([], 0, 1)
    with pytest.raises(FolderNotFound):
        store.page("Nowhere", 1, per_page=10)
    with pytest.raises(FolderNotFound):
        store.message("Nowhere", 1)


def test_a_message_is_its_bytes_with_its_flags_and_reading_it_does_not_mark_it(account, store):
    raw = message(1)
    keep(account, 5, raw, flagged=True, answered=True)
    opened = store.message("INBOX", 5)
    assert (opened.folder, opened.uid, opened.uidvalidity) == ("INBOX", 5, UIDVALIDITY)
    assert opened.raw == raw
    assert opened.flags == {"\\Flagged", "\\Answered"}
    store.mark_seen("INBOX", 5)
    assert store.message("INBOX", 5).flags == {"\\Seen", "\\Flagged", "\\Answered"}


def test_a_message_that_is_gone_or_in_another_folder_is_not_found(account, store):
    keep(account, 1, message(1), folder="Archive")
    with pytest.raises(MessageNotFound):
        store.message("INBOX", 1)
    with pytest.raises(MessageNotFound):
        store.message("Archive", 2)


def test_flags_are_set_and_others_ignored(account, store):
    keep(account, 1, message(1))
    keep(account, 2, message(2))
    store.add_flags("INBOX", [1], ["\\Seen", "\\FLAGGED", "\\Answered", "$Forwarded"])
    assert store.message("INBOX", 1).flags == {"\\Seen", "\\Flagged", "\\Answered"}
    assert store.message("INBOX", 2).flags == set()
    store.add_flags("INBOX", [2], ["$Forwarded"])
    assert store.message("INBOX", 2).flags == set()


def test_delete_removes_those_messages_only_and_their_uidls_stay(account, store):
    for uid in (1, 2, 3):
        keep(account, uid, message(uid))
    keep(account, 4, message(4), folder="Archive")
    Pop3Uidl.objects.create(account=account, uidl="abc")
    store.delete("INBOX", [1, 3, 4, 99])
    store.delete("INBOX", [])
    assert [m.uid for m in store.page("INBOX", 1, per_page=10).items] == [2]
    assert store.page("Archive", 1, per_page=10).total == 1
    assert Pop3Uidl.objects.filter(account=account).count() == 1


def test_append_takes_its_uid_from_the_counter_fetches_use(account, store):
    LocalMailbox.objects.create(account=account, next_uid=41)
    uid = store.append("Sent", message(1), seen=True)
    assert uid == 41
    assert LocalMailbox.objects.get(account=account).next_uid == 42
    assert store.append("Sent", message(2)) == 42
    sent = store.page("Sent", 1, per_page=10)
    assert [(m.uid, m.seen, m.subject) for m in sent.items] == [
        (42, False, "Message 2"),
        (41, True, "Message 1"),
    ]
    assert store.message("Sent", 41).raw == message(1)


def test_append_makes_the_local_mailbox_of_an_account_never_fetched(account, store):
    assert store.append("Drafts", message(1)) == 1
    assert store.append("INBOX", message(2)) == 2


def test_append_to_a_folder_that_does_not_exist_is_refused(account, store):
    with pytest.raises(FolderNotFound):
        store.append("Nowhere", message(1))
    assert not LocalMessage.objects.exists()


def test_a_message_id_is_found_in_its_folder_only(account, store):
    store.append("Sent", message(1))
    assert store.find_message_id("Sent", "<message-1@elsewhere.example>")
    assert not store.find_message_id("INBOX", "<message-1@elsewhere.example>")
    assert not store.find_message_id("Sent", "<message-2@elsewhere.example>")


def test_special_folders_are_the_fixed_ones(store):
    assert store.special_folder("\\Sent") == "Sent"
    assert store.special_folder("\\Drafts") == "Drafts"
    assert store.special_folder("\\Important") is None


def test_pop3_drafts_are_kept_locally_one_copy_at_a_time(account):
    assert drafts.drafts_folder(account) == "Drafts"
    first = drafts.save_draft(account, message(1), replace_uid=None)
    second = drafts.save_draft(account, message(2), replace_uid=first)
    assert second != first
    assert drafts.load_draft(account, second) == message(2)
    assert list(account.local_messages.values_list("folder", "uid")) == [("Drafts", second)]
    drafts.delete_draft(account, second)
    drafts.delete_draft(account, second)
    assert not account.local_messages.exists()


def test_move_takes_those_messages_only_in_one_query_keeping_their_uids(account, store):
    for uid in (1, 2, 3, 4):
        keep(account, uid, message(uid), flagged=uid == 3)
    keep(account, 5, message(5), folder="Archive")
    with CaptureQueriesContext(connection) as queries:
        store.move("INBOX", [1, 3, 99], "Archive")
    assert len(queries) == 1
    assert [m.uid for m in store.page("INBOX", 1, per_page=10).items] == [4, 2]
    assert [m.uid for m in store.page("Archive", 1, per_page=10).items] == [5, 3, 1]
    moved = store.message("Archive", 3)
    assert (moved.raw, moved.flags) == (message(3), {"\\Flagged"})
    with pytest.raises(MessageNotFound):
        store.message("INBOX", 3)


def test_moved_messages_can_come_back_and_new_ones_never_take_their_uids(account, store):
    LocalMailbox.objects.create(account=account, next_uid=3)
    keep(account, 1, message(1))
    keep(account, 2, message(2))
    store.move("INBOX", [1, 2], "Trash")
    store.move("Trash", [1], "INBOX")
    assert store.append("INBOX", message(3)) == 3
    assert [m.uid for m in store.page("INBOX", 1, per_page=10).items] == [3, 1]
    assert [m.uid for m in store.page("Trash", 1, per_page=10).items] == [2]


def test_move_to_a_persons_own_folder_and_not_to_one_that_does_not_exist(account, store):
    keep(account, 1, message(1))
    keep(account, 2, message(2), folder="Clients")
    store.move("INBOX", [1], "Clients")
    assert [m.uid for m in store.page("Clients", 1, per_page=10).items] == [2, 1]
    with pytest.raises(FolderNotFound):
        store.move("Clients", [1, 2], "Nowhere")
    assert store.page("Clients", 1, per_page=10).total == 2


def test_move_of_nothing_or_to_the_same_folder_changes_nothing(account, store):
    keep(account, 1, message(1))
    with CaptureQueriesContext(connection) as queries:
        store.move("INBOX", [], "Trash")
        store.move("INBOX", [1], "INBOX")
    assert len(queries) == 0
    assert store.page("INBOX", 1, per_page=10).total == 1


def test_move_leaves_another_accounts_messages_where_they_are(account, store, django_user_model):
    other = pop3_account(django_user_model.objects.create_user(username="other"))
    keep(account, 1, message(1))
    keep(other, 1, message(1))
    store.move("INBOX", [1], "Junk")
    assert LocalStore(other).page("INBOX", 1, per_page=10).total == 1
    assert LocalStore(other).page("Junk", 1, per_page=10).total == 0
    assert store.page("Junk", 1, per_page=10).total == 1
