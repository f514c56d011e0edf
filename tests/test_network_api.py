"""The networking API driven by openstacksdk and the `openstack` CLI: networks, subnets, ports, security
groups, routers, floating IPs, quotas, discovery, list semantics and error bodies."""

from __future__ import annotations

from typing import Any

import netaddr
import openstack
import pytest
import requests
from network_helpers import call, error


def test_discovery_catalog_and_extensions(cloud: Any, admin: Any) -> None:
    root = requests.get(cloud.url("network") + "/", timeout=10).json()
    assert root["versions"][0]["id"] == "v2.0" and root["versions"][0]["status"] == "CURRENT"
    assert requests.get(cloud.url("network") + "/v2.0", timeout=10).status_code == 200
    endpoint = admin.network.get_endpoint()
    assert endpoint.rstrip("/").endswith("/v2.0") and str(cloud.settings.port("network")) in endpoint
    aliases = {e.alias for e in admin.network.extensions()}
    assert {"router", "external-net", "provider", "security-group", "quotas", "binding",
            "network-ip-availability", "allowed-address-pairs", "port-security"} <= aliases
    assert admin.network.find_extension("router").alias == "router"
    assert admin.network.find_extension("no-such-extension") is None
    assert list(admin.network.service_providers()) == []  # no advanced services run here


def test_network_cli_create_list_show_set_delete(cloud: Any, prefix: str) -> None:
    created = cloud.cli("network", "create", f"{prefix}-net", "--description", "first", "-f", "json")
    assert created["name"] == f"{prefix}-net" and created["status"] == "ACTIVE"
    assert created["mtu"] == 1450 and created["provider:network_type"] == "vxlan"
    listed = cloud.cli("network", "list", "--name", f"{prefix}-net", "-f", "json")
    assert [n["ID"] for n in listed] == [created["id"]]
    cloud.cli("network", "set", created["id"], "--name", f"{prefix}-renamed", "--mtu", "1400")
    shown = cloud.cli("network", "show", f"{prefix}-renamed", "-f", "json")
    assert shown["mtu"] == 1400 and shown["revision_number"] == 1 and shown["description"] == "first"
    cloud.cli("network", "delete", f"{prefix}-renamed")
    assert cloud.cli("network", "show", created["id"], check=False).returncode != 0


def test_provider_attributes_are_admin_only(admin: Any, demo: Any, prefix: str) -> None:
    net = admin.network.create_network(name=prefix, provider_network_type="vlan",
                                       provider_physical_network="physnet1", provider_segmentation_id=101,
                                       shared=True)
    try:
        assert (net.provider_network_type, net.provider_physical_network, net.provider_segmentation_id) == (
            "vlan", "physnet1", 101)
        assert net.mtu == 1500
        with pytest.raises(openstack.exceptions.ConflictException):
            admin.network.create_network(name=prefix, provider_network_type="vlan",
                                         provider_physical_network="physnet1", provider_segmentation_id=101)
        seen = demo.network.get_network(net.id)
        assert seen.provider_network_type is None and seen.provider_segmentation_id is None
        with pytest.raises(openstack.exceptions.ForbiddenException):
            demo.network.create_network(name=prefix, provider_network_type="vxlan")
    finally:
        admin.network.delete_network(net)


