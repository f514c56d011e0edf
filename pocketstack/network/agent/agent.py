"""The host network agent: Neutron's Linux bridge, DHCP, L3 and metadata agents in one asyncio task set.

It talks to the network service only over RPC (`PluginAPI`; the server's fanout `state_changed` wakes it), so
the same class runs in the all-in-one and on its own on any host. Work is level-triggered: each sync fetches
the host's whole state and makes the host match it, so a missed event is repaired by the next sync. Syncs run
one at a time; triggers arriving meanwhile (server notifications, netlink link events for `tap*` devices, the
periodic resync) fold into one more sync.

A sync, in order: bridges of the networks in use on this host; per network with DHCP the `qdhcp-` namespace,
the DHCP port's veth, dnsmasq and the metadata proxy listener; routers (`qrouter-` namespaces, NAT); the taps
of the host's ports put on their bridges; the security group tables; then the port status reports (ACTIVE once
the tap is on its bridge behind its filter, DOWN when the tap is gone) and floating IP statuses; last, what is
no longer wanted is removed. What the agent made is recorded in its state dir (`owned.json`), so after a
restart it adopts its namespaces and dnsmasq processes and removes only its own left-overs, never those of
another cloud on the same machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from typing import Any

from pyroute2 import AsyncIPRoute, NetlinkError
from pyroute2.netlink.rtnl import RTMGRP_LINK

from pocketstack.common.errors import NotFound
from pocketstack.common.rpc import RPCEndpoint, RPCError, RPCServer, Transport
from pocketstack.common.service import shared_secret
from pocketstack.network.agent.dhcp import METADATA_ADDRESS, DhcpServer, dhcp_subnets
from pocketstack.network.agent.firewall import FilteredPort, Firewall, conntrack_zone
from pocketstack.network.agent.linux import Link, Netlink, namespaces
from pocketstack.network.agent.metadata import MetadataProxy
from pocketstack.network.agent.router import Routers
from pocketstack.network.agent.rpcapi import LINUX_BRIDGE_AGENT, TOPIC
from pocketstack.network.rpcapi import PluginAPI
from pocketstack.network.spec import METADATA_SECRET_KEY
from pocketstack.settings import Settings

log = logging.getLogger("pocketstack.network.agent")

DHCP_OWNER = "network:dhcp"
REQUIRED_TOOLS = ("ip", "dnsmasq", "nft")
LATENCIES_KEPT = 1000


def dhcp_namespace(network_id: str) -> str:
    return f"qdhcp-{network_id}"


def tap_name(port_id: str) -> str:
    return "tap" + port_id[:11]


def vxlan_name(segmentation_id: int) -> str:
    return f"vxlan-{segmentation_id}"


def agent_states(settings: Settings, devices: int = 0, networks: int = 0) -> list[dict[str, Any]]:
    """The functions an agent runs, as Neutron's agents report them (one `network agent list` row each);
    `devices`: taps it has seen, `networks`: networks it serves DHCP on."""
    conf, zone = settings.network, settings.compute.default_availability_zone
    states = [{"agent_type": LINUX_BRIDGE_AGENT, "binary": "neutron-linuxbridge-agent", "topic": "N/A",
               "configurations": {"bridge_mappings": dict(conf.bridge_mappings), "interface_mappings": {},
                                  "devices": devices,
                                  **({"tunneling_ip": conf.local_ip, "tunnel_types": ["vxlan"],
                                      "vxlan_group": conf.vxlan_group} if conf.local_ip else {})}}]
    if conf.agent_dhcp:
        states += [{"agent_type": "DHCP agent", "binary": "neutron-dhcp-agent", "topic": "dhcp_agent",
                    "availability_zone": zone, "configurations": {"dhcp_driver": "dnsmasq", "networks": networks}},
                   {"agent_type": "Metadata agent", "binary": "neutron-metadata-agent", "topic": "N/A",
                    "configurations": {"nova_metadata_host": settings.host,
                                       "nova_metadata_port": settings.port("metadata")}}]
    if conf.agent_l3:
        states.append({"agent_type": "L3 agent", "binary": "neutron-l3-agent", "topic": "l3_agent",
                       "availability_zone": zone, "configurations": {"agent_mode": "legacy"}})
    return states


class _Notifications(RPCEndpoint):
    """What the server may send the agent (fanout casts)."""

    namespace = "network_agent"
    version = "1.0"

    def __init__(self, wake: Callable[[], None]) -> None:
        self._wake = wake

    def state_changed(self) -> None:
        self._wake()


class NetworkAgent:
    """The data plane of one host (`host`: the name compute binds ports to)."""

    def __init__(self, settings: Settings, transport: Transport, host: str | None = None) -> None:
        self.settings = settings
        self.conf = settings.network
        self.host = host or settings.compute.host
        self.plugin = PluginAPI(transport)
        self.server = RPCServer(transport, TOPIC, self.host, [_Notifications(self.wake)])
        self.state_dir = self.conf.agent_state_dir or settings.data_dir / "network-agent"
        digest = hashlib.sha1(f"{settings.data_dir.resolve()}:{self.host}".encode()).hexdigest()[:10]
        self.table = f"pocketstack_{digest}"  # per cloud and host: two clouds on one machine never share it
        self.netlink = Netlink()
        self.firewall = Firewall(self.table)
        self.routers = Routers(self.netlink)
        self.metadata = MetadataProxy(settings.base_url("metadata"),
                                      lambda: shared_secret(settings, "metadata", METADATA_SECRET_KEY),
                                      self.lookup_port)
        self.owned: dict[str, list[str]] = {"bridges": [], "namespaces": [], "tunnels": []}
        self.dhcp_servers: dict[str, DhcpServer] = {}
        self._ports_by_ip: dict[tuple[str, str], dict[str, Any]] = {}
        self._dirty = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._synced = asyncio.Condition()
        self.syncs = 0  # completed syncs (tests wait on it; bench reads it)
        self.sync_seconds = 0.0  # how long the last successful sync took
        self._syncing = False
        self.last_error: str | None = None
        self._tap_seen: dict[str, float] = {}  # tap -> monotonic time its link event arrived
        self.plug_latency: dict[str, float] = {}  # port id -> seconds from its tap's event to its ACTIVE report

    # ----- lifecycle ----------------------------------------------------------------------------------------
    def preflight(self) -> None:
        """Fail early and clearly where the data plane cannot work."""
        if os.geteuid() != 0:
            raise RuntimeError("the network agent needs root (namespaces, bridges, nftables): run as root, or "
                               "set network.agent_enabled = false")
        missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
        if missing:
            raise RuntimeError(f"the network agent needs {', '.join(missing)} (Debian: iproute2, dnsmasq-base, "
                               "nftables)")

    async def start(self) -> None:
        self.preflight()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._load_owned()
        await self.server.start()
        self._tasks = [asyncio.create_task(self._sync_loop(), name="network-agent-sync"),
                       asyncio.create_task(self._watch_links(), name="network-agent-links"),
                       asyncio.create_task(self._periodic(), name="network-agent-resync"),
                       asyncio.create_task(self._heartbeat(), name="network-agent-heartbeat")]
        self.wake()

    async def stop(self) -> None:
        """Stop working; what is wired stays (guests keep their network), the next start adopts it."""
        await self.server.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        await self.metadata.close()
        self.netlink.close()

    async def teardown(self) -> None:
        """Remove everything this agent made: dnsmasq processes, namespaces, bridges, nftables tables."""
        self._load_owned()
        await self.metadata.close()
        for network_id in list(self.dhcp_servers) + [n[len("qdhcp-"):] for n in self.owned["namespaces"]
                                                    if n.startswith("qdhcp-")]:
            await self._remove_dhcp(network_id)
        for ns in list(self.owned["namespaces"]):
            if ns.startswith("qrouter-"):
                await self.routers.remove(ns[len("qrouter-"):])
            await self.netlink.delete_namespace(ns)
        self.owned["namespaces"] = []
        for tunnel in list(self.owned["tunnels"]):
            await self.netlink.delete_link(tunnel)
        self.owned["tunnels"] = []
        for bridge in list(self.owned["bridges"]):
            await self.netlink.delete_link(bridge)
        self.owned["bridges"] = []
        self._save_owned()
        await self.firewall.remove()
        self.netlink.close()

    def wake(self) -> None:
        self._dirty.set()

    async def wait_synced(self) -> None:
        """Wait until a sync that started after this call has completed (callers bound it with a timeout)."""
        after = self.syncs + (1 if self._syncing else 0)  # the running sync may predate the caller's change
        self.wake()
        async with self._synced:
            await self._synced.wait_for(lambda: self.syncs > after)

    # ----- triggers -----------------------------------------------------------------------------------------
    async def _sync_loop(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            self._syncing = True
            try:
                await self.sync()
                self.last_error = None
            except Exception as exc:  # the loop must outlive any failure: the next sync repairs what this one left
                self.last_error = f"{type(exc).__name__}: {exc}"
                expected = isinstance(exc, (RPCError, OSError, RuntimeError, NetlinkError))
                log.warning("network agent sync failed (retrying): %s", self.last_error, exc_info=not expected)
                await asyncio.sleep(1.0)
                self.wake()
            self._syncing = False
            async with self._synced:
                self.syncs += 1
                self._synced.notify_all()

    async def _periodic(self) -> None:
        """The full resync: also reloads what the agent otherwise loads only when its own copy changes."""
        while True:
            await asyncio.sleep(self.conf.agent_resync_interval)
            self.firewall.forget_loaded()
            self.routers.forget_loaded()
            self.wake()

    async def _heartbeat(self) -> None:
        """Report the agent's functions every `agent_report_interval` (`network agent list` shows them alive)."""
        start = True
        while True:
            try:
                states = agent_states(self.settings, devices=len(self._tap_seen), networks=len(self.dhcp_servers))
                await self.plugin.report_state(self.host, states, start)
                start = False
            except Exception as exc:  # the server or the broker away: the next beat retries
                log.warning("network agent heartbeat failed: %s", exc)
            await asyncio.sleep(self.conf.agent_report_interval)

    async def _watch_links(self) -> None:
        """Wake on netlink events of tap devices (compute plugging or unplugging a guest)."""
        while True:
            try:
                async with AsyncIPRoute() as ipr:
                    await ipr.bind(groups=RTMGRP_LINK)
                    while True:
                        async for msg in ipr.get():
                            name = msg.get("ifname") or ""
                            if name.startswith("tap"):
                                self._tap_seen.setdefault(name, time.monotonic())
                                self.wake()
            except OSError as exc:
                log.warning("netlink link events lost (%s); listening again", exc)
                await asyncio.sleep(1.0)

    # ----- the state --------------------------------------------------------------------------------------
    async def lookup_port(self, network_id: str, ip: str) -> dict[str, Any] | None:
        """The guest port with address `ip` on a DHCP network (a fresh sync once when unknown)."""
        port = self._ports_by_ip.get((network_id, ip))
        if port is None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5.0):
                    await self.wait_synced()
            port = self._ports_by_ip.get((network_id, ip))
        return port

    def _load_owned(self) -> None:
        path = self.state_dir / "owned.json"
        if path.exists():
            data = json.loads(path.read_text())
            self.owned = {kind: list(data.get(kind, [])) for kind in ("bridges", "namespaces", "tunnels")}

    def _save_owned(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_dir / "owned.json.tmp"
        tmp.write_text(json.dumps(self.owned, indent=1, sort_keys=True))
        tmp.replace(self.state_dir / "owned.json")

    def _own(self, kind: str, name: str) -> None:
        if name not in self.owned[kind]:
            self.owned[kind].append(name)
            self._save_owned()

    def _disown(self, kind: str, name: str) -> None:
        if name in self.owned[kind]:
            self.owned[kind].remove(name)
            self._save_owned()

    # ----- one sync ---------------------------------------------------------------------------------------
    async def sync(self) -> None:
        began = time.monotonic()
        state = await self.plugin.get_host_state(self.host, self.conf.agent_dhcp, self.conf.agent_l3)
        nets: dict[str, dict[str, Any]] = state["networks"]
        links = await self.netlink.links()
        bridges = await self._sync_bridges(nets, links)
        failures: list[str] = []
        wired = await self._sync_dhcp_networks(state, bridges, failures)
        fip_statuses = await self._sync_routers(state, bridges, failures)

        # guests' taps: on their bridge, behind their filter
        plugged = []
        for port in state["ports"]:
            if port["device_owner"].startswith("network:"):
                continue
            link, bridge = links.get(tap_name(port["id"])), bridges.get(port["network_id"])
            if link is not None and bridge is not None and port["admin_state_up"]:
                await self.netlink.plug(link, bridge)
                plugged.append(port)
        zones = {bridges[p["network_id"]].name: conntrack_zone(p["network_id"]) for p in plugged
                 if not state["networks"][p["network_id"]]["external"]}
        await self.firewall.apply(self._filtered(plugged, state), zones)
        wired |= {p["id"] for p in plugged}

        # status reports: ACTIVE once wired (and filtered), DOWN once no longer
        now = time.monotonic()
        for port in state["ports"]:
            up = port["id"] in wired
            if up != (port["status"] == "ACTIVE"):
                try:
                    await self.plugin.report_port_status(port["id"], self.host, up)
                except NotFound:
                    continue  # deleted since the state was read
                seen = self._tap_seen.pop(tap_name(port["id"]), None)
                if up and seen is not None:
                    self.plug_latency[port["id"]] = now - seen
                    while len(self.plug_latency) > LATENCIES_KEPT:
                        del self.plug_latency[next(iter(self.plug_latency))]
        if fip_statuses:
            await self.plugin.set_floatingip_statuses(fip_statuses)
        self._tap_seen = {k: v for k, v in self._tap_seen.items() if now - v < 60}

        await self._remove_unused_bridges(bridges)
        self.sync_seconds = time.monotonic() - began
        if failures:
            raise RuntimeError("; ".join(failures))

    async def _sync_dhcp_networks(self, state: dict[str, Any], bridges: dict[str, Link],
                                  failures: list[str]) -> set[str]:
        """DHCP and metadata of every network with DHCP; removes those of other networks. Returns the ids of
        the DHCP ports wired."""
        nets = state["networks"]
        dhcp_ports = {p["network_id"]: p for p in state["ports"]
                      if p["device_owner"] == DHCP_OWNER and p["binding_host_id"] == self.host}
        wired: set[str] = set()
        by_ip: dict[tuple[str, str], dict[str, Any]] = {}
        for network_id, ports in state["dhcp_networks"].items():
            for port in ports:
                if port["device_owner"].startswith("compute:"):
                    for allocation in port["fixed_ips"]:
                        by_ip[(network_id, allocation["ip_address"])] = port
            if network_id not in bridges or network_id not in nets:
                continue
            try:
                wired_port = await self._sync_dhcp(nets[network_id], dhcp_ports.get(network_id), ports, bridges)
            except (OSError, RuntimeError, RPCError, NetlinkError) as exc:
                failures.append(f"DHCP of network {network_id}: {exc}")
                continue
            if wired_port is not None:
                wired.add(wired_port)
        self._ports_by_ip = by_ip
        for network_id in set(self.dhcp_servers) | {n[len("qdhcp-"):] for n in self.owned["namespaces"]
                                                    if n.startswith("qdhcp-")}:
            if network_id not in state["dhcp_networks"]:
                await self._remove_dhcp(network_id)
        for network_id in dhcp_ports:
            if network_id not in state["dhcp_networks"]:
                await self.plugin.release_dhcp_port(network_id, self.host)
        return wired

    async def _sync_routers(self, state: dict[str, Any], bridges: dict[str, Link],
                            failures: list[str]) -> dict[str, str]:
        """The router namespaces (removing those of routers gone or down); returns the floating IP statuses to
        report."""
        nets = state["networks"]
        fip_statuses: dict[str, str] = {}
        mtu = {i: n["mtu"] for i, n in nets.items()}
        wanted = set()
        for router in state["routers"]:
            if not router["admin_state_up"]:
                continue
            ns = f"qrouter-{router['id']}"
            wanted.add(ns)
            self._own("namespaces", ns)
            try:
                await self.routers.apply(router, nets, bridges, mtu)
            except (OSError, RuntimeError, NetlinkError) as exc:
                failures.append(f"router {router['id']}: {exc}")
                continue
            if router["gateway"] is not None and router["gateway"]["network_id"] in bridges:
                fip_statuses.update({f["id"]: "ACTIVE" for f in router["floating_ips"] if f["status"] != "ACTIVE"})
        for ns in [n for n in self.owned["namespaces"] if n.startswith("qrouter-") and n not in wanted]:
            await self.routers.remove(ns[len("qrouter-"):])
            self._disown("namespaces", ns)
        return fip_statuses

    async def _sync_bridges(self, nets: dict[str, dict[str, Any]], links: dict[str, Link]) -> dict[str, Link]:
        """The bridge of each network in use here (made when missing), with its VXLAN device to the other hosts
        when tunnels are on (`network.local_ip`); on external networks whose bridge the agent made, the network
        node holds the subnets' gateway addresses (DevStack's br-ex). Updates `links`."""
        out: dict[str, Link] = {}
        made = False
        for net in nets.values():
            name = net["bridge"]
            if not name:
                continue  # a flat network without a bridge mapping: its ports failed to bind
            if name not in links:
                await self.netlink.ensure_bridge(name, net["mtu"])
                self._own("bridges", name)
                made = True
            elif name.startswith(self.conf.bridge_prefix) and len(name) == len(self.conf.bridge_prefix) + 11:
                self._own("bridges", name)  # made by compute before the agent: the agent's all the same
            if net["external"] and name in self.owned["bridges"] and self.conf.agent_l3:
                gateways = [f"{s['gateway_ip']}/{ipaddress.ip_network(s['cidr']).prefixlen}"
                            for s in net["subnets"] if s["gateway_ip"]]
                await self.netlink.set_addresses(name, gateways)
        if made:
            links.update(await self.netlink.links())
        for network_id, net in nets.items():
            if net["bridge"] in links:
                out[network_id] = links[net["bridge"]]
                if self.conf.local_ip and net["network_type"] == "vxlan" and net["segmentation_id"]:
                    tunnel = vxlan_name(net["segmentation_id"])
                    self._own("tunnels", tunnel)
                    await self.netlink.ensure_vxlan(tunnel, net["segmentation_id"], links[net["bridge"]],
                                                    self.conf.local_ip, self.conf.vxlan_group, self.conf.vxlan_port)
        return out

    async def _remove_unused_bridges(self, in_use: dict[str, Link]) -> None:
        """Delete the agent's bridges no network here needs any more, once nothing but their VXLAN device is
        plugged into them; then the VXLAN devices left on no bridge."""
        used = {link.name for link in in_use.values()}
        links = await self.netlink.links()
        for name in list(self.owned["bridges"]):
            if name in used:
                continue
            bridge = links.get(name)
            if bridge is not None:
                ports = [link for link in links.values() if link.master == bridge.index]
                if any(link.name not in self.owned["tunnels"] for link in ports):
                    continue  # a guest's tap is still on it: compute unplugs it first
                for link in ports:
                    await self.netlink.delete_link(link.name)
                    self._disown("tunnels", link.name)
                await self.netlink.delete_link(name)
            self._disown("bridges", name)
        for name in list(self.owned["tunnels"]):
            link = links.get(name)
            if link is None or link.master is None:
                await self.netlink.delete_link(name)
                self._disown("tunnels", name)

    async def _sync_dhcp(self, net: dict[str, Any], dhcp_port: dict[str, Any] | None,
                         ports: list[dict[str, Any]], bridges: dict[str, Link]) -> str | None:
        """The network's DHCP namespace, port, dnsmasq and metadata listener; the id of the wired DHCP port."""
        subnets = {s["id"] for s in dhcp_subnets(net)}
        if dhcp_port is None or not subnets <= {a["subnet_id"] for a in dhcp_port["fixed_ips"]}:
            dhcp_port = await self.plugin.ensure_dhcp_port(net["id"], self.host)
            if dhcp_port is None:
                return None
            ports = [p for p in ports if p["id"] != dhcp_port["id"]] + [dhcp_port]
        ns = dhcp_namespace(net["id"])
        self._own("namespaces", ns)
        await self.netlink.ensure_namespace(ns)
        inner = "ns-" + dhcp_port["id"][:11]
        for name in await self.netlink.links(ns):
            if name.startswith("ns-") and name != inner:
                await self.netlink.delete_link(name, ns)  # a DHCP port that was replaced
        await self.netlink.ensure_veth(tap_name(dhcp_port["id"]), inner, ns, dhcp_port["mac_address"],
                                       net["mtu"], bridges[net["id"]])
        cidrs = {s["id"]: ipaddress.ip_network(s["cidr"]).prefixlen for s in net["subnets"]}
        addresses = [f"{a['ip_address']}/{cidrs[a['subnet_id']]}" for a in dhcp_port["fixed_ips"]
                     if a["subnet_id"] in cidrs]
        await self.netlink.set_addresses(inner, [*addresses, f"{METADATA_ADDRESS}/32"], ns)
        server = self.dhcp_servers.get(net["id"])
        if server is None:
            server = self.dhcp_servers[net["id"]] = DhcpServer(net["id"], ns, inner,
                                                               self.state_dir / "dhcp" / net["id"])
        if server.interface != inner:
            server.interface = inner
        await server.apply(net, dhcp_port, ports, self.conf.dhcp_lease_time, self.conf.dns_domain)
        await self.metadata.listen(net["id"], ns)
        return dhcp_port["id"]

    async def _remove_dhcp(self, network_id: str) -> None:
        await self.metadata.stop_listening(network_id)
        server = self.dhcp_servers.pop(network_id, None) or DhcpServer(
            network_id, dhcp_namespace(network_id), "", self.state_dir / "dhcp" / network_id)
        await server.stop()
        ns = dhcp_namespace(network_id)
        if ns in namespaces():
            for name in await self.netlink.links(ns):
                if name.startswith("ns-"):
                    await self.netlink.delete_link(name, ns)
        await self.netlink.delete_namespace(ns)
        self._disown("namespaces", ns)

    def _filtered(self, plugged: list[dict[str, Any]], state: dict[str, Any]) -> list[FilteredPort]:
        out = []
        for port in plugged:
            if not port["port_security_enabled"]:
                continue
            rules = [rule for group in port["security_groups"] for rule in state["security_groups"].get(group, [])]
            pairs = port["allowed_address_pairs"]
            out.append(FilteredPort(
                tap=tap_name(port["id"]),
                macs=sorted({port["mac_address"], *(p["mac_address"] for p in pairs)}),
                ips=sorted({a["ip_address"] for a in port["fixed_ips"]} | {p["ip_address"] for p in pairs}),
                rules=rules, remote_ips=state["remote_group_ips"]))
        return out

