"""Port binding as compute does it (through the typed NetworkClient), the agent's plugged/unplugged report,
and the compute notification hook (`os-server-external-events`), against a recording stand-in for compute."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import openstack
import pytest

from pocketstack.common.clients.network import NetworkClient
from pocketstack.network.notifier import PLUGGED, UNPLUGGED, VifEvent


@pytest.fixture(scope="module")
def admin(cloud: Any) -> openstack.connection.Connection:
    return cloud.conn()


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
    assert event == VifEvent(PLUGGED, "server-2", port.id)
    assert admin.network.get_port(port.id).status == "ACTIVE"
    # there is no compute endpoint in the catalog: the hook has nobody to tell
    notifier = network_service(cloud).notifier
    assert cloud.thread.call(notifier.compute_url) is None
    assert cloud.thread.call(lambda: notifier.send([event])) is False
    moved = admin.network.update_port(port.id, binding_host_id="host-b")
    assert moved.status == "DOWN" and moved.binding_host_id == "host-b"


class _Recorder(BaseHTTPRequestHandler):
    events: list[tuple[str, str, dict[str, Any]]] = []
    arrived = threading.Condition()

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.arrived:
            self.events.append((self.path, self.headers.get("X-Auth-Token", ""), body))
            self.arrived.notify_all()
        reply = json.dumps({"events": [{**e, "code": 200} for e in body["events"]]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fake_compute(admin: Any) -> Iterator[type[_Recorder]]:
    """A recording HTTP server registered in the catalog as `compute` for the duration of one test."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Recorder.events = []
    url = f"http://127.0.0.1:{server.server_address[1]}/v2.1"
    service = admin.identity.create_service(type="compute", name="fake-nova")
    endpoints = [admin.identity.create_endpoint(service_id=service.id, interface=i, url=url, region_id="RegionOne")
                 for i in ("public", "internal")]
    try:
        yield _Recorder
    finally:
        for endpoint in endpoints:
            admin.identity.delete_endpoint(endpoint)
        admin.identity.delete_service(service)
        server.shutdown()
        server.server_close()


def _wait_events(recorder: type[_Recorder], count: int) -> list[tuple[str, str, dict[str, Any]]]:
    with recorder.arrived:
        recorder.arrived.wait_for(lambda: len(recorder.events) >= count, timeout=15)
    return list(recorder.events)


def test_vif_events_reach_compute_when_it_is_in_the_catalog(cloud: Any, admin: Any, net: Any,
                                                            fake_compute: type[_Recorder]) -> None:
    network, _ = net
    service = network_service(cloud)
    port = admin.network.create_port(network_id=network.id, device_id="server-3", device_owner="compute:nova",
                                     binding_host_id="host-a")
    cloud.thread.call(lambda: service.manager.report_port_status(port.id, "host-a", True))
    cloud.thread.call(lambda: service.manager.report_port_status(port.id, "host-a", False))
    admin.network.delete_port(port)
    cloud.thread.call(service.notifier.drain)
    events = _wait_events(fake_compute, 1)
    assert {e[0] for e in events} == {"/v2.1/os-server-external-events"}
    bodies = [b for e in events for b in e[2]["events"]]  # in order, possibly batched
    assert [b["name"] for b in bodies] == [PLUGGED, UNPLUGGED, "network-vif-deleted"]
    assert all(b["server_uuid"] == "server-3" and b["tag"] == port.id and b["status"] == "completed"
               for b in bodies)
    token = events[0][1]
    assert token and admin.identity.validate_token(token) is not None  # a real service token
    # ports that belong to no server produce no events
    plain = admin.network.create_port(network_id=network.id, binding_host_id="host-a")
    assert cloud.thread.call(lambda: service.manager.report_port_status(plain.id, "host-a", True)) is None
    assert admin.network.get_port(plain.id).status == "ACTIVE"