def test_subnet_cli_with_allocation_pool_dns_and_routes(cloud: Any, prefix: str) -> None:
    cloud.cli("network", "create", f"{prefix}-net")
    subnet = cloud.cli("subnet", "create", f"{prefix}-sub", "--network", f"{prefix}-net", "--subnet-range",
                       "10.0.0.0/24", "--allocation-pool", "start=10.0.0.100,end=10.0.0.150",
                       "--dns-nameserver", "10.0.0.53", "--host-route", "destination=10.1.0.0/16,gateway=10.0.0.254",
                       "-f", "json")
    assert subnet["cidr"] == "10.0.0.0/24" and subnet["gateway_ip"] == "10.0.0.1"
    assert subnet["allocation_pools"] == [{"start": "10.0.0.100", "end": "10.0.0.150"}]
    assert subnet["dns_nameservers"] == ["10.0.0.53"]
    assert subnet["host_routes"] == [{"destination": "10.1.0.0/16", "nexthop": "10.0.0.254"}]
    port = cloud.cli("port", "create", f"{prefix}-port", "--network", f"{prefix}-net", "-f", "json")
    ip = port["fixed_ips"][0]["ip_address"]
    assert 100 <= int(ip.rsplit(".", 1)[1]) <= 150
    early = cloud.cli("port", "create", f"{prefix}-early", "--network", f"{prefix}-net", "-f", "json")
    cloud.cli("port", "delete", f"{prefix}-port")
    v6 = cloud.cli("subnet", "create", f"{prefix}-v6", "--network", f"{prefix}-net", "--ip-version", "6",
                   "--subnet-range", "fd00:1::/64", "--ipv6-address-mode", "slaac", "--ipv6-ra-mode", "slaac",
                   "-f", "json")
    assert v6["gateway_ip"] == "fd00:1::1" and v6["ip_version"] == 6
    port = cloud.cli("port", "create", f"{prefix}-dual", "--network", f"{prefix}-net", "-f", "json")
    by_subnet = {f["subnet_id"]: f["ip_address"] for f in port["fixed_ips"]}
    # SLAAC: the modified EUI-64 of the MAC in the /64 (computed here by netaddr)
    expected = netaddr.EUI(port["mac_address"]).ipv6(netaddr.IPNetwork("fd00:1::/64").first)
    assert by_subnet[v6["id"]] == str(expected)
    # a port that existed before the SLAAC subnet got its address when the subnet was created
    early = cloud.cli("port", "show", f"{prefix}-early", "-f", "json")
    assert {f["subnet_id"]: f["ip_address"] for f in early["fixed_ips"]}[v6["id"]] == str(
        netaddr.EUI(early["mac_address"]).ipv6(netaddr.IPNetwork("fd00:1::/64").first))
    cloud.cli("port", "delete", f"{prefix}-early")
    cloud.cli("port", "delete", f"{prefix}-dual")
    cloud.cli("subnet", "set", f"{prefix}-sub", "--name", f"{prefix}-sub2", "--no-dhcp")
    assert cloud.cli("subnet", "show", f"{prefix}-sub2", "-f", "json")["enable_dhcp"] is False
    cloud.cli("subnet", "delete", f"{prefix}-sub2", f"{prefix}-v6")
    cloud.cli("network", "delete", f"{prefix}-net")


def test_port_cli_fixed_ip_and_sdk_update(cloud: Any, admin: Any, prefix: str) -> None:
    net = admin.network.create_network(name=prefix)
    subnet = admin.network.create_subnet(network_id=net.id, cidr="10.20.0.0/24", ip_version=4, name=prefix)
    port = cloud.cli("port", "create", f"{prefix}-p", "--network", net.id, "--fixed-ip",
                     f"subnet={prefix},ip-address=10.20.0.10", "-f", "json")
    assert port["fixed_ips"] == [{"subnet_id": subnet.id, "ip_address": "10.20.0.10"}]
    assert port["mac_address"].startswith("fa:16:3e:") and port["status"] == "DOWN"
    assert port["device_owner"] == "" and len(port["security_group_ids"]) == 1
    updated = admin.network.update_port(port["id"], fixed_ips=[{"subnet_id": subnet.id,
                                                                "ip_address": "10.20.0.11"}],
                                        name=f"{prefix}-renamed")
    assert [f["ip_address"] for f in updated.fixed_ips] == ["10.20.0.11"]
    same = admin.network.update_port(port["id"], fixed_ips=[{"subnet_id": subnet.id}])
    assert [f["ip_address"] for f in same.fixed_ips] == ["10.20.0.11"]  # naming the subnet keeps its address
    two = admin.network.update_port(port["id"], fixed_ips=[{"ip_address": "10.20.0.11"}, {"subnet_id": subnet.id}])
    assert len(two.fixed_ips) == 2 and two.fixed_ips[0]["ip_address"] == "10.20.0.11"
    admin.network.update_port(port["id"], fixed_ips=[{"ip_address": "10.20.0.11"}])
    again = admin.network.create_port(network_id=net.id, fixed_ips=[{"ip_address": "10.20.0.10"}])
    assert again.fixed_ips[0]["ip_address"] == "10.20.0.10"  # freed by the update
    pairs = admin.network.update_port(again, allowed_address_pairs=[{"ip_address": "10.20.0.200/30"}])
    assert pairs.allowed_address_pairs == [{"ip_address": "10.20.0.200/30", "mac_address": again.mac_address}]
    for p in (port["id"], again.id):
        admin.network.delete_port(p)
    admin.network.delete_network(net)


