"""A real Dovecot and Postfix pair, private to one folder, for tests and the demo.

``LocalMailServer(root)`` runs Debian's own ``dovecot`` and ``postfix``
binaries with configuration written under ``root``; the system's
``/etc/dovecot``, ``/etc/postfix``, spool and services are never read or
touched, so any number of instances can run beside a system mail server.

Layout under ``root``::

    tls/        ca.pem (give it to clients), server.pem, server.key
    dovecot/    dovecot.conf, users/<domain>/<local part> (one passwd-file line
                each), run/ (base_dir: sockets, pid), state/
    mail/       one maildir per user: mail/<domain>/<local part>/Maildir
    postfix/    conf/ (main.cf, master.cf), queue/, data/
    log/        dovecot.log, postfix.log (nothing goes to syslog)

Dovecot serves IMAP (STARTTLS and implicit TLS), POP3 (both too) and LMTP on
loopback high ports. The login is the full address. Each user has a
passwd-file of their own: Dovecot reads a new file at the first lookup but a
known one at most once a second, so a new user can log in as soon as
``add_user`` returns, and a password change waits out that second. Failed
logins are answered within half a second, without Dovecot's growing penalty
(the tests all come from one address). All mail belongs to the unprivileged
system user ``mail`` (Dovecot refuses uid 0).
The inbox namespace auto-creates and subscribes the special-use folders Drafts,
Sent, Archive, Junk and Trash, and the quota plugin (count backend, 1 GiB unless
``add_user`` sets another rule) answers GETQUOTAROOT.

Postfix accepts mail for ``domain`` on a plain SMTP port (no authentication,
like an MX) and on submission ports (STARTTLS, or implicit TLS on the
"submissions" port) that require authentication, checked by Dovecot through
its auth socket. It hands local mail to Dovecot over LMTP; mail for any other
domain bounces at once, so nothing ever leaves the machine. Queue retries are
seconds apart, so mail deferred while Dovecot is stopped arrives soon after it
is started again.

Both servers run as daemons started by root (Dovecot must, to switch to the
mail user; Postfix drops to its ``postfix`` user). Their unprivileged processes
reach files under ``root`` by path, so every folder above ``root`` must be
searchable by others. ``/tmp`` is; pytest's base temporary folder is not, and
pytest sets it back to private whenever another session starts, so the suite
keeps its server in a ``mkdtemp()`` folder of ``/tmp``.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import hashlib
import os
import pwd
import re
import secrets
import signal
import smtplib
import socket
import stat
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from .tls import make_certificates

#: Debian binaries this server needs, and the package that ships each.
REQUIRED_FILES = {
    "/usr/sbin/dovecot": "dovecot-core",
    "/usr/lib/dovecot/imap": "dovecot-imapd",
    "/usr/lib/dovecot/pop3": "dovecot-pop3d",
    "/usr/lib/dovecot/lmtp": "dovecot-lmtpd",
    "/usr/sbin/postfix": "postfix",
}

#: The unprivileged system user that owns all mail (present on every Debian system).
MAIL_USER = "mail"

#: How long to wait for a server to answer, or to go away, before giving up.
STARTUP_TIMEOUT = 30.0

# Conservative on purpose: the local part becomes a folder name under mail/.
_ADDRESS_RE = re.compile(r"^[a-z0-9][a-z0-9._+-]*@[a-z0-9-]+(\.[a-z0-9-]+)*$")
# sun_path of a Unix socket holds 107 bytes; Dovecot's longest names under
# base_dir are about 30 characters.
_MAX_BASE_DIR_LENGTH = 75

_START_ATTEMPTS = 3

_PORT_NAMES = (
    "imap_port",
    "imaps_port",
    "pop3_port",
    "pop3s_port",
    "lmtp_port",
    "smtp_port",
    "submission_port",
    "submissions_port",
)


class LocalMailServerError(RuntimeError):
    """The local mail server could not be installed, started or used."""


class LocalMailServer:
    """Dovecot and Postfix configured under ``root``, listening on ``host``."""

    imap_port: int
    imaps_port: int
    pop3_port: int
    pop3s_port: int
    lmtp_port: int
    smtp_port: int
    submission_port: int
    submissions_port: int

    def __init__(
        self,
        root: Path,
        *,
        domain: str = "example.test",
        host: str = "127.0.0.1",
        base_port: int | None = None,
        imap_capability: str | None = None,
    ) -> None:
        """Prepare a server; nothing runs until ``start()``.

        ``imap_capability``, when given, replaces the IMAP capabilities Dovecot
        announces (its ``imap_capability`` setting): a server without SORT,
        THREAD or MOVE, say, as older or smaller servers are.

        ``host`` must be a loopback address literal. Ports are picked free at
        the first ``start()`` and kept afterwards, unless ``base_port`` is
        given: then they are ``base_port`` + 0 to 7 for IMAP, IMAPS, POP3,
        POP3S, LMTP, SMTP, submission and submissions, in that order.
        """
        self.root = Path(root).absolute()
        self.domain = domain.lower()
        self.host = host
        self.base_port = base_port
        self.imap_capability = imap_capability
        self.ca_file = self.root / "tls" / "ca.pem"
        self._cert_file = self.root / "tls" / "server.pem"
        self._key_file = self.root / "tls" / "server.key"
        self._dovecot_dir = self.root / "dovecot"
        self._dovecot_conf = self._dovecot_dir / "dovecot.conf"
        self._users_dir = self._dovecot_dir / "users"
        self._base_dir = self._dovecot_dir / "run"
        self._auth_socket = self._base_dir / "auth-postfix"
        self._mail_dir = self.root / "mail"
        self._postfix_conf = self.root / "postfix" / "conf"
        self._queue_dir = self.root / "postfix" / "queue"
        self._postfix_data = self.root / "postfix" / "data"
        self._log_dir = self.root / "log"
        self.dovecot_log = self._log_dir / "dovecot.log"
        self.postfix_log = self._log_dir / "postfix.log"
        self._ports_assigned = False
        self._users_lock = threading.Lock()

    # Lifecycle -----------------------------------------------------------

    @classmethod
    def ensure_installed(cls) -> None:
        """Install Debian's Dovecot and Postfix packages if any binary is missing."""
        missing = sorted({pkg for path, pkg in REQUIRED_FILES.items() if not Path(path).exists()})
        if not missing:
            return
        command = ["/usr/bin/apt-get", "install", "-y", "--no-install-recommends", *missing]
        if os.geteuid() != 0 or not Path(command[0]).exists():
            raise LocalMailServerError(
                f"The local mail server needs Debian packages that are missing; "
                f"as root, run: {' '.join(command)}"
            )
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        if "postfix" in missing:
            # A bare package is enough: this server writes its own configuration,
            # and the system's Postfix should not start serving port 25.
            subprocess.run(
                ["/usr/bin/debconf-set-selections"],
                input=b"postfix postfix/main_mailer_type select No configuration\n",
                check=False,
            )
        if subprocess.run(command, env=env, check=False).returncode == 0:  # noqa: S603 - fixed
            return
        # The package lists may be stale, or absent on a fresh machine.
        subprocess.run(["/usr/bin/apt-get", "update"], env=env, check=False)
        if subprocess.run(command, env=env, check=False).returncode != 0:  # noqa: S603 - fixed
            raise LocalMailServerError(f"Could not install {', '.join(missing)}.")

    def start(self) -> None:
        """Write the configuration, start Dovecot then Postfix, wait until both answer."""
        if os.geteuid() != 0:
            raise LocalMailServerError("The local mail server must be started as root.")
        # Daemons of an earlier run on this root that was killed outright.
        self.stop()
        for attempt in range(1, _START_ATTEMPTS + 1):
            self._prepare()
            atexit.register(self.stop)
            try:
                self.start_dovecot()
                self.start_postfix()
                return
            except LocalMailServerError:
                self.stop()
                # A port picked free may be taken before the server binds it
                # (by any process's outgoing connection): pick again.
                if self.base_port is not None or attempt == _START_ATTEMPTS:
                    raise
                self._ports_assigned = False
            except BaseException:
                self.stop()
                raise

    def stop(self) -> None:
        """Stop Postfix and Dovecot; stopping a stopped server does nothing."""
        atexit.unregister(self.stop)
        self.stop_postfix()
        self.stop_dovecot()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start_dovecot(self) -> None:
        self._run(["/usr/sbin/dovecot", "-c", str(self._dovecot_conf)], self.dovecot_log)
        self._wait_for_greeting(self.imap_port, b"* OK", self.dovecot_log)
        self._wait_for_greeting(self.pop3_port, b"+OK", self.dovecot_log)
        self._wait_for_greeting(self.lmtp_port, b"220 ", self.dovecot_log)
        if self._answers(self.smtp_port):
            # Mail deferred while Dovecot was down goes now, not after Postfix's
            # backoff for a destination it saw refuse a connection.
            flush = ["/usr/sbin/postqueue", "-c", str(self._postfix_conf), "-f"]
            self._run(flush, self.postfix_log)

    def stop_dovecot(self) -> None:
        self._terminate(self._base_dir / "master.pid", "dovecot", self.dovecot_log)

    def restart_dovecot(self) -> None:
        self.stop_dovecot()
        self.start_dovecot()

    def start_postfix(self) -> None:
        # "start" runs postfix-script, which creates the queue folders with the
        # right owners and waits until the master daemon is ready.
        self._run(["/usr/sbin/postfix", "-c", str(self._postfix_conf), "start"], self.postfix_log)
        self._wait_for_greeting(self.smtp_port, b"220 ", self.postfix_log)
        self._wait_for_greeting(self.submission_port, b"220 ", self.postfix_log)

    def stop_postfix(self) -> None:
        self._terminate(self._queue_dir / "pid" / "master.pid", "master", self.postfix_log)

    def restart_postfix(self) -> None:
        self.stop_postfix()
        self.start_postfix()

    # Users and mail ------------------------------------------------------

    def add_user(self, address: str, password: str, *, quota_rule: str | None = None) -> None:
        """Create the user, or set its password if it exists; the login is the address.

        ``quota_rule``, a Dovecot quota rule such as ``*:storage=2M``, replaces the
        1 GiB limit for this user's IMAP and POP3 sessions (LMTP delivery keeps it).
        """
        address = address.lower()
        if not _ADDRESS_RE.match(address):
            raise ValueError(f"Unsupported address for the local mail server: {address!r}")
        if not password or any(ch in password for ch in "\r\n\0"):
            raise ValueError("The password must be non-empty and on one line.")
        if quota_rule is not None and not re.fullmatch(r"[\w*:=.%+-]+", quota_rule):
            raise ValueError(f"Unsupported quota rule: {quota_rule!r}")
        salt = secrets.token_bytes(16)
        digest = hashlib.sha512(password.encode() + salt).digest()
        # passwd-file: user:password:uid:gid:gecos:home:shell:extra fields, where a
        # userdb_ field of the passdb overrides the static userdb's.
        extra = f"::::::userdb_quota_rule={quota_rule}" if quota_rule else ""
        entry = f"{address}:{{SSHA512}}{base64.b64encode(digest + salt).decode()}{extra}\n"
        local_part, domain = address.split("@")
        path = self._users_dir / domain / local_part
        with self._users_lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.parent.chmod(0o755)
            previous = path.stat() if path.exists() else None
            # Replaced in one rename so Dovecot never reads a half-written file.
            temporary = path.with_name(f".{local_part}.new")
            temporary.write_text(entry)
            self._share_with_dovecot(temporary)
            if previous is not None:
                # Dovecot re-reads a known user's file when its size or
                # whole-second mtime changed, at most once a second.
                stamp = max(time.time(), int(previous.st_mtime) + 1)
                os.utime(temporary, (stamp, stamp))
            temporary.replace(path)
            if previous is not None:
                time.sleep(1 - time.time() % 1)

    def deliver(self, recipient: str, raw: bytes, *, sender: str = "") -> None:
        """Deliver ``raw`` into the recipient's INBOX over LMTP, as an MTA would.

        Bare line feeds become CRLF. A refusal (an unknown recipient, say)
        raises the ``smtplib.SMTPException`` that says why.
        """
        raw = re.sub(rb"(?<!\r)\n", b"\r\n", raw)
        with smtplib.LMTP(self.host, self.lmtp_port, timeout=STARTUP_TIMEOUT) as lmtp:
            lmtp.sendmail(sender, [recipient], raw)

    # Configuration -------------------------------------------------------

    def _prepare(self) -> None:
        if len(str(self._base_dir)) > _MAX_BASE_DIR_LENGTH:
            raise LocalMailServerError(
                f"{self.root} is too long a path for Dovecot's sockets; use a shorter root."
            )
        self._assign_ports()
        mail = pwd.getpwnam(MAIL_USER)
        postfix = pwd.getpwnam("postfix")
        for directory in (
            self.root,
            self._dovecot_dir,
            self._dovecot_dir / "state",
            self._users_dir,
            self._postfix_conf,
            self._queue_dir,
            self._log_dir,
        ):
            directory.mkdir(parents=True, exist_ok=True)
            directory.chmod(0o755)
        self._check_reachable(self.root)
        self._mail_dir.mkdir(mode=0o700, exist_ok=True)
        os.chown(self._mail_dir, mail.pw_uid, mail.pw_gid)
        self._postfix_data.mkdir(mode=0o700, exist_ok=True)
        os.chown(self._postfix_data, postfix.pw_uid, postfix.pw_gid)
        if not self._key_file.exists():
            make_certificates(self.ca_file.parent)
        self._dovecot_conf.write_text(self._dovecot_config(mail))
        (self._postfix_conf / "main.cf").write_text(self._postfix_main_config())
        (self._postfix_conf / "master.cf").write_text(self._postfix_master_config())

    def _assign_ports(self) -> None:
        if self._ports_assigned:
            return
        if self.base_port is not None:
            ports = [self.base_port + offset for offset in range(len(_PORT_NAMES))]
        else:
            # All bound at once so that no two names get the same port.
            family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            sockets = [socket.socket(family, socket.SOCK_STREAM) for _ in _PORT_NAMES]
            try:
                for sock in sockets:
                    sock.bind((self.host, 0))
                ports = [sock.getsockname()[1] for sock in sockets]
            finally:
                for sock in sockets:
                    sock.close()
        for name, port in zip(_PORT_NAMES, ports, strict=True):
            setattr(self, name, port)
        self._ports_assigned = True

    @staticmethod
    def _check_reachable(path: Path) -> None:
        for folder in path.parents:
            if not folder.stat().st_mode & stat.S_IXOTH:
                raise LocalMailServerError(
                    f"The mail servers' unprivileged users cannot reach {path}: "
                    f"{folder} is private. Choose a root in a folder others may search."
                )

    def _share_with_dovecot(self, path: Path) -> None:
        # Dovecot's auth process runs as its internal user and reads the passwd-file.
        os.chown(path, 0, pwd.getpwnam("dovecot").pw_gid)
        path.chmod(0o640)

    def _dovecot_config(self, mail: pwd.struct_passwd) -> str:
        folders = "".join(
            f"  mailbox {name} {{\n    special_use = \\{name}\n    auto = subscribe\n  }}\n"
            for name in ("Drafts", "Sent", "Archive", "Junk", "Trash")
        )
        capability = f"  imap_capability = {self.imap_capability}\n" if self.imap_capability else ""
        return f"""\
# Written by LocalMailServer; rewritten at every start.
base_dir = {self._base_dir}
state_dir = {self._dovecot_dir / "state"}
instance_name = localmail-{self.imap_port}
log_path = {self.dovecot_log}
hostname = localhost
postmaster_address = postmaster@{self.domain}
protocols = imap pop3 lmtp
listen = {self.host}
default_internal_user = dovecot
default_login_user = dovenull

ssl = yes
ssl_cert = <{self._cert_file}
ssl_key = <{self._key_file}
ssl_min_protocol = TLSv1.2
# Loopback only: plain LOGIN stays possible for tests of the unencrypted path.
disable_plaintext_auth = no
auth_mechanisms = plain login
# A failed login is answered within half a second, where a real server waits
# 2 s and then up to 15 s per client address: every test uses the same address.
auth_failure_delay = 0

passdb {{
  driver = passwd-file
  args = scheme=SSHA512 username_format=%Lu {self._users_dir}/%Ld/%Ln
}}
userdb {{
  driver = static
  args = uid={mail.pw_uid} gid={mail.pw_gid} home={self._mail_dir}/%Ld/%Ln
}}
first_valid_uid = {mail.pw_uid}
last_valid_uid = {mail.pw_uid}
first_valid_gid = {mail.pw_gid}
last_valid_gid = {mail.pw_gid}
mail_location = maildir:~/Maildir
# A throwaway server: speed matters more than surviving a power cut.
mail_fsync = never

namespace inbox {{
  inbox = yes
  separator = /
{folders}}}

mail_plugins = $mail_plugins quota
protocol imap {{
  mail_plugins = $mail_plugins imap_quota
{capability}}}
plugin {{
  quota = count:User quota
  quota_rule = *:storage=1G
  quota_vsizes = yes
}}

# Login processes in Dovecot's high-performance mode, as a server for many
# sessions runs them: each serves many connections. By default each session over
# TLS keeps one of its own and at most 100 run, which a suite (or a demo office)
# with every pool's idle sessions passes, and new connections are then dropped.
service imap-login {{
  service_count = 0
  inet_listener imap {{
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    port = {self.imaps_port}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {self.pop3_port}
  }}
  inet_listener pop3s {{
    port = {self.pop3s_port}
    ssl = yes
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = {self.host}
    port = {self.lmtp_port}
  }}
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service auth {{
  unix_listener {self._auth_socket.name} {{
    mode = 0600
    user = postfix
  }}
}}
"""

    def _postfix_main_config(self) -> str:
        refusal = f"error:this test server delivers only to {self.domain}"
        settings = {
            "compatibility_level": "3.6",
            "queue_directory": self._queue_dir,
            "data_directory": self._postfix_data,
            "maillog_file": self.postfix_log,
            "maillog_file_prefixes": self._log_dir,
            "inet_interfaces": self.host,
            "inet_protocols": "ipv6" if ":" in self.host else "ipv4",
            "myhostname": f"mail.{self.domain}",
            "mydomain": self.domain,
            "myorigin": "$mydomain",
            "mydestination": "",
            "mynetworks": "",
            "relayhost": "",
            "alias_maps": "",
            "alias_database": "",
            "local_recipient_maps": "",
            "biff": "no",
            "append_dot_mydomain": "no",
            "recipient_delimiter": "+",
            "smtputf8_enable": "yes",
            "message_size_limit": str(25 * 1024 * 1024),
            "virtual_mailbox_domains": self.domain,
            "virtual_transport": f"lmtp:inet:{self._address_for_postfix()}:{self.lmtp_port}",
            "default_transport": refusal,
            "relay_transport": refusal,
            # No DNS on a test machine: never wait for a resolver.
            "smtpd_peername_lookup": "no",
            "lmtp_host_lookup": "native",
            "smtpd_relay_restrictions": "reject_unauth_destination",
            "smtpd_sasl_type": "dovecot",
            "smtpd_sasl_path": self._auth_socket,
            "smtpd_sasl_auth_enable": "no",
            "smtpd_tls_chain_files": f"{self._key_file}, {self._cert_file}",
            "smtpd_tls_security_level": "may",
            "smtpd_tls_protocols": ">=TLSv1.2",
            "smtpd_tls_mandatory_protocols": ">=TLSv1.2",
            # Deferred mail (Dovecot stopped) is retried within seconds.
            "queue_run_delay": "1s",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "5s",
        }
        lines = [f"{name} = {value}" for name, value in settings.items()]
        return "# Written by LocalMailServer; rewritten at every start.\n" + "\n".join(lines) + "\n"

    def _postfix_master_config(self) -> str:
        address = self._address_for_postfix()
        authenticated = (
            "  -o smtpd_sasl_auth_enable=yes\n"
            "  -o smtpd_tls_auth_only=yes\n"
            "  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject\n"
            "  -o smtpd_recipient_restrictions=permit_sasl_authenticated,reject\n"
        )
        return (
            "# Written by LocalMailServer; rewritten at every start. Nothing is chrooted.\n"
            f"{address}:{self.smtp_port} inet n - n - - smtpd\n"
            f"{address}:{self.submission_port} inet n - n - - smtpd\n"
            "  -o syslog_name=postfix/submission\n"
            "  -o smtpd_tls_security_level=encrypt\n"
            f"{authenticated}"
            f"{address}:{self.submissions_port} inet n - n - - smtpd\n"
            "  -o syslog_name=postfix/submissions\n"
            "  -o smtpd_tls_wrappermode=yes\n"
            f"{authenticated}"
            "pickup    unix  n - n 60 1 pickup\n"
            "cleanup   unix  n - n -  0 cleanup\n"
            "qmgr      unix  n - n 300 1 qmgr\n"
            "tlsmgr    unix  - - n 1000? 1 tlsmgr\n"
            "rewrite   unix  - - n -  - trivial-rewrite\n"
            "bounce    unix  - - n -  0 bounce\n"
            "defer     unix  - - n -  0 bounce\n"
            "trace     unix  - - n -  0 bounce\n"
            "verify    unix  - - n -  1 verify\n"
            "flush     unix  n - n 1000? 0 flush\n"
            "proxymap  unix  - - n -  - proxymap\n"
            "showq     unix  n - n -  - showq\n"
            "error     unix  - - n -  - error\n"
            "retry     unix  - - n -  - error\n"
            "discard   unix  - - n -  - discard\n"
            "lmtp      unix  - - n -  - lmtp\n"
            "anvil     unix  - - n -  1 anvil\n"
            "scache    unix  - - n -  1 scache\n"
            "postlog   unix-dgram n - n - 1 postlogd\n"
        )

    def _address_for_postfix(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    # Processes -----------------------------------------------------------

    def _run(self, command: list[str], log: Path) -> None:
        # A file, not a pipe: the daemon keeps the descriptors it inherits, so
        # reading a pipe to its end would wait for the daemon to exit.
        with tempfile.TemporaryFile() as output:
            result = subprocess.run(  # noqa: S603 - our own fixed commands, no shell
                command, stdin=subprocess.DEVNULL, stdout=output, stderr=output, check=False
            )
            if result.returncode != 0:
                output.seek(0)
                raise LocalMailServerError(
                    f"{' '.join(command)} failed ({result.returncode}): "
                    f"{output.read().decode(errors='replace').strip()}\n{_tail(log)}"
                )

    def _answers(self, port: int) -> bool:
        try:
            socket.create_connection((self.host, port), timeout=1).close()
        except OSError:
            return False
        return True

    def _wait_for_greeting(self, port: int, greeting: bytes, log: Path) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            try:
                with socket.create_connection((self.host, port), timeout=5) as sock:
                    if sock.recv(512).startswith(greeting):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise LocalMailServerError(
                    f"Nothing answered on {self.host}:{port} within {STARTUP_TIMEOUT:.0f} s.\n"
                    f"{_tail(log)}"
                )
            time.sleep(0.05)

    def _terminate(self, pid_file: Path, name: str, log: Path) -> None:
        """Stop the master process named in ``pid_file`` and wait until it is gone."""
        try:
            pid = int(pid_file.read_text().split()[0])
            # A stale pid file may name an unrelated process that reused the pid.
            if Path(f"/proc/{pid}/comm").read_text().strip() != name:
                return
        except (OSError, ValueError, IndexError):
            return
        if not _alive(pid):
            return
        # Both masters stop their children and exit on SIGTERM.
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while _alive(pid):
            if time.monotonic() > deadline:
                raise LocalMailServerError(f"Process {pid} did not stop.\n{_tail(log)}")
            time.sleep(0.02)
        pid_file.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs; a zombie (a daemon not yet reaped by init) counts as gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False
    return fields[0] not in ("Z", "X")


def _tail(log: Path, lines: int = 20) -> str:
    try:
        return "Last log lines:\n" + "\n".join(log.read_text().splitlines()[-lines:])
    except OSError:
        return "(no log yet)"
