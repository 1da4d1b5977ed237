"""Submitting a message over SMTP, with failures sorted into worth retrying or not."""

from __future__ import annotations

import re
import smtplib
import socket
import ssl
from collections.abc import Callable, Sequence

from django.utils.translation import gettext as _

from webmail.transport.endpoint import STARTTLS, TLS, Endpoint
from webmail.transport.tls import ssl_context

# Dot-stuffing (RFC 5321, 4.5.2): a line of the message that starts with a dot gets another.
_LEADING_DOT = re.compile(rb"(?m)^\.")


class SubmissionError(Exception):
    """The message was not accepted; ``reply`` says why, in the server's words when it spoke."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


class TemporaryFailure(SubmissionError):
    """Trying again later may succeed: the network, a 4xx reply."""


class PermanentFailure(SubmissionError):
    """Trying again will not help: a 5xx reply, a certificate that is not trusted."""


class Unconfirmed(SubmissionError):
    """The connection broke after the whole message was handed over: the server may have it.

    Not a failure to retry: sending again could deliver it twice.
    """


def _text(value: bytes | str) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return " ".join(value.split())[:500]


def _reply(code: int, message: bytes | str) -> str:
    return f"{code} {_text(message)}"


def _failure(code: int, reply: str) -> SubmissionError:
    return TemporaryFailure(reply) if 400 <= code < 500 else PermanentFailure(reply)


def _no_delay(client: smtplib.SMTP) -> smtplib.SMTP:
    # With Nagle's algorithm the last segment of the message, which holds its
    # final dot, would wait for the server's delayed acknowledgement of the others.
    client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return client


def _connect(endpoint: Endpoint) -> smtplib.SMTP:
    if endpoint.security == TLS:
        return _no_delay(
            smtplib.SMTP_SSL(
                endpoint.host,
                endpoint.port,
                timeout=endpoint.timeout,
                context=ssl_context(endpoint),
            )
        )
    client = _no_delay(smtplib.SMTP(endpoint.host, endpoint.port, timeout=endpoint.timeout))
    if endpoint.security == STARTTLS:
        client.ehlo()
        if not client.has_extn("starttls"):
            client.close()
            raise PermanentFailure(
                _("%(host)s does not offer STARTTLS; the message was not sent unencrypted.")
                % {"host": endpoint.host}
            )
        client.starttls(context=ssl_context(endpoint))
        client.ehlo()
    return client


def _transmit(
    client: smtplib.SMTP,
    envelope_from: str,
    recipients: Sequence[str],
    raw: bytes,
    on_handover: Callable[[], object],
) -> dict[str, tuple[int, bytes]]:
    """smtplib's sendmail(), with a call to ``on_handover`` before the final dot."""
    client.ehlo_or_helo_if_needed()
    options = [f"SIZE={len(raw)}"] if client.has_extn("size") else []
    code, reply = client.mail(envelope_from, options)
    if code != 250:
        raise smtplib.SMTPSenderRefused(code, reply, envelope_from)
    refused = {}
    for recipient in recipients:
        code, reply = client.rcpt(recipient)
        if code not in (250, 251):
            refused[recipient] = (code, reply)
    if len(refused) == len(recipients):
        raise smtplib.SMTPRecipientsRefused(refused)
    code, reply = client.docmd("DATA")
    if code != 354:
        raise smtplib.SMTPDataError(code, reply)
    body = _LEADING_DOT.sub(b"..", raw)
    # One write for the message and its final dot: should it fail, the dot did not
    # go, and the server drops what it received.
    client.send((body if body.endswith(b"\r\n") else body + b"\r\n") + b".\r\n")
    try:
        on_handover()
    except BaseException:
        client.close()
        raise
    try:
        code, reply = client.getreply()
    except (OSError, smtplib.SMTPServerDisconnected) as exc:
        raise Unconfirmed(_text(str(exc)) or type(exc).__name__) from exc
    if code != 250:
        raise smtplib.SMTPDataError(code, reply)
    return refused


def submit(
    endpoint: Endpoint,
    envelope_from: str,
    recipients: Sequence[str],
    raw: bytes,
    *,
    on_handover: Callable[[], object] = lambda: None,
) -> dict[str, str]:
    """Hand ``raw`` (CRLF line endings) to the submission server of ``endpoint``.

    ``on_handover`` is called as soon as the final dot, by which the server takes
    the message, has been sent, before the server's reply is read: until the
    dot a broken connection leaves nothing at the server, so trying again is
    safe; after it, the server may have the message even if its reply never
    comes (RFC 1047), and Unconfirmed is raised instead of TemporaryFailure. An
    exception from ``on_handover`` closes the connection and is raised as is;
    the server may still take the message.

    Returns the recipients the server refused while accepting the others, with
    its reply to each: the message has gone to the rest and must not be sent
    again. Raises TemporaryFailure or PermanentFailure when it was not accepted.
    """
    try:
        with _connect(endpoint) as client:
            if endpoint.login:
                client.login(endpoint.login, endpoint.password)
            refused = _transmit(client, envelope_from, recipients, raw, on_handover)
    except smtplib.SMTPRecipientsRefused as exc:
        replies = {rcpt: _reply(code, text) for rcpt, (code, text) in exc.recipients.items()}
        summary = "; ".join(f"{rcpt}: {reply}" for rcpt, reply in replies.items())
        codes = [code for code, __ in exc.recipients.values()]
        if any(400 <= code < 500 for code in codes):
            raise TemporaryFailure(summary) from exc
        raise PermanentFailure(summary) from exc
    except smtplib.SMTPResponseException as exc:
        # Sender refused, data refused, authentication refused: the server's own reply.
        raise _failure(exc.smtp_code, _reply(exc.smtp_code, exc.smtp_error)) from exc
    except ssl.SSLCertVerificationError as exc:
        raise PermanentFailure(
            _("The certificate of %(host)s is not trusted: %(reason)s")
            % {"host": endpoint.host, "reason": exc.verify_message}
        ) from exc
    except smtplib.SMTPNotSupportedError as exc:
        raise PermanentFailure(_text(str(exc))) from exc
    except (OSError, smtplib.SMTPException) as exc:
        # Refused or dropped connections, timeouts, unknown hosts: all may pass.
        raise TemporaryFailure(
            _("%(host)s could not be reached: %(reason)s")
            % {"host": endpoint.host, "reason": _text(str(exc)) or type(exc).__name__}
        ) from exc
    return {rcpt: _reply(code, text) for rcpt, (code, text) in refused.items()}
