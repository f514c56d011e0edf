"""What an operator watches on the all-in-one: every service's /healthcheck, the Prometheus /metrics (parsed with
prometheus-client's own parser, counting a boot) and `pocketstack status`. The distributed mode's database and
agent outages are in tests/test_distributed_faults.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

from pocketstack.services import SERVICES

POCKETSTACK = str(Path(sys.executable).with_name("pocketstack"))


def samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The /metrics of a service, parsed: (sample name, sorted labels) -> value."""
    resp = requests.get(url + "/metrics", timeout=30)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(resp.text) for s in family.samples}


def value(metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return metrics.get((name, tuple(sorted(labels.items()))), 0.0)


def test_every_service_answers_its_healthcheck_without_a_token(cloud: Any) -> None:
    for spec in SERVICES:
        url = cloud.url(spec.name) + "/healthcheck"
        plain = requests.get(url, timeout=30)
        assert (plain.status_code, plain.text) == (200, "OK"), (spec.name, plain.text)
        detailed = requests.get(url, headers={"Accept": "application/json"}, timeout=30).json()
        reasons = {r["class"]: r["reason"] for r in detailed["reasons"]}
        # the dashboard keeps no database: what it needs is Keystone
        needs = "identity" if spec.name == "dashboard" else "database"
        assert reasons.get(needs) == "OK" and set(reasons.values()) == {"OK"}, (spec.name, detailed)
        assert requests.head(url, timeout=30).status_code == 204
    # the health check is no way around authentication: the rest of the API still wants a token
    assert requests.get(cloud.url("compute") + "/v2.1/servers", timeout=30).status_code == 401


def test_metrics_count_requests_by_route_and_a_boot(cloud: Any, admin: Any, prefix: str) -> None:
    compute = cloud.url("compute")
    before = samples(compute)
    image = admin.image.create_image(name=f"{prefix}-img", disk_format="raw", container_format="bare",
                                     data=b"\0" * 4096)
    network = admin.network.create_network(name=f"{prefix}-net")
    admin.network.create_subnet(network_id=network.id, cidr="10.77.0.0/24", ip_version=4)
    server = admin.compute.create_server(name=f"{prefix}-vm", image_id=image.id, flavor_id="1",
                                         networks=[{"uuid": network.id}])
    admin.compute.wait_for_server(server, status="ACTIVE", wait=60)
    after = samples(compute)
    built = "pocketstack_server_build_duration_seconds_count"
    assert value(after, built, outcome="active") == value(before, built, outcome="active") + 1
    placed = "pocketstack_scheduler_decisions_total"
    assert value(after, placed, outcome="host") == value(before, placed, outcome="host") + 1
    created = {"service": "compute-api", "method": "POST", "route": "/v2.1/servers", "status": "202"}
    assert value(after, "pocketstack_http_requests_total", **created) == \
        value(before, "pocketstack_http_requests_total", **created) + 1
    # route templates, never ids, in the labels
    assert value(after, "pocketstack_http_request_duration_seconds_count", service="compute-api", method="GET",
                 route="/v2.1/servers/{server_id}") >= 1
    assert not any(server.id in str(labels) for _, labels in after)
    assert value(after, "pocketstack_rpc_messages_total", kind="call", target="scheduler",
                 method="select_destinations", outcome="ok") >= 1
    assert value(after, "pocketstack_db_transaction_duration_seconds_count", database="compute", write="true") > \
        value(before, "pocketstack_db_transaction_duration_seconds_count", database="compute", write="true")
    # servers by state: counted by the compute API every 10 s
    deadline = time.monotonic() + 30
    while value(samples(compute), "pocketstack_servers", vm_state="active") < 1:
        assert time.monotonic() < deadline, "no active server counted"
        time.sleep(1)
    admin.compute.delete_server(server)
    admin.compute.wait_for_delete(server, wait=60)
    admin.network.delete_network(network)
    admin.image.delete_image(image)


def test_status_shows_the_services_and_the_compute_hosts(cloud: Any) -> None:
    # the ports of this test cloud, as a settings file would give them (the catalog has no metadata endpoint)
    ports = {f"POCKETSTACK_{spec.name.upper().replace('-', '_')}__PORT": str(cloud.settings.port(spec.name))
             for spec in SERVICES}
    done = subprocess.run([POCKETSTACK, "status", "--json", "--data-dir", str(cloud.settings.data_dir)],
                          capture_output=True, text=True, timeout=120, env={**os.environ, **ports})
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert {s["name"]: s["state"] for s in status["services"]} == {spec.name: "up" for spec in SERVICES}
    hosts = {s["host"]: s["state"] for s in status["compute_services"] if s["binary"] == "nova-compute"}
    assert len(hosts) == cloud.settings.compute.fake_hosts and set(hosts.values()) == {"up"}
    assert {s["binary"] for s in status["volume_services"]} >= {"cinder-volume", "cinder-scheduler"}
    assert status["errors"] == []
