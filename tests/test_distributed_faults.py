"""Faults of a distributed deployment, on the machine's real RabbitMQ and PostgreSQL: an API worker, a conductor, a
scheduler and a compute agent killed, the database briefly unreachable, RabbitMQ restarted idle and with boots in
flight. Two copies of the conductor, the scheduler and the compute-api workers run; the fake driver takes 3s per
guest so builds are caught mid-way."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests
from conftest import free_port
from dist_helpers import POCKETSTACK, Deployment, engines_available, pg, rabbitmqctl

BUILD_TIMEOUT = 40
DOCS = Path(__file__).parent.parent / "docs"


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    engines_available()
    running = Deployment(
        tmp_path_factory.mktemp("faults"), fake_hosts=4, compute__workers="2", distributed__conductors="2",
        distributed__schedulers="2", distributed__hosts_per_process="2", distributed__restart_delay="5",
        compute__report_interval="1", compute__service_down_time="8", compute__build_check_interval="1",
        compute__build_timeout=str(BUILD_TIMEOUT), compute__fake_spawn_seconds="3", rpc__call_timeout="20",
        compute__quota_instances="-1", compute__quota_cores="-1", compute__quota_ram="-1",
        network__quota_port="-1")
    try:
        yield running.start()
    finally:
        running.stop()
        running.purge()


@pytest.fixture(scope="module")
def boot_from(deployment: Deployment) -> tuple[str, str]:
    return deployment.setup_boot_resources()


def wait_until(predicate: object, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} within {within:.0f}s")


def services_up(deployment: Deployment) -> dict[str, int]:
    resp = deployment.api("GET", "compute", "/v2.1/os-services")
    counts: dict[str, int] = {}
    for service in resp.json()["services"]:
        if service["state"] == "up":
            counts[service["binary"]] = counts.get(service["binary"], 0) + 1
    return counts


def test_api_worker_killed_another_keeps_serving(deployment: Deployment, boot_from: tuple[str, str]) -> None:
    workers = deployment.workers("compute-api")
    assert len(workers) == 2
    acknowledged: list[str] = []
    refused: list[str] = []

    def create(thread: int) -> None:  # creates on new connections, spread over both workers by the kernel
        for i in range(6):
            try:
                acknowledged.append(deployment.boot(f"w{thread}-{i}", *boot_from))
            except (requests.ConnectionError, AssertionError) as exc:
                refused.append(repr(exc))
            time.sleep(0.25)

    threads = [threading.Thread(target=create, args=(t,)) for t in range(2)]
    for thread in threads:
        thread.start()
    time.sleep(0.6)
    os.kill(workers[0], signal.SIGKILL)
    for thread in threads:
        thread.join(120)
    # at most the requests the killed worker had in hand were lost; the rest went to the other one
    assert len(refused) <= 2 and len(acknowledged) >= 10, refused
    statuses = [deployment.api("GET", "compute", "/v2.1/servers/detail").status_code for _ in range(20)]
    assert statuses == [200] * 20
    wait_until(lambda: len(deployment.workers("compute-api")) == 2 and workers[0] not in deployment.workers(
        "compute-api"), 30, "the supervisor did not start another worker")
    # nothing acknowledged is lost: every 202 became a server that boots
    assert [deployment.wait_server(s)["status"] for s in acknowledged] == ["ACTIVE"] * len(acknowledged)
    for server_id in acknowledged:
        deployment.api("DELETE", "compute", f"/v2.1/servers/{server_id}")


def test_conductor_and_scheduler_killed_the_other_copies_keep_serving(deployment: Deployment,
                                                                       boot_from: tuple[str, str]) -> None:
    killed = {name: deployment.pid(name) for name in ("conductor-1", "scheduler-1")}
    survivors = {name: deployment.pid(name) for name in ("conductor-2", "scheduler-2")}
    for pid in killed.values():
        os.kill(pid, signal.SIGKILL)
    ids = [deployment.boot(f"ha-{i}", *boot_from) for i in range(4)]
    assert [deployment.wait_server(s)["status"] for s in ids] == ["ACTIVE"] * 4
    # scheduled by the copies still running (the killed ones start again only after the restart delay)
    hops = deployment.trace(ids[0])["hops"]
    assert {hop["process"] for hop in hops if hop["step"] == "9"} == {f"conductor[{survivors['conductor-2']}]"}
    assert {hop["process"] for hop in hops if hop["step"] == "10"} == {f"scheduler[{survivors['scheduler-2']}]"}
    for name, pid in killed.items():
        deployment.wait_restarted(name, pid)
    wait_until(lambda: services_up(deployment).get("nova-conductor") == 2 and services_up(deployment).get(
        "nova-scheduler") == 2, 60, "the restarted conductor and scheduler did not report up")
    for server_id in ids:
        deployment.api("DELETE", "compute", f"/v2.1/servers/{server_id}")


def test_compute_agent_killed_mid_build_ends_in_error_with_claims_and_ports_released(
        deployment: Deployment, boot_from: tuple[str, str]) -> None:
    server_id = deployment.boot("victim", *boot_from)
    server = deployment.wait_server(server_id, within=60, until=("BUILD",))

    def spawning() -> bool:
        nonlocal server
        server = deployment.server(server_id)
        return server["OS-EXT-STS:task_state"] == "spawning"

    wait_until(spawning, 30, "the build did not reach spawning")
    host = server["OS-EXT-SRV-ATTR:host"]
    name = deployment.process_of_host(host)
    pid = deployment.pid(name)
    assert deployment.allocations(server_id) == 1 and len(deployment.ports_of(server_id)) == 1
    os.kill(pid, signal.SIGKILL)  # the guest is half-built: its port bound, its resources claimed

    failed = deployment.wait_server(server_id, within=60)
    assert failed["status"] == "ERROR"
    assert host in failed["fault"]["message"] and "during the build" in failed["fault"]["message"]
    assert deployment.allocations(server_id) == 0  # released with the move to ERROR, in one transaction
    # the ports go right after (REST calls to the network service): wait, as a client would
    wait_until(lambda: deployment.ports_of(server_id) == [], 30, "the build's port was not released")
    # the agent process is started again and its hosts build again
    deployment.wait_restarted(name, pid)
    wait_until(lambda: services_up(deployment).get("nova-compute") == 4, 60, "the hosts did not report up")
    again = [deployment.boot(f"after-{i}", *boot_from) for i in range(2)]
    assert [deployment.wait_server(s)["status"] for s in again] == ["ACTIVE"] * 2
    for leftover in (server_id, *again):
        deployment.api("DELETE", "compute", f"/v2.1/servers/{leftover}")


def _block(database: str) -> None:
    """Make a database unreachable: no new connections, the open ones cut."""
    pg(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS false')
    pg("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", database)


def _unblock(database: str) -> None:
    pg(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS true')


def test_database_briefly_unreachable_is_503_then_recovers(deployment: Deployment,
                                                           boot_from: tuple[str, str]) -> None:
    deployment.token(fresh=True)
    compute_db, identity_db = f"{deployment.name}_compute", f"{deployment.name}_identity"
    _block(compute_db)
    try:
        answers = [deployment.api("GET", "compute", "/v2.1/servers") for _ in range(5)]
        assert [r.status_code for r in answers] == [503] * 5, [r.text for r in answers]
        assert answers[0].json()["serviceUnavailable"]["code"] == 503
        created = deployment.api("POST", "compute", "/v2.1/servers", json={"server": {
            "name": "no-db", "imageRef": boot_from[0], "flavorRef": "1", "networks": [{"uuid": boot_from[1]}]}})
        assert created.status_code == 503, created.text
    finally:
        _unblock(compute_db)
    wait_until(lambda: deployment.api("GET", "compute", "/v2.1/servers").status_code == 200, 30,
               "the compute API did not recover")

    _block(identity_db)
    try:
        issue = requests.post(deployment.url("identity", "/v3/auth/tokens"), timeout=30, json={"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": "admin", "domain": {"name": "Default"}, "password": "dist-admin"}}}}})
        assert issue.status_code == 503 and issue.json()["error"]["code"] == 503, issue.text
    finally:
        _unblock(identity_db)
    wait_until(lambda: requests.post(deployment.url("identity", "/v3/auth/tokens"), timeout=30, json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"name": "Default"}, "password": "dist-admin"}}}}}).status_code == 201,
        30, "identity did not recover")
    server_id = deployment.boot("after-db", *boot_from)
    assert deployment.wait_server(server_id)["status"] == "ACTIVE"
    deployment.api("DELETE", "compute", f"/v2.1/servers/{server_id}")


def test_healthchecks_and_status_follow_a_database_outage_and_a_silent_agent(deployment: Deployment) -> None:
    def status() -> dict[str, Any]:
        done = subprocess.run([POCKETSTACK, "status", "--json", "--data-dir", str(deployment.data_dir)],
                              env=deployment.env, capture_output=True, text=True, timeout=60)
        return json.loads(done.stdout)

    def health(service: str) -> requests.Response:
        return requests.get(deployment.url(service, "/healthcheck"), headers={"Accept": "application/json"},
                            timeout=30)

    first = status()
    assert {s["state"] for s in first["services"]} == {"up"}, first["services"]
    assert {p["state"] for p in first["processes"]} == {"up"}
    for service in ("identity", "image", "network", "volume", "compute"):
        _block(f"{deployment.name}_{service}")
        try:
            down = health(service)
            assert down.status_code == 503, (service, down.text)
            assert {r["class"]: r["reason"] for r in down.json()["reasons"]}["database"].startswith("DOWN")
        finally:
            _unblock(f"{deployment.name}_{service}")
        wait_until(lambda service=service: health(service).status_code == 200, 30, f"{service} did not recover")

    # a compute agent that stops answering (SIGSTOP: alive, silent, not restarted) is down, then up again
    name, agent = next((n, p) for n, p in deployment.processes().items() if p["role"] == "compute")
    frozen = [psutil.Process(agent["pid"]), *psutil.Process(agent["pid"]).children(recursive=True)]

    def agent_states() -> set[str]:
        return {s["state"] for s in status()["compute_services"] if s["host"] in agent["hosts"]}

    for proc in frozen:
        proc.suspend()
    try:
        wait_until(lambda: agent_states() == {"down"}, 40, f"{name}'s hosts were not shown down")
    finally:
        for proc in frozen:
            proc.resume()
    wait_until(lambda: agent_states() == {"up"}, 40, f"{name}'s hosts were not shown up again")


def test_rabbitmq_restarted_idle_and_with_boots_in_flight(deployment: Deployment,
                                                          boot_from: tuple[str, str]) -> None:
    pids = {name: p["pid"] for name, p in deployment.processes().items()}
    try:
        rabbitmqctl("stop_app")
    finally:
        rabbitmqctl("start_app")
    # idle: every process reconnects on its own and the next boots succeed
    idle = [deployment.boot(f"idle-{i}", *boot_from) for i in range(2)]
    assert [deployment.wait_server(s)["status"] for s in idle] == ["ACTIVE"] * 2

    in_flight = [deployment.boot(f"flight-{i}", *boot_from) for i in range(4)]
    time.sleep(1.0)  # scheduled, networking or spawning (the fake guest takes 3s)
    during: list[str] = []  # created while the broker is down: the API's cast waits for it to come back
    posting = [threading.Thread(target=lambda i=i: during.append(deployment.boot(f"during-{i}", *boot_from)))
               for i in range(2)]
    try:
        rabbitmqctl("stop_app")
        for thread in posting:
            thread.start()
        time.sleep(2)
    finally:
        rabbitmqctl("start_app")
    for thread in posting:
        thread.join(60)
    assert len(during) == 2
    in_flight += during
    # each boot in flight completes or ends in ERROR with a fault: none stays in BUILD
    final = [deployment.wait_server(s, within=BUILD_TIMEOUT + 40) for s in in_flight]
    assert {s["status"] for s in final} <= {"ACTIVE", "ERROR"}
    assert all(s["fault"]["message"] for s in final if s["status"] == "ERROR")
    after = [deployment.boot(f"after-{i}", *boot_from) for i in range(2)]
    assert [deployment.wait_server(s)["status"] for s in after] == ["ACTIVE"] * 2
    # they reconnected: no process had to be started again
    assert {name: p["pid"] for name, p in deployment.processes().items()} == pids
    print("boots in flight across the broker restart:", [s["status"] for s in final])


def test_haproxy_example_keeps_serving_when_an_instance_dies(deployment: Deployment, boot_from: tuple[str, str],
                                                             tmp_path: Path) -> None:
    """docs/haproxy.cfg, with its compute section pointed at two compute-api instances of this deployment."""
    haproxy = shutil.which("haproxy")
    if haproxy is None:
        pytest.fail("haproxy is not installed (scripts/install.sh installs it)")
    example = DOCS / "haproxy.cfg"
    assert subprocess.run([haproxy, "-c", "-f", str(example)], capture_output=True).returncode == 0
    second, front = free_port(), free_port()
    text = example.read_text()
    head = text[:text.index("frontend identity")]  # global and defaults as documented
    compute = text[text.index("frontend compute"):]
    compute = compute.replace("bind :8774", f"bind 127.0.0.1:{front}").replace(
        "127.0.0.1:18774", f"127.0.0.1:{deployment.ports['compute']}").replace("127.0.0.1:18775", f"127.0.0.1:{second}")
    config = tmp_path / "haproxy.cfg"
    config.write_text(head + compute)
    instance = subprocess.Popen([POCKETSTACK, "serve", "compute-api", "--config", str(deployment.config), "--port",
                                 str(second), "--workers", "1"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True, env=deployment.env, start_new_session=True)
    balancer = subprocess.Popen([haproxy, "-f", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
    try:
        assert instance.stdout is not None
        assert instance.stdout.readline().strip() == "pocketstack serve compute-api ready"
        through = f"http://127.0.0.1:{front}/v2.1/servers"
        headers = {"X-Auth-Token": deployment.token()}
        wait_until(lambda: requests.get(through, headers=headers, timeout=10).status_code == 200, 30,
                   "haproxy did not serve")
        assert [requests.get(through, headers=headers, timeout=10).status_code for _ in range(10)] == [200] * 10
        os.killpg(instance.pid, signal.SIGKILL)  # one instance gone: the other serves, haproxy retries
        instance.wait(10)
        assert [requests.get(through, headers=headers, timeout=10).status_code for _ in range(20)] == [200] * 20
        created = requests.post(through, headers=headers, timeout=60, json={"server": {
            "name": "via-haproxy", "imageRef": boot_from[0], "flavorRef": "1", "networks": [{"uuid": boot_from[1]}]}})
        assert created.status_code == 202, created.text
        server_id = created.json()["server"]["id"]
        assert deployment.wait_server(server_id)["status"] == "ACTIVE"
        deployment.api("DELETE", "compute", f"/v2.1/servers/{server_id}")
    finally:
        for proc in (instance, balancer):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