def test_security_group_cli_and_rules(cloud: Any, admin: Any, demo: Any, prefix: str) -> None:
    groups = demo.network.security_groups(name="default")
    default = [g for g in groups if g.project_id == demo.current_project_id]
    assert len(default) == 1
    rules = {(r["direction"], r["ethertype"], r["remote_group_id"]) for r in default[0].security_group_rules}
    assert rules == {("egress", "IPv4", None), ("egress", "IPv6", None),
                     ("ingress", "IPv4", default[0].id), ("ingress", "IPv6", default[0].id)}
    sg = cloud.cli("security", "group", "create", f"{prefix}-web", "-f", "json")
    rule = cloud.cli("security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "22",
                     f"{prefix}-web", "-f", "json")
    assert (rule["protocol"], rule["port_range_min"], rule["port_range_max"]) == ("tcp", 22, 22)
    assert rule["direction"] == "ingress" and rule["remote_ip_prefix"] == "0.0.0.0/0"
    dup = cloud.cli("security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "22",
                    f"{prefix}-web", check=False)
    assert dup.returncode != 0 and "already exists" in dup.stderr
    cloud.cli("security", "group", "rule", "create", "--protocol", "icmp", "--remote-group", f"{prefix}-web",
              f"{prefix}-web")
    listed = cloud.cli("security", "group", "rule", "list", f"{prefix}-web", "-f", "json")
    assert len(listed) == 4  # two egress defaults + tcp/22 + icmp
    bad = cloud.cli("security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "30:20",
                    f"{prefix}-web", check=False)
    assert bad.returncode != 0
    cloud.cli("security", "group", "set", f"{prefix}-web", "--description", "web servers")
    assert cloud.cli("security", "group", "show", sg["id"], "-f", "json")["description"] == "web servers"
    cloud.cli("security", "group", "delete", f"{prefix}-web")


def test_router_interfaces_gateway_and_floating_ip_cli(cloud: Any, admin: Any, prefix: str) -> None:
    ext = cloud.cli("network", "create", f"{prefix}-ext", "--external", "--provider-network-type", "flat",
                    "--provider-physical-network", f"{prefix}-phys", "-f", "json")
    assert ext["router:external"] is True
    cloud.cli("subnet", "create", f"{prefix}-ext-sub", "--network", f"{prefix}-ext", "--subnet-range",
              "203.0.113.0/24", "--no-dhcp")
    cloud.cli("network", "create", f"{prefix}-int")
    int_sub = cloud.cli("subnet", "create", f"{prefix}-int-sub", "--network", f"{prefix}-int",
                        "--subnet-range", "192.168.77.0/24", "-f", "json")
    router = cloud.cli("router", "create", f"{prefix}-r", "-f", "json")
    cloud.cli("router", "add", "subnet", f"{prefix}-r", f"{prefix}-int-sub")
    cloud.cli("router", "set", f"{prefix}-r", "--external-gateway", f"{prefix}-ext")
    shown = cloud.cli("router", "show", f"{prefix}-r", "-f", "json")
    gateway = shown["external_gateway_info"]
    assert gateway["network_id"] == ext["id"] and gateway["enable_snat"] is True
    assert gateway["external_fixed_ips"][0]["ip_address"].startswith("203.0.113.")
    interfaces = admin.network.ports(device_id=router["id"], device_owner="network:router_interface")
    assert [p.fixed_ips[0]["ip_address"] for p in interfaces] == [int_sub["gateway_ip"]]
    vm_port = cloud.cli("port", "create", f"{prefix}-vm", "--network", f"{prefix}-int", "-f", "json")
    fip = cloud.cli("floating", "ip", "create", f"{prefix}-ext", "-f", "json")
    assert fip["floating_ip_address"].startswith("203.0.113.") and fip["port_id"] is None
    cloud.cli("floating", "ip", "set", "--port", f"{prefix}-vm", fip["id"])
    fip = cloud.cli("floating", "ip", "show", fip["id"], "-f", "json")
    assert fip["port_id"] == vm_port["id"] and fip["router_id"] == router["id"]
    assert fip["fixed_ip_address"] == vm_port["fixed_ips"][0]["ip_address"]
    # the interface serving the floating IP cannot go, nor can the router while it has interfaces
    busy = cloud.cli("router", "remove", "subnet", f"{prefix}-r", f"{prefix}-int-sub", check=False)
    assert busy.returncode != 0
    assert cloud.cli("router", "delete", f"{prefix}-r", check=False).returncode != 0
    # router-owned ports cannot be deleted through the port API
    gw_port = admin.network.ports(device_id=router["id"], device_owner="network:router_gateway")
    with pytest.raises(openstack.exceptions.ConflictException):
        admin.network.delete_port(next(iter(gw_port)).id)
    cloud.cli("floating", "ip", "unset", "--port", fip["id"])
    assert cloud.cli("floating", "ip", "show", fip["id"], "-f", "json")["port_id"] is None
    cloud.cli("floating", "ip", "delete", fip["id"])
    cloud.cli("port", "delete", f"{prefix}-vm")
    cloud.cli("router", "remove", "subnet", f"{prefix}-r", f"{prefix}-int-sub")
    cloud.cli("router", "unset", "--external-gateway", f"{prefix}-r")
    cloud.cli("router", "delete", f"{prefix}-r")
    cloud.cli("subnet", "delete", f"{prefix}-int-sub", f"{prefix}-ext-sub")
    cloud.cli("network", "delete", f"{prefix}-int", f"{prefix}-ext")


