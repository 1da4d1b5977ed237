"""A mailbox of small, realistic messages, written straight into a user's Maildir.

Shared by the benchmarks that need a full mailbox: writing the files, as a
migration would, takes seconds where delivering them one by one would take
minutes.
"""

from __future__ import annotations

import base64
import os
import pwd
import random
import time
import unicodedata
from datetime import UTC, datetime, timedelta
from email.header import Header
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from accounts.models import MailAccount
    from webmail.localmail import LocalMailServer

EIGHT_BIT = "Content-Transfer-Encoding: 8bit\n"

FIRST_NAMES = ("Alice", "Bruno", "Chloé", "Damien", "Émilie", "Farid", "Gaëlle", "Hugo", "Inès")
LAST_NAMES = ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand")
TOPICS = [
    "Réunion d'équipe",
    "Budget 2025",
    "Invoice",
    "Holiday planning",
    "Server maintenance",
    "Projet Facteur",
    "Lunch on Friday?",
    "Quarterly report",
    "Contrat fournisseur",
    "Welcome aboard",
]
WORDS = (
    "the",
    "a",
    "report",
    "meeting",
    "please",
    "find",
    "attached",
    "draft",
    "review",
    "budget",
    "client",
    "schedule",
    "project",
    "update",
    "thanks",
    "regards",
    "question",
    "office",
    "deadline",
    "monday",
    "friday",
    "week",
    "plan",
    "merci",
    "pour",
    "votre",
    "retour",
    "nous",
    "avons",
    "besoin",
    "du",
    "document",
    "avant",
    "la",
    "réunion",
    "de",
    "lundi",
)


def _encoded(text: str) -> str:
    return text if text.isascii() else Header(text, "utf-8").encode()


class MessageMaker:
    """Small, realistic messages: plain, plain and HTML, or with a small attachment.

    Paragraphs, senders and attachments are drawn from pools made once, so that
    100,000 messages take seconds to make.
    """

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        rng = self.rng
        self.paragraphs = [
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 60))).capitalize() + "."
            for _ in range(300)
        ]
        self.senders = []
        for first in FIRST_NAMES:
            for last in LAST_NAMES:
                mailbox = unicodedata.normalize("NFKD", f"{first}.{last}".lower())
                address = mailbox.encode("ascii", "ignore").decode()
                self.senders.append(f"{_encoded(f'{first} {last}')} <{address}@example.org>")
        self.attachments = [
            base64.encodebytes(rng.randbytes(rng.randint(300, 2000))).decode() for _ in range(20)
        ]

    def make(self, number: int, date: datetime) -> bytes:
        rng = self.rng
        subject = rng.choice(["", "", "Re: ", "Fwd: "]) + rng.choice(TOPICS) + f" ({number})"
        headers = (
            f"From: {rng.choice(self.senders)}\n"
            f"To: Office <office@example.test>\n"
            f"Subject: {_encoded(subject)}\n"
            f"Date: {date.strftime('%a, %d %b %Y %H:%M:%S +0000')}\n"
            f"Message-ID: <{number}.{rng.getrandbits(32)}@example.org>\n"
            f"MIME-Version: 1.0\n"
        )
        text = "\n\n".join(rng.sample(self.paragraphs, rng.randint(1, 4)))
        kind = rng.random()
        if kind < 0.6:
            body = f"Content-Type: text/plain; charset=utf-8\n{EIGHT_BIT}\n{text}\n"
        else:
            html = "".join(f"<p>{p}</p>" for p in text.split("\n\n"))
            alternative = (
                'Content-Type: multipart/alternative; boundary="alt"\n\n'
                f"--alt\nContent-Type: text/plain; charset=utf-8\n{EIGHT_BIT}\n{text}\n"
                f"--alt\nContent-Type: text/html; charset=utf-8\n{EIGHT_BIT}\n"
                f"<html><body>{html}</body></html>\n--alt--\n"
            )
            if kind < 0.9:
                body = alternative
            else:
                body = (
                    'Content-Type: multipart/mixed; boundary="mix"\n\n'
                    f"--mix\n{alternative}"
                    "--mix\nContent-Type: application/pdf; name=report.pdf\n"
                    "Content-Disposition: attachment; filename=report.pdf\n"
                    f"Content-Transfer-Encoding: base64\n\n{rng.choice(self.attachments)}--mix--\n"
                )
        return (headers + body).encode()


