"""Distributed mode end to end: `pocketstack up --distributed` runs every role as its own OS process on RabbitMQ and
PostgreSQL (a vhost and databases of this run's own), the `openstack` CLI boots servers on 4 compute hosts, and
the trace shows the boot's hops recorded by different processes."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests
from dist_helpers import POCKETSTACK, Deployment, engines_available, pg, rabbitmqctl

from pocketstack.common.service import stored_passwords
from pocketstack.compute.metadata.service_app import sign_instance_id
from pocketstack.compute.spec import METADATA_SECRET_KEY


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    engines_available()
    running = Deployment(tmp_path_factory.mktemp("dist"), fake_hosts=4, compute__workers="2",
                         distributed__conductors="2", distributed__schedulers="2",
                         distributed__hosts_per_process="2")
    try:
        yield running.start()
    finally:
        running.stop()
        running.purge()


def test_every_role_is_its_own_process_on_its_own_vhost_and_databases(deployment: Deployment) -> None:
    assert not any(line.startswith("created user") for line in deployment.lines)  # passwords configured
    assert set(deployment.clouds()) == {"pocketstack", "pocketstack-demo"}
    processes = deployment.processes()
    # the fake driver: no network agent (the all-in-one runs none either)
    assert set(processes) == {"identity", "image", "network", "volume-api", "compute-api", "metadata", "dashboard",
                              "serial-console", "vnc", "conductor-1", "conductor-2", "scheduler-1", "scheduler-2",
                              "volume", "compute-1", "compute-2"}
    pids = {p["pid"] for p in processes.values()}
    assert len(pids) == len(processes) and all(psutil.pid_exists(pid) for pid in pids)
    assert sorted(processes["compute-1"]["hosts"] + processes["compute-2"]["hosts"]) == [
        f"{socket.gethostname()}-fake{i}" for i in range(1, 5)]
    assert len(deployment.workers("compute-api")) == 2  # API worker processes under the compute-api supervisor
    # its own vhost and databases, and the settings every process reads name them
    assert deployment.name in rabbitmqctl("list_vhosts", "--no-table-headers", "name").split()
    databases = {r[0] for r in pg("SELECT datname FROM pg_database WHERE datname LIKE $1", deployment.name + "%")}
    assert databases == {f"{deployment.name}_{s}" for s in ("identity", "image", "network", "volume", "compute",
                                                             "trace")}
    config = deployment.config.read_text()
    assert f"/{deployment.name}\"" in config and "cache_backend = \"redis\"" in config
    sync = subprocess.run([POCKETSTACK, "db", "sync", "--config", str(deployment.config)], capture_output=True,
                          text=True, env=deployment.env, timeout=120)
    assert sync.returncode == 0 and "compute: up to date" in sync.stdout, sync.stderr
    assert "volume: up to date" in sync.stdout


def test_cli_boots_on_four_hosts_and_the_trace_crosses_processes(deployment: Deployment, tmp_path: Path) -> None:
    disk = tmp_path / "disk.raw"
    disk.write_bytes(b"\0" * 65536)
    deployment.cli("image", "create", "--file", str(disk), "--disk-format", "raw", "--container-format", "bare",
                   "--public", "tiny")
    deployment.cli("network", "create", "net1")
    deployment.cli("subnet", "create", "--network", "net1", "--subnet-range", "10.0.0.0/24", "subnet1")
    deployment.cli("server", "create", "--flavor", "m1.tiny", "--image", "tiny", "--network", "net1", "--min", "8",
                   "--max", "8", "--wait", "vm")
    servers = deployment.cli("server", "list", "--long", "-f", "json")
    assert len(servers) == 8 and {s["Status"] for s in servers} == {"ACTIVE"}
    hosts = {s["Host"] for s in servers}
    processes = deployment.processes()
    assert hosts == set(processes["compute-1"]["hosts"] + processes["compute-2"]["hosts"])  # all 4 hosts used

    services = deployment.cli("compute", "service", "list", "-f", "json")
    binaries = sorted(s["Binary"] for s in services if s["State"] == "up")
    assert binaries == ["nova-compute"] * 4 + ["nova-conductor"] * 2 + ["nova-scheduler"] * 2

    # the boot, hop by hop: each hop recorded by the process that did it
    trace = deployment.trace(servers[0]["ID"])
    by_step: dict[str, set[str]] = {}
    for hop in trace["hops"]:
        by_step.setdefault(hop["step"] or "", set()).add(hop["process"])

    def pid(label: str) -> int:
        return int(label.rsplit("[", 1)[1].rstrip("]"))

    api_pids = {pid(p) for p in by_step["3"] | by_step["8"]}
    assert api_pids <= set(deployment.workers("compute-api"))  # a worker of the compute-api supervisor
    conductor = {pid(p) for p in by_step["9"] | by_step["12"] | by_step["15-17"]}
    scheduler = {pid(p) for p in by_step["10"] | by_step["11"]}
    agent = {pid(p) for p in by_step["13"] | by_step["29"]}
    assert conductor <= {processes[f"conductor-{i}"]["pid"] for i in (1, 2)}
    assert scheduler <= {processes[f"scheduler-{i}"]["pid"] for i in (1, 2)}
    assert agent <= {processes[f"compute-{i}"]["pid"] for i in (1, 2)}
    assert {pid(p) for p in by_step["1-2"]} == {processes["identity"]["pid"]}
    assert {pid(p) for p in by_step["21"]} == {processes["image"]["pid"]}
    assert {pid(p) for p in by_step["24"]} == {processes["network"]["pid"]}
    # CAST 8 (API -> conductor), CALL 9 (conductor -> scheduler), CAST 12 (conductor -> agent), CALL 14 (agent ->
    # conductor): every RPC hop of the boot crossed from one OS process to another (the 8 servers of one request
    # share its trace: both conductors and both agent processes may show up, never one process in two roles)
    groups = [api_pids, conductor, scheduler, agent]
    assert all(groups) and len(set().union(*groups)) == sum(len(g) for g in groups)
    kinds = {(hop["step"], hop["kind"]) for hop in trace["hops"]}
    assert {("8", "CAST"), ("9", "CALL"), ("12", "CAST"), ("14, 18", "CALL")} <= kinds
    rendered = subprocess.run([POCKETSTACK, "trace", servers[0]["ID"], "--config", str(deployment.config)],
                              capture_output=True, text=True, env=deployment.env, timeout=60)
    assert rendered.returncode == 0 and "recorded by" in rendered.stdout, rendered.stderr

    deployment.cli("server", "delete", "--wait", *[s["ID"] for s in servers])
    assert deployment.cli("server", "list", "-f", "json") == []
    assert deployment.cli("port", "list", "--device-owner", "compute:nova", "-f", "json") == []


def test_volumes_metadata_and_services_of_their_own_processes(deployment: Deployment) -> None:
    """volume-api and the volume manager, each its own process, make a volume; the metadata process answers a
    signed request for a server the others built; every service reports itself up."""
    deployment.cli("volume", "create", "--size", "1", "dvol")
    deadline = time.monotonic() + 60
    while (status := deployment.cli("volume", "show", "dvol", "-f", "json")["status"]) != "available":
        assert status in ("creating",) and time.monotonic() < deadline, f"volume dvol is {status}"
        time.sleep(0.5)
    volume_services = deployment.cli("volume", "service", "list", "-f", "json")
    assert sorted(s["Binary"] for s in volume_services if s["State"] == "up") == ["cinder-scheduler",
                                                                                 "cinder-volume"]

    image, network = deployment.setup_boot_resources()
    server = deployment.wait_server(deployment.boot("md", image, network))
    assert server["status"] == "ACTIVE"
    secret = stored_passwords(deployment.data_dir)[METADATA_SECRET_KEY]
    resp = requests.get(deployment.url("metadata", "/openstack/latest/meta_data.json"), timeout=30, headers={
        "X-Instance-ID": server["id"], "X-Tenant-ID": server["tenant_id"],
        "X-Instance-ID-Signature": sign_instance_id(secret, server["id"])})
    assert resp.status_code == 200 and resp.json()["uuid"] == server["id"], resp.text
    forged = requests.get(deployment.url("metadata", "/openstack/latest/meta_data.json"), timeout=30, headers={
        "X-Instance-ID": server["id"], "X-Tenant-ID": server["tenant_id"], "X-Instance-ID-Signature": "0" * 64})
    assert forged.status_code == 403
    deployment.cli("server", "delete", "--wait", server["id"])
    deployment.cli("volume", "delete", "dvol")


def test_ctrl_c_stops_every_process_and_a_restart_keeps_everything(deployment: Deployment) -> None:
    pids = [p["pid"] for p in deployment.processes().values()] + deployment.workers("compute-api")
    started = time.monotonic()
    assert deployment.stop() == 0
    print(f"every process stopped in {time.monotonic() - started:.1f}s")
    assert not [pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]

    deployment.start()  # the same data dir: the same vhost, databases, keys and accounts
    assert not any(line.startswith("created user") for line in deployment.lines)
    assert "net1" in deployment.cli("network", "list", "-f", "value", "-c", "Name").split()
    assert "tiny" in deployment.cli("image", "list", "-f", "value", "-c", "Name").split()
    deployment.cli("server", "create", "--flavor", "m1.tiny", "--image", "tiny", "--network", "net1", "--wait",
                   "again")
    assert deployment.cli("server", "show", "again", "-f", "json")["status"] == "ACTIVE"
