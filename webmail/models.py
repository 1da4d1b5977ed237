"""What Facteur keeps of its own beside the mail servers."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, models, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from webmail.compose.composition import format_addresses
from webmail.mime.headers import Address
from webmail.mime.parse import ParseLimits, parse_message
from webmail.search import BODY_TEXT_CHARS, body_text
from webmail.threads import reference_fields

# Indexing reads the headers, the parts and as much of the body as a search looks through.
_INDEX_LIMITS = ParseLimits(max_text_chars=BODY_TEXT_CHARS)


class TrustedSender(models.Model):
    """A sender whose messages may load remote content for this person."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="trusted_senders",
        verbose_name=_("person"),
    )
    email = models.CharField(_("e-mail address"), max_length=254)
    created = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("trusted sender")
        verbose_name_plural = _("trusted senders")
        constraints = [
            models.UniqueConstraint(fields=["user", "email"], name="unique_trusted_sender")
        ]

    def __str__(self) -> str:
        return self.email

    @classmethod
    def is_trusted(cls, user, email: str | None) -> bool:
        return bool(email) and cls.objects.filter(user=user, email=email.lower()).exists()


class Contact(models.Model):
    """Someone this person wrote to: what the recipient fields suggest while typing."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="contacts",
        verbose_name=_("person"),
    )
    email = models.CharField(_("e-mail address"), max_length=254)  # lowercased
    name = models.CharField(_("name"), max_length=200, blank=True)
    times_used = models.PositiveIntegerField(_("times used"), default=0)
    last_used = models.DateTimeField(_("last used"), default=timezone.now)

    class Meta:
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        constraints = [models.UniqueConstraint(fields=["user", "email"], name="unique_contact")]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>" if self.name else self.email

    def address(self) -> Address:
        return Address(name=self.name, email=self.email)

    @classmethod
    def remember(cls, user, addresses: Iterable[Address]) -> None:
        """Count one more message to each address; a name, once known, is not lost."""
        names: dict[str, str] = {}
        for address in addresses:
            email = address.email.strip().lower()
            if "@" not in email or len(email) > 254:
                continue
            name = " ".join(address.name.split())[:200]
            names[email] = name or names.get(email, "")
        now = timezone.now()
        for email, name in names.items():
            if cls._bump(user, email, name, now):
                continue
            try:
                with transaction.atomic():
                    cls.objects.create(
                        user=user, email=email, name=name, times_used=1, last_used=now
                    )
            except IntegrityError:
                # Made meanwhile by another message to the same address.
                cls._bump(user, email, name, now)

    @classmethod
    def _bump(cls, user, email: str, name: str, now: datetime) -> bool:
        fields = {"times_used": F("times_used") + 1, "last_used": now}
        if name:
            fields["name"] = name
        return cls.objects.filter(user=user, email=email).update(**fields) == 1

    @classmethod
    def suggest(cls, user, query: str, limit: int = 8) -> list[Contact]:
        """Contacts whose address or a word of whose name starts with ``query``, most used first."""
        query = " ".join(query.split())[:254]
        if not query:
            return []
        matches = (
            Q(email__istartswith=query)
            | Q(name__istartswith=query)
            | Q(name__icontains=" " + query)
        )
        return list(
            cls.objects.filter(matches, user=user).order_by("-times_used", "-last_used", "email")[
                :limit
            ]
        )


#: What the uploads storage raises when it cannot be reached or refuses: a folder's
#: OSError, or the errors of S3.
STORAGE_ERRORS = (OSError, BotoCoreError, ClientError)


def stored_upload_name(instance: Upload, filename: str) -> str:
    """A random name in the uploads storage: the person's file name stays in the database."""
    return uuid.uuid4().hex


