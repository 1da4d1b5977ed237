"""Acting on many messages from the list: every action is one command for exactly the
messages checked (or every message of the folder), undo after a move, the trash, for an
IMAP account on the real Dovecot and for a POP3 account's local store."""

from __future__ import annotations

import os
import pwd
import re
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage

import pytest
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import MailAccount, Protocol
from tests.support.accounts import make_account
from tests.support.mailboxes import imap as imap_of
from tests.support.mailboxes import imap_commands
from webmail import pop3fetch
from webmail.mailstore.base import ALL
from webmail.mailstore.imap import ImapStore
from webmail.mailstore.local import allocate_uid
from webmail.models import LocalMailbox, LocalMessage, MailPreferences

pytestmark = pytest.mark.integration

#: Commands that only find or report where things are; anything else changes mail.
LOOKING = ("SELECT", "NOOP", "LIST", "STATUS", "CAPABILITY")


def message(number: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Zoé Martin <zoe@example.org>"
    msg["To"] = "me@example.test"
    msg["Subject"] = f"Message {number}"
    msg["Date"] = f"Tue, {number:02d} Mar 2025 10:15:00 +0100"
    msg["Message-ID"] = f"<bulk-{number}@example.org>"
    msg.set_content(f"Body of message {number}.")
    return msg.as_bytes()


def changes(sent: list[str]) -> list[str]:
    return [command for command in sent if not command.startswith(LOOKING)]


def seed_maildir(mail_server, address: str, count: int) -> None:
    """``count`` small messages written straight into the user's INBOX, as a migration
    would: seconds for 100,000, where delivering them would take minutes."""
    mail = pwd.getpwnam("mail")
    local, domain = address.split("@")
    home = mail_server.root / "mail" / domain / local
    maildir = home / "Maildir"
    for folder in (home, maildir, maildir / "cur", maildir / "new", maildir / "tmp"):
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chown(folder, mail.pw_uid, mail.pw_gid)
    for number in range(1, count + 1):
        raw = (
            f"From: zoe@example.org\r\nSubject: Message {number}\r\n"
            f"Message-ID: <seed-{number}@example.org>\r\n\r\nBody {number}.\r\n"
        ).encode()
        # The name Dovecot itself gives: time, unique part, sizes, no flags.
        name = f"{1_700_000_000 + number}.M{number}P1.seed,S={len(raw)},W={len(raw)}:2,"
        descriptor = os.open(maildir / "cur" / name, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.write(descriptor, raw)
            os.fchown(descriptor, mail.pw_uid, mail.pw_gid)
        finally:
            os.close(descriptor)


@dataclass
class Box:
    """An account whose INBOX holds messages 1 to 5, and how to look into it."""

    account: MailAccount
    uids: list[int]  # of messages 1 to 5
    subjects: Callable[[str], list[str]]  # of a folder, sorted, read without the app
    flags: Callable[[str], dict[str, set[str]]]  # subject -> "seen", "flagged"
    make_folder: Callable[[str], None]
    discard: Callable[[str], None]  # deletes every message of a folder, without the app


@pytest.fixture
def message_list(person) -> None:
    """The person reads messages one by one, not in conversations."""
    MailPreferences.objects.create(user=person, conversations=False)


def make_box(kind: str, person, mail_server, mail_user) -> Box:
    for number in range(1, 6):
        mail_server.deliver(mail_user.address, message(number))
    if kind == "imap":
        account = make_account(person, mail_server, mail_user)

        def imap_subjects(folder: str) -> list[str]:
            with imap_of(mail_server, account) as client:
                client.select_folder(folder, readonly=True)
                fetched = client.fetch(client.search(["ALL"]), ["ENVELOPE"])
                return sorted(data[b"ENVELOPE"].subject.decode() for data in fetched.values())

        def imap_flags(folder: str) -> dict[str, set[str]]:
            with imap_of(mail_server, account) as client:
                client.select_folder(folder, readonly=True)
                fetched = client.fetch(client.search(["ALL"]), ["ENVELOPE", "FLAGS"])
                return {
                    data[b"ENVELOPE"].subject.decode(): {
                        flag.decode().lstrip("\\").lower()
                        for flag in data[b"FLAGS"]
                        if flag in (b"\\Seen", b"\\Flagged")
                    }
                    for data in fetched.values()
                }

        def create(folder: str) -> None:
            with imap_of(mail_server, account) as client:
                client.create_folder(folder)

        def imap_discard(folder: str) -> None:
            with imap_of(mail_server, account) as client:
                client.select_folder(folder)
                client.delete_messages(client.search(["ALL"]))
                client.expunge()

        return Box(account, [1, 2, 3, 4, 5], imap_subjects, imap_flags, create, imap_discard)

    account = make_account(person, mail_server, mail_user, protocol=Protocol.POP3)
    assert pop3fetch.fetch(account).new == 5

    def local_subjects(folder: str) -> list[str]:
        return sorted(
            account.local_messages.filter(folder=folder).values_list("subject", flat=True)
        )

    def local_flags(folder: str) -> dict[str, set[str]]:
        rows = account.local_messages.filter(folder=folder)
        return {
            row.subject: {name for name in ("seen", "flagged") if getattr(row, name)}
            for row in rows
        }

    def keep_one_in(folder: str) -> None:
        # A local folder exists while it holds a message.
        row = LocalMessage.from_bytes(account, message(9), uid=0, folder=folder)
        LocalMailbox.objects.get_or_create(account_id=account.pk)
        with transaction.atomic():
            row.uid = allocate_uid(account.pk)
            row.save()

    uids = [account.local_messages.get(subject=f"Message {n}").uid for n in range(1, 6)]

    def local_discard(folder: str) -> None:
        account.local_messages.filter(folder=folder).delete()

    return Box(account, uids, local_subjects, local_flags, keep_one_in, local_discard)


@pytest.fixture(params=["imap", "pop3"])
def box(request, person, mail_server, mail_user, message_list) -> Box:
    return make_box(request.param, person, mail_server, mail_user)


@pytest.fixture
def imap_box(person, mail_server, mail_user, message_list) -> Box:
    return make_box("imap", person, mail_server, mail_user)


@pytest.fixture
def local_box(person, mail_server, mail_user, message_list) -> Box:
    return make_box("pop3", person, mail_server, mail_user)


def bulk_url(box: Box, action: str, folder: str = "INBOX") -> str:
    return reverse(f"webmail:{action}", args=[box.account.pk]) + f"?folder={folder}"


def list_url(box: Box, folder: str = "INBOX") -> str:
    return reverse("webmail:mailbox", args=[box.account.pk]) + f"?folder={folder}"


def picked(box: Box, *numbers: int) -> dict:
    return {"uid": [box.uids[n - 1] for n in numbers]}


def uids_in(client: Client, box: Box, folder: str) -> list[int]:
    response = client.get(list_url(box, folder))
    return [int(uid) for uid in re.findall(r'name="uid" value="(\d+)"', response.content.decode())]


def undo_form(page: str) -> tuple[str, dict]:
    """The action and fields of the Undo button of a notice."""
    form = re.search(r'<form method="post" action="([^"]+)" class="undo-form">(.*?)</form>', page)
    assert form, "no Undo in the notice"
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form[2]))
    return form[1].replace("&amp;", "&"), fields


