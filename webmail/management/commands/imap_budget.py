from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from webmail.imap_budget import ADMIN_TEST_CONNECTIONS, DOVECOT_DEFAULT_LIMIT, Shape


class Command(BaseCommand):
    help = (
        "Print how many IMAP connections one mail account may have open at once with "
        "FACTEUR_IMAP_POOL_SIZE and the given numbers of nodes and processes, against "
        "Dovecot's mail_max_userip_connections. See docs/scaling.md."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--web-nodes", type=int, default=1, help="web nodes (replicas)")
        parser.add_argument(
            "--web-processes", type=int, default=2, help="gunicorn --workers on each web node"
        )
        parser.add_argument(
            "--web-threads", type=int, default=8, help="gunicorn --threads of each process"
        )
        parser.add_argument("--worker-nodes", type=int, default=1, help="Celery worker nodes")
        parser.add_argument(
            "--worker-concurrency",
            type=int,
            default=4,
            help="celery worker --concurrency on each worker node",
        )
        parser.add_argument(
            "--limit",
            type=int,
            default=DOVECOT_DEFAULT_LIMIT,
            help="the mail server's mail_max_userip_connections",
        )
        parser.add_argument(
            "--separate-addresses",
            action="store_true",
            help="each node reaches the mail server from an address of its own (no shared NAT)",
        )
        parser.add_argument(
            "--check", action="store_true", help="exit with an error when over the limit"
        )

    def handle(self, *args, **options) -> None:
        counts = [
            options[name]
            for name in (
                "web_nodes",
                "web_processes",
                "web_threads",
                "worker_nodes",
                "worker_concurrency",
            )
        ]
        if min(counts) < 0 or options["limit"] < 1:
            raise CommandError(_("Counts cannot be negative, and the limit is at least 1."))
        shape = Shape(
            pool_size=settings.IMAP_POOL_SIZE,
            web_nodes=options["web_nodes"],
            web_processes=options["web_processes"],
            web_threads=options["web_threads"],
            worker_nodes=options["worker_nodes"],
            worker_processes=options["worker_concurrency"],
            shared_address=not options["separate_addresses"],
        )
        limit = options["limit"]
        lines = [
            _("IMAP connections one mail account may have open at once:"),
            _("  pool size per process (FACTEUR_IMAP_POOL_SIZE): %(n)d") % {"n": shape.pool_size},
            _("  (a process holds no more than it has threads: a Celery prefork process one)"),
            _("  web: %(nodes)d node(s) x %(processes)d process(es) x %(each)d = %(n)d")
            % {
                "nodes": shape.web_nodes,
                "processes": shape.web_processes,
                "each": shape.per_web_process,
                "n": shape.web_nodes * shape.per_web_node,
            },
            _("  workers: %(nodes)d node(s) x %(processes)d process(es) x %(each)d = %(n)d")
            % {
                "nodes": shape.worker_nodes,
                "processes": shape.worker_processes,
                "each": shape.per_worker_process,
                "n": shape.worker_nodes * shape.per_worker_node,
            },
            _("  Test connection in the admin site: %(n)d") % {"n": ADMIN_TEST_CONNECTIONS},
            _("  total: %(n)d") % {"n": shape.total},
            (
                _("  from one client address (every node shares it): %(n)d")
                if shape.shared_address
                else _("  from one client address (the busiest node): %(n)d")
            )
            % {"n": shape.per_address},
            _("  mail_max_userip_connections: %(n)d") % {"n": limit},
        ]
        if shape.fits(limit):
            lines.append(
                _("Fits, with %(n)d to spare.") % {"n": limit - shape.per_address},
            )
        else:
            numbers = {
                "over": shape.per_address - limit,
                "need": shape.per_address,
                "pool": shape.largest_fitting_pool(limit),
            }
            lines.append(
                _(
                    "Over the limit by %(over)d: raise mail_max_userip_connections to at "
                    "least %(need)d, or set FACTEUR_IMAP_POOL_SIZE to %(pool)d or less, or "
                    "run fewer processes."
                )
                % numbers
                if numbers["pool"]
                else _(
                    "Over the limit by %(over)d: raise mail_max_userip_connections to at "
                    "least %(need)d, or run fewer processes."
                )
                % numbers
            )
        self.stdout.write("\n".join(lines))
        if options["check"] and not shape.fits(limit):
            raise CommandError(_("More IMAP connections than the mail server allows."))
