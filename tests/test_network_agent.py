"""The host network data plane (network/agent) against a real all-in-one cloud, with namespaces as guests.

The cloud runs the agent in the network service; ports are made through the API as compute makes them
(device_owner compute:nova, bound to the agent's host) and a veth named like compute's tap stands in for the
guest's NIC. The compute metadata API is a stand-in here (it is built elsewhere); everything between the guest and
it — DHCP, routes, the proxy, its signature — is real.
"""

from __future__ import annotations

import http.server
import json
import shutil
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openstack
import pytest
from conftest import Cloud, free_port, make_settings, require
from netagent_helpers import Guest, MetadataStub, leftovers, link_exists, sh, tcp_reachable, wait_for

from pocketstack.common.rpc import get_transport
from pocketstack.common.service import shared_secret
from pocketstack.compute.spec import METADATA_SECRET_KEY
from pocketstack.launcher import CloudThread
from pocketstack.network.agent.agent import NetworkAgent
from pocketstack.services import SERVICES


@pytest.fixture(scope="module", autouse=True)
def _data_plane_tools() -> None:
    """The data plane needs root (namespaces, bridges, nftables), dnsmasq, nft, ip and busybox (guests' DHCP)."""
    require("dnsmasq", "nft", "ip", "busybox", root=True)


class AgentCloud(Cloud):
    """The all-in-one with the network agent; the metadata API is left to the test's stand-in."""

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self.thread = CloudThread(settings, [s for s in SERVICES if s.name != "metadata"])

    @property
    def network_service(self) -> Any:
        return next(s for s in self.thread.cloud.services if s.name == "network")

    @property
    def agent(self) -> Any:
        return self.network_service.agent

    def synced(self) -> None:
        """Wait until the agent has run a sync that started after now."""
        self.thread.call(self.agent.wait_synced, timeout=30)


@pytest.fixture(scope="module")
def acloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentCloud]:
    """The cloud with its agent; make_settings gives it its own public range and bridge, and has the agent remove
    what it made when the cloud stops — which is checked here."""
    data_dir = tmp_path_factory.mktemp("agentcloud")
    settings = make_settings(data_dir, compute={"host": f"ps{uuid.uuid4().hex[:6]}"}, metadata={"port": free_port()},
                             network={"agent_enabled": True, "agent_resync_interval": 5})
    stub = MetadataStub(settings.port("metadata"), lambda: shared_secret(settings, "metadata", METADATA_SECRET_KEY))
    cloud = AgentCloud(settings).start()
    try:
        yield cloud
    finally:
        table = cloud.agent.table
        ids = [n.id for n in cloud.conn().network.networks()] + [r.id for r in cloud.conn().network.routers()]
        cloud.stop()
        stub.stop()
        left = leftovers(ids, list(settings.network.bridge_mappings.values()), table, data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)
        assert not left, f"left on the host: {left}"


@pytest.fixture(scope="module")
def aadmin(acloud: AgentCloud) -> openstack.connection.Connection:
    return acloud.conn()


def guest_port(conn: Any, cloud: AgentCloud, network_id: str, **attrs: Any) -> dict[str, Any]:
    """A port as compute makes one for a server on the agent's host."""
    port = conn.network.create_port(network_id=network_id, device_owner="compute:nova",
                                    device_id=attrs.pop("device_id", str(uuid.uuid4())),
                                    binding_host_id=cloud.settings.compute.host, **attrs)
    return port.to_dict(computed=False) | {"binding:vif_details": port.binding_vif_details}


def port_status(conn: Any, port_id: str) -> str:
    return conn.network.get_port(port_id).status


@pytest.fixture
def net(aadmin: Any, prefix: str) -> Iterator[tuple[Any, Any]]:
    network = aadmin.network.create_network(name=prefix)
    subnet = aadmin.network.create_subnet(network_id=network.id, cidr="10.91.0.0/24", ip_version=4)
    yield network, subnet
    for port in aadmin.network.ports(network_id=network.id):
        if port.device_owner != "network:dhcp":
            aadmin.network.delete_port(port)
    aadmin.network.delete_network(network)
    gone = [f"qdhcp-{network.id}", "brq" + network.id[:11]]
    wait_for(lambda: not leftovers([network.id], gone, "", Path("/nonexistent")), 15,
             f"the data plane of network {network.id} to go")