def test_shared_network_visible_to_demo(cloud: Any, admin: Any, demo: Any, prefix: str) -> None:
    shared = cloud.cli("network", "create", f"{prefix}-shared", "--share", "-f", "json")
    private = admin.network.create_network(name=f"{prefix}-private")
    admin.network.create_subnet(network_id=shared["id"], cidr="10.44.0.0/24", ip_version=4)
    try:
        seen = cloud.cli("network", "show", f"{prefix}-shared", "-f", "json", cloud="pocketstack-demo")
        assert seen["id"] == shared["id"] and seen["shared"] is True
        hidden = cloud.cli("network", "show", private.id, cloud="pocketstack-demo", check=False)
        assert hidden.returncode != 0
        names = {n.name for n in demo.network.networks()}
        assert f"{prefix}-shared" in names and f"{prefix}-private" not in names
        port = demo.network.create_port(network_id=shared["id"])
        assert port.project_id == demo.current_project_id
        # admin sees the port; making the network private now would strand demo's port
        with pytest.raises(openstack.exceptions.ConflictException):
            admin.network.update_network(shared["id"], shared=False)
        demo.network.delete_port(port)
    finally:
        cloud.cli("network", "delete", shared["id"], private.id)


def test_quotas_cli_and_enforcement(cloud: Any, admin: Any, demo: Any, prefix: str) -> None:
    project = demo.current_project_id
    shown = cloud.cli("quota", "show", "--network", "demo", "-f", "json")
    limits = {row["Resource"]: row["Limit"] for row in shown} if isinstance(shown, list) else shown
    assert limits["networks"] == 100 and limits["ports"] == 500
    used = demo.network.networks(project_id=project)
    cloud.cli("quota", "set", "--networks", str(len(list(used)) + 1), "--routers", "7", "demo")
    quota = admin.network.get_quota(project)
    assert quota.routers == 7
    details = admin.network.get_quota(project, details=True)
    assert details.networks["limit"] == quota.networks and details.networks["used"] == quota.networks - 1
    first = demo.network.create_network(name=f"{prefix}-1")
    try:
        with pytest.raises(openstack.exceptions.ConflictException) as exc:
            demo.network.create_network(name=f"{prefix}-2")
        assert "Quota exceeded" in str(exc.value)
        status, body = call(cloud, demo, "POST", "/v2.0/networks", {"network": {"name": f"{prefix}-2"}})
        assert (status, body["NeutronError"]["type"]) == (409, "OverQuota")
        with pytest.raises(openstack.exceptions.ForbiddenException):
            demo.network.update_quota(project, networks=1000)
    finally:
        demo.network.delete_network(first)
        admin.network.delete_quota(project)
    assert admin.network.get_quota(project).networks == 100
    defaults = admin.network.get_quota_default(project)
    assert defaults.routers == 10


