"""What follows a send, against the suite's real Dovecot; reopening and the outbox's list."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from imapclient import IMAPClient

from webmail import outbox
from webmail.compose import drafts
from webmail.mailstore.imap import ImapStore
from webmail.mime import Address, build_message
from webmail.models import OutgoingMessage, Upload
from webmail.tasks import sweep_outbox

pytestmark = pytest.mark.integration

Status = OutgoingMessage.Status

ORIGINAL = (
    b"From: Bob <bob@example.test>\r\n"
    b"To: Alice <alice@example.test>\r\n"
    b"Subject: Lunch?\r\n"
    b"Message-ID: <lunch@example.test>\r\n"
    b"\r\n"
    b"Shall we?\r\n"
)


def message(account, **fields):
    return build_message(
        sender=Address("Alice", account.email),
        to="Bob <bob@example.test>",
        subject="Re: Lunch?",
        text="Yes.",
        message_id_domain="example.test",
        **fields,
    )


def queued(account, **kwargs) -> OutgoingMessage:
    built, recipients = message(account)
    return outbox.queue(account, built, recipients, **kwargs)


def sent(account, **kwargs) -> OutgoingMessage:
    """A row as the worker leaves it once the server accepted the message."""
    row = queued(account, **kwargs)
    OutgoingMessage.objects.filter(pk=row.pk).update(status=Status.SENT, sent_at=timezone.now())
    return OutgoingMessage.objects.get(pk=row.pk)


def flags_of(imap: IMAPClient, folder: str, uid: int) -> set[bytes]:
    imap.select_folder(folder, readonly=True)
    return set(imap.get_flags([uid]).get(uid, ()))


def in_folder(imap: IMAPClient, folder: str, message_id: str) -> list[int]:
    imap.select_folder(folder, readonly=True)
    return imap.search(["HEADER", "Message-ID", message_id])


@pytest.mark.parametrize(("kind", "flag"), [("reply", b"\\Answered"), ("forward", b"$Forwarded")])
def test_after_sent_files_flags_and_cleans_up_once(mail_account, imap, kind, flag):
    store = ImapStore(mail_account)
    origin = store.append("INBOX", ORIGINAL)
    draft_uid = drafts.save_draft(mail_account, ORIGINAL, replace_uid=None)
    row = sent(
        mail_account,
        origin_kind=kind,
        origin_folder="INBOX",
        origin_uid=origin,
        draft_uid=draft_uid,
    )

    outbox.after_sent(row.pk)
    outbox.after_sent(row.pk)

    (copy,) = in_folder(imap, "Sent", row.message_id)
    assert b"\\Seen" in flags_of(imap, "Sent", copy)
    assert flag in flags_of(imap, "INBOX", origin)
    imap.select_folder("Drafts", readonly=True)
    assert imap.search(["ALL"]) == []


def test_after_sent_of_a_new_message_touches_nothing_else(mail_account, imap):
    store = ImapStore(mail_account)
    origin = store.append("INBOX", ORIGINAL)
    draft_uid = drafts.save_draft(mail_account, ORIGINAL, replace_uid=None)
    row = sent(mail_account)

    outbox.after_sent(row.pk)

    assert len(in_folder(imap, "Sent", row.message_id)) == 1
    assert not flags_of(imap, "INBOX", origin) & {b"\\Answered", b"$Forwarded"}
    imap.select_folder("Drafts", readonly=True)
    assert imap.search(["ALL"]) == [draft_uid]


def test_an_origin_or_a_draft_that_is_gone_is_no_error(mail_account, imap):
    gone_folder = sent(
        mail_account, origin_kind="reply", origin_folder="Deleted meanwhile", origin_uid=1
    )
    gone_message = sent(
        mail_account, origin_kind="forward", origin_folder="INBOX", origin_uid=42, draft_uid=42
    )
    outbox.after_sent(gone_folder.pk)
    outbox.after_sent(gone_message.pk)
    assert len(in_folder(imap, "Sent", gone_folder.message_id)) == 1
    assert len(in_folder(imap, "Sent", gone_message.message_id)) == 1


def test_queue_keeps_the_origin_and_the_draft(mail_account):
    row = queued(
        mail_account, origin_kind="reply", origin_folder="INBOX", origin_uid=7, draft_uid=3
    )
    row.refresh_from_db()
    assert (row.origin_kind, row.origin_folder, row.origin_uid, row.draft_uid) == (
        "reply",
        "INBOX",
        7,
        3,
    )
    with pytest.raises(ValueError):
        queued(mail_account, origin_kind="bounce")


# Reopening and the outbox's list -------------------------------------------------


def with_status(row: OutgoingMessage, status: str, **fields) -> OutgoingMessage:
    OutgoingMessage.objects.filter(pk=row.pk).update(status=status, **fields)
    return row


def test_reopen_takes_back_queued_and_failed_messages_only(mail_account, django_user_model):
    waiting = queued(mail_account)
    failed = with_status(queued(mail_account), Status.FAILED)
    person = mail_account.user

    reopened = outbox.reopen(person, waiting.pk)
    assert reopened.pk == waiting.pk
    assert reopened.status == Status.CANCELLED
    assert bytes(reopened.raw) == bytes(waiting.raw)
    assert outbox.reopen(person, failed.pk).status == Status.CANCELLED
    # Once taken back, it is not taken back twice.
    assert outbox.reopen(person, waiting.pk) is None

    for status in (Status.SENDING, Status.SENT):
        row = with_status(queued(mail_account), status)
        assert outbox.reopen(person, row.pk) is None
        assert OutgoingMessage.objects.get(pk=row.pk).status == status

    other = django_user_model.objects.create_user(username="mallory")
    row = queued(mail_account)
    assert outbox.reopen(other, row.pk) is None
    assert OutgoingMessage.objects.get(pk=row.pk).status == Status.QUEUED


def test_pending_lists_what_is_on_its_way_failed_or_just_sent(mail_account, django_user_model):
    now = timezone.now()
    rows = {
        "queued": queued(mail_account),
        "sending": with_status(queued(mail_account), Status.SENDING),
        "failed": with_status(queued(mail_account), Status.FAILED),
        "sent today": with_status(queued(mail_account), Status.SENT, sent_at=now),
        "sent last week": with_status(
            queued(mail_account), Status.SENT, sent_at=now - timedelta(days=7)
        ),
        "cancelled": with_status(queued(mail_account), Status.CANCELLED),
    }
    listed = list(outbox.pending(mail_account.user))
    expected = ["sent today", "failed", "sending", "queued"]
    assert [row.pk for row in listed] == [rows[name].pk for name in expected]
    other = django_user_model.objects.create_user(username="mallory")
    assert not outbox.pending(other).exists()


# The periodic sweep ----------------------------------------------------------------


def test_the_sweep_deletes_old_uploads_only(mail_account, settings):
    settings.UPLOAD_MAX_AGE = 3600
    person = mail_account.user

    def upload(name: str, age: timedelta) -> Upload:
        made = Upload.objects.create(
            user=person, filename=name, content_type="text/plain", size=2, content=b"hi"
        )
        Upload.objects.filter(pk=made.pk).update(created=timezone.now() - age)
        return made

    upload("old.txt", timedelta(hours=2))
    fresh = upload("fresh.txt", timedelta(minutes=5))

    assert sweep_outbox() == 0
    assert list(Upload.objects.values_list("pk", flat=True)) == [fresh.pk]


def test_the_sent_copy_is_the_message_as_sent(mail_account, imap):
    row = sent(mail_account)
    outbox.after_sent(row.pk)
    (copy,) = in_folder(imap, "Sent", row.message_id)
    imap.select_folder("Sent", readonly=True)
    assert imap.fetch([copy], ["BODY.PEEK[]"])[copy][b"BODY[]"] == bytes(row.raw)