def test_guest_port_goes_active_gets_dhcp_and_metadata(acloud: AgentCloud, aadmin: Any, net: Any, prefix: str,
                                                        tmp_path: Path) -> None:
    network, subnet = net
    server_id = str(uuid.uuid4())
    port = guest_port(aadmin, acloud, network.id, device_id=server_id)
    assert port["status"] == "DOWN"
    guest = Guest(f"{prefix}a", port, tmp_path)
    try:
        started = time.monotonic()
        wait_for(lambda: port_status(aadmin, port["id"]) == "ACTIVE", 15, "the port to go ACTIVE")
        print(f"\ntap up -> port ACTIVE (seen through the API): {time.monotonic() - started:.3f}s")

        dhcp_port = next(p for p in aadmin.network.ports(network_id=network.id) if p.device_owner == "network:dhcp")
        dhcp_ip = dhcp_port.fixed_ips[0]["ip_address"]
        assert dhcp_port.binding_host_id == acloud.settings.compute.host
        lease = guest.dhcp()
        assert lease["ip"] == guest.ip
        assert lease["mask"] == "24"
        assert lease["staticroutes"].split() == ["169.254.169.254/32", dhcp_ip, "0.0.0.0/0", subnet.gateway_ip]
        assert lease["mtu"] == str(network.mtu)
        assert lease["hostname"] == "host-" + guest.ip.replace(".", "-")
        routes = guest.run("ip", "route").stdout
        assert f"169.254.169.254 via {dhcp_ip}" in routes

        status, body = guest.http_get("http://169.254.169.254/openstack/latest/meta_data.json")
        assert status == 200, body
        seen = json.loads(body)
        assert seen == {"path": "/openstack/latest/meta_data.json", "instance_id": server_id,
                        "project_id": port["project_id"], "forwarded_for": guest.ip, "signed": True}
        status, body = guest.http_get("http://169.254.169.254/latest/meta-data/?x=1")
        assert status == 200 and json.loads(body)["path"] == "/latest/meta-data/?x=1"
    finally:
        guest.delete()
    wait_for(lambda: port_status(aadmin, port["id"]) == "DOWN", 15, "the port to go DOWN once its tap is gone")


def test_network_delete_removes_its_data_plane(acloud: AgentCloud, aadmin: Any, prefix: str) -> None:
    network = aadmin.network.create_network(name=prefix)
    aadmin.network.create_subnet(network_id=network.id, cidr="10.92.0.0/24", ip_version=4)
    bridge = "brq" + network.id[:11]
    ns = f"qdhcp-{network.id}"
    wait_for(lambda: ns in sh("ip", "netns", "list").stdout and link_exists(bridge), 15, "the DHCP namespace")
    acloud.synced()
    server = acloud.agent.dhcp_servers[network.id]
    pid = server.pid()
    assert pid is not None
    aadmin.network.delete_network(network)
    wait_for(lambda: ns not in sh("ip", "netns", "list").stdout and not link_exists(bridge), 15,
             "the namespace and bridge to go")
    assert not Path(f"/proc/{pid}/cmdline").exists() or b"dnsmasq" not in Path(f"/proc/{pid}/cmdline").read_bytes()


