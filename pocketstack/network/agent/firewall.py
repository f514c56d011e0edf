"""Security groups on the taps of guests, with nftables (the agent's own tables, replaced atomically).

Why two tables: stateful filtering needs connection tracking, which nftables' `bridge` family only has with
`nf_conntrack_bridge` (absent from many kernels, this one included). Bridged IPv4/IPv6 does pass the `inet`
hooks through br_netfilter (`net.bridge.bridge-nf-call-iptables`), but there the bridge port a frame came from or
goes to is no longer visible. So:
- the `bridge` table sees the ports: it drops spoofed frames from a guest (MAC, ARP, IP source, DHCP/RA server
  replies; Neutron's anti-spoofing) and records in the packet mark which guest port the packet came from (high
  16 bits, at prerouting) and which it goes to (low 16 bits, at forward), before br_netfilter hands the packet to
  the IP hooks (bridge priority -300 < br_netfilter's);
- the `inet` table filters statefully by those marks: egress rules of the source port at prerouting, ingress
  rules of the destination port at forward; established/related traffic passes, ingress is default deny.
  Bridged packets are tracked in a conntrack zone per network (by the bridge they cross, set before conntrack
  sees them), as Neutron does, so networks with overlapping addresses cannot share a flow; not on external
  networks whose bridge holds a host address (the host's own flows are in the default zone).
Ports without port security, and the agent's own ports (DHCP, routers), are not in the tables: unfiltered.
Not filtered: traffic from the host itself to a guest plugged directly into a host bridge (it is bridged, not
forwarded, so no IP hook sees it with a port mark).
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pocketstack.common.process import run_command

log = logging.getLogger("pocketstack.network.agent")

ICMP, ICMPV6, TCP, UDP = 1, 58, 6, 17
PORT_PROTOCOLS = {6: "tcp", 17: "udp", 132: "sctp", 33: "dccp", 136: "udplite"}
# neighbour discovery and MLD: IPv6 does not work without them, whatever the rules
ICMPV6_ALWAYS = "nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, nd-router-advert, " \
                "mld-listener-query, mld-listener-report, mld-listener-done, mld2-listener-report"
BR_NF_SYSCTLS = ("/proc/sys/net/bridge/bridge-nf-call-iptables", "/proc/sys/net/bridge/bridge-nf-call-ip6tables")


@dataclass
class FilteredPort:
    """What the firewall needs of one guest port."""

    tap: str
    macs: list[str]
    ips: list[str]  # fixed IPs and allowed address pairs (addresses or CIDRs)
    rules: list[dict[str, Any]]  # the rules of its security groups (protocol as a number or None)
    remote_ips: dict[str, list[str]] = field(default_factory=dict)  # group id -> member addresses


def link_local(mac: str) -> str:
    """The EUI-64 IPv6 link-local address of a MAC."""
    octets = [int(x, 16) for x in mac.split(":")]
    octets[0] ^= 0x02
    iid = bytes([*octets[:3], 0xFF, 0xFE, *octets[3:]])
    return str(ipaddress.IPv6Address(b"\xfe\x80" + bytes(6) + iid))


def _set(items: list[str]) -> str:
    return "{ " + ", ".join(items) + " }"


def rule_match(rule: dict[str, Any], remote_ips: dict[str, list[str]]) -> str | None:
    """The nft match of one security group rule; None when it can match nothing (an empty remote group)."""
    v6 = rule["ethertype"] == "IPv6"
    family = "ip6" if v6 else "ip"
    parts = [f"meta nfproto {'ipv6' if v6 else 'ipv4'}"]
    where = "saddr" if rule["direction"] == "ingress" else "daddr"
    if rule.get("remote_ip_prefix"):
        net = ipaddress.ip_network(rule["remote_ip_prefix"], strict=False)
        if net.prefixlen:
            parts.append(f"{family} {where} {net}")
    elif rule.get("remote_group_id"):
        members = [ip for ip in remote_ips.get(rule["remote_group_id"], [])
                   if ipaddress.ip_address(ip).version == (6 if v6 else 4)]
        if not members:
            return None
        parts.append(f"{family} {where} {_set(sorted(members))}")
    protocol = rule.get("protocol")
    low, high = rule.get("port_range_min"), rule.get("port_range_max")
    if protocol is None:
        return " ".join(parts)
    if protocol in (ICMP, ICMPV6):
        name = "icmpv6" if v6 else "icmp"
        parts.append(f"meta l4proto {'ipv6-icmp' if v6 else 'icmp'}")
        if low is not None:
            parts.append(f"{name} type {low}")
            if high is not None:
                parts.append(f"{name} code {high}")
        return " ".join(parts)
    parts.append(f"meta l4proto {protocol}")
    if protocol in PORT_PROTOCOLS and low is not None:
        ports = str(low) if high is None or high == low else f"{low}-{high}"
        parts.append(f"th dport {ports}")
    return " ".join(parts)


def conntrack_zone(network_id: str) -> int:
    """A network's connection tracking zone (stable: a zone that changed would forget established flows)."""
    return 1 + int(network_id.replace("-", "")[:8], 16) % 65534


