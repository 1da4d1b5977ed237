"""The "test connection" checks: sign in to a server once and say exactly what went wrong.

Each check takes an Endpoint and returns a CheckResult within about
``endpoint.timeout`` seconds; none raises for a network or server problem.
"""

from __future__ import annotations

import contextlib
import poplib
import smtplib
from dataclasses import dataclass

from django.utils.translation import gettext as _

from webmail.transport.endpoint import STARTTLS, TLS, Endpoint
from webmail.transport.imap import (
    Cause,
    ConnectionProblem,
    close_quietly,
    connection_problem,
    login_refused,
    open_imap,
    server_reply,
    starttls_missing,
    tls_context,
)


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    message: str


def _signed_in(endpoint: Endpoint) -> CheckResult:
    return CheckResult(
        True,
        _("Signed in to %(host)s as %(login)s.") % {"host": endpoint.host, "login": endpoint.login},
    )


def _failed(problem: ConnectionProblem) -> CheckResult:
    return CheckResult(False, problem.message)


def check_imap(endpoint: Endpoint) -> CheckResult:
    try:
        client = open_imap(endpoint)
    except ConnectionProblem as problem:
        return _failed(problem)
    close_quietly(client)
    return _signed_in(endpoint)


def check_pop3(endpoint: Endpoint) -> CheckResult:
    try:
        context = tls_context(endpoint)
        if endpoint.security == TLS:
            pop = poplib.POP3_SSL(
                endpoint.host, endpoint.port, timeout=endpoint.timeout, context=context
            )
        else:
            pop = poplib.POP3(endpoint.host, endpoint.port, timeout=endpoint.timeout)
    except ConnectionProblem as problem:
        return _failed(problem)
    except (OSError, EOFError, poplib.error_proto) as exc:
        return _failed(_pop3_problem(exc, endpoint))
    try:
        if endpoint.security == STARTTLS:
            try:
                offered = "STLS" in pop.capa()
            except poplib.error_proto:
                offered = False  # no CAPA command: no STLS either
            if not offered:
                return _failed(starttls_missing(endpoint))
            pop.stls(context)
        try:
            pop.user(endpoint.login)
            pop.pass_(endpoint.password)
        except poplib.error_proto as exc:
            reply = _pop3_reply(exc)
            if reply.startswith(("[SYS/", "[IN-USE]")):
                return _failed(_server_said(reply))
            return _failed(login_refused(reply))
        with contextlib.suppress(OSError, EOFError, poplib.error_proto):
            pop.quit()
    except (OSError, EOFError, poplib.error_proto) as exc:
        return _failed(_pop3_problem(exc, endpoint))
    finally:
        pop.close()
    return _signed_in(endpoint)


def check_smtp(endpoint: Endpoint) -> CheckResult:
    smtp: smtplib.SMTP | None = None
    try:
        context = tls_context(endpoint)
        if endpoint.security == TLS:
            smtp = smtplib.SMTP_SSL(
                endpoint.host, endpoint.port, timeout=endpoint.timeout, context=context
            )
        else:
            smtp = smtplib.SMTP(endpoint.host, endpoint.port, timeout=endpoint.timeout)
        smtp.ehlo()
        if endpoint.security == STARTTLS:
            if not smtp.has_extn("starttls"):
                return _failed(starttls_missing(endpoint))
            smtp.starttls(context=context)
            smtp.ehlo()
        if not endpoint.login:
            return CheckResult(
                True,
                _("Connected to %(host)s; no sign-in was tried because there is no login.")
                % {"host": endpoint.host},
            )
        if not smtp.has_extn("auth"):
            return CheckResult(
                False,
                _("%(host)s does not offer sign-in (AUTH) on port %(port)s.")
                % {"host": endpoint.host, "port": endpoint.port},
            )
        smtp.login(endpoint.login, endpoint.password)
    except ConnectionProblem as problem:
        return _failed(problem)
    except smtplib.SMTPAuthenticationError as exc:
        return _failed(login_refused(_smtp_reply(exc)))
    except smtplib.SMTPServerDisconnected:
        return _failed(_closed(endpoint))
    except smtplib.SMTPResponseException as exc:
        return _failed(_server_said(_smtp_reply(exc)))
    except smtplib.SMTPException as exc:
        return _failed(_server_said(str(exc)))
    except (OSError, EOFError) as exc:
        return _failed(connection_problem(exc, endpoint))
    finally:
        if smtp is not None:
            with contextlib.suppress(OSError, EOFError, smtplib.SMTPException):
                smtp.quit()
            smtp.close()
    return _signed_in(endpoint)


def _server_said(reply: str) -> ConnectionProblem:
    return ConnectionProblem(Cause.SERVER, _("The server said: %(reply)s") % {"reply": reply})


def _closed(endpoint: Endpoint) -> ConnectionProblem:
    return ConnectionProblem(
        Cause.NETWORK, _("%(host)s closed the connection.") % {"host": endpoint.host}
    )


def _pop3_reply(exc: poplib.error_proto) -> str:
    reply = server_reply(exc)
    return reply.removeprefix("-ERR").strip()


def _pop3_problem(exc: BaseException, endpoint: Endpoint) -> ConnectionProblem:
    if isinstance(exc, poplib.error_proto):
        return _server_said(_pop3_reply(exc))
    if isinstance(exc, EOFError):
        return _closed(endpoint)
    return connection_problem(exc, endpoint)


def _smtp_reply(exc: smtplib.SMTPResponseException) -> str:
    text = exc.smtp_error
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{exc.smtp_code} {' '.join(text.split())}"[:300]
