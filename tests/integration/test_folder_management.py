"""Managing folders from their page, for an IMAP account on the real Dovecot and for a
POP3 account's local store; and the quota the folder pane shows."""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from html import unescape

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import MailAccount, Protocol
from tests.conftest import MailUser
from tests.support.accounts import make_account
from tests.support.mailboxes import imap as imap_of
from webmail import mailstore, sync
from webmail.mailstore.base import FolderProtected, Quota
from webmail.mailstore.imap import ImapStore
from webmail.mailstore.local import LocalStore
from webmail.models import LocalFolder, LocalMessage

pytestmark = pytest.mark.integration

MEETINGS = "Réunions"
SUMMER = "Été 2025"


@dataclass
class Box:
    """A person's account of one kind, and how to see its folders without the app."""

    account: MailAccount
    names: Callable[[], list[str]]  # every folder, as the server or the database has them
    subscribed: Callable[[], set[str]]


@pytest.fixture(params=["imap", "pop3"])
def box(request, person, mail_server, mail_user) -> Box:
    if request.param == "imap":
        account = make_account(person, mail_server, mail_user)

        def imap_names() -> list[str]:
            with imap_of(mail_server, account) as client:
                return sorted(name for __, __, name in client.list_folders())

        def imap_subscribed() -> set[str]:
            with imap_of(mail_server, account) as client:
                return {name for __, __, name in client.list_sub_folders()}

        return Box(account, imap_names, imap_subscribed)

    account = make_account(person, mail_server, mail_user, protocol=Protocol.POP3)

    def local_names() -> list[str]:
        return sorted(f.name for f in LocalStore(account).folders())

    def local_subscribed() -> set[str]:
        return {f.name for f in LocalStore(account).folders() if f.subscribed}

    return Box(account, local_names, local_subscribed)


def manage_url(account: MailAccount) -> str:
    return reverse("webmail:folders", args=[account.pk])


def folder_url(name: str, account: MailAccount, folder: str) -> str:
    return reverse(name, args=[account.pk]) + "?" + f"folder={folder}"


def create(client: Client, account: MailAccount, name: str, parent: str = ""):
    return client.post(manage_url(account), {"name": name, "parent": parent})


def rename(client: Client, account: MailAccount, folder: str, name: str, parent: str = ""):
    url = reverse("webmail:folder-rename", args=[account.pk])
    return client.post(url, {"name": name, "parent": parent}, query_params={"folder": folder})


def delete(client: Client, account: MailAccount, folder: str):
    url = reverse("webmail:folder-delete", args=[account.pk])
    return client.post(url, query_params={"folder": folder})


def subscription(client: Client, account: MailAccount, folder: str, subscribed: bool):
    url = reverse("webmail:folder-subscription", args=[account.pk])
    return client.post(
        url, {"subscribed": "1" if subscribed else "0"}, query_params={"folder": folder}
    )


def flash(client: Client, account: MailAccount) -> str:
    """What the manage page says of the last change, in the words a person reads."""
    page = client.get(manage_url(account)).content.decode()
    match = re.search(r'<ul class="flash".*?</ul>', page, re.S)
    return unescape(match.group(0)) if match else ""


def pane_names(client: Client, account: MailAccount, folder: str = "INBOX") -> list[str]:
    """The folder names the folder pane lists beside a folder's messages."""
    url = reverse("webmail:mailbox", args=[account.pk])
    page = client.get(url, {"folder": folder}).content.decode()
    pane = page.split('id="folder-list"', 1)[1].split("</ul>", 1)[0]
    return [unescape(name) for name in re.findall(r'class="folder-name">([^<]*)<', pane)]


def field_errors(response, field: str) -> list[str]:
    """The errors shown under a field of the page's form, as a person reads them."""
    page = response.content.decode()
    match = re.search(rf'id="id_{field}_errors"[^>]*>(.*?)</ul>', page, re.S)
    return [unescape(e) for e in re.findall(r"<li>(.*?)</li>", match.group(1))] if match else []


