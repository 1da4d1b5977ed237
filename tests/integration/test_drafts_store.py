"""Drafts in the account's Drafts folder of the suite's real Dovecot."""

from __future__ import annotations

import pytest
from imapclient import IMAPClient

from accounts.models import Protocol
from webmail.compose import drafts
from webmail.mailstore.base import FolderNotFound, MessageNotFound
from webmail.mailstore.pool import ImapSession

pytestmark = pytest.mark.integration


def draft(version: int, *, message_id: str = "<draft-1@example.test>") -> bytes:
    return (
        "From: Alice <alice@example.test>\r\n"
        "To: Bob <bob@example.test>\r\n"
        f"Subject: Plans, version {version}\r\n"
        f"Message-ID: {message_id}\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        f"Version {version} of the text.\r\n"
    ).encode()


def kept(imap: IMAPClient) -> dict[int, tuple[set[bytes], bytes]]:
    """The Drafts folder's messages not marked deleted: UID -> (flags, bytes)."""
    imap.select_folder("Drafts", readonly=True)
    uids = imap.search(["UNDELETED"])
    fetched = imap.fetch(uids, ["FLAGS", "BODY.PEEK[]"]) if uids else {}
    return {uid: (set(data[b"FLAGS"]), data[b"BODY[]"]) for uid, data in fetched.items()}


def test_the_drafts_folder_is_found_by_its_special_use(mail_account):
    assert drafts.drafts_folder(mail_account) == "Drafts"


def test_saving_twice_leaves_exactly_one_draft(mail_account, imap):
    first = drafts.save_draft(mail_account, draft(1), replace_uid=None)
    second = drafts.save_draft(mail_account, draft(2), replace_uid=first)

    assert second != first
    ((uid, (flags, raw)),) = kept(imap).items()
    assert uid == second
    assert raw == draft(2)
    assert {b"\\Draft", b"\\Seen"} <= flags
    # Removed, not merely marked deleted.
    assert imap.search(["ALL"]) == [second]


def test_a_draft_is_loaded_and_deleted(mail_account, imap):
    uid = drafts.save_draft(mail_account, draft(1), replace_uid=None)
    assert drafts.load_draft(mail_account, uid) == draft(1)

    drafts.delete_draft(mail_account, uid)

    assert kept(imap) == {}
    with pytest.raises(MessageNotFound):
        drafts.load_draft(mail_account, uid)
    # Deleting a draft that is gone already is no error.
    drafts.delete_draft(mail_account, uid)


def test_replacing_a_draft_that_is_gone_still_saves(mail_account, imap):
    first = drafts.save_draft(mail_account, draft(1), replace_uid=None)
    drafts.delete_draft(mail_account, first)
    second = drafts.save_draft(mail_account, draft(2), replace_uid=first)
    assert list(kept(imap)) == [second]


def test_without_uidplus_the_draft_is_found_by_its_message_id(mail_account, imap, monkeypatch):
    has = ImapSession.has
    monkeypatch.setattr(ImapSession, "has", lambda self, cap: cap != "UIDPLUS" and has(self, cap))

    first = drafts.save_draft(mail_account, draft(1), replace_uid=None)
    second = drafts.save_draft(mail_account, draft(2), replace_uid=first)
    third = drafts.save_draft(
        mail_account, draft(3, message_id="<draft-2@example.test>"), replace_uid=second
    )

    assert (first, second, third) == (1, 2, 3)
    # Without UIDPLUS the replaced versions are only marked deleted.
    assert list(kept(imap)) == [3]


def test_a_draft_without_message_id_and_uidplus_has_no_uid(mail_account, monkeypatch):
    has = ImapSession.has
    monkeypatch.setattr(ImapSession, "has", lambda self, cap: cap != "UIDPLUS" and has(self, cap))
    raw = draft(1).replace(b"Message-ID: <draft-1@example.test>\r\n", b"")
    assert drafts.save_draft(mail_account, raw, replace_uid=None) is None


def test_an_account_without_a_drafts_folder(mail_account, monkeypatch):
    # The suite's Dovecot always makes one: a server that has none is played.
    monkeypatch.setattr("webmail.mailstore.imap.ImapStore.special_folder", lambda self, use: None)
    assert drafts.drafts_folder(mail_account) is None
    with pytest.raises(FolderNotFound):
        drafts.save_draft(mail_account, draft(1), replace_uid=None)
    drafts.delete_draft(mail_account, 1)


def test_pop3_accounts_keep_their_drafts_in_facteurs_own_store(mail_account, imap):
    mail_account.protocol = Protocol.POP3
    assert drafts.drafts_folder(mail_account) == "Drafts"
    first = drafts.save_draft(mail_account, draft(1), replace_uid=None)
    second = drafts.save_draft(mail_account, draft(2), replace_uid=first)
    assert drafts.load_draft(mail_account, second) == draft(2)
    assert list(mail_account.local_messages.values_list("uid", flat=True)) == [second]
    assert kept(imap) == {}
    drafts.delete_draft(mail_account, second)
    assert not mail_account.local_messages.exists()
