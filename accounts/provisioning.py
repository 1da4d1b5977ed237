"""Provisioning from the command line: server presets, people, credential rotation.

The management commands are thin wrappers around these functions. Each one
validates everything first, reports every problem it finds, and writes in a
single transaction, so a run either applies all of its input or nothing; and
running it again with the same input changes nothing.
"""

from __future__ import annotations

import csv
import enum
import io
import ipaddress
import re
import ssl
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils.translation import gettext as _

from accounts import crypto
from accounts.models import MailAccount, Protocol, Security, ServerPreset


class ProvisioningError(Exception):
    """The input is invalid; ``errors`` lists every problem found, and nothing was written."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


class Outcome(enum.StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


# -- Servers ---------------------------------------------------------------

_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
_HOSTNAME_RE = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*\.?$")


def validate_host(host: str) -> None:
    """Accept a DNS name (single labels such as ``localhost`` included) or an IP address."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if len(host) > 253 or not _HOSTNAME_RE.match(host):
            raise ValidationError(
                _("“%(host)s” is not a host name or an IP address."),
                code="invalid_host",
                params={"host": host},
            ) from None


def parse_host_port(value: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` or ``[IPv6]:PORT``; the host is returned without brackets."""
    value = value.strip()
    if value.startswith("["):
        host, bracket, rest = value[1:].partition("]")
        if not bracket or not rest.startswith(":"):
            raise ValidationError(
                _("“%(value)s”: write an IPv6 address and port as [ADDRESS]:PORT."),
                code="invalid_address",
                params={"value": value},
            )
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValidationError(
                _("“%(host)s” is not an IPv6 address."),
                code="invalid_address",
                params={"host": host},
            ) from None
        port_text = rest[1:]
    else:
        host, colon, port_text = value.rpartition(":")
        if not colon or not host:
            raise ValidationError(
                _("“%(value)s” has no port: write HOST:PORT."),
                code="missing_port",
                params={"value": value},
            )
        if ":" in host:
            raise ValidationError(
                _("“%(value)s”: write an IPv6 address and port as [ADDRESS]:PORT."),
                code="invalid_address",
                params={"value": value},
            )
        validate_host(host)
    if not (port_text.isascii() and port_text.isdigit() and 1 <= int(port_text) <= 65535):
        raise ValidationError(
            _("“%(port)s” is not a port number (1 to 65535)."),
            code="invalid_port",
            params={"port": port_text},
        )
    return host, int(port_text)


def validate_ca_file(path: str) -> None:
    """The file must exist on this machine and hold PEM certificates that OpenSSL loads."""
    if not Path(path).is_file():
        raise ValidationError(
            _("There is no file “%(path)s” on the server."), code="ca_file", params={"path": path}
        )
    try:
        ssl.create_default_context(cafile=path)
    except (ssl.SSLError, OSError, ValueError):
        raise ValidationError(
            _("“%(path)s” is not a readable file of PEM certificates."),
            code="ca_file",
            params={"path": path},
        ) from None


def _messages(error: ValidationError) -> str:
    return " ".join(error.messages)


def add_preset(
    name: str,
    *,
    domain: str,
    smtp: str,
    smtp_security: str,
    imap: str = "",
    imap_security: str = "",
    pop3: str = "",
    pop3_security: str = "",
    ca_file: str = "",
    accept_untrusted: bool = False,
) -> tuple[ServerPreset, Outcome]:
    """Create or update the preset ``name`` so that it is exactly what is given.

    Servers are ``HOST:PORT`` strings; options left out are cleared on an
    existing preset. Errors name the command-line option they come from.
    """
    errors: list[str] = []
    name = name.strip()
    if not name:
        errors.append(_("NAME: the preset needs a name."))
    domain = domain.strip().lower().rstrip(".")
    if not domain:
        errors.append(_("--domain: a preset needs the mail domain it serves."))
    else:
        try:
            validate_host(domain)
        except ValidationError as exc:
            errors.append(f"--domain: {_messages(exc)}")

    values: dict[str, object] = {"domain": domain}
    servers = (("imap", imap, imap_security), ("pop3", pop3, pop3_security))
    for protocol, address, security in (*servers, ("smtp", smtp, smtp_security)):
        if not address:
            # Left out means cleared: the preset is exactly what was given.
            values.update(
                {
                    f"{protocol}_host": "",
                    f"{protocol}_port": None,
                    f"{protocol}_security": Security.TLS,
                }
            )
            continue
        try:
            host, port = parse_host_port(address)
        except ValidationError as exc:
            errors.append(f"--{protocol}: {_messages(exc)}")
            continue
        if security not in Security.values:
            errors.append(
                _("--%(protocol)s-security: choose one of %(choices)s.")
                % {"protocol": protocol, "choices": ", ".join(Security.values)}
            )
        values.update(
            {f"{protocol}_host": host, f"{protocol}_port": port, f"{protocol}_security": security}
        )
    if not smtp:
        errors.append(_("--smtp: a preset needs an SMTP server."))
    if not imap and not pop3:
        errors.append(_("--imap or --pop3: a preset needs an incoming server."))

    if ca_file and accept_untrusted:
        errors.append(_("--ca-file and --insecure: choose one."))
    elif ca_file:
        try:
            validate_ca_file(ca_file)
        except ValidationError as exc:
            errors.append(f"--ca-file: {_messages(exc)}")
    values.update({"ca_file": ca_file, "accept_untrusted": accept_untrusted})

    with transaction.atomic():
        other = ServerPreset.objects.filter(domain__iexact=domain).exclude(name=name).first()
        if domain and other is not None:
            errors.append(
                _("--domain: the preset “%(other)s” already serves %(domain)s.")
                % {"other": other.name, "domain": domain}
            )
        if errors:
            raise ProvisioningError(errors)
        preset = ServerPreset.objects.select_for_update().filter(name=name).first()
        if preset is None:
            return ServerPreset.objects.create(name=name, **values), Outcome.CREATED
        return preset, _update(preset, values)


def _update(instance: ServerPreset | MailAccount | AbstractBaseUser, values: dict) -> Outcome:
    changed = [key for key, value in values.items() if getattr(instance, key) != value]
    if not changed:
        return Outcome.UNCHANGED
    for key in changed:
        setattr(instance, key, values[key])
    instance.save(update_fields=changed)
    return Outcome.UPDATED


# -- People ----------------------------------------------------------------

PEOPLE_COLUMNS = ("username", "email", "password", "mail_login", "mail_password", "preset")
#: Columns a file may add; left out, they change nothing on an existing account.
OPTIONAL_PEOPLE_COLUMNS = ("protocol", "pop3_delete_after_days")

_MAX_DAYS = 32767  # a PositiveSmallIntegerField on every database


@dataclass(frozen=True)
class _Person:
    username: str
    email: str
    password: str
    mail_login: str
    mail_password: str
    preset: ServerPreset
    protocol: str
    # The optional columns the file has, as account fields and their values.
    account_options: dict[str, object] = field(default_factory=dict)


@dataclass
class ImportReport:
    people: Counter[Outcome] = field(default_factory=Counter)
    accounts: Counter[Outcome] = field(default_factory=Counter)


def import_people(path: Path | str) -> ImportReport:
    """Create or update the people and mail accounts listed in a CSV file.

    The header is :data:`PEOPLE_COLUMNS` in any order, with any of
    :data:`OPTIONAL_PEOPLE_COLUMNS`. ``password`` is the sign-in password; an
    empty ``password`` or ``mail_password`` keeps the current one, an empty
    ``mail_login`` means the e-mail address and an empty ``preset`` means the
    preset of the address's domain. An empty ``protocol`` keeps an account's
    and makes a new one IMAP, or POP3 when the preset has no IMAP server; an
    empty ``pop3_delete_after_days`` leaves mail on the server. Errors read
    ``FILE:LINE: column "NAME": problem``.
    """
    source = str(path)
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ProvisioningError(
            [_("%(file)s:%(line)d: not UTF-8 text.") % {"file": source, "line": line}]
        ) from None
    with transaction.atomic():
        people = _read_people(text, source)
        report = ImportReport()
        for person in people:
            user, outcome = _provision_person(person)
            report.people[outcome] += 1
            report.accounts[_provision_account(user, person)] += 1
        return report


def _read_people(text: str, source: str) -> list[_Person]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    validator = _PeopleValidator(source)
    rows: list[tuple[int, dict[str, str]]] = []
    try:
        header = next(reader, None)
        if header is None:
            raise ProvisioningError([_("%(file)s: the file is empty.") % {"file": source}])
        columns = [name.strip().lower() for name in header]
        required = [name for name in columns if name not in OPTIONAL_PEOPLE_COLUMNS]
        if sorted(required) != sorted(PEOPLE_COLUMNS) or len(set(columns)) < len(columns):
            raise ProvisioningError(
                [
                    _(
                        "%(file)s:1: the header must name the columns %(columns)s, "
                        "and may add %(optional)s."
                    )
                    % {
                        "file": source,
                        "columns": ",".join(PEOPLE_COLUMNS),
                        "optional": ",".join(OPTIONAL_PEOPLE_COLUMNS),
                    }
                ]
            )
        line = reader.line_num + 1
        for row in reader:
            if any(cell.strip() for cell in row):
                if len(row) == len(columns):
                    rows.append((line, dict(zip(columns, row, strict=True))))
                else:
                    validator.error(
                        line,
                        None,
                        _("expected %(expected)d fields, found %(found)d.")
                        % {"expected": len(columns), "found": len(row)},
                    )
            line = reader.line_num + 1
    except csv.Error as exc:
        validator.error(reader.line_num, None, str(exc))

    validator.load([fields for _line, fields in rows])
    people = [validator.validate(line, fields) for line, fields in rows]
    if validator.errors:
        ordered = sorted(validator.errors, key=lambda error: error[0])
        raise ProvisioningError([message for _line, message in ordered])
    return [person for person in people if person is not None]


class _PeopleValidator:
    """Checks rows against each other and against the database, collecting every error."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.errors: list[tuple[int, str]] = []
        self.user_model = get_user_model()
        self.seen_usernames: dict[str, int] = {}
        self.seen_emails: dict[str, int] = {}

    def load(self, rows: list[dict[str, str]]) -> None:
        """Fetch what the rows refer to in a few queries rather than a few per row."""
        usernames = {
            self.user_model.normalize_username(fields["username"].strip()) for fields in rows
        }
        self.users = {
            user.get_username(): user
            for user in self.user_model._default_manager.filter(username__in=usernames)
        }
        self.accounts = {
            (account.user_id, account.email.lower()): account
            for account in MailAccount.objects.filter(user__in=self.users.values())
        }
        presets = list(ServerPreset.objects.all())
        self.presets_by_name = {preset.name: preset for preset in presets}
        self.presets_by_domain = {preset.domain.lower(): preset for preset in presets}

    def error(self, line: int, column: str | None, message: str) -> None:
        where = f"{self.source}:{line}:"
        if column:
            where += f' column "{column}":'
        self.errors.append((line, f"{where} {message}"))

    def validate(self, line: int, fields: dict[str, str]) -> _Person | None:
        count = len(self.errors)
        username = self.user_model.normalize_username(fields["username"].strip())
        email = BaseUserManager.normalize_email(fields["email"].strip())
        password = fields["password"]
        mail_password = fields["mail_password"]
        mail_login = fields["mail_login"].strip() or email
        user = self.users.get(username)

        self._check_username(line, username)
        preset = None
        protocol = ""
        options: dict[str, object] = {}
        if self._check_email(line, email, username):
            account = self.accounts.get((user.pk, email.lower())) if user else None
            if not mail_password and account is None:
                self.error(line, "mail_password", _("required for a new mail account."))
            protocol = self._check_protocol(line, fields.get("protocol", ""), account)
            preset = self._find_preset(line, fields["preset"].strip(), email, protocol)
            if preset is not None and not protocol:
                protocol = Protocol.IMAP if preset.imap_host else Protocol.POP3
            if "pop3_delete_after_days" in fields:
                options["pop3_delete_after_days"] = self._check_days(
                    line, fields["pop3_delete_after_days"], protocol
                )
        if password:
            candidate = self.user_model(username=username, email=email)
            try:
                validate_password(password, user=candidate)
            except ValidationError as exc:
                self.error(line, "password", _messages(exc))
        elif user is None:
            self.error(line, "password", _("required for a new person."))
        if len(mail_login) > MailAccount._meta.get_field("login").max_length:
            self.error(line, "mail_login", _("too long."))

        if len(self.errors) > count or preset is None:
            return None
        return _Person(
            username, email, password, mail_login, mail_password, preset, protocol, options
        )

    def _check_username(self, line: int, username: str) -> None:
        if not username:
            self.error(line, "username", _("required."))
            return
        if username in self.seen_usernames:
            self.error(
                line,
                "username",
                _("“%(username)s” is already on line %(line)d; write one line per person.")
                % {"username": username, "line": self.seen_usernames[username]},
            )
            return
        self.seen_usernames[username] = line
        field = self.user_model._meta.get_field(self.user_model.USERNAME_FIELD)
        try:
            field.run_validators(username)
        except ValidationError as exc:
            self.error(line, "username", _messages(exc))

    def _check_email(self, line: int, email: str, username: str) -> bool:
        if not email:
            self.error(line, "email", _("required."))
            return False
        try:
            validate_email(email)
        except ValidationError:
            self.error(line, "email", _("not a valid address."))
            return False
        if email.lower() in self.seen_emails:
            self.error(
                line,
                "email",
                _("%(email)s is already on line %(line)d.")
                % {"email": email, "line": self.seen_emails[email.lower()]},
            )
            return False
        self.seen_emails[email.lower()] = line
        other = (
            self.user_model._default_manager.filter(email__iexact=email)
            .exclude(username=username)
            .first()
        )
        if other is not None:
            # Sign-in by address needs the address to identify one person.
            self.error(
                line,
                "email",
                _("%(email)s is already the address of “%(username)s”.")
                % {"email": email, "username": other.get_username()},
            )
            return False
        return True

    def _check_protocol(self, line: int, value: str, account: MailAccount | None) -> str:
        """The protocol the line asks for; empty for the account's own or the preset's."""
        protocol = value.strip().lower()
        if protocol and protocol not in Protocol.values:
            self.error(
                line,
                "protocol",
                _("choose one of %(choices)s, or leave it empty.")
                % {"choices": ", ".join(Protocol.values)},
            )
            return ""
        if account is None:
            return protocol
        if protocol and protocol != account.protocol:
            # Its mail would be left behind: a change to make in the admin site, knowingly.
            self.error(
                line,
                "protocol",
                _("%(email)s is read over %(protocol)s; change that in the admin site.")
                % {"email": account.email, "protocol": Protocol(account.protocol).label},
            )
        return account.protocol

    def _check_days(self, line: int, value: str, protocol: str) -> int | None:
        """Days before deletion from the POP3 server; None leaves mail there."""
        value = value.strip()
        if not value:
            return None
        if not (value.isascii() and value.isdigit() and int(value) <= _MAX_DAYS):
            self.error(
                line,
                "pop3_delete_after_days",
                _("“%(value)s” is not a number of days (0 to %(max)d), nor empty.")
                % {"value": value, "max": _MAX_DAYS},
            )
            return None
        if protocol and protocol != Protocol.POP3:
            self.error(line, "pop3_delete_after_days", _("only for a POP3 account."))
        return int(value)

    def _find_preset(self, line: int, name: str, email: str, protocol: str) -> ServerPreset | None:
        if name:
            preset = self.presets_by_name.get(name)
            if preset is None:
                self.error(line, "preset", _("no preset named “%(name)s”.") % {"name": name})
                return None
        else:
            domain = email.rpartition("@")[2].lower()
            preset = self.presets_by_domain.get(domain)
            if preset is None:
                self.error(
                    line,
                    "preset",
                    _("empty, and no preset serves the domain %(domain)s.") % {"domain": domain},
                )
                return None
        if not protocol:
            return preset  # the preset's own, which it has a server for
        incoming = preset.pop3_host if protocol == Protocol.POP3 else preset.imap_host
        if not incoming:
            self.error(
                line,
                "preset",
                _("the preset “%(name)s” has no %(protocol)s server.")
                % {"name": preset.name, "protocol": Protocol(protocol).label},
            )
            return None
        return preset


def _provision_person(person: _Person) -> tuple[AbstractBaseUser, Outcome]:
    manager = get_user_model()._default_manager
    user = manager.select_for_update().filter(username=person.username).first()
    if user is None:
        user = manager.model(username=person.username, email=person.email)
        user.set_password(person.password)
        user.save()
        return user, Outcome.CREATED
    outcome = _update(user, {"email": person.email})
    # check_password() rather than set_password(): a new salt would change the hash every run.
    if person.password and not user.check_password(person.password):
        user.set_password(person.password)
        user.save(update_fields=["password"])
        outcome = Outcome.UPDATED
    return user, outcome


def _provision_account(user: AbstractBaseUser, person: _Person) -> Outcome:
    account = (
        MailAccount.objects.select_for_update()
        .filter(user=user, email__iexact=person.email)
        .first()
    )
    if account is None:
        account = MailAccount(
            user=user,
            email=person.email,
            login=person.mail_login,
            protocol=person.protocol,
            **person.account_options,
        )
        account.apply_preset(person.preset)
        account.set_password(person.mail_password)
        account.save()
        return Outcome.CREATED

    target = MailAccount(protocol=account.protocol, login=person.mail_login)
    target.apply_preset(person.preset)
    values = {name: getattr(target, name) for name in _ACCOUNT_FIELDS}
    values.update(person.account_options)
    outcome = _update(account, values)
    if person.mail_password and _decrypts_to(account.password_encrypted) != person.mail_password:
        # Encrypting again gives a new token even for the same password: only when it changed.
        account.set_password(person.mail_password)
        account.save(update_fields=["password_encrypted"])
        outcome = Outcome.UPDATED
    return outcome


# What an import sets on an existing account; the rest is the administrator's.
_ACCOUNT_FIELDS = ("preset_id", "login", *MailAccount.SERVER_FIELDS)


def _decrypts_to(token: str) -> str | None:
    try:
        return crypto.decrypt(token)
    except crypto.CredentialError:
        return None


# -- Credentials -----------------------------------------------------------

_CREDENTIAL_FIELDS = ("password_encrypted", "smtp_password_encrypted")


def rotate_credentials() -> int:
    """Re-encrypt with the first key every credential it did not encrypt; return how many.

    Tokens already under the first key are left alone, so a second run
    changes nothing. A token no configured key decrypts aborts the whole run.
    """
    errors: list[str] = []
    rotated = 0
    with transaction.atomic():
        for account in MailAccount.objects.select_for_update().order_by("pk"):
            changed = []
            for name in _CREDENTIAL_FIELDS:
                token = getattr(account, name)
                if not token or crypto.is_current(token):
                    continue
                try:
                    setattr(account, name, crypto.rotate(token))
                except crypto.CredentialError:
                    errors.append(
                        _("%(account)s (id %(id)d): no configured key decrypts the %(field)s.")
                        % {
                            "account": account.email,
                            "id": account.pk,
                            "field": MailAccount._meta.get_field(name).verbose_name,
                        }
                    )
                    continue
                changed.append(name)
            if changed:
                account.save(update_fields=changed)
                rotated += len(changed)
        if errors:
            raise ProvisioningError(errors)
    return rotated
