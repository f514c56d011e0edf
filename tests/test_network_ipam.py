"""IPAM under concurrency through the real HTTP API: distinct addresses, 409s for taken and exhausted,
freed addresses reused, MAC addresses unique per network; plus the subnet geometry rules."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

import aiohttp
import pytest

from pocketstack.common.errors import BadRequest, Conflict
from pocketstack.network import ipam


async def _post_ports(url: str, token: str, bodies: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """POST all port bodies at once over a pool of connections; (status, JSON) per request, in order."""
    connector = aiohttp.TCPConnector(limit=len(bodies))
    async with aiohttp.ClientSession(connector=connector) as http:
        async def one(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
            async with http.post(url + "/v2.0/ports", json={"port": body},
                                 headers={"X-Auth-Token": token}) as resp:
                return resp.status, await resp.json()

        return await asyncio.gather(*(one(b) for b in bodies))


def post_ports(cloud: Any, token: str, bodies: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    return asyncio.run(_post_ports(cloud.url("network"), token, bodies))


@pytest.fixture
def network(admin: Any, prefix: str) -> Any:
    net = admin.network.create_network(name=prefix)
    yield net
    for port in admin.network.ports(network_id=net.id):
        admin.network.delete_port(port)
    admin.network.delete_network(net)


def test_100_concurrent_ports_get_distinct_pool_addresses(cloud: Any, admin: Any, network: Any) -> None:
    subnet = admin.network.create_subnet(network_id=network.id, cidr="10.100.0.0/24", ip_version=4,
                                         allocation_pools=[{"start": "10.100.0.10", "end": "10.100.0.200"}])
    results = post_ports(cloud, admin.auth_token, [{"network_id": network.id} for _ in range(100)])
    assert [status for status, _ in results] == [201] * 100, [b for s, b in results if s != 201][:3]
    ports = [body["port"] for _, body in results]
    ips = [p["fixed_ips"][0]["ip_address"] for p in ports]
    assert len(set(ips)) == 100
    low, high = int(ipaddress.ip_address("10.100.0.10")), int(ipaddress.ip_address("10.100.0.200"))
    assert all(low <= int(ipaddress.ip_address(ip)) <= high for ip in ips)
    assert {"10.100.0.0", "10.100.0.1", "10.100.0.255"}.isdisjoint(ips)
    assert all(p["fixed_ips"][0]["subnet_id"] == subnet.id for p in ports)
    assert len({p["mac_address"] for p in ports}) == 100
    stored = {p.fixed_ips[0]["ip_address"] for p in admin.network.ports(network_id=network.id)}
    assert stored == set(ips)
    availability = admin.network.get_network_ip_availability(network.id)
    assert (availability.used_ips, availability.total_ips) == (100, 191)


def test_exhausted_subnet_gives_409_and_delete_frees(cloud: Any, admin: Any, network: Any) -> None:
    admin.network.create_subnet(network_id=network.id, cidr="10.101.0.0/29", ip_version=4)  # .2-.6 free
    results = post_ports(cloud, admin.auth_token, [{"network_id": network.id} for _ in range(8)])
    created = [body["port"] for status, body in results if status == 201]
    failed = [body for status, body in results if status == 409]
    assert len(created) == 5 and len(failed) == 3
    assert {f["NeutronError"]["type"] for f in failed} == {"IpAddressGenerationFailure"}
    assert sorted(p["fixed_ips"][0]["ip_address"] for p in created) == [f"10.101.0.{i}" for i in range(2, 7)]
    assert len(list(admin.network.ports(network_id=network.id))) == 5  # nothing half-created
    freed = created[0]["fixed_ips"][0]["ip_address"]
    admin.network.delete_port(created[0]["id"])
    again = admin.network.create_port(network_id=network.id)
    assert again.fixed_ips[0]["ip_address"] == freed


def test_same_requested_ip_concurrently_only_one_wins(cloud: Any, admin: Any, network: Any) -> None:
    subnet = admin.network.create_subnet(network_id=network.id, cidr="10.102.0.0/24", ip_version=4)
    wanted = {"network_id": network.id, "fixed_ips": [{"subnet_id": subnet.id, "ip_address": "10.102.0.50"}]}
    results = post_ports(cloud, admin.auth_token, [wanted] * 10)
    assert sorted(status for status, _ in results) == [201] + [409] * 9
    assert {b["NeutronError"]["type"] for s, b in results if s == 409} == {"IpAddressAlreadyAllocated"}
    # the gateway is taken too; the network address and an address outside the subnet are invalid
    for ip, status, kind in (("10.102.0.1", 409, "IpAddressAlreadyAllocated"),
                             ("10.102.0.0", 400, "InvalidIpForSubnet"),
                             ("10.102.0.255", 400, "InvalidIpForSubnet"),
                             ("10.103.0.5", 400, "InvalidIpForSubnet")):
        [(got, body)] = post_ports(cloud, admin.auth_token, [
            {"network_id": network.id, "fixed_ips": [{"subnet_id": subnet.id, "ip_address": ip}]}])
        assert (got, body["NeutronError"]["type"]) == (status, kind), ip
    [(got, body)] = post_ports(cloud, admin.auth_token, [
        {"network_id": network.id, "fixed_ips": [{"ip_address": "172.16.0.5"}]}])
    assert (got, body["NeutronError"]["type"]) == (400, "InvalidIpForNetwork")
    assert len(list(admin.network.ports(network_id=network.id))) == 1


def test_mac_addresses_unique_per_network(cloud: Any, admin: Any, network: Any, prefix: str) -> None:
    admin.network.create_subnet(network_id=network.id, cidr="10.104.0.0/24", ip_version=4)
    first = admin.network.create_port(network_id=network.id, mac_address="fa:16:3e:00:00:01")
    assert first.mac_address == "fa:16:3e:00:00:01"
    [(status, body)] = post_ports(cloud, admin.auth_token, [
        {"network_id": network.id, "mac_address": "FA:16:3E:00:00:01"}])
    assert (status, body["NeutronError"]["type"]) == (409, "MacAddressInUse")
    [(status, body)] = post_ports(cloud, admin.auth_token, [
        {"network_id": network.id, "mac_address": "01:00:5e:00:00:01"}])
    assert status == 400  # multicast
    other = admin.network.create_network(name=f"{prefix}-other")
    try:
        same = admin.network.create_port(network_id=other.id, mac_address="fa:16:3e:00:00:01")
        assert same.mac_address == first.mac_address
        admin.network.delete_port(same)
    finally:
        admin.network.delete_network(other)


# ----- subnet geometry (unit) ---------------------------------------------------------------------------------
def test_default_pools_skip_gateway_network_and_broadcast() -> None:
    net = ipam.parse_cidr("192.168.0.0/24", 4)
    assert ipam.default_pools(net, "192.168.0.1") == [{"start": "192.168.0.2", "end": "192.168.0.254"}]
    assert ipam.default_pools(net, "192.168.0.100") == [{"start": "192.168.0.1", "end": "192.168.0.99"},
                                                       {"start": "192.168.0.101", "end": "192.168.0.254"}]
    assert ipam.default_pools(net, None) == [{"start": "192.168.0.1", "end": "192.168.0.254"}]
    v6 = ipam.parse_cidr("fd00::/120", 6)
    assert ipam.default_pools(v6, "fd00::1") == [{"start": "fd00::2", "end": "fd00::ff"}]


@pytest.mark.parametrize(("cidr", "version"), [("10.0.0.0/33", 4), ("10.0.0.1/24", 4), ("banana", 4),
                                               ("10.0.0.0/24", 6), ("10.0.0.0/31", 4)])
def test_bad_cidrs(cidr: str, version: int) -> None:
    with pytest.raises(BadRequest):
        ipam.parse_cidr(cidr, version)


def test_pool_and_gateway_checks() -> None:
    net = ipam.parse_cidr("10.0.0.0/24", 4)
    with pytest.raises(BadRequest):
        ipam.check_gateway(net, "10.0.1.1")
    with pytest.raises(BadRequest):
        ipam.check_gateway(net, "10.0.0.255")
    with pytest.raises(BadRequest) as outside:
        ipam.check_pools(net, [{"start": "10.0.0.0", "end": "10.0.0.10"}], "10.0.0.1")
    assert outside.value.error_type == "OutOfBoundsAllocationPool"
    with pytest.raises(BadRequest) as overlap:
        ipam.check_pools(net, [{"start": "10.0.0.2", "end": "10.0.0.10"},
                               {"start": "10.0.0.10", "end": "10.0.0.20"}], "10.0.0.1")
    assert overlap.value.error_type == "OverlappingAllocationPools"
    with pytest.raises(Conflict) as gateway:
        ipam.check_pools(net, [{"start": "10.0.0.1", "end": "10.0.0.10"}], "10.0.0.5")
    assert gateway.value.error_type == "GatewayConflictWithAllocationPools"
    with pytest.raises(BadRequest):
        ipam.check_pools(net, [{"start": "10.0.0.20", "end": "10.0.0.10"}], None)


def test_windows_cover_every_pool_address_once() -> None:
    from pocketstack.network import models as m

    subnet = m.Subnet(allocation_pools=[{"start": "10.0.0.2", "end": "10.0.0.100"},
                                        {"start": "10.0.0.150", "end": "10.0.0.160"}])
    expected = sorted(int(ipaddress.ip_address(f"10.0.0.{i}")) for i in [*range(2, 101), *range(150, 161)])
    for _ in range(20):  # the first window is random; together they always cover the pools exactly
        windows = list(ipam._windows(subnet, 16))
        assert sorted(v for w in windows for v in w) == expected
        assert all(1 <= len(w) <= 16 for w in windows)


def test_sampled_offsets_map_onto_the_pools() -> None:
    spans = [(10, 12), (20, 21)]
    assert [ipam._nth(spans, i) for i in range(5)] == [10, 11, 12, 20, 21]
    with pytest.raises(IndexError):
        ipam._nth(spans, 5)