def test_list_filters_fields_sorting_and_pagination(admin: Any, cloud: Any, prefix: str) -> None:
    nets = [admin.network.create_network(name=f"{prefix}-{i}", description=f"d{i % 2}") for i in range(5)]
    try:
        token = admin.auth_token
        body = call(cloud, admin, "GET", f"/v2.0/networks?name={prefix}-1&name={prefix}-3")[1]
        assert sorted(n["name"] for n in body["networks"]) == [f"{prefix}-1", f"{prefix}-3"]
        body = call(cloud, admin, "GET", "/v2.0/networks?description=d0&fields=id&fields=name")[1]
        mine = [n for n in body["networks"] if n["name"].startswith(prefix)]
        assert len(mine) == 3 and all(set(n) == {"id", "name"} for n in mine)
        body = call(cloud, admin, "GET", "/v2.0/networks?sort_key=name&sort_dir=desc")[1]
        names = [n["name"] for n in body["networks"]]
        assert names == sorted(names, reverse=True)
        page = call(cloud, admin, "GET", "/v2.0/networks?limit=2&sort_key=name&sort_dir=asc")[1]
        assert len(page["networks"]) == 2 and page["networks_links"][0]["rel"] == "next"
        seen = [n["id"] for n in page["networks"]]
        while any(link["rel"] == "next" for link in page.get("networks_links", [])):
            href = next(link["href"] for link in page["networks_links"] if link["rel"] == "next")
            page = requests.get(href, headers={"X-Auth-Token": token}, timeout=10).json()
            seen += [n["id"] for n in page["networks"]]
        everything = [n["id"] for n in call(cloud, admin, "GET", "/v2.0/networks?sort_key=name")[1]["networks"]]
        assert seen == everything
        assert {n.id for n in nets} <= set(seen)
        sdk_paged = [n.id for n in admin.network.networks(limit=2)]  # the SDK follows the links itself
        assert sorted(sdk_paged) == sorted(everything)
        status, bad = call(cloud, admin, "GET", "/v2.0/networks?no_such_attr=1")
        assert (status, bad["NeutronError"]["type"]) == (400, "HTTPBadRequest")
    finally:
        for net in nets:
            admin.network.delete_network(net)


def test_ip_availability(admin: Any, demo: Any, prefix: str) -> None:
    net = admin.network.create_network(name=prefix)
    admin.network.create_subnet(network_id=net.id, cidr="10.55.0.0/28", ip_version=4)
    ports = [admin.network.create_port(network_id=net.id) for _ in range(3)]
    try:
        avail = admin.network.get_network_ip_availability(net.id)
        assert (avail.total_ips, avail.used_ips) == (13, 3)
        assert any(a.network_id == net.id for a in admin.network.network_ip_availabilities())
        # admin only; as Neutron, a list leaves out what policy hides and a show says it does not exist
        assert list(demo.network.network_ip_availabilities()) == []
        with pytest.raises(openstack.exceptions.NotFoundException):
            demo.network.get_network_ip_availability(net.id)
    finally:
        for p in ports:
            admin.network.delete_port(p)
        admin.network.delete_network(net)


