"""What Facteur adds to the IMAP work of a quick search.

Starts a private LocalMailServer, seeds one mailbox per size (10,000 and
100,000 messages by default, as ``imap_page.py`` does), and for each measures,
with a warm pool and the INBOX selected on both sides:

- search: the first page of a quick search's results. Raw is the same
  ``UID SEARCH`` Facteur sends (RETURN (ALL) where the server has ESEARCH, the
  OR chain of FROM, TO, CC, SUBJECT and BODY) and a ``UID FETCH`` of the newest
  50 UIDs found, on an imapclient connection; Facteur is ``ImapStore.search()``
  with its cache of found UIDs turned off, so that every run searches.
- next page: the second page, raw being the FETCH alone; Facteur's cache of
  found UIDs on, as when a person pages through results.
- view: the search page requested through Django's test client (session,
  database, view, template), every run searching, beside raw search.

It prints the median of each over ``--repeat`` runs and the ratio Facteur/raw.
Run as root (the mail server needs it): ``.venv/bin/python bench/search.py``.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from imapclient import IMAPClient
from imapclient.response_parser import parse_message_list

import bench.environment  # noqa: F401  (sets Django up first)
import webmail.mailstore.imap as imap_store
from bench.imap_page import compare
from bench.seed import seeded_account
from webmail.localmail import LocalMailServer
from webmail.mailstore.imap import SUMMARY_ITEMS, ImapStore
from webmail.mailstore.pool import SessionPool, pool
from webmail.search import (
    SearchQuery,
    imap_charset,
    imap_criteria,
    parse_esearch,
    split_words,
)
from webmail.transport.imap import open_imap

PER_PAGE = 50


@contextmanager
def searching_every_time():
    """Facteur's cache of found UIDs off: each run searches as a new query does."""
    kept = imap_store.SEARCH_TTL
    imap_store.SEARCH_TTL = 0
    try:
        yield
    finally:
        imap_store.SEARCH_TTL = kept


def raw_search(client: IMAPClient, criteria: list[bytes], exists: int) -> list[int]:
    """The UID SEARCH Facteur sends, through the same imapclient raw command."""
    charset = imap_charset(criteria)
    arguments = [b"CHARSET", charset, *criteria] if charset else criteria
    if b"ESEARCH" in client.capabilities():
        lines = client._raw_command_untagged(
            b"SEARCH", [b"RETURN", b"(ALL)", *arguments], response_name="ESEARCH"
        )
        return parse_esearch(lines[-1], limit=exists)
    return list(parse_message_list(client._raw_command_untagged(b"SEARCH", arguments)))


def raw_page(client: IMAPClient, uids: list[int], number: int) -> dict:
    newest = sorted(uids, reverse=True)[(number - 1) * PER_PAGE : number * PER_PAGE]
    return client.fetch(newest, list(SUMMARY_ITEMS))


def measure(server: LocalMailServer, count: int, words: str, repeat: int) -> dict:
    account, seconds = seeded_account(server, "bench-search", count)
    person = account.user
    browser = Client(HTTP_HOST="localhost")
    browser.force_login(person)
    search_url = reverse("webmail:search", args=[account.pk])
    query = SearchQuery(words=split_words(words))
    criteria = imap_criteria(query)
    sessions = SessionPool(size=2)
    store = ImapStore(account, sessions=sessions)
    client = open_imap(account.incoming_endpoint())
    try:
        exists = client.select_folder("INBOX")[b"EXISTS"]
        # Warm both sides: the pool signed in with the INBOX selected, Dovecot's
        # index and cache built for the headers and pages searched.
        uids = raw_search(client, criteria, exists)
        raw_page(client, uids, 1)
        raw_page(client, uids, 2)

        def raw_first() -> dict:
            return raw_page(client, raw_search(client, criteria, exists), 1)

        with searching_every_time():
            first = store.search(query, 1, folder="INBOX", per_page=PER_PAGE)
            assert [hit.summary.uid for hit in first.hits] == sorted(uids, reverse=True)[:50]
            assert first.total == len(uids) > 2 * PER_PAGE
            assert browser.get(search_url, {"folder": "INBOX", "q": words}).status_code == 200
            search = compare(
                raw_first,
                lambda: store.search(query, 1, folder="INBOX", per_page=PER_PAGE),
                repeat,
            )
            view = compare(
                raw_first,
                lambda: browser.get(search_url, {"folder": "INBOX", "q": words}),
                repeat,
            )
        store.search(query, 2, folder="INBOX", per_page=PER_PAGE)  # found UIDs now cached
        next_page = compare(
            lambda: raw_page(client, uids, 2),
            lambda: store.search(query, 2, folder="INBOX", per_page=PER_PAGE),
            repeat,
        )
    finally:
        client.logout()
        sessions.close_all()
        pool.close_all()
    return {
        "seed": seconds,
        "found": len(uids),
        "search": search,
        "next page": next_page,
        "view": view,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        default="10000,100000",
        help="comma-separated mailbox sizes (default: %(default)s)",
    )
    parser.add_argument("--repeat", type=int, default=10, help="runs per measure (median)")
    parser.add_argument(
        "--words", default="invoice", help="what the quick search looks for (default: %(default)s)"
    )
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
                rows.append((count, measure(server, count, args.words, args.repeat)))
                print(
                    f"  {count:>7,} messages: seeded in {rows[-1][1]['seed']:.1f} s, "
                    f"{rows[-1][1]['found']:,} found, "
                    f"all done in {time.perf_counter() - started:.1f} s",
                    flush=True,
                )
    finally:
        shutil.rmtree(root, ignore_errors=True)

    columns = ("search", "next page", "view")
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
        f'\nsearch:    quick search for "{args.words}", first page of 50;'
        "\n           raw = UID SEARCH (as Facteur sends it) + UID FETCH of the newest 50 on a"
        "\n           signed-in client with the INBOX selected, Facteur = ImapStore.search()"
        "\n           on a warm pool (NOOP, last UID, SEARCH, FETCH, summaries), uncached."
        "\nnext page: the second page; raw = its UID FETCH alone, Facteur = ImapStore.search()"
        "\n           with the found UIDs cached (NOOP, last UID, FETCH, summaries)."
        "\nview:      GET of the search page (session, database, view, template), searching"
        "\n           every time, beside raw search."
    )


if __name__ == "__main__":
    main()
