"""Opening a signed-in IMAP connection, and saying exactly why one could not be opened."""

from __future__ import annotations

import contextlib
import enum
import imaplib
import socket
import ssl

from django.utils.translation import gettext as _
from imapclient import IMAPClient

from webmail.transport.endpoint import PLAIN, STARTTLS, TLS, Endpoint
from webmail.transport.tls import ssl_context

# imaplib refuses a response line over 1 MB, and the server writes a message's
# headers (ENVELOPE) on one line: one message with a long folded Subject would
# make every list of its folder fail. Literals (message bodies) are not lines.
imaplib._MAXLINE = max(imaplib._MAXLINE, 64 * 1024 * 1024)

# OpenSSL's X509_V_ERR_* codes that a person can act on.
_CERT_EXPIRED = 10
_CERT_NOT_YET_VALID = 9
_CERT_NAME_MISMATCH = {62, 64}  # host name, IP address
_CERT_UNTRUSTED = {2, 18, 19, 20, 21}  # unknown issuer, self-signed, incomplete chain


class Cause(enum.StrEnum):
    HOST_NOT_FOUND = "host-not-found"
    REFUSED = "refused"
    TIMEOUT = "timeout"
    NETWORK = "network"
    TLS = "tls"
    CERT_UNTRUSTED = "cert-untrusted"
    CERT_NAME = "cert-name"
    CERT_EXPIRED = "cert-expired"
    CERT_OTHER = "cert-other"
    CA_FILE = "ca-file"
    STARTTLS_MISSING = "starttls-missing"
    LOGIN = "login"
    SERVER = "server"


class ConnectionProblem(Exception):
    """A mail server could not be reached or signed in to; ``message`` says why, for a person."""

    def __init__(self, cause: Cause, message: str) -> None:
        super().__init__(message)
        self.cause = cause
        self.message = message


def server_reply(exc: BaseException) -> str:
    """The server's own words from an error, without the client library's "X failed:" prefix."""
    text = str(exc)
    for prefix in ("failed: ", "error: "):
        head, found, rest = text.partition(prefix)
        if found and " " not in head.strip():
            text = rest
            break
    if text.startswith(("b'", 'b"')) and text.endswith(text[1]):
        text = text[2:-1]
    return text.strip()[:300]


