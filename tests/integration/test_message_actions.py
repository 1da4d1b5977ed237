"""Archive, delete and move a message: ImapStore.move on the real Dovecot, and the message
page's actions for an IMAP account and for a POP3 account's local store."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse
from imapclient import IMAPClient

from accounts.models import MailAccount, Protocol
from tests.support.accounts import make_account
from tests.support.mailboxes import imap as imap_of
from webmail import pop3fetch
from webmail.mailstore.base import FolderNotFound
from webmail.mailstore.imap import ImapStore
from webmail.mailstore.local import allocate_uid
from webmail.mailstore.pool import ImapSession
from webmail.models import LocalMailbox, LocalMessage

pytestmark = pytest.mark.integration


def message(number: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Zoé Martin <zoe@example.org>"
    msg["To"] = "me@example.test"
    msg["Subject"] = f"Message {number}"
    msg["Date"] = f"Tue, {number:02d} Mar 2025 10:15:00 +0100"
    msg["Message-ID"] = f"<message-{number}@example.org>"
    msg.set_content(f"Body of message {number}.")
    return msg.as_bytes()


def without(capability: str, monkeypatch) -> None:
    """Make the store believe the server lacks ``capability``."""
    has = ImapSession.has
    monkeypatch.setattr(ImapSession, "has", lambda self, cap: cap != capability and has(self, cap))


def forbid(name: str, monkeypatch) -> None:
    """Fail the test if the store sends this IMAP command."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"{name.upper()} was not meant to be sent")

    monkeypatch.setattr(IMAPClient, name, refuse)


def subjects(client: IMAPClient, folder: str) -> list[str]:
    client.select_folder(folder, readonly=True)
    fetched = client.fetch(client.search(["ALL"]), ["ENVELOPE"])
    return sorted(data[b"ENVELOPE"].subject.decode() for data in fetched.values())


# ImapStore.move ---------------------------------------------------------------


@pytest.fixture
def store(mail_account) -> ImapStore:
    return ImapStore(mail_account)


@pytest.fixture
def five(imap) -> IMAPClient:
    """INBOX holding messages 1 to 5 (UIDs 1 to 5); 5 marked deleted by another program."""
    imap.multiappend("INBOX", [message(n) for n in range(1, 6)])
    imap.select_folder("INBOX")
    imap.add_flags([5], [b"\\Deleted"])
    return imap


def test_move_takes_exactly_those_messages_in_one_move_command(store, five, monkeypatch):
    forbid("copy", monkeypatch)

    store.move("INBOX", [2, 4, 99], "Archive")

    assert subjects(five, "INBOX") == ["Message 1", "Message 3", "Message 5"]
    assert subjects(five, "Archive") == ["Message 2", "Message 4"]
    five.select_folder("INBOX", readonly=True)
    assert five.search(["DELETED"]) == [5]


def test_move_without_the_move_extension_copies_then_expunges_those_only(store, five, monkeypatch):
    without("MOVE", monkeypatch)
    forbid("move", monkeypatch)

    store.move("INBOX", [2, 4], "Archive")

    assert subjects(five, "INBOX") == ["Message 1", "Message 3", "Message 5"]
    assert subjects(five, "Archive") == ["Message 2", "Message 4"]
    # The message another program only marked deleted is still there.
    five.select_folder("INBOX", readonly=True)
    assert five.search(["DELETED"]) == [5]
    assert [m.uid for m in store.page("INBOX", 1, per_page=50).items] == [5, 3, 1]


def test_move_without_move_nor_uidplus_leaves_the_originals_marked_deleted(
    store, five, monkeypatch
):
    without("MOVE", monkeypatch)
    without("UIDPLUS", monkeypatch)

    store.move("INBOX", [2], "Archive")

    assert subjects(five, "Archive") == ["Message 2"]
    five.select_folder("INBOX", readonly=True)
    assert five.search(["ALL"]) == [1, 2, 3, 4, 5]
    assert five.search(["DELETED"]) == [2, 5]


def test_move_refreshes_the_cached_counts_of_both_folders(store, five):
    counts = {f.name: (f.unread, f.total) for f in store.folders()}
    assert (counts["INBOX"], counts["Trash"]) == ((5, 5), (0, 0))

    store.move("INBOX", [1, 2], "Trash")

    counts = {f.name: (f.unread, f.total) for f in store.folders()}
    assert (counts["INBOX"], counts["Trash"]) == ((3, 3), (2, 2))


def test_move_to_a_folder_that_does_not_exist_is_refused_and_moves_nothing(store, five):
    with pytest.raises(FolderNotFound, match="Nowhere"):
        store.move("INBOX", [1], "Nowhere")
    assert len(subjects(five, "INBOX")) == 5
    # The session is still good for the next request.
    store.move("INBOX", [1], "Junk")
    assert subjects(five, "Junk") == ["Message 1"]