class Upload(models.Model):
    """An attachment uploaded while a message is being written, until it is sent or dropped.

    Always looked up with ``user=request.user``. Its bytes live in Django's
    "default" storage (a folder, or a bucket every node shares: ``webmail.storage``),
    read and written through ``content``; deleting the row deletes them.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="uploads",
        verbose_name=_("person"),
    )
    filename = models.CharField(_("file name"), max_length=255)
    content_type = models.CharField(_("content type"), max_length=255)
    size = models.PositiveBigIntegerField(_("size"))
    stored = models.FileField(_("stored file"), upload_to=stored_upload_name, max_length=255)
    created = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("upload")
        verbose_name_plural = _("uploads")
        ordering = ["created", "pk"]

    def __str__(self) -> str:
        return self.filename

    def save(self, *args, **kwargs) -> None:
        unsaved = getattr(self, "_unsaved_content", None)
        if unsaved is None:
            super().save(*args, **kwargs)
            return
        self.stored.save("", ContentFile(unsaved), save=False)
        self._unsaved_content = None
        try:
            super().save(*args, **kwargs)
        except BaseException:
            # A row that was never written leaves no file behind.
            self.stored.storage.delete(self.stored.name)
            raise

    @property
    def content(self) -> bytes:
        """The file's bytes; given at creation (``content=``), they are stored on save."""
        unsaved = getattr(self, "_unsaved_content", None)
        if unsaved is not None:
            return unsaved
        with self.stored.open("rb") as stored:
            return stored.read()

    @content.setter
    def content(self, value: bytes) -> None:
        self._unsaved_content = bytes(value)

    @classmethod
    def delete_expired(cls, now: datetime | None = None) -> int:
        """Delete the uploads older than ``settings.UPLOAD_MAX_AGE``; how many there were."""
        cutoff = (now or timezone.now()) - timedelta(seconds=settings.UPLOAD_MAX_AGE)
        deleted, __ = cls.objects.filter(created__lt=cutoff).delete()
        return deleted

    @classmethod
    def delete_orphans(cls, now: datetime | None = None) -> int:
        """Delete stored files no row names, once older than ``settings.UPLOAD_MAX_AGE``.

        They are left by a process killed between storing a file and writing its
        row, or by a storage that failed to delete; how many there were.
        """
        storage = cls._meta.get_field("stored").storage
        cutoff = (now or timezone.now()) - timedelta(seconds=settings.UPLOAD_MAX_AGE)
        try:
            __, names = storage.listdir("")
        except FileNotFoundError:  # a folder not made yet: nothing was ever uploaded
            return 0
        known = set(cls.objects.filter(stored__in=names).values_list("stored", flat=True))
        orphans = [
            name for name in names if name not in known and storage.get_modified_time(name) < cutoff
        ]
        for name in orphans:
            storage.delete(name)
        return len(orphans)


