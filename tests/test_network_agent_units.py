"""Units of the network agent: the nftables it writes (checked by the kernel with `nft -c`, nothing loaded), the
security group rule translation, dnsmasq's command line and hosts file."""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import require

from pocketstack.network.agent.dhcp import DhcpServer, routes_option
from pocketstack.network.agent.firewall import FilteredPort, conntrack_zone, link_local, render, rule_match
from pocketstack.network.agent.router import nat_rules


def nft_check(script: str) -> None:
    proc = subprocess.run(["nft", "-c", "-f", "-"], input=script, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, f"{proc.stderr}\n{script}"


def rule(direction: str = "ingress", ethertype: str = "IPv4", protocol: int | None = None, low: int | None = None,
         high: int | None = None, prefix: str | None = None, group: str | None = None) -> dict:
    return {"direction": direction, "ethertype": ethertype, "protocol": protocol, "port_range_min": low,
            "port_range_max": high, "remote_ip_prefix": prefix, "remote_group_id": group}


def test_rule_translation() -> None:
    members = {"g1": ["10.0.0.5", "10.0.0.6", "fd00::5"], "empty": []}
    assert rule_match(rule(protocol=6, low=22, high=22), {}) == "meta nfproto ipv4 meta l4proto 6 th dport 22"
    assert rule_match(rule(protocol=17, low=1000, high=2000, prefix="192.168.0.0/16"), {}) == (
        "meta nfproto ipv4 ip saddr 192.168.0.0/16 meta l4proto 17 th dport 1000-2000")
    assert rule_match(rule(direction="egress", prefix="0.0.0.0/0"), {}) == "meta nfproto ipv4"
    assert rule_match(rule(protocol=1, low=8, high=0), {}) == (
        "meta nfproto ipv4 meta l4proto icmp icmp type 8 icmp code 0")
    assert rule_match(rule(ethertype="IPv6", protocol=58, group="g1"), members) == (
        "meta nfproto ipv6 ip6 saddr { fd00::5 } meta l4proto ipv6-icmp")
    assert rule_match(rule(group="g1"), members) == "meta nfproto ipv4 ip saddr { 10.0.0.5, 10.0.0.6 }"
    assert rule_match(rule(group="empty"), members) is None  # a group without members matches nothing
    assert rule_match(rule(protocol=47), {}) == "meta nfproto ipv4 meta l4proto 47"
    assert link_local("fa:16:3e:00:00:01") == "fe80::f816:3eff:fe00:1"


def test_firewall_tables_are_valid_nftables() -> None:
    require("nft", root=True)  # nft -c checks against the kernel
    ports = [
        FilteredPort("tapaaaaaaaa-aa", ["fa:16:3e:00:00:01"], ["10.0.0.5", "fd00::5"],
                     [rule(protocol=6, low=22, high=22), rule(group="g1"), rule(direction="egress"),
                      rule(direction="egress", ethertype="IPv6"), rule(protocol=1, low=8),
                      rule(ethertype="IPv6", protocol=58, low=128, high=0), rule(protocol=132, low=5, high=9)],
                     {"g1": ["10.0.0.6"]}),
        FilteredPort("tapbbbbbbbb-bb", ["fa:16:3e:00:00:02", "fa:16:3e:00:00:03"], ["10.0.0.7", "10.1.0.0/24"], []),
        FilteredPort("tapcccccccc-cc", ["fa:16:3e:00:00:04"], ["fd00::9"], [rule(direction="egress")]),
    ]
    script = render("pocketstack_unittest", ports, {"brqaaaaaaaa-aa": conntrack_zone("aaaaaaaa-aaaa"), "brqb": 7})
    nft_check(script)
    assert 'ct zone set iifname map { "brqaaaaaaaa-aa" : 3, "brqb" : 7 }' in script
    assert script.count("jump from_") == 3 and "0x00030000 : jump egress_3" in script
    empty = render("pocketstack_unittest", [])
    nft_check(empty)
    assert "chain" not in empty  # no ports: the tables are deleted


def test_router_nat_is_valid_nftables() -> None:
    require("nft", root=True)
    nets = {"ext": {"subnets": [{"id": "s-ext", "cidr": "172.24.4.0/24", "ip_version": 4,
                                 "gateway_ip": "172.24.4.1"}]},
            "int": {"subnets": [{"id": "s-int", "cidr": "10.0.0.0/26", "ip_version": 4, "gateway_ip": "10.0.0.1"}]}}
    router = {"id": "r", "enable_snat": True,
              "gateway": {"id": "gwport0000000", "network_id": "ext",
                          "fixed_ips": [{"subnet_id": "s-ext", "ip_address": "172.24.4.10"}]},
              "interfaces": [{"id": "ifport0000000", "network_id": "int",
                              "fixed_ips": [{"subnet_id": "s-int", "ip_address": "10.0.0.1"}]}],
              "floating_ips": [{"floating_ip_address": "172.24.4.20", "fixed_ip_address": "10.0.0.5"}]}
    script = nat_rules(router, nets)
    nft_check(script)
    assert "ip daddr 172.24.4.20 dnat to 10.0.0.5" in script
    assert 'oifname "qg-gwport00000" ip saddr { 10.0.0.0/26 } snat to 172.24.4.10' in script
    nft_check(nat_rules({**router, "gateway": None}, nets))


def test_dnsmasq_command_and_hosts(tmp_path: Path) -> None:
    net = {"id": "n1", "mtu": 1450, "subnets": [
        {"id": "s1", "cidr": "10.0.0.0/26", "ip_version": 4, "gateway_ip": "10.0.0.1", "enable_dhcp": True,
         "dns_nameservers": [], "host_routes": [{"destination": "192.168.9.0/24", "nexthop": "10.0.0.9"}]},
        {"id": "s2", "cidr": "10.0.1.0/24", "ip_version": 4, "gateway_ip": None, "enable_dhcp": True,
         "dns_nameservers": ["9.9.9.9"], "host_routes": []},
        {"id": "s3", "cidr": "10.0.2.0/24", "ip_version": 4, "gateway_ip": "10.0.2.1", "enable_dhcp": False,
         "dns_nameservers": [], "host_routes": []}]}
    dhcp_port = {"fixed_ips": [{"subnet_id": "s1", "ip_address": "10.0.0.2"},
                               {"subnet_id": "s2", "ip_address": "10.0.1.2"}]}
    server = DhcpServer("n1", "qdhcp-n1", "ns-x", tmp_path)
    args = server.command(net, dhcp_port, 3600, "openstacklocal")
    assert "--dhcp-range=set:subnet0,10.0.0.0,static,255.255.255.192,3600s" in args
    assert "--dhcp-option-force=tag:subnet0,option:classless-static-route,169.254.169.254/32,10.0.0.2," \
           "192.168.9.0/24,10.0.0.9,0.0.0.0/0,10.0.0.1" in args
    assert "--dhcp-option=tag:subnet1,option:router" in args  # no gateway: tell the client there is none
    assert "--dhcp-option=tag:subnet1,option:dns-server,9.9.9.9" in args
    assert "--dhcp-option=tag:subnet0,option:dns-server,10.0.0.2" in args
    assert not any("10.0.2.0" in a for a in args)  # DHCP disabled on s3
    assert routes_option(net["subnets"][1], None) == []
    ports = [{"id": "p1", "admin_state_up": True, "mac_address": "fa:16:3e:00:00:01",
              "fixed_ips": [{"subnet_id": "s1", "ip_address": "10.0.0.5"}, {"subnet_id": "s3",
                                                                           "ip_address": "10.0.2.5"}]},
             {"id": "p2", "admin_state_up": False, "mac_address": "fa:16:3e:00:00:02",
              "fixed_ips": [{"subnet_id": "s1", "ip_address": "10.0.0.6"}]}]
    hosts, addn = server.hosts(net, ports, "openstacklocal")
    assert hosts == "fa:16:3e:00:00:01,host-10-0-0-5.openstacklocal,10.0.0.5\n"
    assert addn == "10.0.0.5\thost-10-0-0-5.openstacklocal host-10-0-0-5\n"
    assert f"--dhcp-optsfile={tmp_path / 'opts'}" in args
    assert server.options(ports) == ""
    # a port's extra_dhcp_opts: its host entry sets its tag, the options file gives the options for the tag
    ports[0]["extra_dhcp_opts"] = [{"opt_name": "bootfile-name", "opt_value": "pxelinux.0", "ip_version": 4},
                                   {"opt_name": "66", "opt_value": "10.0.0.9", "ip_version": 4},
                                   {"opt_name": "bootfile-name", "opt_value": "v6.efi", "ip_version": 6}]
    hosts, _ = server.hosts(net, ports, "openstacklocal")
    assert hosts == "fa:16:3e:00:00:01,set:port-p1,host-10-0-0-5.openstacklocal,10.0.0.5\n"
    assert server.options(ports) == "tag:port-p1,option:bootfile-name,pxelinux.0\ntag:port-p1,66,10.0.0.9\n"