# The list's form ----------------------------------------------------------------


def test_the_list_has_a_checkbox_per_row_and_a_button_per_action(signed_in_client, box):
    page = signed_in_client.get(list_url(box)).content.decode()
    assert sorted(uids_in(signed_in_client, box, "INBOX")) == box.uids
    assert 'data-select-page aria-label="Select every message on this page"' in page
    for action in (
        "bulk-mark-read",
        "bulk-mark-unread",
        "bulk-flag",
        "bulk-unflag",
        "bulk-archive",
        "bulk-junk",
        "bulk-delete",
    ):
        assert f'formaction="{bulk_url(box, action)}"' in page
    menus = re.findall(r'<div class="selection-menu-list">(.*?)</div>', page, re.S)
    assert len(menus) == 2  # Move to… and Copy to…
    for menu in menus:
        offered = re.findall(r'name="target" value="([^"]*)"', menu)
        assert offered == ["Drafts", "Sent", "Archive", "Junk", "Trash"]
    # All five fit on the page: there is nothing more in the folder to select.
    assert "data-select-all" not in page
    assert "Empty Trash" not in page


def test_every_message_of_the_folder_can_be_chosen_when_there_are_more_pages(
    signed_in_client, box, settings
):
    settings.MESSAGES_PER_PAGE = 2
    page = signed_in_client.get(list_url(box)).content.decode()
    assert 'name="scope" value="all"' in page
    assert "Select all 5 messages in this folder" in page