def test_move_of_nothing_or_to_the_same_folder_changes_nothing(store, five):
    store.move("INBOX", [], "Archive")
    store.move("INBOX", [1], "INBOX")
    five.select_folder("INBOX", readonly=True)
    assert five.search(["ALL"]) == [1, 2, 3, 4, 5]


# The message page's actions, for both kinds of account --------------------------


@dataclass
class Box:
    """An account whose INBOX holds messages 1, 2 and 3, and how to look into it."""

    account: MailAccount
    uids: list[int]  # of messages 1, 2 and 3
    subjects: Callable[[str], list[str]]  # of a folder, sorted, read without the app
    make_folder: Callable[[str], None]


@pytest.fixture(params=["imap", "pop3"])
def box(request, person, mail_server, mail_user) -> Box:
    for number in (1, 2, 3):
        mail_server.deliver(mail_user.address, message(number))
    if request.param == "imap":
        account = make_account(person, mail_server, mail_user)

        def imap_subjects(folder: str) -> list[str]:
            with imap_of(mail_server, account) as client:
                return subjects(client, folder)

        def create(folder: str) -> None:
            with imap_of(mail_server, account) as client:
                client.create_folder(folder)

        return Box(account, [1, 2, 3], imap_subjects, create)

    account = make_account(person, mail_server, mail_user, protocol=Protocol.POP3)
    assert pop3fetch.fetch(account).new == 3

    def local_subjects(folder: str) -> list[str]:
        return sorted(
            account.local_messages.filter(folder=folder).values_list("subject", flat=True)
        )

    def keep_one_in(folder: str) -> None:
        # A local folder exists while it holds a message.
        row = LocalMessage.from_bytes(account, message(9), uid=0, folder=folder)
        LocalMailbox.objects.get_or_create(account_id=account.pk)
        with transaction.atomic():
            row.uid = allocate_uid(account.pk)
            row.save()

    uids = [account.local_messages.get(subject=f"Message {number}").uid for number in (1, 2, 3)]
    return Box(account, uids, local_subjects, keep_one_in)


def action_url(box: Box, action: str, uid: int, folder: str = "INBOX", **query) -> str:
    url = reverse(f"webmail:message-{action}", args=[box.account.pk, uid])
    return url + "?" + "&".join(f"{k}={v}" for k, v in {"folder": folder, **query}.items())


def page_of(client: Client, box: Box, uid: int, folder: str = "INBOX") -> str:
    url = reverse("webmail:message", args=[box.account.pk, uid]) + f"?folder={folder}"
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def list_url(box: Box, folder: str = "INBOX") -> str:
    return reverse("webmail:mailbox", args=[box.account.pk]) + f"?folder={folder}"


def form_action(page: str, action: str) -> str:
    found = re.search(rf'<form method="post" action="([^"]+/{action}/[^"]*)"', page)
    assert found, f"no {action} form"
    return found.group(1).replace("&amp;", "&")


def uids_in(client: Client, box: Box, folder: str) -> list[int]:
    """The UIDs a folder's list links to, as the person finds them."""
    response = client.get(list_url(box, folder))
    return [int(uid) for uid in re.findall(r'data-uid="(\d+)"', response.content.decode())]


def test_the_message_page_offers_archive_delete_and_the_other_folders(signed_in_client, box):
    page = page_of(signed_in_client, box, box.uids[0])
    assert form_action(page, "archive").endswith(f"/m/{box.uids[0]}/archive/?folder=INBOX")
    assert "/delete/?folder=INBOX&v=" in form_action(page, "delete")
    assert form_action(page, "move").endswith("/move/?folder=INBOX")
    assert ">Delete</button>" in page
    select = re.search(r'<select name="target".*?</select>', page, re.S).group(0)
    offered = re.findall(r'<option value="([^"]*)"', select)
    assert offered == ["", "Drafts", "Sent", "Archive", "Junk", "Trash"]


def test_archive_moves_the_message_and_the_list_says_so(signed_in_client, box):
    response = signed_in_client.post(action_url(box, "archive", box.uids[1]), follow=True)
    assert response.redirect_chain == [(list_url(box), 302)]
    assert "The message was archived." in response.content.decode()
    assert box.subjects("INBOX") == ["Message 1", "Message 3"]
    assert box.subjects("Archive") == ["Message 2"]


