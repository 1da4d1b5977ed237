"""Where the message page's Archive, Delete and Move to… take a message of each folder."""

from __future__ import annotations

from webmail.mailstore.base import Folder
from webmail.views.messages import Destinations, destination_label

INBOX = Folder("INBOX", "/", "\\Inbox")
ARCHIVE = Folder("Archive", "/", "\\Archive")
ARCHIVE_2023 = Folder("Archive/2023", "/")
TRASH = Folder("Trash", "/", "\\Trash")
OLD_TRASH = Folder("Trash/Old", "/")
TRASHCAN = Folder("Trashcan", "/")
PARENT = Folder("Clients", "/", selectable=False)
CLIENT = Folder("Clients/Dupont", "/")
FOLDERS = [INBOX, ARCHIVE, ARCHIVE_2023, TRASH, OLD_TRASH, TRASHCAN, PARENT, CLIENT]


def test_from_the_inbox_everything_is_offered():
    where = Destinations.of(FOLDERS, "INBOX")
    assert (where.archive, where.trash) == (ARCHIVE, TRASH)
    assert where.targets == [ARCHIVE, ARCHIVE_2023, TRASH, OLD_TRASH, TRASHCAN, CLIENT]


def test_in_the_archive_or_a_folder_inside_it_there_is_no_archive_button():
    assert Destinations.of(FOLDERS, "Archive").archive is None
    assert Destinations.of(FOLDERS, "Archive/2023").archive is None
    assert Destinations.of(FOLDERS, "Trashcan").archive == ARCHIVE


def test_in_the_trash_or_a_folder_inside_it_delete_is_for_good():
    assert Destinations.of(FOLDERS, "Trash").trash is None
    assert Destinations.of(FOLDERS, "Trash/Old").trash is None
    # A name that merely starts like the trash's is another folder.
    assert Destinations.of(FOLDERS, "Trashcan").trash == TRASH


def test_without_special_folders_delete_is_for_good_and_there_is_no_archive():
    where = Destinations.of([INBOX, CLIENT], "INBOX")
    assert (where.archive, where.trash, where.targets) == (None, None, [CLIENT])


def test_a_special_folder_that_cannot_hold_mail_is_no_destination():
    closed = Folder("Trash", "/", "\\Trash", selectable=False)
    assert Destinations.of([INBOX, closed], "INBOX").trash is None


def test_a_target_is_found_by_its_exact_name_only():
    where = Destinations.of(FOLDERS, "INBOX")
    assert where.target("Clients/Dupont") == CLIENT
    assert where.target("clients/dupont") is None
    assert where.target("Clients") is None
    assert where.target("INBOX") is None


def test_nested_destinations_are_named_by_their_whole_path():
    assert destination_label(ARCHIVE) == "Archive"
    assert destination_label(CLIENT) == "Clients / Dupont"
