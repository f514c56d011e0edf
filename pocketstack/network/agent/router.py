"""Routers: a `qrouter-<router id>` namespace per router (Neutron's L3 agent with the Linux bridge model).

Each interface is a veth pair, `tap<port>` on the tenant network's bridge and `qr-<port>` in the namespace with
the subnet's gateway address; the external gateway is `tap<port>` on the external network's bridge and
`qg-<port>` with the router's external address, the floating addresses (/32) and the default route via the
external subnet's gateway; the router's extra routes are added too. NAT in the namespace (nftables, table
`pocketstack`): SNAT of the tenant subnets to the gateway address, DNAT/SNAT between each floating and fixed
address, and masquerading of DNATed traffic that goes back out an internal interface (a guest reaching a
floating IP of its own network).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from pocketstack.common.process import run_command
from pocketstack.network.agent.firewall import nft
from pocketstack.network.agent.linux import Link, Netlink, namespaces

NAT_TABLE = "pocketstack"


def namespace(router_id: str) -> str:
    return f"qrouter-{router_id}"


def cidrs_of(port: dict[str, Any], nets: dict[str, dict[str, Any]]) -> list[str]:
    """The port's addresses with their subnets' prefix lengths ("10.0.0.1/26")."""
    subnets = {s["id"]: s for s in nets.get(port["network_id"], {"subnets": []})["subnets"]}
    out = []
    for allocation in port["fixed_ips"]:
        subnet = subnets.get(allocation["subnet_id"])
        if subnet is not None:
            out.append(f"{allocation['ip_address']}/{ipaddress.ip_network(subnet['cidr']).prefixlen}")
    return out


def nat_rules(router: dict[str, Any], nets: dict[str, dict[str, Any]]) -> str:
    """The router's NAT table (replaced as a whole)."""
    lines = [f"table ip {NAT_TABLE} {{}}", f"delete table ip {NAT_TABLE}"]
    gateway = router["gateway"]
    if gateway is None:
        return "\n".join(lines) + "\n"
    qg = "qg-" + gateway["id"][:11]
    gateway_v4 = [c.split("/")[0] for c in cidrs_of(gateway, nets) if ipaddress.ip_interface(c).version == 4]
    tenant = sorted({str(ipaddress.ip_interface(c).network) for port in router["interfaces"]
                     for c in cidrs_of(port, nets) if ipaddress.ip_interface(c).version == 4})
    pre, out, post = [], [], []
    for fip in sorted(router["floating_ips"], key=lambda f: f["floating_ip_address"]):
        floating, fixed = fip["floating_ip_address"], fip["fixed_ip_address"]
        pre.append(f"    ip daddr {floating} dnat to {fixed}")
        out.append(f"    ip daddr {floating} dnat to {fixed}")
        post.append(f'    ip saddr {fixed} oifname "{qg}" snat to {floating}')
    post.append('    iifname "qr-*" oifname "qr-*" ct status dnat masquerade')  # hairpin to a floating IP
    if router["enable_snat"] and tenant and gateway_v4:
        post.append(f'    oifname "{qg}" ip saddr {{ {", ".join(tenant)} }} snat to {gateway_v4[0]}')
    lines += [f"table ip {NAT_TABLE} {{",
              "  chain prerouting {", "    type nat hook prerouting priority dstnat; policy accept;", *pre, "  }",
              "  chain output {", "    type nat hook output priority -100; policy accept;", *out, "  }",
              "  chain postrouting {", "    type nat hook postrouting priority srcnat; policy accept;", *post,
              "  }", "}"]
    return "\n".join(lines) + "\n"


class Routers:
    """The router namespaces of the agent's host."""

    def __init__(self, netlink: Netlink) -> None:
        self.netlink = netlink
        self._nat: dict[str, str] = {}  # router id -> NAT rules loaded
        self._forwarding: set[str] = set()

    async def apply(self, router: dict[str, Any], nets: dict[str, dict[str, Any]], bridges: dict[str, Link],
                    mtu: dict[str, int]) -> None:
        """Wire the router as the state says (idempotent)."""
        ns = namespace(router["id"])
        await self.netlink.ensure_namespace(ns)
        if ns not in self._forwarding:
            await _sysctl(ns, "net.ipv4.ip_forward=1")
            self._forwarding.add(ns)
        wanted: dict[str, list[str]] = {}
        for port in router["interfaces"]:
            bridge = bridges.get(port["network_id"])
            if bridge is None or port["network_id"] not in nets:
                continue
            inner = "qr-" + port["id"][:11]
            await self.netlink.ensure_veth("tap" + port["id"][:11], inner, ns, port["mac_address"],
                                           mtu[port["network_id"]], bridge)
            wanted[inner] = cidrs_of(port, nets)
        gateway = router["gateway"]
        default_via = None
        if gateway is not None and gateway["network_id"] in bridges and gateway["network_id"] in nets:
            inner = "qg-" + gateway["id"][:11]
            await self.netlink.ensure_veth("tap" + gateway["id"][:11], inner, ns, gateway["mac_address"],
                                           mtu[gateway["network_id"]], bridges[gateway["network_id"]])
            wanted[inner] = cidrs_of(gateway, nets) + [f"{f['floating_ip_address']}/32"
                                                       for f in router["floating_ips"]]
            default_via = next((s["gateway_ip"] for s in nets[gateway["network_id"]]["subnets"]
                                if s["ip_version"] == 4 and s["gateway_ip"]), None)
        for name in await self.netlink.links(ns):
            if name.startswith(("qr-", "qg-")) and name not in wanted:
                await self.netlink.delete_link(name, ns)  # its tap peer on the bridge goes with it
        for name, cidrs in wanted.items():
            await self.netlink.set_addresses(name, cidrs, ns)
        await self.netlink.set_default_route(default_via, ns)
        await self.netlink.set_extra_routes([(r["destination"], r["nexthop"]) for r in router["routes"]
                                             if ipaddress.ip_network(r["destination"]).version == 4], ns)
        rules = nat_rules(router, nets)
        if self._nat.get(router["id"]) != rules:
            await nft(rules, ns)
            self._nat[router["id"]] = rules

    async def remove(self, router_id: str) -> None:
        ns = namespace(router_id)
        for name in await self._devices(ns):
            await self.netlink.delete_link(name, ns)
        await self.netlink.delete_namespace(ns)
        self._nat.pop(router_id, None)
        self._forwarding.discard(ns)

    async def _devices(self, ns: str) -> list[str]:
        if ns not in namespaces():
            return []
        return [n for n in await self.netlink.links(ns) if n.startswith(("qr-", "qg-"))]

    def forget_loaded(self) -> None:
        """Load the NAT rules and sysctls again on the next apply (someone may have changed them)."""
        self._nat.clear()
        self._forwarding.clear()


async def _sysctl(ns: str, setting: str) -> None:
    await run_command("ip", "netns", "exec", ns, "sysctl", "-q", "-w", setting)