def test_the_trash_offers_to_delete_for_good_and_to_be_emptied(signed_in_client, box):
    signed_in_client.post(bulk_url(box, "bulk-delete"), picked(box, 1))
    page = signed_in_client.get(list_url(box, "Trash")).content.decode()
    assert f'formaction="{bulk_url(box, "empty-trash", "Trash")}"' in page
    assert "Delete permanently…" in page
    assert "data-confirm=" in page


# Flags ---------------------------------------------------------------------------


def test_mark_read_unread_flag_and_unflag_touch_exactly_those(signed_in_client, box):
    response = signed_in_client.post(bulk_url(box, "bulk-mark-read"), picked(box, 1, 3, 4))
    assert response.status_code == 302
    assert box.flags("INBOX") == {
        "Message 1": {"seen"},
        "Message 2": set(),
        "Message 3": {"seen"},
        "Message 4": {"seen"},
        "Message 5": set(),
    }
    signed_in_client.post(bulk_url(box, "bulk-mark-unread"), picked(box, 3))
    signed_in_client.post(bulk_url(box, "bulk-flag"), picked(box, 2, 3, 5))
    response = signed_in_client.post(bulk_url(box, "bulk-unflag"), picked(box, 5), follow=True)
    assert "1 message was unflagged." in response.content.decode()
    assert box.flags("INBOX") == {
        "Message 1": {"seen"},
        "Message 2": {"flagged"},
        "Message 3": {"flagged"},
        "Message 4": {"seen"},
        "Message 5": set(),
    }


def test_every_message_of_the_folder_is_marked_at_once(signed_in_client, box):
    response = signed_in_client.post(
        bulk_url(box, "bulk-mark-read"), {"scope": "all", "uid": [box.uids[0]]}, follow=True
    )
    assert "Every message of this folder was marked as read." in response.content.decode()
    assert all(flags == {"seen"} for flags in box.flags("INBOX").values())
    # The list's unread counts follow at once.
    page = signed_in_client.get(list_url(box)).content.decode()
    assert "unread message" not in page


# Moving ----------------------------------------------------------------------------


def test_archive_moves_exactly_those_and_undo_brings_them_back(signed_in_client, box):
    response = signed_in_client.post(bulk_url(box, "bulk-archive"), picked(box, 2, 4), follow=True)
    assert response.redirect_chain == [(list_url(box), 302)]
    page = response.content.decode()
    assert "2 messages were moved to Archive." in page
    assert box.subjects("INBOX") == ["Message 1", "Message 3", "Message 5"]
    assert box.subjects("Archive") == ["Message 2", "Message 4"]

    action, fields = undo_form(page)
    assert action == bulk_url(box, "bulk-undo")
    response = signed_in_client.post(action, fields, follow=True)
    assert "2 messages were moved back to Inbox." in response.content.decode()
    assert box.subjects("INBOX") == [f"Message {n}" for n in range(1, 6)]
    assert box.subjects("Archive") == []

    # Undone once, it is forgotten.
    again = signed_in_client.post(action, fields, follow=True)
    assert "There is nothing to undo." in again.content.decode()
    assert box.subjects("Archive") == []


def test_delete_moves_to_the_trash_and_undo_brings_them_back(signed_in_client, box):
    response = signed_in_client.post(
        bulk_url(box, "bulk-delete"), picked(box, 1, 2, 5), follow=True
    )
    page = response.content.decode()
    assert "3 messages were moved to Trash." in page
    assert box.subjects("Trash") == ["Message 1", "Message 2", "Message 5"]

    action, fields = undo_form(page)
    signed_in_client.post(action, fields)
    assert box.subjects("Trash") == []
    assert box.subjects("INBOX") == [f"Message {n}" for n in range(1, 6)]


def test_undo_says_so_when_the_messages_are_gone_since(signed_in_client, box):
    response = signed_in_client.post(bulk_url(box, "bulk-delete"), picked(box, 1, 2), follow=True)
    signed_in_client.post(bulk_url(box, "empty-trash", "Trash"), {"confirm": "1"})
    # Emptying the trash forgot the move to it; an Undo sent all the same finds nothing.
    again = signed_in_client.post(*undo_form(response.content.decode()), follow=True)
    assert "There is nothing to undo." in again.content.decode()

    response = signed_in_client.post(bulk_url(box, "bulk-archive"), picked(box, 3), follow=True)
    box.discard("Archive")
    gone = signed_in_client.post(*undo_form(response.content.decode()), follow=True)
    assert "These messages can no longer be moved back." in gone.content.decode()
    assert box.subjects("INBOX") == ["Message 4", "Message 5"]


