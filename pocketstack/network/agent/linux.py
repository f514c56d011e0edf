"""Host networking through netlink (pyroute2): links, bridges, veth pairs, namespaces, addresses and routes.

One `Netlink` per agent keeps a socket to the host's namespace and one per namespace it works in (a namespace's
socket is opened once: pyroute2 creates it by a short-lived child that enters the namespace).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ipaddress
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

from pyroute2 import AsyncIPRoute, NetlinkError, netns

NETNS_DIR = Path("/var/run/netns")
CLONE_NEWNET = 0x40000000
EEXIST = 17
EXTRA_ROUTE_PROTO = 188  # the routing protocol number of the routes the agent adds as a router's extra routes


@dataclass(frozen=True)
class Link:
    name: str
    index: int
    kind: str | None
    master: int | None
    up: bool
    mac: str
    mtu: int


def namespaces() -> set[str]:
    """Names of the named network namespaces (`ip netns`)."""
    try:
        return set(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return set()


def socket_in_namespace(name: str, family: int = socket.AF_INET, kind: int = socket.SOCK_STREAM) -> socket.socket:
    """A socket created inside namespace `name`; it stays there for its whole life, whatever thread uses it.

    A dedicated thread enters the namespace (setns affects the calling thread only) and ends right after, so no
    thread of the process is left in another namespace.
    """
    result: list[socket.socket | BaseException] = []

    def enter_and_create() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(NETNS_DIR / name, os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    errno = ctypes.get_errno()
                    raise OSError(errno, f"setns into {name}: {os.strerror(errno)}")
            finally:
                os.close(fd)
            result.append(socket.socket(family, kind))
        except BaseException as exc:
            result.append(exc)

    thread = threading.Thread(target=enter_and_create, name=f"netns-{name}")
    thread.start()
    thread.join()
    if isinstance(result[0], BaseException):
        raise result[0]
    return result[0]


SYSFS_NET = Path("/sys/class/net")


def host_link(name: str) -> Link | None:
    """One link of the host namespace, from sysfs; None when there is none (or it went away meanwhile)."""
    path = SYSFS_NET / name
    try:
        master = path / "master"
        return Link(name=name, index=int((path / "ifindex").read_text()),
                    kind="bridge" if (path / "bridge").exists() else None,
                    master=int((master / "ifindex").read_text()) if master.exists() else None,
                    up=bool(int((path / "flags").read_text(), 16) & 1), mac=(path / "address").read_text().strip(),
                    mtu=int((path / "mtu").read_text()))
    except (OSError, ValueError):
        return None


def host_links() -> dict[str, Link]:
    """The host namespace's links, from sysfs."""
    links = (host_link(name) for name in os.listdir(SYSFS_NET))
    return {link.name: link for link in links if link is not None}


