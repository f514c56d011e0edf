"""The network agent as its own process would run it (`NetworkAgentService`), talking to the network service only
over RabbitMQ: the cloud runs without an agent of its own, the agent runs on another event loop with its own
AMQP connection, and a guest on its host still goes ACTIVE, gets DHCP and reaches the metadata proxy."""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import free_port, make_settings, require
from netagent_helpers import Guest, MetadataStub, leftovers, wait_for
from test_network_agent import AgentCloud, guest_port, port_status
from test_rpc import BROKER, rabbitmqctl

from pocketstack.common.rpc import close_transports
from pocketstack.common.service import shared_secret
from pocketstack.compute.spec import METADATA_SECRET_KEY
from pocketstack.network.service_app import NetworkAgentService


@pytest.fixture(scope="module", autouse=True)
def _data_plane_tools() -> None:
    """Root, the data plane's tools and the machine's RabbitMQ."""
    require("dnsmasq", "nft", "ip", "busybox", "rabbitmqctl", root=True)


class AgentProcess:
    """The agent on a loop of its own, as `pocketstack serve network-agent` would run it."""

    def __init__(self, settings: Any) -> None:
        self.service = NetworkAgentService(settings)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        try:
            await self.service.start()
        except BaseException as exc:
            self.error = exc
            raise
        finally:
            self._started.set()
        await self._stop.wait()
        await self.service.stop()
        await close_transports()

    def start(self) -> AgentProcess:
        self.thread.start()
        self._started.wait(60)
        if self.error is not None:
            raise RuntimeError("the agent did not start") from self.error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(60)


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AgentCloud, AgentProcess]]:
    vhost = f"pocketstack-test-{uuid.uuid4().hex[:12]}"
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    data_dir = tmp_path_factory.mktemp("remote-agent")
    settings = make_settings(data_dir, compute={"host": f"ra{uuid.uuid4().hex[:6]}"}, metadata={"port": free_port()},
                             rpc={"transport_url": f"{BROKER}/{vhost}"}, network={"agent_enabled": False})
    agent_settings = settings.model_copy(update={"network": settings.network.model_copy(
        update={"agent_enabled": True})})
    stub = MetadataStub(settings.port("metadata"), lambda: shared_secret(settings, "metadata", METADATA_SECRET_KEY))
    cloud = AgentCloud(settings).start()
    agent = None
    try:
        assert cloud.network_service.agent is None  # the cloud runs none: the only agent is the remote one
        agent = AgentProcess(agent_settings).start()
        yield cloud, agent
    finally:
        table = agent.service.agent.table if agent is not None and agent.service.agent else ""
        if agent is not None:
            agent.stop()
        cloud.stop()
        stub.stop()
        left = leftovers([], list(settings.network.bridge_mappings.values()), table, data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)
        rabbitmqctl("delete_vhost", vhost)
        assert not left, f"left on the host: {left}"


def test_remote_agent_plugs_serves_dhcp_and_metadata(remote: tuple[AgentCloud, AgentProcess], prefix: str,
                                                      tmp_path: Path) -> None:
    cloud, _ = remote
    conn = cloud.conn()
    network = conn.network.create_network(name=prefix)
    conn.network.create_subnet(network_id=network.id, cidr="10.94.0.0/24", ip_version=4)
    server_id = str(uuid.uuid4())
    port = guest_port(conn, cloud, network.id, device_id=server_id)
    guest = Guest(f"{prefix}r", port, tmp_path)
    try:
        wait_for(lambda: port_status(conn, port["id"]) == "ACTIVE", 30, "the port to go ACTIVE")
        # its heartbeat crossed the broker too: `network agent list` shows the remote agent's functions alive
        agents = {a.agent_type: a for a in conn.network.agents(host=cloud.settings.compute.host)}
        assert set(agents) == {"Linux bridge agent", "DHCP agent", "L3 agent", "Metadata agent"}
        assert all(a.is_alive for a in agents.values())
        assert guest.dhcp()["ip"] == guest.ip
        status, body = guest.http_get("http://169.254.169.254/openstack/latest/meta_data.json")
        assert status == 200 and json.loads(body)["instance_id"] == server_id and json.loads(body)["signed"]
    finally:
        guest.delete()
    conn.network.delete_port(port["id"])
    conn.network.delete_network(network)
    wait_for(lambda: not leftovers([network.id], [], "", Path("/nonexistent")), 30, "the network's data plane to go")
