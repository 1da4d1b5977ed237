"""The token an open page compares to learn whether anything it shows changed."""

from __future__ import annotations

from webmail.mailstore.base import Folder, FolderStatus
from webmail.sync import token

INBOX = FolderStatus(uidvalidity=7, uidnext=42, unread=3, total=40)


def folders(**counts) -> list[Folder]:
    return [
        Folder(name=name, delimiter="/", unread=unread, total=total)
        for name, (unread, total) in counts.items()
    ]


def test_the_token_stays_while_nothing_changes():
    assert token(folders(INBOX=(3, 40), Sent=(0, 9)), INBOX) == token(
        folders(INBOX=(3, 40), Sent=(0, 9)), INBOX
    )


def test_the_token_changes_with_any_count_or_new_mail():
    base = token(folders(INBOX=(3, 40), Sent=(0, 9)), INBOX)
    assert token(folders(INBOX=(2, 40), Sent=(0, 9)), INBOX) != base
    assert token(folders(INBOX=(3, 40), Sent=(0, 10)), INBOX) != base
    assert token(folders(INBOX=(3, 40), Sent=(0, 9), Projets=(1, 1)), INBOX) != base
    # A message read elsewhere and another arriving leave the counts as they were.
    newer = FolderStatus(uidvalidity=7, uidnext=43, unread=3, total=40)
    assert token(folders(INBOX=(3, 40), Sent=(0, 9)), newer) != base


def test_folders_that_hold_no_mail_do_not_count():
    listed = folders(INBOX=(3, 40))
    parent = Folder(name="Clients", delimiter="/", selectable=False)
    assert token([*listed, parent], INBOX) == token(listed, INBOX)