def test_restarted_agent_adopts_what_runs_and_catches_up(acloud: AgentCloud, aadmin: Any, net: Any, prefix: str,
                                                          tmp_path: Path) -> None:
    network, _ = net
    kept = guest_port(aadmin, acloud, network.id)
    guests = {"kept": Guest(f"{prefix}k", kept, tmp_path)}
    try:
        wait_for(lambda: port_status(aadmin, kept["id"]) == "ACTIVE", 15, "ACTIVE")
        dnsmasq = acloud.agent.dhcp_servers[network.id].pid()
        assert dnsmasq is not None
        service = acloud.network_service

        async def stop() -> None:
            await service.agent.stop()

        acloud.thread.call(stop)
        # while the agent is down: a guest goes away, another comes whose tap compute did not put on the bridge
        guests.pop("kept").delete()
        late = guest_port(aadmin, acloud, network.id)
        guests["late"] = Guest(f"{prefix}l", late, tmp_path, plug=False)
        time.sleep(0.5)
        assert port_status(aadmin, kept["id"]) == "ACTIVE" and port_status(aadmin, late["id"]) == "DOWN"

        async def start() -> None:
            service.agent_service.agent = NetworkAgent(service.settings, get_transport(service.settings))
            await service.agent.start()

        acloud.thread.call(start)
        wait_for(lambda: port_status(aadmin, late["id"]) == "ACTIVE", 15, "the late port to go ACTIVE")
        wait_for(lambda: port_status(aadmin, kept["id"]) == "DOWN", 15, "the gone port to go DOWN")
        assert acloud.agent.dhcp_servers[network.id].pid() == dnsmasq  # adopted, not restarted
        assert guests["late"].dhcp()["ip"] == guests["late"].ip
        assert guests["late"].http_get("http://169.254.169.254/openstack")[0] == 200
    finally:
        for guest in guests.values():
            guest.delete()


def test_unknown_source_gets_404_from_the_metadata_proxy(acloud: AgentCloud, aadmin: Any, net: Any, prefix: str,
                                                          tmp_path: Path) -> None:
    network, _ = net
    port = guest_port(aadmin, acloud, network.id, port_security_enabled=False)
    guest = Guest(f"{prefix}u", port, tmp_path)
    try:
        guest.dhcp()
        guest.run("ip", "addr", "add", "10.91.0.250/24", "dev", guest.nic)  # no port has it: unfiltered port
        code = ("import http.client\n"
                "c = http.client.HTTPConnection('169.254.169.254', 80, timeout=5, source_address=('10.91.0.250', 0))\n"
                "c.request('GET', '/openstack/latest/meta_data.json'); print(c.getresponse().status)\n")
        assert guest.run("python3", "-c", code).stdout.strip() == "404"
    finally:
        guest.delete()


def test_security_group_ingress_default_deny_until_a_rule_allows(acloud: AgentCloud, aadmin: Any, net: Any,
                                                                 prefix: str, tmp_path: Path) -> None:
    network, _ = net
    sg = aadmin.network.create_security_group(name=prefix)
    server = guest_port(aadmin, acloud, network.id, security_group_ids=[sg.id])
    client = guest_port(aadmin, acloud, network.id)
    guests = [Guest(f"{prefix}s", server, tmp_path), Guest(f"{prefix}c", client, tmp_path)]
    try:
        for guest in guests:
            guest.configure(f"{guest.ip}/24")
        wait_for(lambda: all(port_status(aadmin, p["id"]) == "ACTIVE" for p in (server, client)), 15, "ACTIVE")
        guests[0].serve_http(8080)
        url = f"http://{guests[0].ip}:8080/"
        assert guests[1].http_get(url, timeout=2)[0] == 0  # no ingress rule: dropped
        rule = aadmin.network.create_security_group_rule(security_group_id=sg.id, direction="ingress",
                                                         protocol="tcp", port_range_min=8080, port_range_max=8080)
        acloud.synced()
        assert guests[1].http_get(url) == (200, guests[1].ip)
        # a spoofed source address is dropped on the way out of the client's tap, whatever the rules
        guests[1].run("ip", "addr", "add", "10.91.0.251/24", "dev", guests[1].nic)
        code = ("import socket\n"
                "s = socket.socket(); s.settimeout(2); s.bind(('10.91.0.251', 0))\n"
                f"print(s.connect_ex(({guests[0].ip!r}, 8080)))\n")
        assert guests[1].run("python3", "-c", code).stdout.strip() != "0"
        aadmin.network.delete_security_group_rule(rule)
        acloud.synced()
        assert guests[1].http_get(url, timeout=2)[0] == 0
    finally:
        for guest in guests:
            guest.delete()
    for p in (server, client):
        aadmin.network.delete_port(p["id"])
    aadmin.network.delete_security_group(sg)