def test_archive_is_not_offered_in_the_archive_and_refused_there(signed_in_client, box):
    signed_in_client.post(action_url(box, "archive", box.uids[0]))
    (archived,) = uids_in(signed_in_client, box, "Archive")
    page = page_of(signed_in_client, box, archived, folder="Archive")
    assert "/archive/" not in page
    response = signed_in_client.post(
        action_url(box, "archive", archived, folder="Archive"), follow=True
    )
    assert response.redirect_chain[0][0].startswith(
        reverse("webmail:message", args=[box.account.pk, archived])
    )
    assert "There is no archive folder to move this message to." in response.content.decode()
    assert box.subjects("Archive") == ["Message 1"]


def test_delete_moves_the_message_to_the_trash(signed_in_client, box):
    response = signed_in_client.post(action_url(box, "delete", box.uids[0]), follow=True)
    assert response.redirect_chain == [(list_url(box), 302)]
    assert "The message was moved to Trash." in response.content.decode()
    assert box.subjects("INBOX") == ["Message 2", "Message 3"]
    assert box.subjects("Trash") == ["Message 1"]


def test_delete_in_the_trash_asks_first_then_deletes_for_good(signed_in_client, box):
    signed_in_client.post(action_url(box, "delete", box.uids[2]))
    (trashed,) = uids_in(signed_in_client, box, "Trash")
    page = page_of(signed_in_client, box, trashed, folder="Trash")
    assert "Delete permanently…" in page
    delete_url = form_action(page, "delete")

    asked = signed_in_client.post(delete_url)
    assert asked.status_code == 200
    question = asked.content.decode()
    assert "Delete this message permanently?" in question
    assert "Message 3" in question
    assert 'name="confirm" value="1"' in question
    assert box.subjects("Trash") == ["Message 3"]

    response = signed_in_client.post(delete_url, {"confirm": "1"}, follow=True)
    assert response.redirect_chain == [(list_url(box, "Trash"), 302)]
    assert "The message was deleted permanently." in response.content.decode()
    assert box.subjects("Trash") == []
    assert box.subjects("INBOX") == ["Message 1", "Message 2"]


def test_move_takes_the_message_to_the_chosen_folder(signed_in_client, box):
    box.make_folder("Réunions")
    page = page_of(signed_in_client, box, box.uids[0])
    assert '<option value="Réunions">Réunions</option>' in page
    response = signed_in_client.post(
        action_url(box, "move", box.uids[0]), {"target": "Réunions"}, follow=True
    )
    assert response.redirect_chain == [(list_url(box), 302)]
    assert "The message was moved to Réunions." in response.content.decode()
    assert "Message 1" in box.subjects("Réunions")
    assert box.subjects("INBOX") == ["Message 2", "Message 3"]


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        ("Nowhere", "The message cannot be moved to Nowhere."),
        ("INBOX", "The message cannot be moved to INBOX."),
        ("", "Choose the folder to move the message to."),
    ],
)
def test_a_bad_target_is_refused_on_the_message_page(signed_in_client, box, target, problem):
    uid = box.uids[0]
    response = signed_in_client.post(action_url(box, "move", uid), {"target": target}, follow=True)
    assert response.redirect_chain == [
        (reverse("webmail:message", args=[box.account.pk, uid]) + "?folder=INBOX", 302)
    ]
    assert problem in response.content.decode()
    assert box.subjects("INBOX") == ["Message 1", "Message 2", "Message 3"]


def test_the_list_page_and_order_are_kept(signed_in_client, box):
    response = signed_in_client.post(
        action_url(box, "delete", box.uids[0], page=2, sort="subject", dir="asc")
    )
    assert response["Location"] == list_url(box) + "&page=2&sort=subject&dir=asc"


def test_another_persons_account_is_a_404_and_nothing_moves(client, box, django_user_model):
    intruder = django_user_model.objects.create_user(username="intruder", password="x-Pass-123!")
    client.force_login(intruder)
    for action, data in (
        ("archive", {}),
        ("delete", {"confirm": "1"}),
        ("move", {"target": "Junk"}),
    ):
        assert client.post(action_url(box, action, box.uids[0]), data).status_code == 404
    assert box.subjects("INBOX") == ["Message 1", "Message 2", "Message 3"]


def test_actions_are_post_only(signed_in_client, box):
    for action in ("archive", "delete", "move"):
        assert signed_in_client.get(action_url(box, action, box.uids[0])).status_code == 405
    assert box.subjects("INBOX") == ["Message 1", "Message 2", "Message 3"]


def test_actions_need_the_csrf_token(person, box):
    client = Client(enforce_csrf_checks=True)
    client.force_login(person)
    for action in ("archive", "delete", "move"):
        response = client.post(action_url(box, action, box.uids[0]), {"target": "Junk"})
        assert response.status_code == 403
    assert box.subjects("INBOX") == ["Message 1", "Message 2", "Message 3"]