def test_tags_cli_sdk_and_filters(cloud: Any, admin: Any, demo: Any, prefix: str) -> None:
    net = cloud.cli("network", "create", f"{prefix}-tagged", "--tag", "red", "--tag", "blue", "-f", "json")
    other = admin.network.create_network(name=f"{prefix}-plain")
    try:
        assert sorted(net["tags"]) == ["blue", "red"]
        listed = cloud.cli("network", "list", "--tags", "red,blue", "-f", "json")
        assert [n["ID"] for n in listed] == [net["id"]]
        cloud.cli("network", "set", net["id"], "--tag", "green")
        cloud.cli("network", "unset", net["id"], "--tag", "red")
        assert sorted(cloud.cli("network", "show", net["id"], "-f", "json")["tags"]) == ["blue", "green"]
        ids = {n.id for n in admin.network.networks(any_tags="green,nothing")}
        assert ids == {net["id"]}
        assert net["id"] not in {n.id for n in admin.network.networks(not_any_tags="green")}
        assert other.id in {n.id for n in admin.network.networks(not_tags="blue")}
        subnet = admin.network.create_subnet(network_id=other.id, cidr="10.66.0.0/24", ip_version=4)
        port = admin.network.create_port(network_id=other.id)
        for resource in (port, subnet):
            admin.network.add_tag(resource, "web")
            admin.network.check_tag(resource, "web")  # raises when absent
            admin.network.remove_tag(resource, "web")
            with pytest.raises(openstack.exceptions.NotFoundException):
                admin.network.check_tag(resource, "web")
        assert call(cloud, admin, "PUT", f"/v2.0/networks/{net['id']}/tags", {"tags": ["a,b"]})[0] == 400
        assert call(cloud, admin, "PUT", f"/v2.0/volumes/{net['id']}/tags", {"tags": ["a"]})[0] == 404
        assert call(cloud, demo, "PUT", f"/v2.0/networks/{net['id']}/tags/x")[0] == 404  # not visible
        admin.network.delete_port(port)
    finally:
        cloud.cli("network", "delete", net["id"], other.id)


def test_bulk_create_is_all_or_nothing(admin: Any, cloud: Any, prefix: str) -> None:
    status, body = call(cloud, admin, "POST", "/v2.0/networks",
                        {"networks": [{"name": f"{prefix}-bulk1"}, {"name": f"{prefix}-bulk2"}]})
    assert status == 201 and [n["name"] for n in body["networks"]] == [f"{prefix}-bulk1", f"{prefix}-bulk2"]
    net_id = body["networks"][0]["id"]
    # the second port asks for an address outside the subnet: neither port is left behind
    call(cloud, admin, "POST", "/v2.0/subnets",
         {"subnet": {"network_id": net_id, "cidr": "10.77.0.0/24", "ip_version": 4}})
    status, body = call(cloud, admin, "POST", "/v2.0/ports", {"ports": [
        {"network_id": net_id, "name": f"{prefix}-p1"},
        {"network_id": net_id, "name": f"{prefix}-p2", "fixed_ips": [{"ip_address": "10.99.0.5"}]}]})
    assert status == 400 and "NeutronError" in body
    assert [p for p in admin.network.ports(network_id=net_id) if p.name.startswith(prefix)] == []
    assert error(call(cloud, admin, "POST", "/v2.0/networks", {"networks": []}))[0] == 400
    port = admin.network.create_port(network_id=net_id, name=f"{prefix}-p3")
    status, body = call(cloud, admin, "GET", "/v2.0/ports?fixed_ips=ip_address_substr=10.77.0")
    assert status == 200 and port.id in [p["id"] for p in body["ports"]]
    status, body = call(cloud, admin, "GET", "/v2.0/ports?fixed_ips=ip_address_substr=10.78.")
    assert port.id not in [p["id"] for p in body["ports"]]
    admin.network.delete_port(port)
    for name in (f"{prefix}-bulk1", f"{prefix}-bulk2"):
        admin.network.delete_network(admin.network.find_network(name))


def test_router_routes_null_and_rule_port_errors(admin: Any, cloud: Any, prefix: str) -> None:
    router = admin.network.create_router(name=f"{prefix}-r")
    status, body = call(cloud, admin, "PUT", f"/v2.0/routers/{router.id}", {"router": {"routes": None}})
    assert status == 200 and body["router"]["routes"] == []
    group = admin.network.create_security_group(name=f"{prefix}-sg")
    for low, high, message in ((-16, 80, "Invalid value for port -16"), (80, 65536, "Invalid value for port 65536"),
                               (None, 6, "port_range_min must be <= port_range_max")):
        status, body = call(cloud, admin, "POST", "/v2.0/security-group-rules", {"security_group_rule": {
            "security_group_id": group.id, "direction": "ingress", "protocol": "tcp",
            "port_range_min": low, "port_range_max": high}})
        assert status == 400 and message in body["NeutronError"]["message"], body
    admin.network.delete_security_group(group)
    admin.network.delete_router(router)


