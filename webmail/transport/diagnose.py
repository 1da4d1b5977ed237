"""The "test connection" checks: sign in to a server once and say exactly what went wrong.

Each check takes an Endpoint and returns a CheckResult within about
``endpoint.timeout`` seconds; none raises for a network or server problem.
"""

from __future__ import annotations

import contextlib
import smtplib
from dataclasses import dataclass

from django.utils.translation import gettext as _

from webmail.transport import pop3
from webmail.transport.endpoint import STARTTLS, TLS, Endpoint
from webmail.transport.imap import (
    ConnectionProblem,
    close_quietly,
    closed,
    connection_problem,
    login_refused,
    open_imap,
    server_said,
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
        client = pop3.open_pop3(endpoint)
    except ConnectionProblem as problem:
        return _failed(problem)
    pop3.close_quietly(client)
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
        return _failed(closed(endpoint))
    except smtplib.SMTPResponseException as exc:
        return _failed(server_said(_smtp_reply(exc)))
    except smtplib.SMTPException as exc:
        return _failed(server_said(str(exc)))
    except (OSError, EOFError) as exc:
        return _failed(connection_problem(exc, endpoint))
    finally:
        if smtp is not None:
            with contextlib.suppress(OSError, EOFError, smtplib.SMTPException):
                smtp.quit()
            smtp.close()
    return _signed_in(endpoint)


def _smtp_reply(exc: smtplib.SMTPResponseException) -> str:
    text = exc.smtp_error
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{exc.smtp_code} {' '.join(text.split())}"[:300]
