"""Metrics read from the database when scraped, so that every process reports the same."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from accounts.models import MailAccount, Protocol
from ops import heartbeat
from webmail.models import OutgoingMessage, SyncState


class DatabaseCollector(Collector):
    """Outbox rows by state and the oldest queued one; sync lag; accounts in trouble."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = timezone.now()

        by_state = GaugeMetricFamily(
            "facteur_outbox_messages", "Outgoing messages by state.", labels=["state"]
        )
        counts = dict(
            OutgoingMessage.objects.values_list("status").annotate(n=Count("pk")).order_by()
        )
        for state in OutgoingMessage.Status.values:
            by_state.add_metric([state], counts.get(state, 0))
        yield by_state

        oldest = OutgoingMessage.objects.filter(
            status=OutgoingMessage.Status.QUEUED, send_after__lte=now
        ).aggregate(oldest=Min("send_after"))["oldest"]
        yield GaugeMetricFamily(
            "facteur_outbox_oldest_queued_seconds",
            "How long the oldest message due to be sent has waited (0: none waits).",
            value=(now - oldest).total_seconds() if oldest else 0.0,
        )

        imap = SyncState.objects.filter(account__protocol=Protocol.IMAP)
        least_recent = imap.aggregate(least=Min("checked_at"))["least"]
        yield GaugeMetricFamily(
            "facteur_sync_lag_seconds",
            "Age of the least recent new-mail check of an IMAP account.",
            value=(now - least_recent).total_seconds() if least_recent else 0.0,
        )
        fetched = MailAccount.objects.filter(protocol=Protocol.POP3).aggregate(
            least=Min("pop3_last_fetch")
        )
        yield GaugeMetricFamily(
            "facteur_pop3_fetch_lag_seconds",
            "Age of the least recent fetch of a POP3 account.",
            value=(now - fetched["least"]).total_seconds() if fetched["least"] else 0.0,
        )

        failing = GaugeMetricFamily(
            "facteur_accounts_failing",
            "Accounts whose last check or fetch failed, by protocol.",
            labels=["protocol"],
        )
        problems = dict(
            SyncState.objects.exclude(problem="")
            .values_list("account__protocol")
            .annotate(n=Count("pk"))
            .order_by()
        )
        for protocol in Protocol.values:
            failing.add_metric([protocol], problems.get(protocol, 0))
        yield failing

        age = heartbeat.age(now)
        yield GaugeMetricFamily(
            "facteur_heartbeat_age_seconds",
            "Seconds since a worker last ran the heartbeat beat queues (-1: never).",
            value=age if age is not None else -1.0,
        )
