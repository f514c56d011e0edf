"""The amqp transport across a real RabbitMQ restart (`rabbitmqctl stop_app` / `start_app`), in a vhost of its own:
servers and clients reconnect by themselves, a call waiting when the broker went away fails with a clear error,
a cast sent while it is away is delivered once it is back, and a cast nobody can take fails clearly."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
from dist_helpers import BROKER, engines_available, rabbitmqctl

from pocketstack.common.rpc import RPCAPI, RPCEndpoint, RPCServer, Target, TransportError
from pocketstack.common.rpc.amqp import AmqpTransport


class Echo(RPCEndpoint):
    namespace = "echo"
    version = "1.0"

    def __init__(self) -> None:
        self.notes: list[str] = []
        self.noted = asyncio.Event()

    async def echo(self, value: str, delay: float = 0.0) -> str:
        await asyncio.sleep(delay)
        return value

    async def note(self, text: str) -> None:
        self.notes.append(text)
        self.noted.set()


class EchoAPI(RPCAPI):
    topic = "echo"
    namespace = "echo"
    version = "1.0"


@pytest.fixture
def vhost() -> Iterator[str]:
    engines_available()
    name = f"pstest_rpc_{uuid.uuid4().hex[:8]}"
    rabbitmqctl("add_vhost", name)
    try:
        rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        yield name
    finally:
        rabbitmqctl("delete_vhost", name)


async def _restart_broker(down: float) -> None:
    try:
        await asyncio.to_thread(rabbitmqctl, "stop_app")
        await asyncio.sleep(down)
    finally:
        await asyncio.to_thread(rabbitmqctl, "start_app")


@pytest.mark.asyncio
async def test_clients_and_servers_reconnect_after_a_broker_restart(vhost: str) -> None:
    url = f"{BROKER.rstrip('/')}/{vhost}"
    server_side, client_side = AmqpTransport(url, call_timeout=30), AmqpTransport(url, call_timeout=30)
    endpoint = Echo()
    server = RPCServer(server_side, "echo", "h1", [endpoint])
    try:
        await server.start()
        api = EchoAPI(client_side)
        assert await api.prepare().call("echo", value="before") == "before"
        waiting = asyncio.ensure_future(api.prepare().call("echo", value="slow", delay=3.0))
        await asyncio.sleep(0.5)
        restart = asyncio.ensure_future(_restart_broker(down=2.0))
        await asyncio.sleep(0.5)  # the broker is going down: this cast waits for it to come back
        cast = asyncio.ensure_future(api.prepare().cast("note", text="sent while down"))
        with pytest.raises(TransportError, match="lost"):  # its reply queue went with the connection
            await asyncio.wait_for(waiting, 30)
        await restart
        await asyncio.wait_for(cast, 30)
        await asyncio.wait_for(endpoint.noted.wait(), 30)
        assert endpoint.notes == ["sent while down"]
        assert await api.prepare().call("echo", value="after") == "after"
        assert await api.prepare(server="h1").call("echo", value="direct") == "direct"
    finally:
        await server.stop()
        await server_side.close()
        await client_side.close()


@pytest.mark.asyncio
async def test_a_cast_nobody_can_take_fails_clearly(vhost: str) -> None:
    transport = AmqpTransport(f"{BROKER.rstrip('/')}/{vhost}", publish_timeout=1.0)
    try:
        with pytest.raises(TransportError, match="'nobody' within 1s: no queue is bound to it"):
            await transport.cast(Target("nobody"), b"\x80")
    finally:
        await transport.close()