class Netlink:
    """Netlink operations of the agent, on the host namespace or a named one (`ns`)."""

    def __init__(self) -> None:
        self._sockets: dict[str | None, AsyncIPRoute] = {}
        self._lock = asyncio.Lock()

    async def ipr(self, ns: str | None = None) -> AsyncIPRoute:
        ipr = self._sockets.get(ns)
        if ipr is None:
            async with self._lock:
                ipr = self._sockets.get(ns)
                if ipr is None:
                    ipr = AsyncIPRoute(netns=ns) if ns else AsyncIPRoute()
                    await ipr.setup_endpoint()
                    self._sockets[ns] = ipr
        return ipr

    def forget(self, ns: str) -> None:
        ipr = self._sockets.pop(ns, None)
        if ipr is not None:
            ipr.close()

    def close(self) -> None:
        for ipr in self._sockets.values():
            ipr.close()
        self._sockets.clear()

    # ----- links --------------------------------------------------------------------------------------------
    async def links(self, ns: str | None = None) -> dict[str, Link]:
        """The links of the host (read from sysfs: decoding a netlink dump costs ~1 ms per link, and a host has
        a tap per guest) or of namespace `ns` (a netlink dump: a namespace holds a few)."""
        if ns is None:
            return host_links()
        ipr = await self.ipr(ns)
        out = {}
        async for msg in await ipr.link("dump"):
            name = msg.get("ifname")
            out[name] = Link(name=name, index=msg["index"], kind=msg.get(("linkinfo", "kind")),
                             master=msg.get("master"), up=bool(msg["flags"] & 1), mac=msg.get("address") or "",
                             mtu=msg.get("mtu") or 0)
        return out

    async def ensure_bridge(self, name: str, mtu: int | None = None) -> bool:
        """Make bridge `name` (up) unless it exists; True when this call made it."""
        ipr = await self.ipr()
        created = False
        try:
            await ipr.link("add", ifname=name, kind="bridge")
            created = True
        except NetlinkError as exc:
            if exc.code != EEXIST:
                raise
        index = (await ipr.link_lookup(ifname=name))[0]
        # no STP (a bridge per network has no loops), no forwarding delay: a new port forwards at once
        await ipr.link("set", index=index, state="up", **({"mtu": mtu} if created and mtu else {}))
        return created

    async def ensure_vxlan(self, name: str, vni: int, bridge: Link, local_ip: str, group: str, port: int) -> bool:
        """VXLAN device `name` (VNI `vni`, from `local_ip`, floods to multicast `group`) on `bridge` and up, as
        Neutron's Linux bridge agent makes `vxlan-<segmentation id>`; True when this call made it."""
        ipr = await self.ipr()
        created = False
        if host_link(name) is None:  # sysfs: a lookup by name through netlink decodes every link of the host
            lower = None
            async for msg in await ipr.addr("dump", family=socket.AF_INET):
                if msg.get("address") == local_ip:
                    lower = msg["index"]
            if lower is None:
                raise RuntimeError(f"local_ip {local_ip} is no address of this host (network.local_ip)")
            try:
                await ipr.link("add", ifname=name, kind="vxlan", vxlan_id=vni, vxlan_group=group,
                               vxlan_link=lower, vxlan_local=local_ip, vxlan_port=port, vxlan_learning=1)
                created = True
            except NetlinkError as exc:
                if exc.code != EEXIST:
                    raise
        link = host_link(name)
        if link is None:
            raise RuntimeError(f"the VXLAN device {name} vanished")
        if link.master != bridge.index or not link.up:
            await ipr.link("set", index=link.index, master=bridge.index, state="up")
        return created

    async def delete_link(self, name: str, ns: str | None = None) -> None:
        ipr = await self.ipr(ns)
        found = await ipr.link_lookup(ifname=name)
        if not found:
            return
        with contextlib.suppress(NetlinkError):
            await ipr.link("del", index=found[0])

    async def plug(self, link: Link, bridge: Link) -> bool:
        """Put a host link on a bridge and up; True when something had to change."""
        if link.master == bridge.index and link.up:
            return False
        ipr = await self.ipr()
        await ipr.link("set", index=link.index, master=bridge.index, state="up")
        return True

    async def ensure_veth(self, outer: str, inner: str, ns: str, mac: str, mtu: int, bridge: Link) -> None:
        """A veth pair: `outer` on the bridge in the host namespace, `inner` (with the MAC) in namespace `ns`."""
        host = await self.ipr()
        inside = await self.ipr(ns)
        current = await self._get(inside, inner)
        if current is None:
            await self.delete_link(outer)  # a half-made pair from an interrupted run
            await host.link("add", ifname=outer, kind="veth", peer={"ifname": inner})
            peer = (await host.link_lookup(ifname=inner))[0]
            await host.link("set", index=peer, net_ns_fd=ns)
            lo = await inside.link_lookup(ifname="lo")
            if lo:
                await inside.link("set", index=lo[0], state="up")
            current = await self._get(inside, inner)
            assert current is not None
        if current.mac != mac or current.mtu != mtu or not current.up:
            await inside.link("set", index=current.index, address=mac, mtu=mtu, state="up")
        link = host_link(outer)
        if link is None:
            raise RuntimeError(f"the veth {outer} of {ns} vanished")
        if link.master != bridge.index or link.mtu != mtu or not link.up:
            await host.link("set", index=link.index, master=bridge.index, mtu=mtu, state="up")

    @staticmethod
    async def _get(ipr: AsyncIPRoute, name: str) -> Link | None:
        try:
            msg = next(iter(await ipr.link("get", ifname=name)))
        except (NetlinkError, StopIteration):
            return None
        return Link(name=name, index=msg["index"], kind=msg.get(("linkinfo", "kind")), master=msg.get("master"),
                    up=bool(msg["flags"] & 1), mac=msg.get("address") or "", mtu=msg.get("mtu") or 0)

    # ----- namespaces ---------------------------------------------------------------------------------------
    async def ensure_namespace(self, name: str) -> bool:
        if name in namespaces():
            return False
        self.forget(name)  # a socket kept from a namespace of that name removed behind our back
        await asyncio.to_thread(netns.create, name)
        return True

    async def delete_namespace(self, name: str) -> None:
        self.forget(name)
        if name in namespaces():
            await asyncio.to_thread(netns.remove, name)

    # ----- addresses and routes -----------------------------------------------------------------------------
    async def set_addresses(self, ifname: str, cidrs: list[str], ns: str | None = None) -> None:
        """Make the global addresses of `ifname` exactly `cidrs` ("10.0.0.2/24"); link-local ones are kept."""
        ipr = await self.ipr(ns)
        index = (await ipr.link_lookup(ifname=ifname))[0]
        wanted = {str(ipaddress.ip_interface(c)) for c in cidrs}
        have = set()
        async for msg in await ipr.addr("dump", index=index):
            iface = ipaddress.ip_interface(f"{msg.get('address')}/{msg['prefixlen']}")
            if iface.ip.is_link_local and iface.version == 6:
                continue
            have.add(str(iface))
        for cidr in have - wanted:
            iface = ipaddress.ip_interface(cidr)
            with contextlib.suppress(NetlinkError):
                await ipr.addr("del", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen)
        for cidr in sorted(wanted - have):
            iface = ipaddress.ip_interface(cidr)
            try:
                await ipr.addr("add", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen)
            except NetlinkError as exc:
                if exc.code != EEXIST:
                    raise

    async def set_default_route(self, gateway: str | None, ns: str) -> None:
        """The namespace's IPv4 default route via `gateway` (none when None)."""
        ipr = await self.ipr(ns)
        if gateway is None:
            with contextlib.suppress(NetlinkError):
                await ipr.route("del", dst="0.0.0.0/0")
            return
        await ipr.route("replace", dst="0.0.0.0/0", gateway=gateway)

    async def set_extra_routes(self, routes: list[tuple[str, str]], ns: str) -> None:
        """Make the namespace's extra IPv4 routes (destination CIDR, nexthop) exactly `routes`; they are told
        apart from the others by their routing protocol number."""
        ipr = await self.ipr(ns)
        wanted = {(str(ipaddress.ip_network(dst)), via) for dst, via in routes}
        have = set()
        async for msg in await ipr.route("dump", family=socket.AF_INET):
            if msg["proto"] == EXTRA_ROUTE_PROTO:
                have.add((f"{msg.get('dst') or '0.0.0.0'}/{msg['dst_len']}", msg.get("gateway")))
        for dst, via in have - wanted:
            with contextlib.suppress(NetlinkError):
                await ipr.route("del", dst=dst, gateway=via, proto=EXTRA_ROUTE_PROTO)
        for dst, via in sorted(wanted - have):
            await ipr.route("replace", dst=dst, gateway=via, proto=EXTRA_ROUTE_PROTO)