def seed_maildir(server: LocalMailServer, address: str, password: str, count: int) -> float:
    """Write ``count`` messages straight into the user's Maildir, as a migration would.

    Dovecot indexes them when the mailbox is first opened, as it does for any
    Maildir it did not write itself. Returns the seconds it took.
    """
    started = time.perf_counter()
    maildir = _new_maildir(server, address, password)
    mail = pwd.getpwnam("mail")
    maker = MessageMaker(count)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    step = timedelta(days=365) / count
    for number in range(1, count + 1):
        date = start + step * number
        raw = maker.make(number, date)
        timestamp = int(date.timestamp())
        # The name Dovecot itself would give: arrival time, unique part, sizes; most
        # of the older mail has been read.
        flags = "S" if number < count * 0.9 and maker.rng.random() < 0.8 else ""
        virtual_size = len(raw) + raw.count(b"\n")  # with CRLF line ends, as IMAP counts
        name = f"{timestamp}.M{number}P1.bench,S={len(raw)},W={virtual_size}:2,{flags}"
        path = maildir / "cur" / name
        with open(path, "wb") as file:
            file.write(raw)
            os.fchown(file.fileno(), mail.pw_uid, mail.pw_gid)
        os.utime(path, (timestamp, timestamp))
    return time.perf_counter() - started


def link_maildir(server: LocalMailServer, source: str, address: str, password: str) -> float:
    """Give ``address`` the messages of ``source``'s INBOX, seeded before, as hard links.

    Dovecot never writes into a message file (a flag change renames it, an expunge
    unlinks it), so users may share the files. Returns the seconds it took.
    """
    started = time.perf_counter()
    maildir = _new_maildir(server, address, password)
    local, domain = source.split("@")
    origin = server.root / "mail" / domain / local / "Maildir" / "cur"
    with os.scandir(origin) as entries:
        for entry in entries:
            os.link(entry.path, maildir / "cur" / entry.name)
    return time.perf_counter() - started


def _new_maildir(server: LocalMailServer, address: str, password: str) -> Path:
    """The user, made on the server, and their empty Maildir, owned by the mail user."""
    server.add_user(address, password)
    local, domain = address.split("@")
    home = server.root / "mail" / domain / local
    maildir = home / "Maildir"
    mail = pwd.getpwnam("mail")
    for folder in (home, maildir, maildir / "cur", maildir / "new", maildir / "tmp"):
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chown(folder, mail.pw_uid, mail.pw_gid)
    return maildir


def seeded_account(server: LocalMailServer, name: str, count: int) -> tuple[MailAccount, float]:
    """A new person, named ``name``-``count``, with an IMAP account whose INBOX holds
    ``count`` seeded messages; and the seconds the seeding took."""
    from django.contrib.auth import get_user_model

    from accounts.models import MailAccount, Security

    username = f"{name}-{count}"
    address, password = f"{username}@{server.domain}", f"{name}-password-{count}"
    seconds = seed_maildir(server, address, password, count)
    account = MailAccount(
        user=get_user_model().objects.create_user(username=username),
        email=address,
        login=address,
        incoming_host=server.host,
        incoming_port=server.imap_port,
        incoming_security=Security.STARTTLS,
        ca_file=str(server.ca_file),
        smtp_host=server.host,
        smtp_port=server.submission_port,
    )
    account.set_password(password)
    account.save()
    return account, seconds
