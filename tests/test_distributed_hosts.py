"""Compute hosts as separate machines: `pocketstack up --distributed --compute-driver qemu --namespace-hosts 2` on
the machine's RabbitMQ and PostgreSQL. Each host is a network namespace with its own address on a management
bridge and runs its own compute agent and network agent there; this machine is the controller and network node.
Through the `openstack` CLI two servers are booted with anti-affinity, so the one scheduler puts them on the two
hosts; each QEMU runs in its host's namespace, each guest gets its lease and its key from the network node over
VXLAN, the guests reach each other across hosts, a floating IP reaches a guest from the controller, and stopping
the deployment leaves no namespace, bridge, veth, VXLAN device or QEMU behind.
"""

from __future__ import annotations

import json
import os
import random
import time
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import require
from dist_helpers import Deployment, engines_available
from netagent_helpers import link_exists, wait_for
from qemu_helpers import GUEST_CACHE
from test_e2e_qemu import fixed_ip, keygen, qemu_pids, ssh_until

from pocketstack.network.agent.linux import namespaces

DEMO = "pocketstack-demo"


def netns_inode(pid: int) -> int:
    return os.stat(f"/proc/{pid}/ns/net").st_ino


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    require("qemu-system-x86_64", "qemu-img", "dnsmasq", "nft", "ip", "ssh", "ssh-keygen", "rabbitmqctl", root=True)
    engines_available()
    tag = uuid.uuid4().hex[:6]
    subnet = f"10.{random.randint(200, 249)}.{random.randint(0, 255)}"
    deployment = Deployment(
        tmp_path_factory.mktemp("nshosts"), driver="qemu", host=f"{subnet}.1",
        distributed__namespace_hosts="2", distributed__management_cidr=f"{subnet}.0/24",
        distributed__management_bridge=f"mg{tag}",
        network__public_cidr=f"100.{random.randint(64, 127)}.{random.randint(0, 255)}.0/24",
        network__bridge_mappings=f'{{"public": "ex{tag}"}}', network__vxlan_port=str(random.randint(20000, 30000)),
        network__vxlan_group=f"239.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(1, 254)}",
        compute__guest_cache_dir=str(GUEST_CACHE))
    try:
        yield deployment.start()
    finally:
        deployment.stop()
        deployment.purge()


