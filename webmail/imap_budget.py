"""How many IMAP connections one mail account may have open at once, for a deployment's shape.

Every process keeps its own pool of at most ``IMAP_POOL_SIZE`` connections per
account (``webmail.mailstore.pool``), and opens one only when every open one is
borrowed: a process holds at most as many as it has threads borrowing at once.
A gunicorn process (gthread) has ``--threads`` of them; a Celery pool process
(prefork: one process per unit of ``--concurrency``) runs one task at a time,
and a task borrows one connection at a time. A staff member's "Test
connection" opens one more, outside any pool.

Dovecot refuses a LOGIN past ``mail_max_userip_connections`` (10 by default)
connections of one user from one client address: all the nodes count together
when they reach the mail server from one address (one Docker host, a NAT), each
node on its own when each has its own address.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

#: Dovecot's default ``mail_max_userip_connections`` for IMAP.
DOVECOT_DEFAULT_LIMIT = 10
#: "Test connection" in the admin site, which opens a connection of its own.
ADMIN_TEST_CONNECTIONS = 1


@dataclass(frozen=True)
class Shape:
    """A deployment: how many nodes run what, and the pool each process keeps."""

    pool_size: int
    web_nodes: int = 1
    web_processes: int = 2  # gunicorn --workers on each web node
    web_threads: int = 8  # gunicorn --threads of each of them
    worker_nodes: int = 1
    worker_processes: int = 4  # celery worker --concurrency on each worker node
    worker_threads: int = 1  # prefork: one task at a time in each of them
    shared_address: bool = True  # every node reaches the mail server from one address

    @property
    def per_web_process(self) -> int:
        return min(self.pool_size, self.web_threads)

    @property
    def per_worker_process(self) -> int:
        return min(self.pool_size, self.worker_threads)

    @property
    def per_web_node(self) -> int:
        return self.per_web_process * self.web_processes

    @property
    def per_worker_node(self) -> int:
        return self.per_worker_process * self.worker_processes

    @property
    def total(self) -> int:
        """Every connection one account may have open at once, over all the nodes."""
        return (
            self.web_nodes * self.per_web_node
            + self.worker_nodes * self.per_worker_node
            + ADMIN_TEST_CONNECTIONS
        )

    @property
    def per_address(self) -> int:
        """The most that reach the mail server from one client address."""
        if self.shared_address:
            return self.total
        return max(self.per_web_node + ADMIN_TEST_CONNECTIONS, self.per_worker_node)

    def fits(self, limit: int = DOVECOT_DEFAULT_LIMIT) -> bool:
        return self.per_address <= limit

    def largest_fitting_pool(self, limit: int = DOVECOT_DEFAULT_LIMIT) -> int:
        """The largest ``IMAP_POOL_SIZE`` that fits ``limit`` with this shape; 0 if none does."""
        # Connections grow with the pool size, and a pool never needs more than the limit.
        fitting = (
            size for size in range(limit, 0, -1) if replace(self, pool_size=size).fits(limit)
        )
        return next(fitting, 0)
