"""Compute hosts in network namespaces: `up --distributed` with `distributed.namespace_hosts` = N.

Host i (`compute<i>`) is a network namespace joined to this machine by a veth on the management bridge, with
address 10+i of `distributed.management_cidr`. This machine is the controller: it holds the network's first
address, and every API listens there (the catalog names it). A host runs its `serve compute` and its
`serve network-agent` inside its namespace (`ip netns exec`, which also gives them the namespace's own /sys), so
its guests, taps, bridges and security group tables are its own, and it reaches the controller only over the
management network. The controller's network agent is the network node (DHCP, metadata proxy, routers); guests
on different hosts and the network node meet over VXLAN (`network.local_ip`, multicast floods).

The broker and the database server listen on the controller's loopback only (RabbitMQ lets `guest` log in only
from there): `EngineRelay` carries their ports from the management address to loopback, as a controller's
haproxy publishes them. What the hosts' processes read is `hosts_settings`: the deployment's settings with the
loopback URLs pointing at the controller's management address.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import ipaddress
import logging
import os
import signal
from dataclasses import dataclass
from typing import Any

from yarl import URL

from pocketstack.common.process import run_command
from pocketstack.network.agent.linux import SYSFS_NET, host_link, namespaces
from pocketstack.settings import Settings

log = logging.getLogger("pocketstack.deploy")

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
HOST_INTERFACE = "eth0"  # the host's end of its veth, inside its namespace
MTU = 1500


@dataclass(frozen=True)
class NamespaceHost:
    name: str  # the compute host name ("compute1"): services, hypervisors and port bindings use it
    netns: str  # its network namespace
    address: str  # its address on the management network
    veth: str  # the controller's end of its veth, on the management bridge


def controller_address(settings: Settings) -> str:
    """The controller's address on the management network (its first host address)."""
    return str(next(ipaddress.ip_network(settings.distributed.management_cidr).hosts()))


def namespace_hosts(settings: Settings, deployment: str) -> list[NamespaceHost]:
    """The namespaced hosts of a deployment: `compute.hosts` when given, else compute1..N."""
    conf = settings.distributed
    count = conf.namespace_hosts
    names = list(settings.compute.hosts)[:count] or [f"compute{i}" for i in range(1, count + 1)]
    network = ipaddress.ip_network(conf.management_cidr)
    if network.num_addresses < 12 + count:
        raise ValueError(f"distributed.management_cidr {network} is too small for {count} hosts")
    tag = hashlib.sha1(deployment.encode()).hexdigest()[:6]
    return [NamespaceHost(name=name, netns=f"{deployment}-{name}", address=str(network.network_address + 10 + i),
                          veth=f"vh{tag}-{i}") for i, name in enumerate(names, 1)]


def hosts_settings(data: dict[str, Any], controller: str) -> tuple[dict[str, Any], set[int]]:
    """The settings a namespaced host reads, and the ports to relay to the controller's loopback.

    They are `data` with every URL that names the loopback naming `controller` instead (the ports of those URLs:
    the engines, broker and databases). A host's network agent runs L2 only (bridges, taps, security groups,
    VXLAN; DHCP and routers are the network node's) and has no uplink to a physical network, so flat networks
    (`public`) do not bind there."""
    out = copy.deepcopy(data)
    out["network"] = {**out.get("network", {}), "agent_dhcp": False, "agent_l3": False, "bridge_mappings": {}}
    ports: set[int] = set()

    def rewrite(node: dict[str, Any]) -> None:
        for key, value in node.items():
            if isinstance(value, dict):
                rewrite(value)
            elif isinstance(value, str) and "://" in value:
                try:
                    url = URL(value)
                except ValueError:
                    continue
                if url.host in LOOPBACK and url.port:
                    node[key] = str(url.with_host(controller))
                    ports.add(url.port)

    rewrite(out)
    return out, ports


class EngineRelay:
    """TCP relays from the controller's management address to the same port on its loopback, for the hosts'
    addresses only: a guest routed to the controller (through a router and br-ex) must not reach the engines."""

    def __init__(self, address: str, ports: set[int], peers: set[str]) -> None:
        self.address, self.ports, self.peers = address, sorted(ports), peers
        self._servers: list[asyncio.Server] = []

    async def start(self) -> None:
        for port in self.ports:
            try:
                server = await asyncio.start_server(self._relay(port), self.address, port)
            except OSError as exc:  # the engine itself listens on every address: nothing to relay
                log.info("not relaying port %d to the loopback: %s", port, exc)
                continue
            self._servers.append(server)

    def _relay(self, port: int) -> Any:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            peer = writer.get_extra_info("peername")
            if not peer or peer[0] not in self.peers:
                log.warning("relay to port %d: refused a connection from %s (not a namespaced host)", port, peer)
                writer.close()
                return
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                writer.close()
                return
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))

        return handle

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2)
        self._servers = []


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


class ManagementNetwork:
    """The management bridge with the controller's address, and each host's namespace, veth and address."""

    def __init__(self, settings: Settings, hosts: list[NamespaceHost]) -> None:
        self.bridge = settings.distributed.management_bridge
        self.network = ipaddress.ip_network(settings.distributed.management_cidr)
        self.controller = controller_address(settings)
        self.hosts = hosts

    async def ensure(self) -> None:
        """Make what is missing (a restart adopts what is there)."""
        prefix = self.network.prefixlen
        if host_link(self.bridge) is None:
            await run_command("ip", "link", "add", self.bridge, "type", "bridge")
        # VXLAN floods are multicast: the bridge forwards them to every host (no IGMP snooping to starve them)
        (SYSFS_NET / self.bridge / "bridge" / "multicast_snooping").write_text("0")
        await run_command("ip", "addr", "replace", f"{self.controller}/{prefix}", "dev", self.bridge)
        await run_command("ip", "link", "set", self.bridge, "mtu", str(MTU), "up")
        existing = namespaces()
        for host in self.hosts:
            if host.netns not in existing:
                await run_command("ip", "netns", "add", host.netns)
            inside = ("ip", "-n", host.netns)
            _, links = await run_command(*inside, "-o", "link", "show")
            if f" {HOST_INTERFACE}@" not in links:
                await run_command("ip", "link", "del", host.veth, check=False)  # half-made by an interrupted run
                await run_command("ip", "link", "add", host.veth, "mtu", str(MTU), "type", "veth", "peer", "name",
                                  HOST_INTERFACE, "mtu", str(MTU), "netns", host.netns)
            await run_command("ip", "link", "set", host.veth, "master", self.bridge, "up")
            await run_command(*inside, "addr", "replace", f"{host.address}/{prefix}", "dev", HOST_INTERFACE)
            await run_command(*inside, "link", "set", HOST_INTERFACE, "up")
            await run_command(*inside, "link", "set", "lo", "up")
            await run_command(*inside, "route", "replace", "default", "via", self.controller)

    async def teardown(self) -> list[str]:
        """Remove the hosts (what still runs in their namespaces is killed: guests included) and the bridge;
        what was removed, one line each."""
        done = []
        for host in self.hosts:
            if host.netns not in namespaces():
                continue
            _, pids = await run_command("ip", "netns", "pids", host.netns, check=False)
            for pid in pids.split():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            await run_command("ip", "netns", "del", host.netns, check=False)
            done.append(f"removed host {host.name} (namespace {host.netns}, {len(pids.split())} processes killed)")
        if host_link(self.bridge) is not None:
            await run_command("ip", "link", "del", self.bridge, check=False)
            done.append(f"removed the management bridge {self.bridge}")
        return done