def test_two_namespaced_hosts_boot_guests_that_reach_each_other_over_vxlan(cloud: Deployment,
                                                                          tmp_path: Path) -> None:
    processes = cloud.processes()
    hosts = {name: p for name, p in processes.items() if p["netns"]}
    assert sorted(hosts) == ["compute-compute1", "compute-compute2", "network-agent-compute1",
                             "network-agent-compute2"]
    controller = os.stat("/proc/self/ns/net").st_ino
    for name, process in hosts.items():  # each host's agents run in its namespace, nothing else does
        assert netns_inode(process["pid"]) == os.stat(f"/var/run/netns/{process['netns']}").st_ino, name
    assert all(netns_inode(p["pid"]) == controller for p in processes.values() if not p["netns"])

    # the hosts as the cloud sees them: two hypervisors at their own addresses, their agents alive
    hypervisors = {h["Hypervisor Hostname"]: h for h in cloud.cli("hypervisor", "list", "-f", "json")}
    assert sorted(hypervisors) == ["compute1", "compute2"]
    assert {h["Host IP"] for h in hypervisors.values()} == {f"{cloud.host.rsplit('.', 1)[0]}.{i}" for i in (11, 12)}
    services = cloud.cli("compute", "service", "list", "--service", "nova-compute", "-f", "json")
    assert sorted((s["Host"], s["State"]) for s in services) == [("compute1", "up"), ("compute2", "up")]

    def agents() -> list[dict[str, Any]]:
        return cloud.cli("network", "agent", "list", "-f", "json")

    wait_for(lambda: {(a["Host"], a["Agent Type"]) for a in agents() if a["Alive"]} >= {
        ("compute1", "Linux bridge agent"), ("compute2", "Linux bridge agent")} or time.sleep(1), 60,
        "the hosts' network agents to report")
    node = {a["Host"] for a in agents() if a["Agent Type"] in ("DHCP agent", "L3 agent")}
    assert node and not node & {"compute1", "compute2"}  # DHCP and routers: on the network node

    # a network with a router, SSH and ping allowed, two servers kept apart by anti-affinity
    key = keygen(tmp_path / "key")
    cloud.cli("keypair", "create", "--public-key", f"{key}.pub", "k", cloud=DEMO)
    net = cloud.cli("network", "create", "n1", "-f", "json", cloud=DEMO)["id"]
    vxlan = f"vxlan-{cloud.cli('network', 'show', net, '-f', 'json')['provider:segmentation_id']}"
    cloud.cli("subnet", "create", "--network", net, "--subnet-range", "10.9.8.0/24", "s1", cloud=DEMO)
    router = cloud.cli("router", "create", "r1", "-f", "json", cloud=DEMO)["id"]
    cloud.cli("router", "set", "--external-gateway", "public", router, cloud=DEMO)
    cloud.cli("router", "add", "subnet", router, "s1", cloud=DEMO)
    group = cloud.cli("security", "group", "create", "g", "-f", "json", cloud=DEMO)["id"]
    for rule in (["--protocol", "tcp", "--dst-port", "22"], ["--protocol", "icmp"]):
        cloud.cli("security", "group", "rule", "create", *rule, group, cloud=DEMO)
    apart = cloud.cli("server", "group", "create", "--policy", "anti-affinity", "apart", "-f", "json",
                      cloud=DEMO)["id"]
    for name in ("vm1", "vm2"):
        cloud.cli("server", "create", "--image", "pocketstack-guest", "--flavor", "m1.tiny", "--network", net,
                  "--key-name", "k", "--security-group", group, "--hint", f"group={apart}", "--wait", name,
                  cloud=DEMO)
    servers = {s["Name"]: s for s in cloud.cli("server", "list", "--long", "-f", "json", "--all-projects")}
    assert {servers[n]["Status"] for n in ("vm1", "vm2")} == {"ACTIVE"}
    assert {servers["vm1"]["Host"], servers["vm2"]["Host"]} == {"compute1", "compute2"}

    # each QEMU runs in the namespace of the host it was scheduled to, its tap on that host's bridge
    for name in ("vm1", "vm2"):
        (pid,) = qemu_pids(servers[name]["ID"])
        host_ns = next(p["netns"] for p in hosts.values() if p["hosts"] == [servers[name]["Host"]])
        assert netns_inode(pid) == os.stat(f"/var/run/netns/{host_ns}").st_ino

    # DHCP, metadata (the key, the hostname) and SSH: from the network node's DHCP namespace, over VXLAN
    show = {n: cloud.cli("server", "show", n, "-f", "json", cloud=DEMO) for n in ("vm1", "vm2")}
    ips = {n: fixed_ip(show[n], "n1") for n in show}
    qdhcp = f"qdhcp-{net}"
    for name, ip in ips.items():
        assert ssh_until(ip, key, "hostname", netns=qdhcp).strip() == name
    # guest to guest across the two hosts, and out through the router on the network node
    out = ssh_until(ips["vm1"], key, f"ping -c 2 -W 2 {ips['vm2']} && ping -c 1 -W 2 10.9.8.1", netns=qdhcp)
    assert "2 packets received" in out and "1 packets received" in out, out
    # a floating IP answers SSH from the controller itself: qrouter here, the guest on a host
    fip = cloud.cli("floating", "ip", "create", "public", "-f", "json", cloud=DEMO)["floating_ip_address"]
    cloud.cli("server", "add", "floating", "ip", "vm2", fip, cloud=DEMO)
    assert ssh_until(fip, key, "hostname", within=60).strip() == "vm2"

    # the hosts have no uplink to the physical network of `public`: a port there fails to bind on either host,
    # so a server plugged straight into it ends in ERROR with a fault (and leaves no port), never isolated
    cloud.cli("server", "create", "--image", "pocketstack-guest", "--flavor", "m1.tiny", "--network", "public",
              "--wait", "onpublic", check=False)
    failed = cloud.cli("server", "show", "onpublic", "-f", "json")
    assert failed["status"] == "ERROR" and failed["fault"], failed
    assert cloud.cli("port", "list", "--device-id", failed["id"], "-f", "json") == []
    cloud.cli("server", "delete", "--wait", "onpublic")

    # the boot's compute hops were recorded by the compute agent inside the host's namespace
    trace = cloud.trace(servers["vm1"]["ID"])
    agent_pids = {int(h["process"].rsplit("[", 1)[1].rstrip("]")) for h in trace["hops"] if h["step"] == "13"}
    assert agent_pids == {processes[f"compute-{servers['vm1']['Host']}"]["pid"]}

    # the whole deployment stopped: the guests keep running and reachable in their hosts; started again, each
    # host's compute agent adopts its guest (same QEMU, same boot)
    pids = {name: qemu_pids(servers[name]["ID"]) for name in ("vm1", "vm2")}
    boot_id = ssh_until(ips["vm2"], key, "cat /proc/sys/kernel/random/boot_id", netns=qdhcp)
    cloud.stop()
    assert ssh_until(ips["vm2"], key, "cat /proc/sys/kernel/random/boot_id", netns=qdhcp, within=30) == boot_id
    cloud.start()
    for name in ("vm1", "vm2"):
        shown = cloud.cli("server", "show", name, "-f", "json", cloud=DEMO)
        assert shown["status"] == "ACTIVE" and shown["OS-EXT-STS:power_state"] in (1, "Running"), shown
        assert qemu_pids(servers[name]["ID"]) == pids[name]
    assert ssh_until(ips["vm2"], key, "cat /proc/sys/kernel/random/boot_id", netns=qdhcp, within=60) == boot_id

    # deleting the servers and the network removes the bridges and VXLAN devices on every host and on the node
    cloud.cli("server", "delete", "--wait", "vm1", "vm2", cloud=DEMO)
    cloud.cli("floating", "ip", "delete", fip, cloud=DEMO)
    cloud.cli("router", "remove", "subnet", router, "s1", cloud=DEMO)
    cloud.cli("router", "delete", router, cloud=DEMO)
    cloud.cli("network", "delete", net, cloud=DEMO)
    bridge = f"brq{net[:11]}"
    for ns in {p["netns"] for p in hosts.values()} | {None}:
        wait_for(lambda ns=ns: not (link_exists(bridge, ns) or link_exists(vxlan, ns)) or time.sleep(0.5), 60,
                 f"{bridge} and {vxlan} gone from {ns or 'the network node'}")

    # a stop keeps the hosts and the data plane (guests would keep running); `purge` removes them all: the hosts,
    # the management bridge, and the network node's namespaces, bridges and VXLAN devices
    config = tomllib.loads(cloud.config.read_text())
    owned = json.loads((cloud.data_dir / "network-agent" / "owned.json").read_text())
    assert any(ns.startswith("qdhcp-") for ns in owned["namespaces"]) and owned["bridges"]
    cloud.stop()
    host_namespaces = {p["netns"] for p in hosts.values()}
    assert host_namespaces <= namespaces() and link_exists(config["distributed"]["management_bridge"])
    out = cloud.purge()
    assert "removed host compute1" in out and "removed the network agent's data plane" in out, out
    assert not (host_namespaces | set(owned["namespaces"])) & namespaces()
    assert not [link for link in [config["distributed"]["management_bridge"], *owned["bridges"], *owned["tunnels"]]
                if link_exists(link)]
    assert not qemu_pids(servers["vm1"]["ID"]) and not qemu_pids(servers["vm2"]["ID"])