def test_only_the_last_move_can_be_undone(signed_in_client, box):
    first = signed_in_client.post(bulk_url(box, "bulk-archive"), picked(box, 1), follow=True)
    signed_in_client.post(bulk_url(box, "bulk-junk"), picked(box, 2))
    response = signed_in_client.post(*undo_form(first.content.decode()), follow=True)
    assert "There is nothing to undo." in response.content.decode()
    assert box.subjects("Archive") == ["Message 1"]
    assert box.subjects("Junk") == ["Message 2"]


def test_junk_move_and_copy_go_to_the_folder_chosen(signed_in_client, box):
    box.make_folder("Réunions")
    response = signed_in_client.post(bulk_url(box, "bulk-junk"), picked(box, 1), follow=True)
    assert "1 message was moved to Junk." in response.content.decode()
    response = signed_in_client.post(
        bulk_url(box, "bulk-move"), {**picked(box, 2, 3), "target": "Réunions"}, follow=True
    )
    assert "2 messages were moved to Réunions." in response.content.decode()
    response = signed_in_client.post(
        bulk_url(box, "bulk-copy"), {**picked(box, 4, 5), "target": "Archive"}, follow=True
    )
    page = response.content.decode()
    assert "2 messages were copied to Archive." in page
    assert "undo-form" not in page  # a copy is not undone: the copies can be deleted

    assert box.subjects("INBOX") == ["Message 4", "Message 5"]
    assert box.subjects("Junk") == ["Message 1"]
    assert {"Message 2", "Message 3"} <= set(box.subjects("Réunions"))
    assert box.subjects("Archive") == ["Message 4", "Message 5"]


@pytest.mark.parametrize(
    ("action", "target", "problem"),
    [
        ("bulk-move", "Nowhere", "The messages cannot be moved to Nowhere."),
        ("bulk-move", "INBOX", "The messages cannot be moved to INBOX."),
        ("bulk-move", "", "Choose the folder to move the messages to."),
        ("bulk-copy", "Nowhere", "The messages cannot be copied to Nowhere."),
    ],
)
def test_a_bad_target_is_refused(signed_in_client, box, action, target, problem):
    response = signed_in_client.post(
        bulk_url(box, action), {**picked(box, 1), "target": target}, follow=True
    )
    assert response.redirect_chain == [(list_url(box), 302)]
    assert problem in response.content.decode()
    assert box.subjects("INBOX") == [f"Message {n}" for n in range(1, 6)]


@pytest.mark.parametrize("data", [{}, {"uid": ["x"]}, {"uid": ["0"]}, {"uid": ["99999999999"]}])
def test_nothing_selected_is_refused(signed_in_client, box, data):
    response = signed_in_client.post(bulk_url(box, "bulk-archive"), data, follow=True)
    assert "Select one or more messages first." in response.content.decode()
    assert box.subjects("Archive") == []


def test_archive_is_refused_in_the_archive(signed_in_client, box):
    signed_in_client.post(bulk_url(box, "bulk-archive"), picked(box, 1))
    (archived,) = uids_in(signed_in_client, box, "Archive")
    response = signed_in_client.post(
        bulk_url(box, "bulk-archive", "Archive"), {"uid": [archived]}, follow=True
    )
    assert "There is no archive folder to move these messages to." in response.content.decode()
    assert box.subjects("Archive") == ["Message 1"]


def test_the_list_page_and_order_are_kept(signed_in_client, box):
    response = signed_in_client.post(
        bulk_url(box, "bulk-flag"), {**picked(box, 1), "page": "2", "sort": "subject", "dir": "asc"}
    )
    assert response["Location"] == list_url(box) + "&page=2&sort=subject&dir=asc"


# Deleting for good -------------------------------------------------------------------


