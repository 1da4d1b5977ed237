"""Sets of UIDs, what a list's form selected, and where a COPYUID says messages went."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from webmail.mailstore.base import ALL, MAX_UID, Folder, Moved, uid_ranges, uid_set
from webmail.mailstore.imap import _copied
from webmail.views.bulk import MAX_SELECTED, parse_selection, special_destination


@pytest.mark.parametrize(
    ("uids", "expected"),
    [
        ([], ""),
        ([7], "7"),
        ([7, 1, 2, 3], "1:3,7"),
        ([5, 5, 6, 9, 10, 11, 20], "5:6,9:11,20"),
    ],
)
def test_uid_set_is_the_shortest_set(uids, expected):
    assert uid_set(uids) == expected


def test_uid_ranges_read_every_form_of_a_set():
    assert uid_ranges("1:3,7,9:*") == [(1, 3), (7, 7), (9, None)]
    assert uid_ranges("5:2") == [(2, 5)]
    assert uid_ranges(ALL) == [(1, None)]
    assert uid_ranges(f"{MAX_UID}") == [(MAX_UID, MAX_UID)]
    assert uid_ranges(uid_set(range(1, 100_001))) == [(1, 100_000)]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "0",
        "1:0",
        "*",
        "*:4",
        "1,,2",
        "1:2:3",
        "a",
        "1 2",
        "1)",
        f"{MAX_UID + 1}",
        "1:4294967296",
    ],
)
def test_uid_ranges_refuse_anything_else(text):
    with pytest.raises(ValueError, match="Not a set of UIDs"):
        uid_ranges(text)


def test_a_move_counts_the_messages_of_its_set():
    assert Moved(folder="Archive", uidvalidity=1, uids="4:6,9").count == 4


def test_a_selection_is_the_uids_checked_once_each_or_every_message():
    assert parse_selection(["5", "3", "5"], None) == [3, 5]
    assert parse_selection(["5"], "all") == ALL
    assert parse_selection([], "all") == ALL


def test_a_conversation_box_selects_all_its_messages():
    assert parse_selection(["7,3,9", "5"], None) == [3, 5, 7, 9]
    assert parse_selection(["7,,9"], None) is None
    assert parse_selection(["7,x"], None) is None


@pytest.mark.parametrize(
    "values",
    [[], ["0"], ["-1"], ["x"], ["٣"], [str(MAX_UID + 1)], ["1" * 11], ["1", "x"]],
)
def test_a_selection_of_nothing_valid_is_none(values):
    assert parse_selection(values, None) is None


def test_a_selection_larger_than_any_page_is_refused():
    assert parse_selection([str(n) for n in range(1, MAX_SELECTED + 2)], None) is None
    assert len(parse_selection([str(n) for n in range(1, MAX_SELECTED + 1)], None)) == MAX_SELECTED


FOLDERS = [
    Folder("INBOX", "/", "\\Inbox"),
    Folder("Junk", "/", "\\Junk"),
    Folder("Junk/Old", "/"),
    Folder("Projects", "/"),
]


def test_the_junk_folder_is_a_destination_except_from_inside_it():
    assert special_destination(FOLDERS, "\\Junk", "INBOX").name == "Junk"
    assert special_destination(FOLDERS, "\\Junk", "Junk") is None
    assert special_destination(FOLDERS, "\\Junk", "Junk/Old") is None
    assert special_destination(FOLDERS, "\\Archive", "INBOX") is None


def session(replies: list[bytes], *capabilities: str) -> SimpleNamespace:
    """What _copied reads of a session: imaplib's responses and the capabilities."""
    imap = SimpleNamespace(untagged_responses={"COPYUID": replies})
    return SimpleNamespace(
        client=SimpleNamespace(_imap=imap), has=lambda name: name in capabilities
    )


def test_copyuid_says_where_the_messages_went():
    moved = _copied(session([b"1795801467 1:100000 1:100000"], "UIDPLUS"), "Archive")
    assert moved == Moved(folder="Archive", uidvalidity=1795801467, uids="1:100000")
    # A server may report a long move in parts.
    moved = _copied(session([b"9 1:3 10:12", b"9 7 13"], "UIDPLUS"), "Trash")
    assert moved == Moved(folder="Trash", uidvalidity=9, uids="10:12,13")


@pytest.mark.parametrize(
    "replies",
    [[], [b"9 1:3"], [b"9 1:3 x"], [b"9 1 4", b"10 2 5"], [b"x 1 4"], [b"9 1 4:*"]],
)
def test_a_copyuid_that_says_nothing_certain_is_ignored(replies):
    assert _copied(session(replies, "UIDPLUS"), "Archive") is None


def test_copyuid_is_not_trusted_from_a_server_without_uidplus():
    state = session([b"9 1 4"])
    assert _copied(state, "Archive") is None
    assert "COPYUID" not in state.client._imap.untagged_responses
