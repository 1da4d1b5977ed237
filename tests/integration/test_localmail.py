"""The suite's own mail server: TLS, IMAP extensions, folders, SMTP, POP3, LMTP, restarts."""

from __future__ import annotations

import imaplib
import poplib
import re
import secrets
import smtplib
import socket
import ssl
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage

import pytest

from tests.conftest import MailUser
from webmail.localmail import LocalMailServer
from webmail.localmail.demo import demo_messages, seed_demo

pytestmark = pytest.mark.integration

#: Mail through Postfix arrives asynchronously; this is how long to look for it.
DELIVERY_DEADLINE = 20.0


def tls_context(server: LocalMailServer) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(server.ca_file))


def new_user(server: LocalMailServer) -> MailUser:
    user = MailUser(f"other-{uuid.uuid4().hex[:12]}@{server.domain}", secrets.token_urlsafe(12))
    server.add_user(user.address, user.password)
    return user


def message(sender: str, recipient: str) -> EmailMessage:
    """A message whose subject is a unique token, to find it again."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = recipient
    msg["Subject"] = f"check-{uuid.uuid4().hex}"
    msg.set_content("Bonjour, ceci est un essai.\n")
    return msg


@contextmanager
def imap_session(server: LocalMailServer, user: MailUser) -> Iterator[imaplib.IMAP4_SSL]:
    with imaplib.IMAP4_SSL(server.host, server.imaps_port, ssl_context=tls_context(server)) as imap:
        imap.login(user.address, user.password)
        yield imap


def search(imap: imaplib.IMAP4, mailbox: str, *criteria: str) -> list[bytes]:
    typ, _ = imap.select(mailbox, readonly=True)
    assert typ == "OK"
    typ, data = imap.search(None, *criteria)
    assert typ == "OK"
    return data[0].split()


def wait_for(
    server: LocalMailServer, user: MailUser, *criteria: str, mailbox: str = "INBOX"
) -> list[bytes]:
    """The messages matching ``criteria``, once at least one has arrived."""
    deadline = time.monotonic() + DELIVERY_DEADLINE
    with imap_session(server, user) as imap:
        while not (found := search(imap, mailbox, *criteria)) and time.monotonic() < deadline:
            time.sleep(0.05)
    return found


def folders(listing: list[bytes]) -> dict[str, set[str]]:
    """LIST or LSUB lines as {folder name: its attributes}."""
    found = {}
    for line in listing:
        attributes, name = re.match(rb'\(([^)]*)\) "/" "?([^"]*)"?$', line).groups()
        found[name.decode()] = set(attributes.decode().split())
    return found


def test_imap_starttls_verifies_against_the_ca_file(mail_server, mail_user):
    with imaplib.IMAP4(mail_server.host, mail_server.imap_port) as imap:
        assert "STARTTLS" in imap.capabilities
        imap.starttls(ssl_context=tls_context(mail_server))
        typ, _ = imap.login(mail_user.address, mail_user.password)
    assert typ == "OK"


def test_the_certificate_is_not_trusted_without_the_ca_file(mail_server):
    with (
        socket.create_connection((mail_server.host, mail_server.imaps_port)) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        ssl.create_default_context().wrap_socket(raw, server_hostname="localhost")


def test_the_certificate_names_localhost(mail_server):
    context = tls_context(mail_server)
    with (
        socket.create_connection((mail_server.host, mail_server.imaps_port)) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        assert tls.recv(64).startswith(b"* OK")


def test_imaps_offers_the_extensions_facteur_uses(mail_server, mail_user):
    with imap_session(mail_server, mail_user) as imap:
        typ, data = imap.capability()
    capabilities = set(data[0].decode().upper().split())
    assert typ == "OK"
    assert {
        "SORT",
        "THREAD=REFERENCES",
        "ESEARCH",
        "CONDSTORE",
        "QRESYNC",
        "MOVE",
        "UIDPLUS",
        "SPECIAL-USE",
        "QUOTA",
        "IDLE",
    } <= capabilities


def test_special_use_folders_exist_subscribed_and_quota_answers(mail_server, mail_user):
    with imap_session(mail_server, mail_user) as imap:
        _, listing = imap.list()
        _, subscribed = imap.lsub()
        typ, quota = imap.getquotaroot("INBOX")
    special = {"Drafts", "Sent", "Archive", "Junk", "Trash"}
    assert {name: f"\\{name}" in attributes for name, attributes in folders(listing).items()} == {
        "INBOX": False
    } | dict.fromkeys(special, True)
    assert special <= folders(subscribed).keys()
    assert typ == "OK"
    assert b"STORAGE" in quota[1][0]


def test_submission_delivers_to_another_user(mail_server, mail_user):
    recipient = new_user(mail_server)
    msg = message(mail_user.address, recipient.address)
    with smtplib.SMTP(mail_server.host, mail_server.submission_port) as smtp:
        smtp.ehlo()
        assert not smtp.has_extn("auth"), "AUTH must wait for TLS"
        smtp.starttls(context=tls_context(mail_server))
        smtp.ehlo()
        assert smtp.has_extn("auth")
        smtp.login(mail_user.address, mail_user.password)
        smtp.send_message(msg)
    assert wait_for(mail_server, recipient, "SUBJECT", msg["Subject"])


def test_submissions_port_speaks_tls_at_once(mail_server, mail_user):
    msg = message(mail_user.address, mail_user.address)
    with smtplib.SMTP_SSL(
        mail_server.host, mail_server.submissions_port, context=tls_context(mail_server)
    ) as smtp:
        smtp.login(mail_user.address, mail_user.password)
        smtp.send_message(msg)
    assert wait_for(mail_server, mail_user, "SUBJECT", msg["Subject"])


def test_submission_refuses_mail_without_authentication(mail_server, mail_user):
    raw = message(mail_user.address, mail_user.address).as_bytes()
    with smtplib.SMTP(mail_server.host, mail_server.submission_port) as smtp:
        smtp.starttls(context=tls_context(mail_server))
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            smtp.sendmail(mail_user.address, ["friend@elsewhere.example"], raw)
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            smtp.sendmail(mail_user.address, [mail_user.address], raw)
        with pytest.raises(smtplib.SMTPAuthenticationError):
            smtp.login(mail_user.address, "not the password")


def test_plain_smtp_accepts_mail_for_the_domain_only(mail_server, mail_user):
    msg = message("someone@elsewhere.example", mail_user.address)
    with smtplib.SMTP(mail_server.host, mail_server.smtp_port) as smtp:
        smtp.send_message(msg)
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            smtp.send_message(msg, to_addrs=["friend@elsewhere.example"])
    assert wait_for(mail_server, mail_user, "SUBJECT", msg["Subject"])


def test_mail_for_other_domains_is_refused_even_when_authenticated(mail_server, mail_user):
    with smtplib.SMTP(mail_server.host, mail_server.submission_port) as smtp:
        smtp.starttls(context=tls_context(mail_server))
        smtp.login(mail_user.address, mail_user.password)
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            smtp.send_message(message(mail_user.address, "friend@elsewhere.example"))
    assert refused.value.recipients["friend@elsewhere.example"][0] == 550


def test_lmtp_delivers_into_the_inbox_and_refuses_strangers(mail_server, mail_user):
    msg = message("someone@elsewhere.example", mail_user.address)
    mail_server.deliver(mail_user.address, msg.as_bytes())
    with imap_session(mail_server, mail_user) as imap:
        assert search(imap, "INBOX", "SUBJECT", msg["Subject"])
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        mail_server.deliver(f"nobody@{mail_server.domain}", msg.as_bytes())


def test_pop3_sees_delivered_mail(mail_server, mail_user):
    msg = message("someone@elsewhere.example", mail_user.address)
    mail_server.deliver(mail_user.address, msg.as_bytes())
    pop = poplib.POP3(mail_server.host, mail_server.pop3_port)
    try:
        pop.stls(context=tls_context(mail_server))
        pop.user(mail_user.address)
        pop.pass_(mail_user.password)
        count, _ = pop.stat()
        _, lines, _ = pop.retr(1)
    finally:
        pop.quit()
    assert count == 1
    assert f"Subject: {msg['Subject']}".encode() in lines

    pop = poplib.POP3_SSL(
        mail_server.host, mail_server.pop3s_port, context=tls_context(mail_server)
    )
    try:
        pop.user(mail_user.address)
        pop.pass_(mail_user.password)
        assert pop.stat()[0] == 1
    finally:
        pop.quit()


def test_a_new_password_replaces_the_old_one(mail_server, mail_user):
    mail_server.add_user(mail_user.address, "a-new-password")
    with imaplib.IMAP4_SSL(
        mail_server.host, mail_server.imaps_port, ssl_context=tls_context(mail_server)
    ) as imap:
        with pytest.raises(imaplib.IMAP4.error):
            imap.login(mail_user.address, mail_user.password)
        typ, _ = imap.login(mail_user.address, "a-new-password")
    assert typ == "OK"


def test_seed_demo_fills_the_folders(mail_server):
    address = f"demo-{uuid.uuid4().hex[:12]}@{mail_server.domain}"
    person = MailUser(address, secrets.token_urlsafe(12))
    seed_demo(mail_server, [(person.address, person.password)])
    expected = len(demo_messages(mail_server.domain, [person.address]))
    with imap_session(mail_server, person) as imap:
        assert len(search(imap, "INBOX", "ALL")) == expected
        assert search(imap, "INBOX", "FLAGGED")
        assert search(imap, "INBOX", "UNSEEN")
        assert search(imap, "INBOX", "HEADER", "In-Reply-To", "@")
        assert len(search(imap, "Sent", "SEEN")) == len(search(imap, "Sent", "ALL")) > 0
        assert search(imap, "Drafts", "DRAFT")


# The tests below stop and start the servers; the rest of the suite shares
# them, so each puts them back as it found them.


def test_restarting_dovecot_keeps_mail_and_ports(mail_server, mail_user):
    msg = message("someone@elsewhere.example", mail_user.address)
    mail_server.deliver(mail_user.address, msg.as_bytes())
    ports = (mail_server.imap_port, mail_server.imaps_port, mail_server.lmtp_port)
    mail_server.restart_dovecot()
    assert (mail_server.imap_port, mail_server.imaps_port, mail_server.lmtp_port) == ports
    with imap_session(mail_server, mail_user) as imap:
        assert search(imap, "INBOX", "SUBJECT", msg["Subject"])


def test_mail_sent_while_dovecot_is_down_arrives_once_it_is_back(mail_server, mail_user):
    msg = message("someone@elsewhere.example", mail_user.address)
    mail_server.stop_dovecot()
    try:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((mail_server.host, mail_server.imap_port)).close()
        with smtplib.SMTP(mail_server.host, mail_server.smtp_port) as smtp:
            smtp.send_message(msg)
    finally:
        mail_server.start_dovecot()
    assert wait_for(mail_server, mail_user, "SUBJECT", msg["Subject"])


def test_postfix_stops_and_starts_on_the_same_ports(mail_server, mail_user):
    mail_server.stop_postfix()
    try:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((mail_server.host, mail_server.submission_port)).close()
    finally:
        mail_server.start_postfix()
    msg = message(mail_user.address, mail_user.address)
    with smtplib.SMTP(mail_server.host, mail_server.submission_port) as smtp:
        smtp.starttls(context=tls_context(mail_server))
        smtp.login(mail_user.address, mail_user.password)
        smtp.send_message(msg)
    assert wait_for(mail_server, mail_user, "SUBJECT", msg["Subject"])