def test_create_nest_rename_and_delete_with_non_ascii_names(signed_in_client, box):
    client, account = signed_in_client, box.account

    response = create(client, account, MEETINGS)
    assert response.status_code == 302 and response.url == manage_url(account)
    assert create(client, account, SUMMER, parent=MEETINGS).status_code == 302
    assert "The folder Réunions / Été 2025 was created." in flash(client, account)
    assert create(client, account, "Projets").status_code == 302

    names = box.names()
    assert {MEETINGS, f"{MEETINGS}/{SUMMER}", "Projets"} <= set(names)
    assert {MEETINGS, f"{MEETINGS}/{SUMMER}", "Projets"} <= box.subscribed()
    assert {MEETINGS, SUMMER, "Projets"} <= set(pane_names(client, account))

    # Moved under another parent and renamed at once: the subfolder goes along.
    response = rename(client, account, MEETINGS, "Comités", parent="Projets")
    assert response.status_code == 302
    assert "The folder Réunions is now Projets / Comités." in flash(client, account)
    names = box.names()
    assert "Projets/Comités" in names and f"Projets/Comités/{SUMMER}" in names
    assert MEETINGS not in names and f"{MEETINGS}/{SUMMER}" not in names
    subscribed = box.subscribed()
    assert {"Projets/Comités", f"Projets/Comités/{SUMMER}"} <= subscribed
    assert MEETINGS not in subscribed and f"{MEETINGS}/{SUMMER}" not in subscribed

    confirm = client.get(
        reverse("webmail:folder-delete", args=[account.pk]), query_params={"folder": "Projets"}
    )
    assert confirm.status_code == 200
    text = unescape(confirm.content.decode())
    assert "Delete the folder “Projets”?" in text
    assert f"Projets/Comités/{SUMMER}" in text  # its subfolders are named
    assert "It holds no messages." in text
    assert box.names().count("Projets") == 1  # asking deletes nothing

    response = delete(client, account, "Projets")
    assert response.status_code == 302
    assert not [name for name in box.names() if name.startswith("Projets")]
    assert not [name for name in box.subscribed() if name.startswith("Projets")]
    assert "The folder Projets was deleted." in flash(client, account)


def test_deleting_a_folder_deletes_its_messages_after_saying_how_many(
    signed_in_client, box, mail_server, mail_user
):
    client, account = signed_in_client, box.account
    create(client, account, MEETINGS)
    create(client, account, SUMMER, parent=MEETINGS)
    store = mailstore.for_account(account)
    raw = b"From: a@example.org\r\nSubject: Ordre du jour\r\n\r\nBonjour\r\n"
    store.append(MEETINGS, raw)
    store.append(f"{MEETINGS}/{SUMMER}", raw)
    store.append(f"{MEETINGS}/{SUMMER}", raw)

    confirm = client.get(
        reverse("webmail:folder-delete", args=[account.pk]), query_params={"folder": MEETINGS}
    )
    assert "It holds 3 messages, which will be deleted with it." in confirm.content.decode()

    assert delete(client, account, MEETINGS).status_code == 302
    assert not [name for name in box.names() if name.startswith(MEETINGS)]
    if account.protocol == Protocol.POP3:
        assert not LocalMessage.objects.filter(account=account, folder__startswith=MEETINGS)
    # A new folder of the same name starts empty.
    create(client, account, MEETINGS)
    assert store.folder_status(MEETINGS).total == 0


@pytest.mark.parametrize("special", ["INBOX", "Drafts", "Sent", "Archive", "Junk", "Trash"])
def test_special_use_folders_are_protected(signed_in_client, box, special):
    client, account = signed_in_client, box.account
    before = box.names()

    for response in (
        delete(client, account, special),
        rename(client, account, special, "Elsewhere"),
        client.get(
            reverse("webmail:folder-rename", args=[account.pk]), query_params={"folder": special}
        ),
        client.get(
            reverse("webmail:folder-delete", args=[account.pk]), query_params={"folder": special}
        ),
    ):
        assert response.status_code == 302
        assert response.url == manage_url(account)
    assert box.names() == before
    assert "Special-use folders are protected" in flash(client, account)

    with pytest.raises(FolderProtected):
        mailstore.for_account(account).delete_folder(special)
    assert box.names() == before


