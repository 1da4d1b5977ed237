"""Opening a signed-in POP3 connection, and saying exactly why one could not be opened."""

from __future__ import annotations

import contextlib
import poplib

from webmail.transport.endpoint import STARTTLS, TLS, Endpoint
from webmail.transport.imap import (
    ConnectionProblem,
    closed,
    connection_problem,
    login_refused,
    server_reply,
    server_said,
    starttls_missing,
    tls_context,
)

#: What talking to a POP3 server raises when the connection or the server fails.
POP3_ERRORS = (OSError, EOFError, poplib.error_proto)

#: Longest line read. poplib's own bound (2,048 bytes) refuses real mail, whose
#: lines are often longer than RFC 5322 allows; a line can be no longer than a message.
MAX_LINE_BYTES = 64 * 1024 * 1024


class _LongLines:
    """poplib's line reader, with a bound that real messages fit in."""

    def _getline(self) -> tuple[bytes, int]:
        line = self.file.readline(MAX_LINE_BYTES + 1)
        if len(line) > MAX_LINE_BYTES:
            raise poplib.error_proto("-ERR line too long")
        if not line:
            raise poplib.error_proto("-ERR EOF")
        octets = len(line)
        if line[-2:] == b"\r\n":
            return line[:-2], octets
        if line[:1] == b"\r":
            return line[1:-1], octets
        return line[:-1], octets


class _POP3(_LongLines, poplib.POP3):
    pass


class _POP3SSL(_LongLines, poplib.POP3_SSL):
    pass


def pop3_reply(exc: poplib.error_proto) -> str:
    """The server's words from a POP3 error, without its "-ERR"."""
    return server_reply(exc).removeprefix("-ERR").strip()


def pop3_problem(exc: BaseException, endpoint: Endpoint) -> ConnectionProblem:
    """Classify an error raised while talking POP3 to ``endpoint``."""
    if isinstance(exc, ConnectionProblem):
        return exc
    if isinstance(exc, poplib.error_proto):
        reply = pop3_reply(exc)
        # poplib's word for a connection that ended, not the server's.
        return closed(endpoint) if reply == "EOF" else server_said(reply)
    if isinstance(exc, EOFError):
        return closed(endpoint)
    return connection_problem(exc, endpoint)


def _login_problem(exc: poplib.error_proto) -> ConnectionProblem:
    reply = pop3_reply(exc)
    # Response codes of RFC 3206 that say the server, not the password, is at fault.
    if reply.startswith(("[SYS/", "[IN-USE]", "[LOGIN-DELAY]")):
        return server_said(reply)
    return login_refused(reply)


def _offers_stls(pop: poplib.POP3) -> bool:
    try:
        return "STLS" in pop.capa()
    except poplib.error_proto:
        return False  # no CAPA command: no STLS either


def open_pop3(endpoint: Endpoint) -> poplib.POP3:
    """Connect to ``endpoint`` (TLS, STARTTLS or plain) and sign in with USER and PASS.

    Raises ConnectionProblem. Close the connection with ``quit`` (which commits
    DELEs) or ``close_quietly``.
    """
    context = tls_context(endpoint)
    pop: poplib.POP3 | None = None
    try:
        if endpoint.security == TLS:
            pop = _POP3SSL(endpoint.host, endpoint.port, timeout=endpoint.timeout, context=context)
        else:
            pop = _POP3(endpoint.host, endpoint.port, timeout=endpoint.timeout)
        if endpoint.security == STARTTLS:
            if not _offers_stls(pop):
                raise starttls_missing(endpoint)
            pop.stls(context)
        try:
            pop.user(endpoint.login)
            pop.pass_(endpoint.password)
        except poplib.error_proto as exc:
            if pop3_reply(exc) == "EOF":
                raise
            raise _login_problem(exc) from None
    except (*POP3_ERRORS, ConnectionProblem) as exc:
        if pop is not None:
            close_quietly(pop, quit=False)
        raise pop3_problem(exc, endpoint) from None
    return pop


def close_quietly(pop: poplib.POP3, *, quit: bool = True) -> None:
    """QUIT (or just drop) a connection whose fate no longer matters.

    Dropping without QUIT leaves the mailbox as it was: the server forgets any DELE.
    """
    if quit:
        with contextlib.suppress(*POP3_ERRORS):
            pop.quit()
            return
    with contextlib.suppress(OSError):
        pop.close()