def test_delete_in_the_trash_asks_first_then_deletes_those_for_good(signed_in_client, box):
    signed_in_client.post(bulk_url(box, "bulk-delete"), picked(box, 1, 2, 3))
    trashed = uids_in(signed_in_client, box, "Trash")
    assert len(trashed) == 3

    asked = signed_in_client.post(
        bulk_url(box, "bulk-delete", "Trash"), {"uid": trashed[:2], "page": "1"}
    )
    assert asked.status_code == 200
    question = asked.content.decode()
    assert "Delete 2 messages permanently?" in question
    assert "this cannot be undone" in question
    assert box.subjects("Trash") == ["Message 1", "Message 2", "Message 3"]
    fields = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', question)
    assert ("uid", str(trashed[0])) in fields and ("confirm", "1") in fields

    data: dict[str, list[str]] = {}
    for name, value in fields:
        data.setdefault(name, []).append(value)
    response = signed_in_client.post(bulk_url(box, "bulk-delete", "Trash"), data, follow=True)
    page = response.content.decode()
    assert "2 messages were deleted permanently." in page
    assert "undo-form" not in page
    assert len(box.subjects("Trash")) == 1
    assert box.subjects("INBOX") == ["Message 4", "Message 5"]


def test_empty_trash_asks_first_then_empties_it_alone(signed_in_client, box):
    signed_in_client.post(bulk_url(box, "bulk-delete"), picked(box, 1, 2))
    signed_in_client.post(bulk_url(box, "bulk-archive"), picked(box, 3))

    asked = signed_in_client.post(bulk_url(box, "empty-trash", "Trash"))
    assert "Empty the trash: delete every message in it permanently?" in asked.content.decode()
    assert box.subjects("Trash") == ["Message 1", "Message 2"]

    response = signed_in_client.post(
        bulk_url(box, "empty-trash", "Trash"), {"confirm": "1"}, follow=True
    )
    assert response.redirect_chain == [(list_url(box, "Trash"), 302)]
    assert "The trash was emptied." in response.content.decode()
    assert box.subjects("Trash") == []
    assert box.subjects("Archive") == ["Message 3"]
    assert box.subjects("INBOX") == ["Message 4", "Message 5"]


# Whose mail, and how ------------------------------------------------------------------


def test_another_persons_account_is_a_404_and_nothing_changes(client, box, django_user_model):
    intruder = django_user_model.objects.create_user(username="intruder", password="x-Pass-123!")
    client.force_login(intruder)
    for action, data in (
        ("bulk-mark-read", picked(box, 1)),
        ("bulk-archive", picked(box, 1)),
        ("bulk-delete", {**picked(box, 1), "confirm": "1"}),
        ("bulk-move", {**picked(box, 1), "target": "Junk"}),
        ("bulk-copy", {**picked(box, 1), "target": "Junk"}),
        ("empty-trash", {"confirm": "1"}),
        ("bulk-undo", {"token": "x"}),
    ):
        assert client.post(bulk_url(box, action), data).status_code == 404
    assert box.subjects("INBOX") == [f"Message {n}" for n in range(1, 6)]
    assert all(not flags for flags in box.flags("INBOX").values())


def test_actions_are_post_only_and_need_the_csrf_token(person, signed_in_client, box):
    assert signed_in_client.get(bulk_url(box, "bulk-archive")).status_code == 405
    guarded = Client(enforce_csrf_checks=True)
    guarded.force_login(person)
    response = guarded.post(bulk_url(box, "bulk-archive"), picked(box, 1))
    assert response.status_code == 403
    assert box.subjects("Archive") == []


# One command each, however many messages -----------------------------------------------


def test_each_action_is_one_imap_command_for_the_set_checked(signed_in_client, imap_box):
    box = imap_box
    signed_in_client.get(list_url(box))  # signed in, folders listed and counted
    expected = {
        "bulk-mark-read": ("UID STORE 1,3,5 +FLAGS.SILENT (\\Seen)",),
        "bulk-flag": ("UID STORE 1,3,5 +FLAGS.SILENT (\\Flagged)",),
        "bulk-unflag": ("UID STORE 1,3,5 -FLAGS.SILENT (\\Flagged)",),
        "bulk-mark-unread": ("UID STORE 1,3,5 -FLAGS.SILENT (\\Seen)",),
        "bulk-archive": ("UID MOVE 1,3,5 Archive",),
    }
    for action, commands in expected.items():
        with imap_commands() as sent:
            signed_in_client.post(bulk_url(box, action), picked(box, 1, 3, 5))
        assert tuple(changes(sent)) == commands, action
    assert box.subjects("Archive") == ["Message 1", "Message 3", "Message 5"]