def test_the_manage_page_offers_no_rename_or_delete_for_special_folders(signed_in_client, box):
    client, account = signed_in_client, box.account
    create(client, account, MEETINGS)
    page = client.get(manage_url(account)).content.decode()

    def links_for(folder: str) -> bool:
        return f'folders/delete/?folder={folder}"' in page

    assert links_for("R%C3%A9unions")
    assert not any(links_for(name) for name in ("INBOX", "Drafts", "Sent", "Trash"))


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "Enter a name for the folder."),
        ("Réunions/Été", "A folder name cannot contain “/”."),
        ("Deux\r\nlignes", "A folder name must be on one line, without control characters."),
        ("x" * 101, "A folder name can be at most 100 characters long."),
        ("Projets*", "A folder name cannot contain * or %."),
        ("Trash", "There is already a folder with this name there."),
        ("inbox", "There is already a folder with this name there."),
    ],
)
def test_names_refused_are_explained_under_the_field(signed_in_client, box, name, message):
    client, account = signed_in_client, box.account
    before = box.names()

    response = create(client, account, name)

    assert response.status_code == 200
    assert any(error.startswith(message) for error in field_errors(response, "name"))
    assert box.names() == before


def test_a_duplicate_inside_a_parent_and_a_rename_onto_an_existing_folder(signed_in_client, box):
    client, account = signed_in_client, box.account
    create(client, account, MEETINGS)
    create(client, account, SUMMER, parent=MEETINGS)
    create(client, account, "Projets")

    again = create(client, account, SUMMER, parent=MEETINGS)
    assert field_errors(again, "name") == ["There is already a folder with this name there."]

    onto = rename(client, account, "Projets", SUMMER, parent=MEETINGS)
    assert field_errors(onto, "name") == ["There is already a folder with this name there."]
    # Dovecot would rename onto Drafts before it made it on disk: it is refused first.
    onto_special = rename(client, account, "Projets", "Drafts")
    assert field_errors(onto_special, "name") == ["There is already a folder with this name there."]
    inside_itself = rename(client, account, MEETINGS, "Boucle", parent=f"{MEETINGS}/{SUMMER}")
    assert inside_itself.status_code == 200 and "parent" in inside_itself.context["form"].errors
    assert {"Projets", MEETINGS, f"{MEETINGS}/{SUMMER}"} <= set(box.names())


def test_a_name_the_server_refuses_is_explained_under_the_field(signed_in_client, mail_account):
    # Dovecot's Maildir++ layout keeps folders in dot-separated directories.
    response = create(signed_in_client, mail_account, "v1.2")

    assert response.status_code == 200
    [error] = field_errors(response, "name")
    assert error.startswith("The mail server refused the request:")
    assert "not allowed" in error


def test_unsubscribed_folders_leave_the_pane_but_stay_on_the_manage_page(signed_in_client, box):
    client, account = signed_in_client, box.account
    create(client, account, MEETINGS)
    create(client, account, SUMMER, parent=MEETINGS)
    create(client, account, "Projets")
    assert {MEETINGS, SUMMER, "Projets"} <= set(pane_names(client, account))

    assert subscription(client, account, "Projets", subscribed=False).status_code == 302
    assert subscription(client, account, MEETINGS, subscribed=False).status_code == 302

    assert "Projets" not in box.subscribed()
    listed = pane_names(client, account)
    assert "Projets" not in listed
    # Unsubscribed, but holding a subscribed folder: it keeps its place in the tree.
    assert MEETINGS in listed and SUMMER in listed
    assert "Inbox" in listed and "Trash" in listed
    page = client.get(manage_url(account)).content.decode()
    assert 'data-folder="Projets"' in page and "Not subscribed" in page
    # Listed all the same while it is the folder being read.
    assert "Projets" in pane_names(client, account, folder="Projets")

    assert subscription(client, account, "Projets", subscribed=True).status_code == 302
    assert "Projets" in box.subscribed()
    assert "Projets" in pane_names(client, account)


