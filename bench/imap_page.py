"""What Facteur adds to the IMAP work of a message list and of opening a message.

Starts a private LocalMailServer, seeds one mailbox per size (1,000, 10,000
and 100,000 messages by default), and for each measures, with a warm pool:

- the first page of the INBOX: ``ImapStore.page()`` beside the same FETCH of
  the newest 50 by sequence numbers on an imapclient connection that is
  already signed in and has the INBOX selected;
- opening the newest message: ``ImapStore.message()`` beside the same UID
  FETCH on that connection, alone and followed by ``parse_message()``;
- the whole server side of both screens: the mailbox page and the message
  page requested through Django's test client (session, database, view,
  template), beside the raw IMAP work of each.

It prints the median of each over ``--repeat`` runs and the ratio Facteur/raw.
Run as root (the mail server needs it): ``.venv/bin/python bench/imap_page.py``.
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
from imapclient import IMAPClient

import bench.environment  # noqa: F401  (sets Django up first)
from bench.seed import seeded_account
from webmail.localmail import LocalMailServer
from webmail.mailstore.imap import SUMMARY_ITEMS, ImapStore
from webmail.mailstore.pool import SessionPool, pool
from webmail.mime.parse import parse_message
from webmail.transport.imap import open_imap

PER_PAGE = 50


def compare(
    raw: Callable[[], object], facteur: Callable[[], object], repeat: int
) -> tuple[float, float]:
    """Median milliseconds of each, run in turns so that a busy machine slows both alike.

    The garbage collector is off while timing, as timeit has it.
    """
    timings: tuple[list[float], list[float]] = ([], [])
    gc.collect()
    gc.disable()
    try:
        for _ in range(repeat):
            for function, results in zip((raw, facteur), timings, strict=True):
                started = time.perf_counter()
                function()
                results.append((time.perf_counter() - started) * 1000)
    finally:
        gc.enable()
    return statistics.median(timings[0]), statistics.median(timings[1])


def raw_page(client: IMAPClient, exists: int) -> dict:
    client.use_uid = False
    try:
        return client.fetch(f"{max(1, exists - PER_PAGE + 1)}:{exists}", list(SUMMARY_ITEMS))
    finally:
        client.use_uid = True


def raw_message(client: IMAPClient, uid: int) -> bytes:
    return client.fetch([uid], ["FLAGS", "BODY.PEEK[]"])[uid][b"BODY[]"]


def measure(server: LocalMailServer, count: int, repeat: int) -> dict:
    account, seconds = seeded_account(server, "bench", count)
    person = account.user
    browser = Client(HTTP_HOST="localhost")
    browser.force_login(person)
    mailbox_url = reverse("webmail:mailbox", args=[account.pk])
    message_url = reverse("webmail:message", args=[account.pk, 0])[:-2]
    sessions = SessionPool(size=2)
    store = ImapStore(account, sessions=sessions)
    client = open_imap(account.incoming_endpoint())
    try:
        exists = client.select_folder("INBOX")[b"EXISTS"]
        newest = max(raw_page(client, exists))
        uid = raw_page(client, exists)[newest][b"UID"]
        # Warm both sides: the pool's connection signed in with the INBOX selected,
        # Dovecot's index and cache built for the first page.
        store.folders()
        assert store.page("INBOX", 1, per_page=PER_PAGE).items[0].uid == uid
        parse_message(store.message("INBOX", uid).raw)
        raw_message(client, uid)
        message_page = f"{message_url}{uid}/?folder=INBOX"
        for url in (mailbox_url, message_page):
            assert browser.get(url).status_code == 200
        results = {
            "seed": seconds,
            "page": compare(
                lambda: raw_page(client, exists),
                lambda: store.page("INBOX", 1, per_page=PER_PAGE),
                repeat,
            ),
            "message": compare(
                lambda: raw_message(client, uid), lambda: store.message("INBOX", uid), repeat
            ),
            "open": compare(
                lambda: parse_message(raw_message(client, uid)),
                lambda: parse_message(store.message("INBOX", uid).raw),
                repeat,
            ),
            "page view": compare(
                lambda: raw_page(client, exists), lambda: browser.get(mailbox_url), repeat
            ),
            "message view": compare(
                lambda: parse_message(raw_message(client, uid)),
                lambda: browser.get(message_page),
                repeat,
            ),
        }
    finally:
        client.logout()
        sessions.close_all()
        pool.close_all()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        default="1000,10000,100000",
        help="comma-separated mailbox sizes (default: %(default)s)",
    )
    parser.add_argument("--repeat", type=int, default=30, help="runs per measure (median)")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]

    # One line per connection opened would only clutter the table.
    logging.getLogger("webmail.mailstore.pool").setLevel(logging.WARNING)
    LocalMailServer.ensure_installed()
    call_command("migrate", verbosity=0)
    root = Path(tempfile.mkdtemp(prefix="facteur-bench-"))
    print(f"Mail server in {root}; {args.repeat} runs per measure, medians in ms.\n")
    rows = []
    try:
        with LocalMailServer(root) as server:
            for count in sizes:
                started = time.perf_counter()
                rows.append((count, measure(server, count, args.repeat)))
                print(
                    f"  {count:>7,} messages: seeded in {rows[-1][1]['seed']:.1f} s, "
                    f"all done in {time.perf_counter() - started:.1f} s",
                    flush=True,
                )
    finally:
        shutil.rmtree(root, ignore_errors=True)

    columns = ("page", "message", "open", "page view", "message view")
    print()
    print(f"{'':>9} | " + " | ".join(f"{name:^24}" for name in columns))
    print(
        f"{'messages':>9} | "
        + " | ".join(f"{'raw':>8} {'Facteur':>8} {'ratio':>6}" for _ in columns)
    )
    print("-" * 9 + ("-+-" + "-" * 24) * len(columns))
    for count, result in rows:
        cells = []
        for name in columns:
            raw, facteur = result[name]
            cells.append(f"{raw:>8.2f} {facteur:>8.2f} {facteur / raw:>5.2f}x")
        print(f"{count:>9,} | " + " | ".join(cells))
    print(
        "\npage:    the newest 50 (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE BODYSTRUCTURE);"
        "\n         raw = that FETCH on a signed-in client with the INBOX selected,"
        "\n         Facteur = ImapStore.page() on a warm pool (NOOP, FETCH, summaries)."
        "\nmessage: the newest message; raw = UID FETCH FLAGS BODY.PEEK[] on that client,"
        "\n         Facteur = ImapStore.message()."
        "\nopen:    message, then parse_message() on both sides."
        "\npage view:    GET of the mailbox page (session, database, view, template) beside"
        "\n              the raw FETCH of page; message view: GET of the message page"
        "\n              (parse and sanitise cached by UIDVALIDITY/UID) beside raw open."
    )


if __name__ == "__main__":
    main()