def test_mail_the_pools_session_has_not_seen_yet_is_acted_on_too(imap_box, mail_server):
    box = imap_box
    store = ImapStore(box.account)
    assert store.page("INBOX", 1, per_page=50).total == 5  # the session sees five
    mail_server.deliver(box.account.email, message(6))
    mail_server.deliver(box.account.email, message(7))

    store.add_flags("INBOX", ALL, ["\\Flagged"])
    assert all(flags == {"flagged"} for flags in box.flags("INBOX").values())
    assert store.move("INBOX", [7], "Archive").count == 1
    assert box.subjects("Archive") == ["Message 7"]


def test_a_move_of_every_message_is_one_command_and_so_is_its_undo(
    signed_in_client, person, mail_server, mail_user, message_list
):
    seed_maildir(mail_server, mail_user.address, 3000)
    account = make_account(person, mail_server, mail_user)
    signed_in_client.get(reverse("webmail:mailbox", args=[account.pk]))
    url = reverse("webmail:bulk-archive", args=[account.pk]) + "?folder=INBOX"

    with imap_commands() as sent:
        response = signed_in_client.post(url, {"scope": "all"})
    assert changes(sent) == ["UID MOVE 1:* Archive"]
    page = signed_in_client.get(response["Location"]).content.decode()
    assert "3,000 messages were moved to Archive." in page

    action, fields = undo_form(page)
    with imap_commands() as sent:
        response = signed_in_client.post(action, fields)
    assert changes(sent) == ["UID MOVE 1:3000 INBOX"]
    page = signed_in_client.get(response["Location"]).content.decode()
    assert "3,000 messages were moved back to Inbox." in page
    with imap_of(mail_server, account) as client:
        assert client.select_folder("INBOX", readonly=True)[b"EXISTS"] == 3000
        assert client.select_folder("Archive", readonly=True)[b"EXISTS"] == 0


def test_a_folder_of_100000_messages_is_marked_in_one_command(
    signed_in_client, person, mail_server, mail_user, message_list
):
    seed_maildir(mail_server, mail_user.address, 100_000)
    account = make_account(person, mail_server, mail_user)
    store = ImapStore(account)
    assert store.page("INBOX", 1, per_page=50).total == 100_000  # Dovecot indexes the folder

    with imap_commands() as sent:
        store.add_flags("INBOX", ALL, ["\\Seen"])
    assert changes(sent) == ["UID STORE 1:* +FLAGS.SILENT (\\Seen)"]

    url = reverse("webmail:bulk-flag", args=[account.pk]) + "?folder=INBOX"
    with imap_commands() as sent:
        response = signed_in_client.post(url, {"scope": "all"})
    assert changes(sent) == ["UID STORE 1:* +FLAGS.SILENT (\\Flagged)"]
    page = signed_in_client.get(response["Location"]).content.decode()
    assert "Every message of this folder was flagged." in page

    with imap_of(mail_server, account) as client:
        client.select_folder("INBOX", readonly=True)
        assert client.search(["UNSEEN"]) == []
        assert client.search(["UNFLAGGED"]) == []


# The local store: one statement each ------------------------------------------------------


def statements(queries: CaptureQueriesContext, verb: str) -> list[str]:
    table = LocalMessage._meta.db_table
    return [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith(verb) and table in q["sql"]
    ]


def test_local_actions_on_every_message_are_one_statement_each(
    signed_in_client, person, mail_server, mail_user
):
    account = make_account(person, mail_server, mail_user, protocol=Protocol.POP3)
    count = 100_000
    LocalMessage.objects.bulk_create(
        (
            LocalMessage(
                account=account,
                folder="INBOX",
                uid=uid,
                raw=b"Subject: seeded\r\n\r\nBody.\r\n",
                size=26,
                subject=f"Message {uid}",
            )
            for uid in range(1, count + 1)
        ),
        batch_size=5000,
    )
    LocalMailbox.objects.create(account=account, next_uid=count + 1)

    def post(action: str, folder: str = "INBOX", **data) -> tuple[str, CaptureQueriesContext]:
        url = reverse(f"webmail:{action}", args=[account.pk]) + f"?folder={folder}"
        with CaptureQueriesContext(connection) as queries:
            response = signed_in_client.post(url, data, follow=True)
        return response.content.decode(), queries

    __, queries = post("bulk-mark-read", scope="all")
    assert len(statements(queries, "UPDATE")) == 1
    assert not account.local_messages.filter(seen=False).exists()

    page, queries = post("bulk-archive", scope="all")
    assert len(statements(queries, "UPDATE")) == 1
    assert "100,000 messages were moved to Archive." in page
    assert account.local_messages.filter(folder="Archive").count() == count

    action, fields = undo_form(page)
    with CaptureQueriesContext(connection) as queries:
        signed_in_client.post(action, fields)
    assert len(statements(queries, "UPDATE")) == 1
    assert account.local_messages.filter(folder="INBOX").count() == count

    __, queries = post("bulk-delete", scope="all")
    assert len(statements(queries, "UPDATE")) == 1
    assert account.local_messages.filter(folder="Trash").count() == count

    __, queries = post("empty-trash", folder="Trash", confirm="1")
    assert len(statements(queries, "DELETE")) == 1
    assert not account.local_messages.exists()