def connection_problem(exc: BaseException, endpoint: Endpoint) -> ConnectionProblem:
    """Classify a network or TLS error raised while talking to ``endpoint``."""
    if isinstance(exc, ConnectionProblem):
        return exc
    if isinstance(exc, imaplib.IMAP4.abort) and isinstance(exc.__context__, OSError):
        # imaplib turns socket errors into its own; the cause is the original one.
        exc = exc.__context__
    host, port = endpoint.host, endpoint.port
    if isinstance(exc, socket.gaierror):
        return ConnectionProblem(
            Cause.HOST_NOT_FOUND, _("The host name %(host)s was not found.") % {"host": host}
        )
    if isinstance(exc, ConnectionRefusedError):
        return ConnectionProblem(
            Cause.REFUSED,
            _("%(host)s refused the connection on port %(port)s.") % {"host": host, "port": port},
        )
    if isinstance(exc, TimeoutError):
        return ConnectionProblem(
            Cause.TIMEOUT,
            _("%(host)s did not answer within %(seconds)s seconds.")
            % {"host": host, "seconds": f"{endpoint.timeout:g}"},
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _certificate_problem(exc, host)
    if isinstance(exc, ssl.SSLError):
        if exc.reason in {"WRONG_VERSION_NUMBER", "UNKNOWN_PROTOCOL", "RECORD_LAYER_FAILURE"}:
            return ConnectionProblem(
                Cause.TLS,
                _(
                    "The TLS handshake failed: %(host)s does not speak TLS on port %(port)s "
                    "(try STARTTLS, or the other port)."
                )
                % {"host": host, "port": port},
            )
        return ConnectionProblem(
            Cause.TLS,
            _("The TLS handshake with %(host)s failed (%(reason)s).")
            % {"host": host, "reason": exc.reason or exc.strerror or exc},
        )
    if isinstance(exc, OSError):
        return ConnectionProblem(
            Cause.NETWORK,
            _("The connection to %(host)s failed: %(reason)s.")
            % {"host": host, "reason": exc.strerror or exc},
        )
    if isinstance(exc, EOFError):
        return ConnectionProblem(
            Cause.NETWORK, _("%(host)s closed the connection.") % {"host": host}
        )
    return ConnectionProblem(
        Cause.SERVER, _("The server said: %(reply)s") % {"reply": server_reply(exc)}
    )


def _certificate_problem(exc: ssl.SSLCertVerificationError, host: str) -> ConnectionProblem:
    code = exc.verify_code
    if code == _CERT_EXPIRED:
        return ConnectionProblem(Cause.CERT_EXPIRED, _("The server's certificate has expired."))
    if code == _CERT_NOT_YET_VALID:
        return ConnectionProblem(
            Cause.CERT_EXPIRED,
            _("The server's certificate is not valid yet (check this machine's clock)."),
        )
    if code in _CERT_NAME_MISMATCH:
        return ConnectionProblem(
            Cause.CERT_NAME,
            _("The server's certificate is not valid for the name %(host)s.") % {"host": host},
        )
    if code in _CERT_UNTRUSTED:
        return ConnectionProblem(
            Cause.CERT_UNTRUSTED,
            _(
                "The server's certificate is not trusted: it is self-signed or signed by an "
                "unknown authority. Name that authority's CA file in the account's settings."
            ),
        )
    return ConnectionProblem(
        Cause.CERT_OTHER,
        _("The server's certificate was refused: %(reason)s.")
        % {"reason": exc.verify_message or exc.reason},
    )


def tls_context(endpoint: Endpoint) -> ssl.SSLContext | None:
    """The TLS context ``endpoint`` needs, None for a plain connection; raises ConnectionProblem."""
    if endpoint.security == PLAIN:
        return None
    try:
        return ssl_context(endpoint)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError too
        reason = getattr(exc, "strerror", None) or exc
        raise ConnectionProblem(
            Cause.CA_FILE,
            _("The CA file %(path)s cannot be used: %(reason)s.")
            % {"path": endpoint.ca_file, "reason": reason},
        ) from None


def starttls_missing(endpoint: Endpoint) -> ConnectionProblem:
    return ConnectionProblem(
        Cause.STARTTLS_MISSING,
        _("%(host)s does not offer STARTTLS on port %(port)s.")
        % {"host": endpoint.host, "port": endpoint.port},
    )


def login_refused(reply: str) -> ConnectionProblem:
    return ConnectionProblem(
        Cause.LOGIN, _("The server refused the login or password (%(reply)s).") % {"reply": reply}
    )


def server_said(reply: str) -> ConnectionProblem:
    return ConnectionProblem(Cause.SERVER, _("The server said: %(reply)s") % {"reply": reply})


def closed(endpoint: Endpoint) -> ConnectionProblem:
    return ConnectionProblem(
        Cause.NETWORK, _("%(host)s closed the connection.") % {"host": endpoint.host}
    )


def _login_problem(exc: imaplib.IMAP4.error, client: IMAPClient) -> ConnectionProblem:
    reply = server_reply(exc)
    if "LOGINDISABLED" in {c.decode().upper() for c in client.capabilities()}:
        return ConnectionProblem(
            Cause.SERVER,
            _("The server refuses passwords on an unencrypted connection: use TLS or STARTTLS."),
        )
    # Response codes of RFC 5530: only these mean the credentials themselves were wrong.
    if reply.startswith("[") and not reply.startswith(
        ("[AUTHENTICATIONFAILED]", "[AUTHORIZATIONFAILED]")
    ):
        return ConnectionProblem(Cause.SERVER, _("The server said: %(reply)s") % {"reply": reply})
    return login_refused(reply)


def open_imap(endpoint: Endpoint) -> IMAPClient:
    """Connect to ``endpoint`` (TLS, STARTTLS or plain) and sign in.

    Raises ConnectionProblem. Folder names are encoded and decoded from modified
    UTF-7 by the client; dates come back as aware datetimes.
    """
    context = tls_context(endpoint)
    client: IMAPClient | None = None
    try:
        client = IMAPClient(
            endpoint.host,
            endpoint.port,
            ssl=endpoint.security == TLS,
            ssl_context=context,
            timeout=endpoint.timeout,
        )
        client.folder_encode = True
        client.normalise_times = False
        if endpoint.security == STARTTLS:
            if not client.has_capability("STARTTLS"):
                raise starttls_missing(endpoint)
            client.starttls(context)
        try:
            client.login(endpoint.login, endpoint.password)
        except imaplib.IMAP4.abort:
            raise
        except imaplib.IMAP4.error as exc:
            raise _login_problem(exc, client) from None
    except (OSError, EOFError, imaplib.IMAP4.error, ConnectionProblem) as exc:
        if client is not None:
            close_quietly(client, logout=False)
        raise connection_problem(exc, endpoint) from None
    return client


def close_quietly(client: IMAPClient, *, logout: bool = True) -> None:
    """Log out (or just drop) a connection whose fate no longer matters."""
    errors = (OSError, EOFError, imaplib.IMAP4.error)
    if logout:
        try:
            client.logout()
            return
        except errors:
            pass
    with contextlib.suppress(*errors):
        client.shutdown()