class OutgoingMessage(models.Model):
    """A message on its way out: the exact bytes to submit, and how far they got.

    ``status`` moves only by compare-and-set updates in ``webmail.outbox``, so two
    workers (or a worker and the sweep) can never both send one message.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        SENDING = "sending", _("sending")
        SENT = "sent", _("sent")
        FAILED = "failed", _("failed")
        CANCELLED = "cancelled", _("cancelled")

    class Origin(models.TextChoices):
        NONE = "", _("new message")
        REPLY = "reply", _("reply")
        FORWARD = "forward", _("forward")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="outgoing_messages",
        verbose_name=_("person"),
    )
    account = models.ForeignKey(
        "accounts.MailAccount",
        on_delete=models.CASCADE,
        related_name="outgoing_messages",
        verbose_name=_("mail account"),
    )
    message_id = models.CharField(_("Message-ID"), max_length=255, db_index=True)
    # Decoded, for the outbox list: it is shown without reading the whole message.
    subject = models.TextField(_("subject"), blank=True)
    raw = models.BinaryField(_("message"))
    envelope_from = models.CharField(_("envelope sender"), max_length=320)
    envelope_to = models.JSONField(_("envelope recipients"), default=list)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.QUEUED
    )
    send_after = models.DateTimeField(_("send after"))
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    # Set just before the final dot of an attempt: from then on the server may have
    # the message, and a worker that dies leaves it sent rather than send it twice.
    handed_over = models.BooleanField(_("handed over"), default=False)
    # The server's reply or the network problem, for the person: never the content.
    last_error = models.TextField(_("last error"), blank=True)
    task_id = models.CharField(_("task"), max_length=255, blank=True)
    created = models.DateTimeField(_("created"), auto_now_add=True)
    updated = models.DateTimeField(_("updated"), default=timezone.now)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    # The message this one answers or forwards, flagged once this one is sent.
    origin_kind = models.CharField(
        _("origin"), max_length=10, choices=Origin.choices, default=Origin.NONE, blank=True
    )
    origin_folder = models.CharField(_("origin folder"), max_length=1000, blank=True)
    origin_uid = models.PositiveBigIntegerField(_("origin UID"), null=True, blank=True)
    # The draft it was sent from in the Drafts folder, deleted once this one is sent.
    draft_uid = models.PositiveBigIntegerField(_("draft UID"), null=True, blank=True)

    class Meta:
        verbose_name = _("outgoing message")
        verbose_name_plural = _("outgoing messages")
        ordering = ["-created"]
        indexes = [models.Index(fields=["status", "send_after"], name="outgoing_due")]

    def __str__(self) -> str:
        return self.message_id


class LocalMailbox(models.Model):
    """The state of what Facteur keeps itself for one account, apart from the account's row.

    Only the code that allocates UIDs and runs fetches writes it, so that saving
    an account (in the admin, say) never puts an older value back.
    """

    account = models.OneToOneField(
        "accounts.MailAccount",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="local_mailbox",
        verbose_name=_("mail account"),
    )
    # The next UID of a local message of the account, in whatever folder: UIDs only grow.
    next_uid = models.PositiveBigIntegerField(_("next UID"), default=1)
    # Until when a running POP3 fetch holds the account: no second fetch starts before.
    fetching_until = models.DateTimeField(_("fetching until"), null=True, blank=True)

    class Meta:
        verbose_name = _("local mailbox")
        verbose_name_plural = _("local mailboxes")

    def __str__(self) -> str:
        return str(self.account)


class SyncState(models.Model):
    """What the background checks last learnt of one account, for its open pages.

    Workers write it after each check or fetch; a page asks for it every few
    seconds, which costs one query and no mail server round trip.
    """

    account = models.OneToOneField(
        "accounts.MailAccount",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="sync_state",
        verbose_name=_("mail account"),
    )
    # A digest of every folder's counts and of the Inbox's next UID: it changes
    # whenever a page showing the account has something to update.
    token = models.CharField(_("token"), max_length=64, blank=True)
    inbox_unread = models.PositiveIntegerField(_("unread in the Inbox"), null=True, blank=True)
    inbox_uidvalidity = models.PositiveBigIntegerField(null=True, blank=True)
    inbox_uidnext = models.PositiveBigIntegerField(null=True, blank=True)
    checked_at = models.DateTimeField(_("last checked"), null=True, blank=True)
    # When a check was last queued: an open page asks for one at most this often.
    requested_at = models.DateTimeField(_("check requested"), null=True, blank=True)
    # Until when a running check holds the account, so that workers never check it twice at once.
    checking_until = models.DateTimeField(_("checking until"), null=True, blank=True)
    # What the last check could not do, in words for the person; empty when it went well.
    problem = models.TextField(_("problem"), blank=True)
    # A POP3 fetch in progress: how many of how many new messages are stored.
    progress_done = models.PositiveIntegerField(null=True, blank=True)
    progress_total = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        verbose_name = _("sync state")
        verbose_name_plural = _("sync states")

    def __str__(self) -> str:
        return str(self.account)


class LocalMessage(models.Model):
    """A message Facteur keeps itself (fetched over POP3): its bytes and what lists show.

    The headers are read once, when it is stored, so that lists and searches need
    not parse it again. ``uid`` is unique in its folder and only ever grows.
    """

    account = models.ForeignKey(
        "accounts.MailAccount",
        on_delete=models.CASCADE,
        related_name="local_messages",
        verbose_name=_("mail account"),
    )
    folder = models.CharField(_("folder"), max_length=1000, default="INBOX")
    uid = models.PositiveBigIntegerField(_("UID"))
    raw = models.BinaryField(_("raw message"))
    # The size on the server, also for a message kept without its body.
    size = models.PositiveBigIntegerField(_("size"))
    # Only the headers were fetched: the message was too large to keep whole.
    partial = models.BooleanField(_("headers only"), default=False)
    subject = models.TextField(_("subject"), blank=True)
    sender = models.CharField(_("sender"), max_length=500, blank=True)
    sender_email = models.CharField(_("sender's address"), max_length=320, blank=True)
    # To and Cc as a person would type them ("Name" <address>, ...): parsed back for lists.
    recipients = models.TextField(_("recipients"), blank=True)
    date = models.DateTimeField(_("date"), null=True, blank=True)
    message_id = models.CharField(_("Message-ID"), max_length=998, blank=True)
    # The identifiers of In-Reply-To and References, space-separated: what puts the
    # message in its conversation without reading its bytes again.
    in_reply_to = models.CharField(_("In-Reply-To"), max_length=998, blank=True)
    references = models.TextField(_("References"), blank=True)
    has_attachments = models.BooleanField(_("has attachments"), default=False)
    # The body's text, casefolded and cut (webmail.search.body_text): what a search
    # of the body looks through without parsing every message again.
    body_text = models.TextField(_("text of the body"), blank=True, editable=False)
    seen = models.BooleanField(_("read"), default=False)
    flagged = models.BooleanField(_("flagged"), default=False)
    answered = models.BooleanField(_("answered"), default=False)
    received = models.DateTimeField(_("received"), auto_now_add=True)

    class Meta:
        verbose_name = _("local message")
        verbose_name_plural = _("local messages")
        ordering = ["account", "folder", "-uid"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "folder", "uid"], name="unique_local_message_uid"
            )
        ]
        indexes = [models.Index(fields=["account", "folder", "date"], name="local_message_date")]

    def __str__(self) -> str:
        return self.subject or f"{self.folder}/{self.uid}"

    @classmethod
    def from_bytes(
        cls,
        account,
        raw: bytes,
        *,
        uid: int,
        folder: str = "INBOX",
        size: int | None = None,
        partial: bool = False,
    ) -> LocalMessage:
        """An unsaved message of ``account`` with its headers indexed; never raises on ``raw``.

        A message that cannot be parsed is kept all the same, with what could be read.
        """
        parsed = parse_message(raw, limits=_INDEX_LIMITS)
        sender = parsed.sender[0] if parsed.sender else None
        in_reply_to, references = reference_fields(raw)
        return cls(
            account=account,
            folder=folder,
            uid=uid,
            raw=raw,
            size=len(raw) if size is None else size,
            partial=partial,
            subject=parsed.subject,
            sender=str(sender)[:500] if sender else "",
            sender_email=sender.email[:320] if sender else "",
            recipients=format_addresses((*parsed.to, *parsed.cc)),
            date=parsed.date,
            message_id=(parsed.message_id or "")[:998],
            in_reply_to=in_reply_to[:998],
            references=references,
            has_attachments=any(not part.inline for part in parsed.attachments),
            body_text=body_text(parsed.text, parsed.html),
        )


class Pop3Uidl(models.Model):
    """A message fetched from a POP3 server, by its UIDL: never fetched again.

    Kept when the person deletes the message in Facteur, and after it is
    deleted from the server. A message delivered into an IMAP account is
    "delivering" from just before its APPEND until the server confirmed it:
    such a message is looked for again by the next fetch, never deleted. One the
    IMAP server refuses as many times as the setting allows is kept aside:
    stored by Facteur (``kept_uid``) and no longer offered to that server.
    """

    class State(models.TextChoices):
        STORED = "stored", _("kept by Facteur")
        DELIVERING = "delivering", _("being delivered")
        DELIVERED = "delivered", _("delivered into an IMAP account")
        REFUSED = "refused", _("refused by the IMAP account, kept by Facteur")

    account = models.ForeignKey(
        "accounts.MailAccount",
        on_delete=models.CASCADE,
        related_name="pop3_uidls",
        verbose_name=_("mail account"),
    )
    uidl = models.CharField(_("UIDL"), max_length=70)  # RFC 1939: 1 to 70 characters
    first_seen = models.DateTimeField(_("first seen"), default=timezone.now)
    deleted_from_server = models.BooleanField(_("deleted from the server"), default=False)
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.STORED)
    refusals = models.PositiveSmallIntegerField(_("times refused by the IMAP server"), default=0)
    refusal = models.CharField(_("the IMAP server's last refusal"), max_length=500, blank=True)
    kept_uid = models.PositiveBigIntegerField(
        _("UID of the copy kept aside"), null=True, blank=True
    )

    class Meta:
        verbose_name = _("fetched POP3 message")
        verbose_name_plural = _("fetched POP3 messages")
        constraints = [models.UniqueConstraint(fields=["account", "uidl"], name="unique_pop3_uidl")]

    def __str__(self) -> str:
        return self.uidl


class LocalFolder(models.Model):
    """A folder of the person's own in what Facteur keeps for an account.

    Messages name their folder themselves; a row here keeps a folder that holds
    none yet, and whether the person wants it in the folder list.
    """

    account = models.ForeignKey(
        "accounts.MailAccount",
        on_delete=models.CASCADE,
        related_name="local_folders",
        verbose_name=_("mail account"),
    )
    name = models.CharField(_("name"), max_length=1000)
    subscribed = models.BooleanField(_("subscribed"), default=True)

    class Meta:
        verbose_name = _("local folder")
        verbose_name_plural = _("local folders")
        ordering = ["account", "name"]
        constraints = [
            models.UniqueConstraint(fields=["account", "name"], name="unique_local_folder")
        ]

    def __str__(self) -> str:
        return self.name


class MailPreferences(models.Model):
    """How one person likes to read mail; a row only once they have changed something."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="mail_preferences",
        verbose_name=_("person"),
    )
    # Conversations by default, as in the webmail most people know.
    conversations = models.BooleanField(_("group messages into conversations"), default=True)

    class Meta:
        verbose_name = _("mail preferences")
        verbose_name_plural = _("mail preferences")

    def __str__(self) -> str:
        return str(self.user)

    @classmethod
    def of(cls, user) -> MailPreferences:
        """The person's preferences: the defaults, unsaved, until they change one."""
        return cls.objects.filter(user=user).first() or cls(user=user)
