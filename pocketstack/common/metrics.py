"""Prometheus metrics of every process (prometheus-client), served as `/metrics` on each service's API port.

The all-in-one runs every service in one process, so each of its `/metrics` shows the whole cloud; a process of
`up --distributed` shows its own. Labels carry names of routes and methods, never ids or tokens.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest

HTTP_REQUESTS = Counter("pocketstack_http_requests", "API requests answered, by route template and status",
                        ["service", "method", "route", "status"])
HTTP_SECONDS = Histogram("pocketstack_http_request_duration_seconds", "time to answer an API request",
                         ["service", "method", "route"])
RPC_MESSAGES = Counter("pocketstack_rpc_messages", "RPC calls and casts sent, by method and outcome",
                       ["kind", "target", "method", "outcome"])
RPC_CALL_SECONDS = Histogram("pocketstack_rpc_call_duration_seconds", "round trip of an RPC call",
                             ["target", "method"])
DB_TRANSACTION_SECONDS = Histogram("pocketstack_db_transaction_duration_seconds",
                                   "time of one database transaction (Database.run)", ["database", "write"])
BUILD_SECONDS = Histogram("pocketstack_server_build_duration_seconds",
                          "time from a compute agent taking a build to its end, by outcome", ["outcome"],
                          buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300))
SCHEDULER_DECISIONS = Counter("pocketstack_scheduler_decisions",
                              "instances the scheduler placed (host) or could not place (no_valid_host)",
                              ["outcome"])

SERVERS = Gauge("pocketstack_servers", "servers (not deleted) by vm_state, as the compute API last counted them",
                ["vm_state"])

UNMATCHED_ROUTE = "(no route)"


def set_counts(gauge: Gauge, counts: dict[str, int], reported: set[str]) -> None:
    """Set a gauge labelled by one name to `counts`; names reported before and now absent go to 0 (a scrape never
    sees the series vanish and come back)."""
    for name in reported - set(counts):
        gauge.labels(name).set(0)
    for name, count in counts.items():
        gauge.labels(name).set(count)
    reported |= set(counts)


def exposition() -> tuple[bytes, str]:
    """The text exposition of this process's metrics and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
