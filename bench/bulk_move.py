"""What Facteur adds to moving every message of a big folder at once.

Starts a private LocalMailServer, seeds one mailbox's INBOX with ``--count``
messages (10,000 by default, written straight into the Maildir as
``imap_page.py`` does) and measures, in turns, the move of all of them to
Archive:

- raw: one UID MOVE 1:* on an imapclient connection that is signed in and has
  the INBOX selected;
- store: ``ImapStore.move("INBOX", ALL, "Archive")`` on a warm pool (a NOOP so
  that the session sees every message, the UID MOVE, the COPYUID read for undo);
- view: the list's Archive button for "every message of this folder", POSTed
  through Django's test client (session, the cached folder list, the move, the
  undo record, the redirect);
- and, for comparison only, the same work without MOVE: UID COPY, UID STORE
  +FLAGS (\\Deleted) and UID EXPUNGE on the raw connection.

After each timed move the messages are moved back, untimed; the four take
turns in a rotating order. It prints the median of ``--repeat`` runs of each,
in seconds, and each one's time over raw's.
Run as root (the mail server needs it): ``.venv/bin/python bench/bulk_move.py``.
"""

from __future__ import annotations

import argparse
import gc
import logging
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from imapclient import DELETED, IMAPClient

import bench.environment  # noqa: F401  (sets Django up first)
from bench.seed import seeded_account
from webmail.localmail import LocalMailServer
from webmail.mailstore.base import ALL
from webmail.mailstore.imap import BULK_TIMEOUT, ImapStore
from webmail.mailstore.pool import pool
from webmail.transport.imap import open_imap

SOURCE, TARGET = "INBOX", "Archive"


def raw_move(client: IMAPClient) -> None:
    client.move(ALL, TARGET)


def raw_copy_and_expunge(client: IMAPClient) -> None:
    client.copy(ALL, TARGET)
    client.add_flags(ALL, [DELETED], silent=True)
    client.uid_expunge(ALL)


def move_back(client: IMAPClient, count: int) -> None:
    """Everything back into the INBOX, which the raw connection then has selected again."""
    assert client.select_folder(TARGET)[b"EXISTS"] == count, "a move left messages behind"
    client.move(ALL, SOURCE)
    assert client.select_folder(SOURCE)[b"EXISTS"] == count


def measure(server: LocalMailServer, count: int, repeat: int) -> dict[str, list[float]]:
    account, seconds = seeded_account(server, "bulk", count)
    print(f"Seeded {count:,} messages in {seconds:.1f} s.", flush=True)
    person = account.user
    browser = Client(HTTP_HOST="localhost")
    browser.force_login(person)
    archive_url = reverse("webmail:bulk-archive", args=[account.pk]) + "?folder=INBOX"
    store = ImapStore(account)
    client = open_imap(account.incoming_endpoint())
    # The raw side waits as long as Facteur does for a command on a whole folder.
    client.socket().settimeout(BULK_TIMEOUT)

    def view() -> None:
        assert browser.post(archive_url, {"scope": "all"}).status_code == 302

    runs: dict[str, Callable[[], object]] = {
        "raw": lambda: raw_move(client),
        "store": lambda: store.move(SOURCE, ALL, TARGET),
        "view": view,
        "copy+expunge": lambda: raw_copy_and_expunge(client),
    }
    timings: dict[str, list[float]] = {name: [] for name in runs}
    try:
        # Warm everything: Dovecot's index, the pool signed in, the folder list cached.
        assert client.select_folder(SOURCE)[b"EXISTS"] == count
        store.folders()
        assert store.page(SOURCE, 1, per_page=50).total == count
        names = list(runs)
        for turn in range(repeat):
            # Each takes every place in the turn in its turn: none always follows another.
            for name in names[turn % len(names) :] + names[: turn % len(names)]:
                run = runs[name]
                gc.collect()
                gc.disable()
                started = time.perf_counter()
                try:
                    run()
                finally:
                    elapsed = time.perf_counter() - started
                    gc.enable()
                timings[name].append(elapsed)
                move_back(client, count)
            print(f"  run {turn + 1} of {repeat} done", flush=True)
    finally:
        client.logout()
        pool.close_all()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000, help="messages moved at once")
    parser.add_argument("--repeat", type=int, default=8, help="runs per measure (median)")
    args = parser.parse_args()

    # One line per connection opened would only clutter the table.
    logging.getLogger("webmail.mailstore.pool").setLevel(logging.WARNING)
    LocalMailServer.ensure_installed()
    call_command("migrate", verbosity=0)
    root = Path(tempfile.mkdtemp(prefix="facteur-bench-"))
    print(f"Mail server in {root}; {args.repeat} runs per measure.\n", flush=True)
    try:
        with LocalMailServer(root) as server:
            timings = measure(server, args.count, args.repeat)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    raw = statistics.median(timings["raw"])
    print(f"\nMove of {args.count:,} messages, INBOX to Archive, median of {args.repeat}")
    print(f"  {'':<44}{'seconds':>9}{'ratio':>9}")
    labels = {
        "raw": "raw: UID MOVE 1:*",
        "store": "Facteur: ImapStore.move(ALL)",
        "view": "Facteur: the Archive button, every message",
        "copy+expunge": "raw without MOVE: COPY, STORE, UID EXPUNGE",
    }
    for name, label in labels.items():
        median = statistics.median(timings[name])
        print(f"  {label:<44}{median:>9.2f}{median / raw:>8.2f}x")


if __name__ == "__main__":
    main()