def test_folders_another_client_made_without_subscribing_are_hidden_from_the_pane(
    signed_in_client, mail_account, mail_server
):
    with imap_of(mail_server, mail_account) as client:
        client.create_folder("Ancien client")

    assert "Ancien client" not in pane_names(signed_in_client, mail_account)
    page = signed_in_client.get(manage_url(mail_account)).content.decode()
    assert "Ancien client" in page

    subscription(signed_in_client, mail_account, "Ancien client", subscribed=True)
    assert "Ancien client" in pane_names(signed_in_client, mail_account)


def test_a_server_without_list_extended_says_which_are_subscribed_through_lsub(
    person, basic_mail_server, basic_mail_user
):
    account = make_account(person, basic_mail_server, basic_mail_user)
    store = mailstore.for_account(account)
    store.create_folder(MEETINGS)
    with imap_of(basic_mail_server, account) as client:
        client.create_folder("Ancien client")

    by_name = {f.name: f for f in store.folders()}

    assert by_name[MEETINGS].subscribed and by_name["Trash"].subscribed
    assert not by_name["Ancien client"].subscribed


def test_rename_form_shows_the_folder_name_and_place(signed_in_client, box):
    client, account = signed_in_client, box.account
    create(client, account, MEETINGS)
    create(client, account, SUMMER, parent=MEETINGS)

    response = client.get(
        reverse("webmail:folder-rename", args=[account.pk]),
        query_params={"folder": f"{MEETINGS}/{SUMMER}"},
    )

    assert response.status_code == 200
    form = response.context["form"]
    assert form.initial == {"name": SUMMER, "parent": MEETINGS}
    assert f'value="{SUMMER}"' in response.content.decode()


def test_a_folder_that_does_not_exist_is_404(signed_in_client, box):
    client, account = signed_in_client, box.account
    for response in (
        client.get(
            reverse("webmail:folder-rename", args=[account.pk]), query_params={"folder": "Nope"}
        ),
        delete(client, account, "Nope"),
        subscription(client, account, "Nope", subscribed=False),
    ):
        assert response.status_code == 404


def test_another_persons_account_is_404(client, box, django_user_model):
    other = django_user_model.objects.create_user(username=f"other-{uuid.uuid4().hex[:8]}")
    client.force_login(other)
    account = box.account
    before = box.names()

    assert client.get(manage_url(account)).status_code == 404
    assert create(client, account, "Intrus").status_code == 404
    assert rename(client, account, "Drafts", "Intrus").status_code == 404
    assert delete(client, account, "Drafts").status_code == 404
    assert subscription(client, account, "Drafts", subscribed=False).status_code == 404
    assert box.names() == before


def test_the_folder_a_connection_has_selected_can_be_renamed_and_deleted(mail_account):
    store = ImapStore(mail_account)
    store.create_folder(MEETINGS)
    store.append(MEETINGS, b"Subject: Salle\r\n\r\nB12\r\n")
    # The pooled connection keeps the folder of the last page selected; Dovecot drops
    # a connection whose selected folder is renamed or deleted under it.
    assert store.page(MEETINGS, 1, per_page=10).total == 1

    store.rename_folder(MEETINGS, "Comités")
    assert store.page("Comités", 1, per_page=10).total == 1
    store.delete_folder("Comités")

    assert "Comités" not in {f.name for f in store.folders()}
    assert store.page("INBOX", 1, per_page=10).total == 0


