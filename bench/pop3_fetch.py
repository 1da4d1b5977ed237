"""What Facteur adds to the POP3 work of fetching a mailbox.

Starts a private LocalMailServer, seeds one user's Maildir with ``--count``
small, realistic messages (5,000 by default), and measures in turns, so that
a busy machine slows both alike:

- a whole mailbox: poplib over the connection the account is configured for
  (STARTTLS or TLS), USER/PASS, UIDL, RETR of every message, QUIT, beside
  ``pop3fetch.fetch()`` of a POP3 account of that user with nothing stored
  yet (every message retrieved, parsed and stored in a transaction of its
  own); messages and megabytes per second, medians of ``--repeat`` runs;
- nothing new: the same account fetched again (the UIDL diff only), beside a
  raw session of USER/PASS, UIDL and QUIT; median milliseconds of
  ``--steady`` runs after each whole fetch;
- ``LocalMessage.from_bytes()`` alone over the same messages, to tell parsing
  from storing.

The database is SQLite in a temporary folder unless DATABASE_URL names another
(PostgreSQL, as the settings accept). ``--profile`` adds profiles of one more
whole fetch and of one with nothing new. Run as root (the mail server needs it):
``.venv/bin/python bench/pop3_fetch.py``.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import logging
import os
import poplib
import pstats
import secrets
import shutil
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webmail.settings")
os.environ.setdefault("FACTEUR_DEBUG", "1")
# Holds the database unless the environment names one: never the demo's.
WORK_DIR = Path(tempfile.mkdtemp(prefix="facteur-bench-pop3-"))
os.environ.setdefault("DATABASE_URL", f"sqlite:///{WORK_DIR}/db.sqlite3")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from accounts.models import MailAccount, Protocol, Security  # noqa: E402
from bench.seed import seed_maildir  # noqa: E402
from tests.support.accounts import make_account  # noqa: E402
from webmail import pop3fetch  # noqa: E402
from webmail.localmail import LocalMailServer  # noqa: E402
from webmail.models import LocalMessage, Pop3Uidl  # noqa: E402

MB = 1_000_000
TIMEOUT = 60


@dataclass
class Mailbox:
    """The seeded user, as a raw client signs in."""

    server: LocalMailServer
    address: str
    password: str
    security: str

    def connect(self) -> poplib.POP3:
        """A signed-in poplib client, over the connection the account is configured for."""
        context = ssl.create_default_context(cafile=str(self.server.ca_file))
        if self.security == Security.TLS:
            client = poplib.POP3_SSL(
                self.server.host, self.server.pop3s_port, timeout=TIMEOUT, context=context
            )
        else:
            client = poplib.POP3(self.server.host, self.server.pop3_port, timeout=TIMEOUT)
            client.stls(context)
        client.user(self.address)
        client.pass_(self.password)
        return client


def raw_fetch(mailbox: Mailbox, keep: list[list[bytes]] | None = None) -> int:
    """USER/PASS, UIDL, RETR of every message, QUIT; the octets retrieved.

    ``keep`` receives each message's lines, as RETR gave them.
    """
    client = mailbox.connect()
    total = 0
    for line in client.uidl()[1]:
        _response, lines, octets = client.retr(int(line.split()[0]))
        total += octets
        if keep is not None:
            keep.append(lines)
    client.quit()
    return total


def raw_listing(mailbox: Mailbox) -> None:
    """What a fetch with nothing new needs of the server: USER/PASS, UIDL, QUIT."""
    client = mailbox.connect()
    client.uidl()
    client.quit()


def forget(account: MailAccount) -> None:
    """The account as if never fetched: no message, no UIDL."""
    LocalMessage.objects.filter(account=account).delete()
    Pop3Uidl.objects.filter(account=account).delete()


def facteur_fetch(account: MailAccount, count: int) -> None:
    result = pop3fetch.fetch(account)
    if result.new != count:
        raise RuntimeError(f"The fetch stored {result.new} messages of {count}")


def steady_fetch(account: MailAccount) -> None:
    result = pop3fetch.fetch(account)
    if result.new:
        raise RuntimeError(f"A fetch with nothing new stored {result.new} messages")


def timed(function: Callable[[], object]) -> float:
    """Seconds ``function`` took, after a collection so that it starts with a clean heap."""
    gc.collect()
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def measure(mailbox: Mailbox, account: MailAccount, count: int, args: argparse.Namespace) -> dict:
    # Dovecot indexes the Maildir at the first session; the messages kept are
    # parsed alone later.
    kept: list[list[bytes]] = []
    octets = raw_fetch(mailbox, kept)
    results: dict[str, list[float]] = {
        "raw": [],
        "Facteur": [],
        "raw listing": [],
        "Facteur listing": [],
    }
    for _ in range(args.repeat):
        forget(account)
        results["raw"].append(timed(lambda: raw_fetch(mailbox)))
        results["Facteur"].append(timed(lambda: facteur_fetch(account, count)))
        for _ in range(args.steady):
            results["raw listing"].append(timed(lambda: raw_listing(mailbox)) * 1000)
            results["Facteur listing"].append(timed(lambda: steady_fetch(account)) * 1000)
    messages = [b"".join(line + b"\r\n" for line in lines) for lines in kept]
    parse = timed(lambda: [LocalMessage.from_bytes(account, raw, uid=0) for raw in messages])
    return {
        "octets": octets,
        "parse": parse,
        **{name: statistics.median(values) for name, values in results.items()},
    }


def profile(account: MailAccount, count: int, lines: int) -> None:
    """One whole fetch, then one with nothing new, under cProfile: the longest functions."""
    forget(account)
    for name, function in (
        ("one whole fetch", lambda: facteur_fetch(account, count)),
        ("one fetch with nothing new", lambda: steady_fetch(account)),
    ):
        profiler = cProfile.Profile()
        profiler.runcall(function)
        print(f"\nProfile of {name}, the {lines} longest by cumulative time:")
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(lines)


def report(result: dict, count: int, args: argparse.Namespace) -> None:
    megabytes = result["octets"] / MB
    raw, facteur = result["raw"], result["Facteur"]
    raw_listing, facteur_listing = result["raw listing"], result["Facteur listing"]
    print(
        f"POP3 fetch of {count:,} messages ({megabytes:.1f} MB) over "
        f"{args.security.upper()}, database {connection.vendor}, medians"
    )
    print(f"{'':<36}{'raw':>8}  {'Facteur':>8}   ratio")
    # The ratio is Facteur's time over raw's, whether the row gives a rate or a time.
    whole = facteur / raw
    rows = (
        (f"whole, messages/s (of {args.repeat})", count / raw, count / facteur, whole, ".0f"),
        ("whole, MB/s", megabytes / raw, megabytes / facteur, whole, ".2f"),
        (
            f"nothing new, ms (of {args.repeat * args.steady})",
            raw_listing,
            facteur_listing,
            facteur_listing / raw_listing,
            ".1f",
        ),
    )
    for label, raw_value, facteur_value, ratio, style in rows:
        print(f"  {label:<34}{raw_value:>8{style}}  {facteur_value:>8{style}}  {ratio:>5.2f}x")
    # Not a breakdown: RETR and parsing taken in turns, message by message, cost
    # more than each measured alone in a loop of its own.
    print(
        f"  a message, ms: raw {raw / count * 1000:.2f}, Facteur {facteur / count * 1000:.2f}; "
        f"LocalMessage.from_bytes() alone {result['parse'] / count * 1000:.2f}"
    )
    print(
        "\nwhole:       raw = poplib: USER/PASS, UIDL, RETR of every message, QUIT;"
        "\n             Facteur = pop3fetch.fetch() of the account with nothing stored"
        "\n             (also LIST; each message parsed and stored in a transaction)."
        "\nnothing new: raw = USER/PASS, UIDL, QUIT; Facteur = the same fetch again."
        "\nRatio: Facteur's time over raw's, so that above 1 means slower."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=5000, help="messages in the mailbox")
    parser.add_argument("--repeat", type=int, default=3, help="whole fetches of each (median)")
    parser.add_argument(
        "--steady", type=int, default=10, help="fetches with nothing new after each whole one"
    )
    parser.add_argument(
        "--security",
        choices=[Security.STARTTLS, Security.TLS],
        default=Security.STARTTLS,
        help="the account's connection (default: %(default)s)",
    )
    parser.add_argument(
        "--profile",
        type=int,
        nargs="?",
        const=30,
        default=0,
        metavar="LINES",
        help="profile one more fetch of each kind, printing the LINES longest functions (30)",
    )
    args = parser.parse_args()

    # One line per fetch would only clutter the table.
    logging.getLogger("webmail.pop3fetch").setLevel(logging.WARNING)
    mail_root = Path(tempfile.mkdtemp(prefix="facteur-bench-"))
    token = secrets.token_hex(4)
    person = None
    try:
        LocalMailServer.ensure_installed()
        call_command("migrate", verbosity=0)
        print(
            f"Mail server in {mail_root}; database: {connection.vendor}; "
            f"{args.count:,} messages, {args.security.upper()}.\n",
            flush=True,
        )
        with LocalMailServer(mail_root) as server:
            user = SimpleNamespace(
                address=f"pop3-{token}@{server.domain}", password=secrets.token_urlsafe(12)
            )
            seconds = seed_maildir(server, user.address, user.password, args.count)
            print(f"  seeded in {seconds:.1f} s", flush=True)
            # A database named by DATABASE_URL may be shared: the person goes at the end,
            # and the account, messages and UIDLs with them.
            person = get_user_model().objects.create_user(username=f"bench-pop3-{token}")
            account = make_account(
                person, server, user, security=args.security, protocol=Protocol.POP3
            )
            started = time.perf_counter()
            result = measure(
                Mailbox(server, user.address, user.password, args.security),
                account,
                args.count,
                args,
            )
            print(f"  measured in {time.perf_counter() - started:.1f} s\n", flush=True)
            report(result, args.count, args)
            if args.profile:
                profile(account, args.count, args.profile)
    finally:
        if person is not None:
            person.delete()
        shutil.rmtree(mail_root, ignore_errors=True)
        shutil.rmtree(WORK_DIR, ignore_errors=True)


if __name__ == "__main__":
    main()