def test_a_local_copy_is_one_insert_with_new_uids(signed_in_client, local_box):
    box = local_box
    with CaptureQueriesContext(connection) as queries:
        signed_in_client.post(
            bulk_url(box, "bulk-copy"), {"scope": "all", "target": "Archive"}, follow=True
        )
    assert len(statements(queries, "INSERT")) == 1
    copies = box.account.local_messages.filter(folder="Archive")
    assert sorted(copies.values_list("subject", flat=True)) == box.subjects("INBOX")
    every = list(box.account.local_messages.values_list("uid", flat=True))
    assert len(set(every)) == 10
    # The next message stored gets a UID of its own.
    box.make_folder("Later")
    assert len(set(box.account.local_messages.values_list("uid", flat=True))) == 11


def test_without_uidplus_a_move_is_done_but_not_offered_for_undo(
    signed_in_client, person, basic_mail_server, basic_mail_user, message_list
):
    for number in (1, 2, 3):
        basic_mail_server.deliver(basic_mail_user.address, message(number))
    account = make_account(person, basic_mail_server, basic_mail_user)
    url = reverse("webmail:bulk-archive", args=[account.pk]) + "?folder=INBOX"
    response = signed_in_client.post(url, {"uid": [1, 3]}, follow=True)
    page = response.content.decode()
    assert "2 messages were moved to Archive." in page
    assert "undo-form" not in page
    with imap_of(basic_mail_server, account) as client:
        client.select_folder("Archive", readonly=True)
        assert len(client.search(["ALL"])) == 2
        client.select_folder("INBOX", readonly=True)
        # Without UIDPLUS the originals stay behind, marked deleted (see ImapStore.move).
        assert client.search(["NOT", "DELETED"]) == [2]


# Conversations ---------------------------------------------------------------------


def reply_to(number: int, parent: int) -> bytes:
    """Message ``number``, an answer to message ``parent``."""
    answer = EmailMessage()
    answer["From"] = "Bruno <bruno@example.org>"
    answer["To"] = "me@example.test"
    answer["Subject"] = f"Re: Message {parent}"
    answer["Date"] = f"Tue, {number:02d} Mar 2025 10:15:00 +0100"
    answer["Message-ID"] = f"<bulk-{number}@example.org>"
    answer["In-Reply-To"] = answer["References"] = f"<bulk-{parent}@example.org>"
    answer.set_content(f"Answer {number}.")
    return answer.as_bytes()


def test_a_conversation_is_selected_and_archived_as_all_its_messages(
    signed_in_client, person, mail_server, mail_user
):
    mail_server.deliver(mail_user.address, message(1))
    mail_server.deliver(mail_user.address, message(2))
    mail_server.deliver(mail_user.address, reply_to(3, 1))
    account = make_account(person, mail_server, mail_user)
    url = reverse("webmail:mailbox", args=[account.pk]) + "?folder=INBOX"
    page = signed_in_client.get(url).content.decode()
    boxes = re.findall(r'name="uid" value="([\d,]+)"', page)
    assert sorted(boxes) == ["1,3", "2"]  # one box per conversation

    response = signed_in_client.post(
        reverse("webmail:bulk-archive", args=[account.pk]) + "?folder=INBOX",
        {"uid": ["1,3"]},
        follow=True,
    )
    assert "2 messages were moved to Archive." in response.content.decode()
    with imap_of(mail_server, account) as client:
        client.select_folder("Archive", readonly=True)
        assert len(client.search(["ALL"])) == 2
        client.select_folder("INBOX", readonly=True)
        assert len(client.search(["ALL"])) == 1