def test_local_folders_survive_without_messages_and_keep_their_messages_when_moved(
    person, mail_server, mail_user
):
    account = make_account(person, mail_server, mail_user, protocol=Protocol.POP3)
    store = LocalStore(account)
    store.create_folder(MEETINGS)
    store.create_folder(f"{MEETINGS}/{SUMMER}")
    uid = store.append(f"{MEETINGS}/{SUMMER}", b"Subject: Salle\r\n\r\nB12\r\n")

    store.rename_folder(MEETINGS, f"Archive/{MEETINGS}")

    moved = f"Archive/{MEETINGS}/{SUMMER}"
    assert store.message(moved, uid).raw.startswith(b"Subject: Salle")
    assert sorted(LocalFolder.objects.filter(account=account).values_list("name", flat=True)) == [
        f"Archive/{MEETINGS}",
        moved,
    ]
    assert store.page(f"Archive/{MEETINGS}", 1, per_page=10).total == 0  # empty, still there


# Quota --------------------------------------------------------------------------------


@pytest.fixture
def small_quota_user(mail_server) -> MailUser:
    """A mailbox with a 1 MiB quota."""
    user = MailUser(
        address=f"quota-{uuid.uuid4().hex[:12]}@{mail_server.domain}",
        password=secrets.token_urlsafe(12),
    )
    mail_server.add_user(user.address, user.password, quota_rule="*:storage=1M")
    return user


def fill(mail_server, account: MailAccount, kibibytes: int) -> None:
    """Append one message of about this size."""
    body = b"x" * 76 + b"\r\n"
    raw = b"Subject: Gros fichier\r\n\r\n" + body * (kibibytes * 1024 // len(body))
    with imap_of(mail_server, account) as client:
        client.append("INBOX", raw)


def quota_box(client: Client, account: MailAccount) -> str:
    page = client.get(reverse("webmail:mailbox", args=[account.pk])).content.decode()
    match = re.search(r'<div class="quota[^"]*">.*?</div>', page, re.S)
    return unescape(match.group(0)).replace("\xa0", " ") if match else ""


def test_the_quota_is_shown_from_the_background_check(
    signed_in_client, person, mail_server, small_quota_user
):
    account = make_account(person, mail_server, small_quota_user)
    fill(mail_server, account, 300)

    # Pages never ask the server: nothing is known before a check.
    assert quota_box(signed_in_client, account) == ""

    sync.check(account)

    shown = quota_box(signed_in_client, account)
    assert re.search(r"\d+(\.\d)? KB of 1\.0 MB used", shown)
    assert "is-nearly-full" not in shown and "nearly full" not in shown
    quota = mailstore.for_account(account).quota()
    assert quota.limit == 1024 * 1024 and 290 * 1024 <= quota.used <= 310 * 1024


def test_the_quota_warns_near_the_limit_once_a_check_asked_again(
    signed_in_client, person, mail_server, small_quota_user, monkeypatch
):
    account = make_account(person, mail_server, small_quota_user)
    sync.check(account)
    fill(mail_server, account, 950)

    # Known for a while: a check soon after does not ask again.
    sync.check(account)
    assert "nearly full" not in quota_box(signed_in_client, account)

    monkeypatch.setattr(sync, "QUOTA_REFRESH_SECONDS", 0)
    sync.check(account)

    shown = quota_box(signed_in_client, account)
    assert "is-nearly-full" in shown
    assert "of 1.0 MB used" in shown
    assert "Your mailbox is nearly full." in shown
    assert mailstore.for_account(account).quota().nearly_full


def test_no_quota_is_shown_by_a_server_without_quota(
    signed_in_client, person, basic_mail_server, basic_mail_user
):
    account = make_account(person, basic_mail_server, basic_mail_user)
    sync.check(account)

    assert mailstore.for_account(account).quota(max_age=0) is None
    assert quota_box(signed_in_client, account) == ""


def test_a_pop3_account_has_no_quota(signed_in_client, person, mail_server, mail_user):
    account = make_account(person, mail_server, mail_user, protocol=Protocol.POP3)
    assert LocalStore(account).quota(max_age=0) is None
    assert quota_box(signed_in_client, account) == ""


def test_the_quota_of_the_suite_server_is_large_by_default(mail_account):
    assert mailstore.for_account(mail_account).quota(max_age=0) == Quota(
        used=0, limit=1024 * 1024 * 1024
    )