def test_floating_ip_reaches_a_guest_from_the_host(acloud: AgentCloud, aadmin: Any, prefix: str,
                                                   tmp_path: Path) -> None:
    conn = aadmin
    public = conn.network.find_network("public")
    private = conn.network.find_network("private")
    router = conn.network.find_router("router1")
    assert public.is_router_external and public.provider_network_type == "flat"
    assert router.external_gateway_info["network_id"] == public.id
    assert str(public.subnet_ids) and private.project_id == router.project_id
    public_subnet = conn.network.get_subnet(public.subnet_ids[0])
    assert public_subnet.cidr == acloud.settings.network.public_cidr
    sg = conn.network.create_security_group(name=prefix, project_id=private.project_id)
    conn.network.create_security_group_rule(security_group_id=sg.id, direction="ingress", protocol="tcp",
                                            port_range_min=8080, port_range_max=8080)
    port = guest_port(conn, acloud, private.id, project_id=private.project_id, security_group_ids=[sg.id])
    other = guest_port(conn, acloud, private.id, project_id=private.project_id)
    guests = [Guest(f"{prefix}f", port, tmp_path), Guest(f"{prefix}n", other, tmp_path)]
    fip = None
    try:
        for guest in guests:
            guest.dhcp()  # default route to the router from option 121
        guests[0].serve_http(8080)
        guests[0].serve_http(8081)
        fip = conn.network.create_ip(floating_network_id=public.id, port_id=port["id"],
                                     project_id=private.project_id)
        wait_for(lambda: conn.network.get_ip(fip.id).status == "ACTIVE", 15, "the floating IP to go ACTIVE")
        # from the host, which holds the public gateway address on the public bridge
        body = wait_for(lambda: _get(f"http://{fip.floating_ip_address}:8080/"), 10, "the floating IP to answer")
        assert body == public_subnet.gateway_ip  # DNAT only: the guest sees the host's address
        assert not tcp_reachable(fip.floating_ip_address, 8081)  # it listens, but its group allows 8080 only
        # the guest's own traffic leaves with its floating address; a guest without one with the router's
        listener = HostListener(public_subnet.gateway_ip)
        try:
            gw_ip = router.external_gateway_info["external_fixed_ips"][0]["ip_address"]
            for guest, source in ((guests[0], fip.floating_ip_address), (guests[1], gw_ip)):
                assert guest.http_get(f"http://{public_subnet.gateway_ip}:{listener.port}/") == (200, source)
        finally:
            listener.stop()
        # the router's extra routes are in its namespace
        hop = other["fixed_ips"][0]["ip_address"]
        conn.network.update_router(router, routes=[{"destination": "192.168.77.0/24", "nexthop": hop}])
        acloud.synced()
        assert f"192.168.77.0/24 via {hop}" in sh("ip", "-n", f"qrouter-{router.id}", "route").stdout
        conn.network.update_router(router, routes=[])
        acloud.synced()
        assert "192.168.77.0/24" not in sh("ip", "-n", f"qrouter-{router.id}", "route").stdout
        conn.network.update_ip(fip, port_id=None)
        wait_for(lambda: _get(f"http://{fip.floating_ip_address}:8080/") is None, 10, "the floating IP to stop")
    finally:
        for guest in guests:
            guest.delete()
        if fip is not None:
            conn.network.delete_ip(fip)
        for p in (port, other):
            conn.network.delete_port(p["id"])
        conn.network.delete_security_group(sg)


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.read().decode()
    except OSError:
        return None


class HostListener:
    """An HTTP server on the host answering its client's address."""

    def __init__(self, address: str) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = self.client_address[0].encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer((address, 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
