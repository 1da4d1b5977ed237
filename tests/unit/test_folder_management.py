"""Folder names, the folder forms, which folders the pane lists, and the quota: pure logic."""

from __future__ import annotations

import pytest
from imapclient.imapclient import Quota as ImapQuota

from webmail.mailstore.base import Folder, Quota, is_protected, subtree
from webmail.mailstore.imap import storage_quota
from webmail.templatetags.folder_pane import in_pane
from webmail.views.folder_admin import (
    MAX_NAME_LENGTH,
    FolderForm,
    RenameFolderForm,
    name_problem,
)


def folder(name: str, special_use: str | None = None, **fields) -> Folder:
    return Folder(name=name, delimiter="/", special_use=special_use, **fields)


FOLDERS = [
    folder("INBOX", "\\Inbox"),
    folder("Drafts", "\\Drafts"),
    folder("Sent", "\\Sent"),
    folder("Archive", "\\Archive"),
    folder("Archive/2024"),
    folder("Trash", "\\Trash"),
    folder("Réunions"),
    folder("Réunions/Été 2025"),
    folder("Réunions/Été 2025/Juillet"),
    folder("Réunions-bis"),
]


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "Enter a name"),
        ("Line\nbreak", "on one line"),
        ("Return\r", "on one line"),
        ("Tab\tbed", "control characters"),
        ("Réunions/Été", "cannot contain “/”"),
        ("Star*", "* or %"),
        ("Per%cent", "* or %"),
        ("x" * (MAX_NAME_LENGTH + 1), f"at most {MAX_NAME_LENGTH} characters"),
    ],
)
def test_names_a_person_cannot_give_a_folder(name, fragment):
    assert fragment in name_problem(name, "/")


@pytest.mark.parametrize("name", ["Réunions", "日本語", "Été 2025", "a.b", "x" * MAX_NAME_LENGTH])
def test_names_a_person_can_give_a_folder(name):
    assert name_problem(name, "/") is None


def test_without_a_hierarchy_a_delimiter_like_character_is_a_plain_character():
    assert name_problem("Projets/2025", "") is None


def test_create_form_joins_parent_and_name_with_the_delimiter():
    form = FolderForm({"name": "  Août ", "parent": "Réunions/Été 2025"}, folders=FOLDERS)
    assert form.is_valid(), form.errors
    assert form.full_name == "Réunions/Été 2025/Août"

    top = FolderForm({"name": "Projets", "parent": ""}, folders=FOLDERS)
    assert top.is_valid()
    assert top.full_name == "Projets"


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"name": "Été 2025", "parent": "Réunions"}, "already a folder with this name"),
        ({"name": "inbox", "parent": ""}, "already a folder with this name"),
        ({"name": "", "parent": ""}, "Enter a name"),
        ({"name": "   ", "parent": ""}, "Enter a name"),
        ({"name": "Nouveau", "parent": "Nowhere"}, None),  # not a choice: a parent error
    ],
)
def test_create_form_refusals_are_on_the_fields(data, fragment):
    form = FolderForm(data, folders=FOLDERS)
    assert not form.is_valid()
    if fragment is None:
        assert "parent" in form.errors
    else:
        assert any(fragment in error for error in form.errors["name"])


def test_a_path_too_long_as_a_whole_is_refused():
    deep = [folder("/".join(["x" * 90] * depth)) for depth in range(1, 4)]
    form = FolderForm({"name": "y" * 90, "parent": deep[-1].name}, folders=deep)
    assert not form.is_valid()
    assert "too long" in form.errors["name"][0]


def test_rename_form_starts_from_the_folder_and_cannot_go_inside_itself():
    summer = FOLDERS[7]
    form = RenameFolderForm(folder=summer, folders=FOLDERS)
    assert form.initial == {"name": "Été 2025", "parent": "Réunions"}
    parents = [value for value, __ in form.fields["parent"].choices]
    assert "Réunions" in parents and "Réunions-bis" in parents
    assert "Réunions/Été 2025" not in parents and "Réunions/Été 2025/Juillet" not in parents

    inside = RenameFolderForm(
        {"name": "Été 2025", "parent": "Réunions/Été 2025/Juillet"}, folder=summer, folders=FOLDERS
    )
    assert not inside.is_valid() and "parent" in inside.errors

    unchanged = RenameFolderForm(
        {"name": "Été 2025", "parent": "Réunions"}, folder=summer, folders=FOLDERS
    )
    assert not unchanged.is_valid()
    assert "another name" in unchanged.errors["name"][0]

    moved = RenameFolderForm({"name": "Été", "parent": ""}, folder=summer, folders=FOLDERS)
    assert moved.is_valid() and moved.full_name == "Été"


def test_subtree_and_protection():
    assert [f.name for f in subtree(FOLDERS, "Réunions")] == [
        "Réunions",
        "Réunions/Été 2025",
        "Réunions/Été 2025/Juillet",
    ]
    assert is_protected(FOLDERS, "INBOX") and is_protected(FOLDERS, "inbox")
    assert is_protected(FOLDERS, "Trash") and is_protected(FOLDERS, "Archive")
    assert not is_protected(FOLDERS, "Archive/2024")
    assert not is_protected(FOLDERS, "Réunions")
    # A folder holding a special-use folder would take it along.
    assert is_protected([folder("Mail"), folder("Mail/Sent", "\\Sent")], "Mail")


def test_the_pane_lists_all_folders_when_none_is_subscribed():
    folders = [replace_subscribed(f, False) for f in FOLDERS]
    assert in_pane(folders, "INBOX") == folders


def test_the_pane_lists_subscribed_folders_with_their_parents_inbox_and_the_current_one():
    subscribed = {"Drafts", "Sent", "Trash", "Réunions/Été 2025/Juillet"}
    folders = [replace_subscribed(f, f.name in subscribed) for f in FOLDERS]

    assert [f.name for f in in_pane(folders, "Réunions-bis")] == [
        "INBOX",  # never subscribed on Dovecot, always listed
        "Drafts",
        "Sent",
        "Trash",
        "Réunions",  # holds a subscribed folder
        "Réunions/Été 2025",
        "Réunions/Été 2025/Juillet",
        "Réunions-bis",  # the one being shown
    ]


def replace_subscribed(f: Folder, subscribed: bool) -> Folder:
    return Folder(
        name=f.name, delimiter=f.delimiter, special_use=f.special_use, subscribed=subscribed
    )


def test_quota_share_and_warning():
    assert Quota(used=0, limit=1024).percent == 0
    half = Quota(used=512 * 1024, limit=1024 * 1024)
    assert (half.percent, half.nearly_full) == (50, False)
    assert Quota(used=899, limit=1000).nearly_full is False
    assert Quota(used=900, limit=1000).nearly_full is True
    over = Quota(used=2000, limit=1000)
    assert (over.percent, over.nearly_full) == (100, True)


def test_storage_quota_is_read_from_getquotaroot_in_kibibytes():
    reply = [
        ImapQuota("User quota", "MESSAGE", 10, 1000),
        ImapQuota("User quota", "STORAGE", 9, 10),
    ]
    assert storage_quota(reply) == Quota(used=9 * 1024, limit=10 * 1024)
    # No STORAGE resource, or no limit: nothing to show.
    assert storage_quota([ImapQuota("User quota", "MESSAGE", 10, 1000)]) is None
    assert storage_quota([ImapQuota("User quota", "STORAGE", 10, 0)]) is None
    assert storage_quota([]) is None
