"""Port binding as compute does it (through the typed NetworkClient), the agent's plugged/unplugged report,
and the compute notification hook (`os-server-external-events`), against a recording stand-in for compute."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pocketstack.common.clients.compute_events import PLUGGED, UNPLUGGED, ServerEvent
from pocketstack.common.clients.network import NetworkClient


def network_service(cloud: Any) -> Any:
    return next(s for s in cloud.thread.cloud.services if s.name == "network")


@pytest.fixture
def net(admin: Any, prefix: str) -> Iterator[tuple[Any, Any]]:
    network = admin.network.create_network(name=prefix)
    subnet = admin.network.create_subnet(network_id=network.id, cidr="10.60.0.0/24", ip_version=4)
    yield network, subnet
    for port in admin.network.ports(network_id=network.id):
        admin.network.delete_port(port)
    admin.network.delete_network(network)


def test_compute_binds_a_port_through_the_network_client(cloud: Any, admin: Any, net: Any) -> None:
    network, subnet = net
    client = NetworkClient(cloud.url("network"))
    token = admin.auth_token

    async def compute_side() -> tuple[dict[str, Any], ...]:
        seen_net = await client.get_network(network.id, token=token)
        seen_subnet = await client.get_subnet(subnet.id, token=token)
        port = await client.create_port(network.id, token=token, device_owner="compute:nova")
        bound = await client.bind_port(port["id"], "host-a", "server-1", token=token)
        extra = [await client.create_port(network.id, token=token, device_id="server-1") for _ in range(2)]
        listed = await client.list_ports(token=token, device_id="server-1", limit="1")  # 3 pages
        return seen_net, seen_subnet, port, bound, extra, listed

    seen_net, seen_subnet, port, bound, extra, listed = cloud.thread.call(compute_side)
    assert seen_net["id"] == network.id and seen_subnet["cidr"] == "10.60.0.0/24"
    assert port["binding:vif_type"] == "unbound" and port["status"] == "DOWN"
    assert bound["binding:host_id"] == "host-a" and bound["device_id"] == "server-1"
    assert bound["binding:vif_type"] == "bridge"
    assert bound["binding:vif_details"]["bridge_name"] == "brq" + network.id[:11]
    assert bound["status"] == "DOWN"  # until the host's agent reports it plugged
    assert sorted(p["id"] for p in listed) == sorted([port["id"]] + [p["id"] for p in extra])
    unbound = cloud.thread.call(lambda: client.update_port(port["id"], token=token, **{"binding:host_id": ""}))
    assert unbound["binding:vif_type"] == "unbound" and unbound["binding:vif_details"] == {}


def test_flat_network_binds_to_mapped_bridge_or_fails(cloud: Any, admin: Any, prefix: str) -> None:
    flat = admin.network.create_network(name=prefix, provider_network_type="flat",
                                        provider_physical_network=f"{prefix}-unmapped")
    try:
        port = admin.network.create_port(network_id=flat.id, binding_host_id="host-a")
        assert port.binding_vif_type == "binding_failed"  # no bridge mapping for that physical network
    finally:
        admin.network.delete_port(port)
        admin.network.delete_network(flat)


def test_agent_report_marks_port_active_without_compute(cloud: Any, admin: Any, net: Any) -> None:
    network, _ = net
    port = admin.network.create_port(network_id=network.id, device_id="server-2", device_owner="compute:nova",
                                     binding_host_id="host-a")
    manager = network_service(cloud).manager
    assert cloud.thread.call(lambda: manager.report_port_status(port.id, "host-b", True)) is None  # stale host
    assert admin.network.get_port(port.id).status == "DOWN"
    event = cloud.thread.call(lambda: manager.report_port_status(port.id, "host-a", True))
    assert event == ServerEvent(PLUGGED, "server-2", port.id)
    assert admin.network.get_port(port.id).status == "ACTIVE"
    # compute is in the catalog: the hook tells it (compute answers 207, it has no server "server-2")
    notifier = network_service(cloud).notifier
    assert cloud.thread.call(notifier.compute_url) == cloud.url("compute") + "/v2.1"
    assert cloud.thread.call(lambda: notifier.send([event])) is True
    moved = admin.network.update_port(port.id, binding_host_id="host-b")
    assert moved.status == "DOWN" and moved.binding_host_id == "host-b"


def test_vif_events_reach_compute(cloud: Any, admin: Any, net: Any) -> None:
    """Plugged, unplugged and deleted ports of a real server reach its compute agent through the compute API."""
    network, _ = net
    service = network_service(cloud)
    image = admin.image.create_image(name="vif-events", disk_format="raw", container_format="bare",
                                     data=b"\0" * 512)
    server = admin.compute.create_server(name="vif-events", image_id=image.id, flavor_id="1",
                                         networks=[{"uuid": network.id}])
    server = admin.compute.wait_for_server(server, wait=30)
    compute = next(s for s in cloud.thread.cloud.services if s.name == "compute")
    agent = next(a for a in compute.agents if a.host == server.compute_host)
    (port,) = list(admin.network.ports(device_id=server.id))
    cloud.thread.call(lambda: service.manager.report_port_status(port.id, server.compute_host, True))
    cloud.thread.call(lambda: service.manager.report_port_status(port.id, server.compute_host, False))
    cloud.thread.call(service.notifier.drain)
    admin.compute.delete_server(server)
    admin.compute.wait_for_delete(server, wait=30)
    admin.image.delete_image(image)
    events = [(name, tag) for uuid, name, tag, _ in agent.external_events if uuid == server.id]
    assert events[:2] == [(PLUGGED, port.id), (UNPLUGGED, port.id)]


def test_ports_of_no_server_send_no_events(cloud: Any, admin: Any, net: Any) -> None:
    network, _ = net
    service = network_service(cloud)
    plain = admin.network.create_port(network_id=network.id, binding_host_id="host-a")
    assert cloud.thread.call(lambda: service.manager.report_port_status(plain.id, "host-a", True)) is None
    assert admin.network.get_port(plain.id).status == "ACTIVE"