def test_external_network_delete_takes_its_floating_ips_and_agents_list_is_admins(admin: Any, demo: Any,
                                                                                   cloud: Any, prefix: str) -> None:
    net = admin.network.create_network(name=f"{prefix}-ext", is_router_external=True)
    admin.network.create_subnet(network_id=net.id, cidr="10.78.0.0/24", ip_version=4)
    fip = admin.network.create_ip(floating_network_id=net.id)
    blocker = admin.network.create_port(network_id=net.id, name=f"{prefix}-held")
    # another port keeps the network (and its floating IP) in place
    assert error(call(cloud, admin, "DELETE", f"/v2.0/networks/{net.id}"))[0] == 409
    assert admin.network.get_ip(fip.id).id == fip.id
    admin.network.delete_port(blocker)
    admin.network.delete_network(net)
    assert admin.network.find_ip(fip.id) is None
    assert list(admin.network.ports(network_id=net.id)) == []
    # the agents are for admins: others list none (Neutron filters the list by policy)
    assert call(cloud, demo, "GET", "/v2.0/agents") == (200, {"agents": []})


def test_port_extra_dhcp_opts_set_update_and_remove(admin: Any, cloud: Any, prefix: str) -> None:
    net = admin.network.create_network(name=f"{prefix}-dhcp")
    admin.network.create_subnet(network_id=net.id, cidr="10.79.0.0/24", ip_version=4)
    try:
        opts = [{"opt_name": "bootfile-name", "opt_value": "pxelinux.0"},
                {"opt_name": "tftp-server", "opt_value": "10.79.0.9"}]
        status, body = call(cloud, admin, "POST", "/v2.0/ports", {"port": {"network_id": net.id,
                                                                           "extra_dhcp_opts": opts}})
        assert status == 201, body
        port = body["port"]
        assert sorted(port["extra_dhcp_opts"], key=lambda o: o["opt_name"]) == [
            {"opt_name": "bootfile-name", "opt_value": "pxelinux.0", "ip_version": 4},
            {"opt_name": "tftp-server", "opt_value": "10.79.0.9", "ip_version": 4}]
        # an update sets the options it names and removes those with a null value; the others stay
        status, body = call(cloud, admin, "PUT", f"/v2.0/ports/{port['id']}", {"port": {"extra_dhcp_opts": [
            {"opt_name": "bootfile-name", "opt_value": "grub.efi"}, {"opt_name": "tftp-server", "opt_value": None},
            {"opt_name": "domain-search", "opt_value": "lab.example", "ip_version": 6}]}})
        assert status == 200, body
        assert sorted((o["opt_name"], o["opt_value"], o["ip_version"]) for o in body["port"]["extra_dhcp_opts"]) == [
            ("bootfile-name", "grub.efi", 4), ("domain-search", "lab.example", 6)]
        listed = call(cloud, admin, "GET", f"/v2.0/ports?id={port['id']}")[1]["ports"][0]
        assert len(listed["extra_dhcp_opts"]) == 2
        for bad in ({"opt_name": "", "opt_value": "x"}, {"opt_name": "a,b", "opt_value": "x"},
                    {"opt_name": "x", "opt_value": "y", "ip_version": 5}):
            assert error(call(cloud, admin, "PUT", f"/v2.0/ports/{port['id']}",
                              {"port": {"extra_dhcp_opts": [bad]}}))[0] == 400
        assert "extra_dhcp_opt" in {e.alias for e in admin.network.extensions()}
    finally:
        for p in admin.network.ports(network_id=net.id):
            if p.device_owner != "network:dhcp":
                admin.network.delete_port(p)
        admin.network.delete_network(net)


