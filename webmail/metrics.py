"""The metrics every process updates as it works, in Prometheus' terms.

With ``PROMETHEUS_MULTIPROC_DIR`` set in the environment of every web and worker
process (one folder they all share, emptied at deployment start), each process
writes its numbers there and a scrape of any web process adds them all up.
Without it, a scrape shows the numbers of the one process that answered.
What the database knows (the outbox, sync lag) is read at scrape time instead:
see ``ops.collectors``.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUEST_DURATION = Histogram(
    "facteur_request_duration_seconds",
    "Time to answer a request, by view (URL name), method and status.",
    ["view", "method", "status"],
    buckets=(0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)

IMAP_CONNECTIONS = Gauge(
    "facteur_imap_pool_connections",
    "IMAP connections open in the session pools, by server.",
    ["server"],
    multiprocess_mode="livesum",
)

IMAP_WAITS = Counter(
    "facteur_imap_pool_waits",
    "Borrowers of a pool that had to wait for a connection, by server.",
    ["server"],
)

IMAP_ERRORS = Counter(
    "facteur_imap_pool_errors",
    "IMAP connections that could not be opened (connect), broke in use (broken), "
    "or were not free in time (busy), by server.",
    ["server", "kind"],
)

POP3_FETCH_ERRORS = Counter(
    "facteur_pop3_fetch_errors",
    "POP3 fetches that failed, by server.",
    ["server"],
)

TASK_FAILURES = Counter(
    "facteur_task_failures",
    "Celery tasks that raised, by task name.",
    ["task"],
)


def server_label(account: object) -> str:
    """host:port of an account's incoming server: the label of its pool and fetch metrics."""
    return f"{getattr(account, 'incoming_host', '')}:{getattr(account, 'incoming_port', '')}"