def render(table: str, ports: list[FilteredPort], zones: dict[str, int] | None = None) -> str:
    """The nft script that replaces the agent's tables (`bridge` and `inet`, both named `table`).

    `zones`: bridge name -> conntrack zone, so that networks with overlapping addresses never share a flow.
    """
    lines = [f"table bridge {table} {{}}", f"delete table bridge {table}",
             f"table inet {table} {{}}", f"delete table inet {table}"]
    if not ports:
        return "\n".join(lines) + "\n"
    ports = sorted(ports, key=lambda p: p.tap)
    ids = {p.tap: i + 1 for i, p in enumerate(ports)}
    bridge = [f"table bridge {table} {{",
              "  chain prerouting {", "    type filter hook prerouting priority -300; policy accept;",
              "    iifname vmap " + _set([f'"{p.tap}" : jump from_{ids[p.tap]}' for p in ports]), "  }",
              "  chain forward {", "    type filter hook forward priority -300; policy accept;",
              "    oifname vmap " + _set([f'"{p.tap}" : jump to_{ids[p.tap]}' for p in ports]), "  }"]
    inet = [f"table inet {table} {{"]
    if zones:
        inet += ["  chain zones {", "    type filter hook prerouting priority -300; policy accept;",
                 "    ct zone set iifname map " + _set([f'"{b}" : {z}' for b, z in sorted(zones.items())]), "  }"]
    inet += ["  chain prerouting {", "    type filter hook prerouting priority 0; policy accept;",
            "    meta mark & 0xffff0000 vmap " + _set([f"{ids[p.tap] << 16:#010x} : jump egress_{ids[p.tap]}"
                                                        for p in ports]), "  }",
            "  chain forward {", "    type filter hook forward priority 0; policy accept;",
            "    meta mark & 0x0000ffff vmap " + _set([f"{ids[p.tap]:#010x} : jump ingress_{ids[p.tap]}"
                                                        for p in ports]), "  }"]
    for port in ports:
        n = ids[port.tap]
        v4 = [ip for ip in port.ips if ipaddress.ip_network(ip, strict=False).version == 4]
        v6 = [ip for ip in port.ips if ipaddress.ip_network(ip, strict=False).version == 6]
        v6 += [link_local(mac) for mac in port.macs]
        mark = f"{n << 16:#010x}"
        bridge += [f"  chain from_{n} {{",
                   f"    ether saddr != {_set(port.macs)} drop",
                   f"    ether type arp arp saddr ether != {_set(port.macs)} drop",
                   f"    ether type arp arp saddr ip != {_set([*v4, '0.0.0.0'])} drop",
                   "    ether type arp accept",
                   f"    ether type ip ip saddr 0.0.0.0 udp sport 68 udp dport 67 meta mark set {mark} accept",
                   (f"    ether type ip ip saddr != {_set(v4)} drop" if v4 else "    ether type ip drop"),
                   "    ether type ip udp sport 67 drop",  # no DHCP server on a guest
                   f"    ether type ip6 ip6 saddr != {_set([*v6, '::'])} drop",
                   "    ether type ip6 udp sport 547 drop",
                   "    ether type ip6 icmpv6 type nd-router-advert drop",
                   f"    ether type {{ ip, ip6 }} meta mark set {mark} accept",
                   "    drop", "  }",
                   f"  chain to_{n} {{", f"    meta mark set meta mark | {n:#010x}", "  }"]
        egress = [m for m in (rule_match(r, port.remote_ips) for r in port.rules if r["direction"] == "egress")
                  if m is not None]
        ingress = [m for m in (rule_match(r, port.remote_ips) for r in port.rules if r["direction"] == "ingress")
                   if m is not None]
        inet += [f"  chain egress_{n} {{",
                 "    ct state established,related accept", "    ct state invalid drop",
                 "    udp sport 68 udp dport 67 accept",
                 f"    icmpv6 type {{ {ICMPV6_ALWAYS} }} accept",
                 *[f"    {m} accept" for m in egress], "    drop", "  }",
                 f"  chain ingress_{n} {{",
                 "    ct state established,related accept", "    ct state invalid drop",
                 "    udp sport 67 udp dport 68 accept",
                 f"    icmpv6 type {{ {ICMPV6_ALWAYS} }} accept",
                 *[f"    {m} accept" for m in ingress], "    drop", "  }"]
    return "\n".join([*lines, *bridge, "}", *inet, "}"]) + "\n"


async def nft(script: str, netns: str | None = None) -> None:
    """Run an nft script atomically (in namespace `netns` when given)."""
    cmd = ["ip", "netns", "exec", netns, "nft", "-f", "-"] if netns else ["nft", "-f", "-"]
    await run_command(*cmd, stdin=script.encode())


class Firewall:
    """The agent's nftables tables: re-rendered from the state, loaded only when the text changes."""

    def __init__(self, table: str) -> None:
        self.table = table
        self._loaded: str | None = None

    def enable_bridge_netfilter(self) -> None:
        """Bridged IP must pass the IP hooks (br_netfilter) for stateful filtering."""
        for path in BR_NF_SYSCTLS:
            try:
                if Path(path).read_text().strip() != "1":
                    Path(path).write_text("1\n")
            except OSError as exc:
                log.warning("cannot enable %s (security groups need br_netfilter): %s", path, exc)

    async def apply(self, ports: list[FilteredPort], zones: dict[str, int] | None = None) -> bool:
        """Load the tables for `ports`; False when they were already loaded as such."""
        script = render(self.table, ports, zones)
        if script == self._loaded:
            return False
        if ports:
            self.enable_bridge_netfilter()
        await nft(script)
        self._loaded = script
        return True

    def forget_loaded(self) -> None:
        """Load the tables again on the next apply (someone may have changed them)."""
        self._loaded = None

    async def remove(self) -> None:
        await nft(render(self.table, []))
        self._loaded = None