def test_subnet_pools_allocate_subnets(admin: Any, demo: Any, cloud: Any, prefix: str) -> None:
    status, body = call(cloud, demo, "POST", "/v2.0/subnetpools", {"subnetpool": {
        "name": f"{prefix}-pool", "prefixes": ["10.120.0.0/24", "10.120.1.0/24"], "default_prefixlen": 26}})
    assert status == 201, body
    pool = body["subnetpool"]
    assert pool["prefixes"] == ["10.120.0.0/23"] and pool["ip_version"] == 4  # merged
    assert (pool["default_prefixlen"], pool["max_prefixlen"], pool["shared"]) == (26, 32, False)
    net = demo.network.create_network(name=f"{prefix}-pooled")
    try:
        first = demo.network.create_subnet(network_id=net.id, subnetpool_id=pool["id"], ip_version=4)
        assert (first.cidr, first.subnet_pool_id) == ("10.120.0.0/26", pool["id"])
        status, body = call(cloud, demo, "POST", "/v2.0/subnets", {"subnet": {
            "network_id": net.id, "subnetpool_id": pool["id"], "prefixlen": 24, "ip_version": 4}})
        assert status == 201 and body["subnet"]["cidr"] == "10.120.1.0/24"  # the lowest free /24
        assert error(call(cloud, demo, "POST", "/v2.0/subnets", {"subnet": {
            "network_id": net.id, "subnetpool_id": pool["id"], "cidr": "10.120.0.32/27", "ip_version": 4}}))[0] == 409
        assert error(call(cloud, demo, "POST", "/v2.0/subnets", {"subnet": {
            "network_id": net.id, "subnetpool_id": pool["id"], "cidr": "10.99.0.0/24", "ip_version": 4}}))[0] == 400
        assert error(call(cloud, demo, "POST", "/v2.0/subnets", {"subnet": {
            "network_id": net.id, "subnetpool_id": pool["id"], "prefixlen": 8, "ip_version": 4}}))[0] == 400
        # a pool in use is not deleted; prefixes only grow; others do not see a private pool
        assert error(call(cloud, demo, "DELETE", f"/v2.0/subnetpools/{pool['id']}"))[0] == 409
        assert error(call(cloud, demo, "PUT", f"/v2.0/subnetpools/{pool['id']}",
                          {"subnetpool": {"prefixes": ["10.120.0.0/24"]}}))[0] == 400
        status, body = call(cloud, demo, "PUT", f"/v2.0/subnetpools/{pool['id']}",
                            {"subnetpool": {"prefixes": ["10.120.0.0/23", "10.121.0.0/24"], "name": "renamed"}})
        assert status == 200 and body["subnetpool"]["prefixes"] == ["10.120.0.0/23", "10.121.0.0/24"]
        assert error(call(cloud, demo, "PUT", f"/v2.0/subnetpools/{pool['id']}",
                          {"subnetpool": {"is_default": True}}))[0] == 403
        assert call(cloud, demo, "PUT", f"/v2.0/subnetpools/{pool['id']}/tags/blue", None)[0] == 201
        assert [p["id"] for p in call(cloud, demo, "GET", "/v2.0/subnetpools?tags=blue")[1]["subnetpools"]] == [
            pool["id"]]
        assert pool["id"] not in {p.id for p in admin.network.subnet_pools(project_id="nobody")}
        assert error(call(cloud, demo, "POST", "/v2.0/subnetpools", {"subnetpool": {
            "name": "x", "prefixes": ["10.0.0.0/24"], "shared": True}}))[0] == 403
    finally:
        demo.network.delete_network(net)
    assert call(cloud, demo, "DELETE", f"/v2.0/subnetpools/{pool['id']}")[0] == 204
    assert "subnet_allocation" in {e.alias for e in admin.network.extensions()}


def test_subnet_pool_through_the_cli(cloud: Any, prefix: str) -> None:
    pool = cloud.cli("subnet", "pool", "create", "--pool-prefix", "10.130.0.0/16", "--default-prefix-length",
                     "24", f"{prefix}-pool", "-f", "json")
    assert pool["prefixes"] == ["10.130.0.0/16"] and pool["default_prefixlen"] == 24
    net = cloud.cli("network", "create", f"{prefix}-pnet", "-f", "json")
    try:
        subnet = cloud.cli("subnet", "create", "--network", net["id"], "--subnet-pool", pool["id"],
                           f"{prefix}-psub", "-f", "json")
        assert subnet["cidr"] == "10.130.0.0/24" and subnet["subnetpool_id"] == pool["id"]
        sized = cloud.cli("subnet", "create", "--network", net["id"], "--subnet-pool", pool["id"],
                          "--prefix-length", "26", f"{prefix}-psub2", "-f", "json")
        assert sized["cidr"] == "10.130.1.0/26"
    finally:
        cloud.cli("network", "delete", net["id"])
    cloud.cli("subnet", "pool", "delete", pool["id"])
