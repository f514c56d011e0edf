"""Bad input and policy: 400s for invalid or overlapping CIDRs, gateways outside the subnet and unknown
attributes; 409 NetworkInUse; Neutron's error body; nothing half-created; what a member may not do."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from network_helpers import call, error


@pytest.fixture
def net(admin: Any, prefix: str) -> Any:
    network = admin.network.create_network(name=prefix)
    yield network
    for port in admin.network.ports(network_id=network.id):
        if not port.device_owner.startswith("network:"):
            admin.network.delete_port(port)
    admin.network.delete_network(network)


def subnets_of(admin: Any, network_id: str) -> list[Any]:
    return list(admin.network.subnets(network_id=network_id))


def test_invalid_and_overlapping_cidrs_are_400(cloud: Any, admin: Any, net: Any) -> None:
    for cidr in ("10.0.0.0/33", "300.0.0.0/24", "10.0.0.5/24", "not-a-cidr"):
        status, kind = error(call(cloud, admin, "POST", "/v2.0/subnets", {"subnet": {
            "network_id": net.id, "cidr": cidr, "ip_version": 4}}))
        assert status == 400 and kind in ("InvalidInput", "HTTPBadRequest"), cidr
    assert error(call(cloud, admin, "POST", "/v2.0/subnets", {"subnet": {
        "network_id": net.id, "cidr": "fd00::/64", "ip_version": 4}}))[0] == 400
    admin.network.create_subnet(network_id=net.id, cidr="10.30.0.0/24", ip_version=4)
    status, kind = error(call(cloud, admin, "POST", "/v2.0/subnets", {"subnet": {
        "network_id": net.id, "cidr": "10.30.0.128/25", "ip_version": 4}}))
    assert (status, kind) == (400, "InvalidInput")
    assert len(subnets_of(admin, net.id)) == 1
    proc = cloud.cli("subnet", "create", "x", "--network", net.id, "--subnet-range", "10.30.0.0/16", check=False)
    assert proc.returncode != 0 and "overlaps" in proc.stderr


def test_gateway_outside_subnet_is_400(cloud: Any, admin: Any, net: Any) -> None:
    for gateway in ("10.31.1.1", "10.31.0.0", "10.31.0.255", "fd00::1", "banana"):
        status, _ = error(call(cloud, admin, "POST", "/v2.0/subnets", {"subnet": {
            "network_id": net.id, "cidr": "10.31.0.0/24", "ip_version": 4, "gateway_ip": gateway}}))
        assert status == 400, gateway
    status, kind = error(call(cloud, admin, "POST", "/v2.0/subnets", {"subnet": {
        "network_id": net.id, "cidr": "10.31.0.0/24", "ip_version": 4,
        "allocation_pools": [{"start": "10.31.0.1", "end": "10.31.0.20"}]}}))
    assert (status, kind) == (409, "GatewayConflictWithAllocationPools")
    assert subnets_of(admin, net.id) == []
    nogw = admin.network.create_subnet(network_id=net.id, cidr="10.31.0.0/24", ip_version=4, gateway_ip=None)
    assert nogw.gateway_ip is None
    assert nogw.allocation_pools == [{"start": "10.31.0.1", "end": "10.31.0.254"}]


def test_unknown_fields_and_malformed_bodies_are_400(cloud: Any, admin: Any, net: Any) -> None:
    status, body = call(cloud, admin, "POST", "/v2.0/networks", {"network": {"name": "x", "colour": "red"}})
    assert status == 400 and "colour" in body["NeutronError"]["message"]
    cases = [
        ("POST", "/v2.0/ports", {"port": {"network_id": net.id, "bogus": 1}}),
        ("POST", "/v2.0/ports", {"port": {"network_id": net.id, "fixed_ips": [{"subnet": "x"}]}}),
        ("POST", "/v2.0/ports", {"port": {"network_id": net.id, "admin_state_up": "maybe"}}),
        ("POST", "/v2.0/ports", {"network_id": net.id}),
        ("POST", "/v2.0/subnets", {"subnet": {"network_id": net.id, "cidr": "10.32.0.0/24", "ip_version": 5}}),
        ("PUT", f"/v2.0/networks/{net.id}", {"network": {"id": "new-id"}}),
        ("POST", "/v2.0/security-group-rules", {"security_group_rule": {"direction": "sideways",
                                                                         "security_group_id": "x"}}),
        ("POST", "/v2.0/routers", {"router": {"name": "r", "external_gateway_info": {"net": "x"}}}),
        ("PUT", "/v2.0/quotas/whatever", {"quota": {"widgets": 5}}),
        ("GET", "/v2.0/ports?limit=abc", None),
    ]
    for method, path, body in cases:
        status, _ = error(call(cloud, admin, method, path, body))
        assert status == 400, (path, body)
    resp = requests.post(cloud.url("network") + "/v2.0/networks", data=b"{not json", timeout=10,
                         headers={"X-Auth-Token": admin.auth_token, "Content-Type": "application/json"})
    assert resp.status_code == 400 and "NeutronError" in resp.json()
    assert list(admin.network.ports(network_id=net.id)) == []
    assert admin.network.get_network(net.id).name == net.name


def test_not_found_types(cloud: Any, admin: Any) -> None:
    for path, kind in (("/v2.0/networks/nope", "NetworkNotFound"), ("/v2.0/subnets/nope", "SubnetNotFound"),
                       ("/v2.0/ports/nope", "PortNotFound"), ("/v2.0/routers/nope", "RouterNotFound"),
                       ("/v2.0/floatingips/nope", "FloatingIPNotFound"),
                       ("/v2.0/security-groups/nope", "SecurityGroupNotFound")):
        assert error(call(cloud, admin, "GET", path)) == (404, kind)
    unauth = requests.get(cloud.url("network") + "/v2.0/networks", timeout=10)
    assert unauth.status_code == 401 and unauth.json()["NeutronError"]["type"] == "HTTPUnauthorized"


def test_network_in_use_is_409_and_nothing_is_removed(cloud: Any, admin: Any, net: Any) -> None:
    subnet = admin.network.create_subnet(network_id=net.id, cidr="10.33.0.0/24", ip_version=4)
    port = admin.network.create_port(network_id=net.id, device_id="some-server", device_owner="compute:nova")
    assert error(call(cloud, admin, "DELETE", f"/v2.0/networks/{net.id}")) == (409, "NetworkInUse")
    assert error(call(cloud, admin, "DELETE", f"/v2.0/subnets/{subnet.id}")) == (409, "SubnetInUse")
    proc = cloud.cli("network", "delete", net.id, check=False)
    assert proc.returncode != 0
    assert admin.network.get_port(port.id).fixed_ips == port.fixed_ips
    assert admin.network.get_subnet(subnet.id).id == subnet.id
    admin.network.delete_port(port)
    admin.network.delete_subnet(subnet)


def test_failed_router_interface_leaves_nothing(cloud: Any, admin: Any, net: Any, prefix: str) -> None:
    no_gateway = admin.network.create_subnet(network_id=net.id, cidr="10.34.0.0/24", ip_version=4, gateway_ip=None)
    router = admin.network.create_router(name=prefix)
    try:
        status, kind = error(call(cloud, admin, "PUT", f"/v2.0/routers/{router.id}/add_router_interface",
                                  {"subnet_id": no_gateway.id}))
        assert (status, kind) == (400, "BadRequest")
        status, _ = error(call(cloud, admin, "PUT", f"/v2.0/routers/{router.id}",
                               {"router": {"external_gateway_info": {"network_id": net.id}}}))
        assert status == 400  # not an external network
        assert list(admin.network.ports(device_id=router.id)) == []
        assert admin.network.get_router(router.id).external_gateway_info is None
    finally:
        admin.network.delete_router(router)


# ----- policy ---------------------------------------------------------------------------------------------
def test_member_rules(cloud: Any, admin: Any, demo: Any, prefix: str) -> None:
    private = admin.network.create_network(name=f"{prefix}-admin-private")
    admin.network.create_subnet(network_id=private.id, cidr="10.35.0.0/24", ip_version=4)
    router = admin.network.create_router(name=f"{prefix}-admin-router")
    own = demo.network.create_network(name=f"{prefix}-demo")
    demo_subnet = demo.network.create_subnet(network_id=own.id, cidr="10.36.0.0/24", ip_version=4)
    try:
        # external networks and provider attributes are admin-only
        assert error(call(cloud, demo, "POST", "/v2.0/networks", {"network": {
            "name": "x", "router:external": True}})) == (403, "HTTPForbidden")
        assert error(call(cloud, demo, "POST", "/v2.0/networks", {"network": {
            "name": "x", "provider:network_type": "local"}}))[0] == 403
        assert error(call(cloud, demo, "POST", "/v2.0/networks", {"network": {"name": "x", "shared": True}}))[0] == 403
        # another project's private network does not exist for a member
        assert error(call(cloud, demo, "POST", "/v2.0/ports", {"port": {"network_id": private.id}})) == (
            404, "NetworkNotFound")
        assert error(call(cloud, demo, "POST", "/v2.0/subnets", {"subnet": {
            "network_id": private.id, "cidr": "10.37.0.0/24", "ip_version": 4}}))[0] == 404
        # ... nor can a member create things in another project
        assert error(call(cloud, demo, "POST", "/v2.0/networks", {"network": {
            "name": "x", "project_id": admin.current_project_id}}))[0] == 403
        # a port on the member's own network for another project's router is refused
        status, kind = error(call(cloud, demo, "POST", "/v2.0/ports", {"port": {
            "network_id": own.id, "device_id": router.id, "device_owner": "network:router_interface"}}))
        assert (status, kind) == (403, "DeviceIDNotOwnedByTenant")
        status, kind = error(call(cloud, demo, "POST", "/v2.0/ports", {"port": {
            "network_id": own.id, "device_id": router.id, "device_owner": "compute:nova"}}))
        assert (status, kind) == (403, "DeviceIDNotOwnedByTenant")
        # binding is for admins and services; members do not even see it
        assert error(call(cloud, demo, "POST", "/v2.0/ports", {"port": {
            "network_id": own.id, "binding:host_id": "host1"}}))[0] == 403
        port = demo.network.create_port(network_id=own.id)
        assert "binding:vif_type" not in call(cloud, demo, "GET", f"/v2.0/ports/{port.id}")[1]["port"]
        assert "binding:vif_type" in call(cloud, admin, "GET", f"/v2.0/ports/{port.id}")[1]["port"]
        # what a member owns it manages; what it does not own it cannot see
        assert demo.network.update_port(port, name="mine").name == "mine"
        assert error(call(cloud, demo, "GET", f"/v2.0/routers/{router.id}"))[0] == 404
        assert error(call(cloud, demo, "DELETE", f"/v2.0/networks/{private.id}"))[0] == 404
        assert {n.id for n in demo.network.networks()}.isdisjoint({private.id})
        assert demo_subnet.id in {s.id for s in demo.network.subnets()}
        assert error(call(cloud, demo, "PUT", f"/v2.0/quotas/{demo.current_project_id}",
                          {"quota": {"network": 1}}))[0] == 403
        demo.network.delete_port(port)
    finally:
        demo.network.delete_subnet(demo_subnet)
        demo.network.delete_network(own)
        admin.network.delete_router(router)
        admin.network.delete_network(private)
