"""Contract tests of the RPC bus, the same on both transports: `local` (asyncio) and `amqp` (the machine's
RabbitMQ, in a vhost of its own per run, created and deleted with rabbitmqctl)."""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import os
import shutil
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from pocketstack.common.context import RequestContext, current_context, get_current
from pocketstack.common.errors import Conflict, NotFound
from pocketstack.common.rpc import (
    RPCAPI,
    InvalidArguments,
    MessagingTimeout,
    NoSuchMethod,
    RemoteError,
    RPCClient,
    RPCEndpoint,
    RPCServer,
    RPCVersionCapError,
    SerializationError,
    Target,
    Transport,
    TransportError,
    UnsupportedVersion,
    close_transports,
    get_transport,
    register_remote_exception,
    serializer,
)
from pocketstack.common.rpc.amqp import AmqpTransport
from pocketstack.common.rpc.local import LocalTransport
from pocketstack.settings import Settings

BROKER = os.environ.get("POCKETSTACK_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672")


def rabbitmqctl(*args: str) -> str:
    exe = shutil.which("rabbitmqctl")
    if exe is None:
        pytest.fail("rabbitmqctl is not installed: the amqp contract tests need the machine's RabbitMQ")
    done = subprocess.run([exe, "-q", *args], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        pytest.fail(f"rabbitmqctl {' '.join(args)} failed: {done.stderr or done.stdout}")
    return done.stdout


@pytest.fixture(scope="module")
def vhost() -> Iterator[str]:
    """A RabbitMQ vhost for this run only: nothing of another run can be seen or left over."""
    name = f"pocketstack-test-{uuid.uuid4().hex[:12]}"
    rabbitmqctl("add_vhost", name)
    try:
        rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        yield name
    finally:
        rabbitmqctl("delete_vhost", name)


class Bus:
    """Transports on one bus: each stands for a process (its own connection on amqp)."""

    def __init__(self, kind: str, vhost: str | None) -> None:
        self.kind = kind
        self.vhost = vhost
        self.transports: list[Transport] = []
        self._local = LocalTransport(call_timeout=5.0)

    def transport(self) -> Transport:
        if self.kind == "local":
            return self._local  # one process: every client and server shares the loop's bus
        transport = AmqpTransport(f"{BROKER}/{self.vhost}", call_timeout=5.0)
        self.transports.append(transport)
        return transport

    async def close(self) -> None:
        for transport in [*self.transports, self._local]:
            await transport.close()

    def queue_depths(self) -> dict[str, int]:
        assert self.vhost is not None
        out = rabbitmqctl("list_queues", "-p", self.vhost, "--no-table-headers", "name", "messages")
        return {line.split()[0]: int(line.split()[1]) for line in out.splitlines() if line.strip()}


@pytest.fixture(params=["local", "amqp"])
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[Bus]:
    vhost = request.getfixturevalue("vhost") if request.param == "amqp" else None
    bus = Bus(request.param, vhost)
    yield bus
    await bus.close()


async def wait_until(predicate: Any, within: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


@register_remote_exception
class QuotaExceeded(Exception):
    """A service's own exception, registered so that it crosses the bus typed."""

    def __init__(self, resource: str, limit: int) -> None:
        super().__init__(f"quota exceeded for {resource}: limit {limit}")
        self.resource = resource
        self.limit = limit


class Recorder(RPCEndpoint):
    namespace = "test"
    version = "1.2"

    def __init__(self, name: str, delay: float = 0.0) -> None:
        self.name = name
        self.delay = delay
        self.calls: list[tuple[str, Any]] = []
        self.received = asyncio.Event()

    async def echo(self, value: Any) -> Any:
        self.calls.append(("echo", value))
        return value

    async def whoami(self) -> str:
        await asyncio.sleep(self.delay)
        self.calls.append(("whoami", None))
        return self.name

    async def note(self, text: str) -> None:
        self.calls.append(("note", text))
        self.received.set()

    async def context(self) -> dict[str, Any] | None:
        await asyncio.sleep(self.delay)
        ctxt = get_current()
        return ctxt.to_dict() if ctxt else None

    async def fail(self, kind: str) -> None:
        if kind == "not_found":
            raise NotFound("Instance 42 could not be found.")
        if kind == "conflict":
            raise Conflict("Cannot 'stop' instance while it is in vm_state building", error_type="InstanceInvalidState")
        if kind == "quota":
            raise QuotaExceeded("instances", 10)
        raise ValueError(f"unexpected kind {kind}")

    async def give_set(self) -> Any:
        return {1, 2, 3}


class RecorderAPI(RPCAPI):
    topic = "unset"  # each test passes its own topic
    namespace = "test"
    version = "1.2"


async def serve(transport: Transport, topic: str, server: str, endpoint: RPCEndpoint) -> RPCServer:
    rpc_server = RPCServer(transport, topic, server, [endpoint])
    await rpc_server.start()
    return rpc_server


async def test_call_returns_plain_data(bus: Bus, prefix: str) -> None:
    server = await serve(bus.transport(), prefix, "h1", Recorder("h1"))
    api = RecorderAPI(bus.transport(), topic=prefix)
    value = {
        "name": "vm1", "count": 3, "ratio": 1.5, "flag": True, "none": None, "raw": b"\x00\xff",
        "created": dt.datetime(2026, 11, 25, 1, 2, 3, 456, tzinfo=dt.UTC),
        "naive": dt.datetime(2026, 1, 1, 12, 0), "day": dt.date(2026, 2, 3), "id": uuid.UUID(int=7),
        "nested": [{"a": [1, 2, {"b": -(2**63)}]}], "tuple": (1, "x"), "unicode": "ünï",
    }
    result = await api.prepare().call("echo", value=value)
    assert result == {**value, "tuple": [1, "x"]}
    assert result["created"].tzinfo is not None and result["naive"].tzinfo is None
    assert isinstance(result["id"], uuid.UUID)
    await server.stop()


async def test_cast_delivers(bus: Bus, prefix: str) -> None:
    endpoint = Recorder("h1")
    server = await serve(bus.transport(), prefix, "h1", endpoint)
    api = RecorderAPI(bus.transport(), topic=prefix)
    assert await api.prepare().cast("note", text="hello") is None
    await asyncio.wait_for(endpoint.received.wait(), 5)
    assert endpoint.calls == [("note", "hello")]
    await server.stop()


async def test_fanout_reaches_every_server(bus: Bus, prefix: str) -> None:
    endpoints = [Recorder(f"h{i}") for i in range(3)]
    servers = [await serve(bus.transport(), prefix, ep.name, ep) for ep in endpoints]
    bystander = Recorder("other")
    other = await serve(bus.transport(), f"{prefix}x", "h0", bystander)
    api = RecorderAPI(bus.transport(), topic=prefix)
    await api.prepare(fanout=True).cast("note", text="to all")
    await asyncio.wait_for(asyncio.gather(*(ep.received.wait() for ep in endpoints)), 5)
    await asyncio.sleep(0.2)  # a second delivery or a stray one would show up by now
    assert [ep.calls for ep in endpoints] == [[("note", "to all")]] * 3
    assert bystander.calls == []
    with pytest.raises(ValueError):
        await api.prepare(fanout=True).call("whoami")
    for server in [*servers, other]:
        await server.stop()


async def test_server_target_reaches_only_that_server(bus: Bus, prefix: str) -> None:
    endpoints = [Recorder(f"h{i}") for i in range(3)]
    servers = [await serve(bus.transport(), prefix, ep.name, ep) for ep in endpoints]
    api = RecorderAPI(bus.transport(), topic=prefix)
    to_h1 = api.prepare(server="h1")
    answers = await asyncio.gather(*(to_h1.call("whoami") for _ in range(20)))
    assert answers == ["h1"] * 20
    await to_h1.cast("note", text="for h1")
    await asyncio.wait_for(endpoints[1].received.wait(), 5)
    await asyncio.sleep(0.1)
    assert [len(ep.calls) for ep in endpoints] == [0, 21, 0]
    for server in servers:
        await server.stop()


async def test_two_servers_on_one_topic_share_calls(bus: Bus, prefix: str) -> None:
    servers = [await serve(bus.transport(), prefix, name, Recorder(name, delay=0.02)) for name in ("a", "b")]
    api = RecorderAPI(bus.transport(), topic=prefix)
    answers = await asyncio.gather(*(api.prepare().call("whoami") for _ in range(40)))
    counts = Counter(answers)
    assert sum(counts.values()) == 40
    assert counts["a"] > 0 and counts["b"] > 0, counts
    for server in servers:
        await server.stop()


async def test_host_names_with_dots_are_servers(bus: Bus, prefix: str) -> None:
    endpoints = [Recorder(name) for name in ("node1.example.org", "node2.example.org")]
    servers = [await serve(bus.transport(), prefix, ep.name, ep) for ep in endpoints]
    api = RecorderAPI(bus.transport(), topic=prefix)
    assert await api.prepare(server="node2.example.org").call("whoami") == "node2.example.org"
    for bad in ("a.b", "", "a*", "x#"):
        with pytest.raises(ValueError):
            Target(bad)
    with pytest.raises(ValueError):
        Target(prefix, "host*")
    for server in servers:
        await server.stop()


async def test_cast_waits_in_the_queue_while_the_server_restarts(bus: Bus, prefix: str) -> None:
    server = await serve(bus.transport(), prefix, "h1", Recorder("h1"))
    await server.stop()
    api = RecorderAPI(bus.transport(), topic=prefix)
    await api.prepare().cast("note", text="to the topic")
    await api.prepare(server="h1").cast("note", text="to h1")
    back = Recorder("h1")
    server = await serve(bus.transport(), prefix, "h1", back)
    await wait_until(lambda: len(back.calls) == 2)
    assert sorted(back.calls) == [("note", "to h1"), ("note", "to the topic")]
    await server.stop()


async def test_stop_finishes_the_calls_in_flight(bus: Bus, prefix: str) -> None:
    endpoint = Recorder("h1", delay=0.3)
    server = await serve(bus.transport(), prefix, "h1", endpoint)
    client = RecorderAPI(bus.transport(), topic=prefix).prepare()
    in_flight = asyncio.ensure_future(client.call("whoami"))
    await asyncio.sleep(0.1)
    await server.stop()
    assert await in_flight == "h1"
    with pytest.raises(MessagingTimeout):  # stopped: nothing more is taken
        await client.prepare(timeout=0.3).call("whoami")


async def test_remote_exceptions_come_back_typed(bus: Bus, prefix: str) -> None:
    server = await serve(bus.transport(), prefix, "h1", Recorder("h1"))
    client = RecorderAPI(bus.transport(), topic=prefix).prepare()
    with pytest.raises(NotFound) as not_found:
        await client.call("fail", kind="not_found")
    assert not_found.value.message == "Instance 42 could not be found." and not_found.value.status == 404
    assert "raise NotFound" in not_found.value.remote_traceback  # type: ignore[attr-defined]
    with pytest.raises(Conflict) as conflict:
        await client.call("fail", kind="conflict")
    assert conflict.value.error_type == "InstanceInvalidState"
    with pytest.raises(QuotaExceeded) as quota:
        await client.call("fail", kind="quota")
    assert (quota.value.resource, quota.value.limit) == ("instances", 10)
    assert str(quota.value) == "quota exceeded for instances: limit 10"
    with pytest.raises(RemoteError) as other:  # not registered: type name and message only
        await client.call("fail", kind="boom")
    assert other.value.exc_type == "ValueError" and other.value.value == "unexpected kind boom"
    assert "ValueError" in other.value.remote_traceback
    with pytest.raises(SerializationError, match="type 'set'"):  # the result cannot cross: said so, no timeout
        await client.call("give_set")
    with pytest.raises(NoSuchMethod):
        await client.call("no_such_thing")
    with pytest.raises(InvalidArguments, match="kind"):
        await client.call("fail", sort="x")
    # the server keeps serving after all that
    assert await client.call("whoami") == "h1"
    await server.stop()


async def test_unsendable_argument_is_refused_before_sending(bus: Bus, prefix: str) -> None:
    endpoint = Recorder("h1")
    server = await serve(bus.transport(), prefix, "h1", endpoint)
    client = RecorderAPI(bus.transport(), topic=prefix).prepare()
    with pytest.raises(SerializationError, match=r"type 'object' over RPC \(at args\.value\.hosts\[1\]\)"):
        await client.call("echo", value={"hosts": ["a", object()]})
    with pytest.raises(SerializationError, match="type 'set'"):
        await client.cast("note", text={"a"})
    await asyncio.sleep(0.1)
    assert endpoint.calls == []
    await server.stop()


async def test_call_to_nobody_times_out_and_leaves_nothing(bus: Bus, prefix: str) -> None:
    transport = bus.transport()
    client = RecorderAPI(transport, topic=prefix, timeout=0.3).prepare()
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(MessagingTimeout, match=prefix):
        await client.call("whoami")
    assert 0.29 <= loop.time() - started < 2.0
    assert transport.pending_calls == 0

    # A topic whose only server has stopped still has its queue: the request waits there no longer than the
    # caller does, so a server that comes back later never runs a call nobody waits for.
    late = Recorder("h1")
    server = await serve(bus.transport(), prefix, "h1", Recorder("h1"))
    await server.stop()
    with pytest.raises(MessagingTimeout):
        await client.call("whoami")
    with pytest.raises(MessagingTimeout):
        await client.prepare(server="h1").call("whoami")
    assert transport.pending_calls == 0
    await asyncio.sleep(0.4)
    server = await serve(bus.transport(), prefix, "h1", late)
    assert await client.prepare(timeout=5).call("echo", value=1) == 1
    assert late.calls == [("echo", 1)]
    if bus.kind == "amqp":
        depths = {name: n for name, n in bus.queue_depths().items() if name.startswith(prefix)}
        assert depths and set(depths.values()) == {0}, depths
    await server.stop()


async def test_unsupported_version_is_refused(bus: Bus, prefix: str) -> None:
    server = await serve(bus.transport(), prefix, "h1", Recorder("h1"))
    transport = bus.transport()
    target = Target(prefix)
    assert await RPCClient(transport, target, namespace="test", version="1.1").call("whoami") == "h1"
    for version in ("1.3", "2.0", "0.9"):
        with pytest.raises(UnsupportedVersion, match=rf"RPC version {version} of namespace 'test'.*1\.2"):
            await RPCClient(transport, target, namespace="test", version=version).call("whoami")
    with pytest.raises(UnsupportedVersion):
        await RPCClient(transport, target, namespace="other", version="1.0").call("whoami")
    await server.stop()


async def test_version_cap_limits_what_the_client_sends(bus: Bus, prefix: str) -> None:
    endpoint = Recorder("h1")
    server = await serve(bus.transport(), prefix, "h1", endpoint)
    api = RecorderAPI(bus.transport(), topic=prefix, version_cap="1.1")
    assert api.can_send_version("1.0") and api.can_send_version("1.1")
    assert not api.can_send_version("1.2") and not api.can_send_version("2.0")
    with pytest.raises(RPCVersionCapError):
        await api.prepare(version="1.2").call("whoami")
    assert endpoint.calls == []
    assert await api.prepare().call("whoami") == "h1"
    with pytest.raises(ValueError):
        RecorderAPI(bus.transport(), topic=prefix, version_cap="2.0")
    await server.stop()


async def test_context_arrives(bus: Bus, prefix: str) -> None:
    server = await serve(bus.transport(), prefix, "h1", Recorder("h1", delay=0.05))
    client = RecorderAPI(bus.transport(), topic=prefix).prepare()
    ctxt = RequestContext(auth_token="gAAAA-token", user_id="u1", project_id="p1", roles=["member", "reader"],
                          user_name="demo", project_name="demo")
    assert await client.call("context", ctxt=ctxt) == ctxt.to_dict()

    # with no explicit context the caller's current one travels; concurrent calls each see their own
    async def as_user(i: int) -> dict[str, Any]:
        current_context.set(RequestContext(user_id=f"user{i}", project_id=f"p{i}", roles=["admin"]))
        sent = get_current()
        assert sent is not None
        got = await client.call("context")
        assert got["request_id"] == sent.request_id
        return got

    results = await asyncio.gather(*(as_user(i) for i in range(10)))
    assert [r["user_id"] for r in results] == [f"user{i}" for i in range(10)]
    assert all(r["roles"] == ["admin"] for r in results)
    assert await client.call("context") is None  # nothing current in this task
    await server.stop()


async def test_amqp_survives_broker_connection_drop(vhost: str, prefix: str) -> None:
    bus = Bus("amqp", vhost)
    try:
        slow = Recorder("h1", delay=2.0)
        server = await serve(bus.transport(), prefix, "h1", slow)
        client = RecorderAPI(bus.transport(), topic=prefix, timeout=10).prepare()
        assert await client.call("echo", value="before") == "before"
        waiting = asyncio.ensure_future(client.call("context"))
        await asyncio.sleep(0.3)
        await asyncio.to_thread(rabbitmqctl, "close_all_connections", "--vhost", vhost, "test drop")
        # the call in flight lost its reply queue with the connection: it fails now instead of at its timeout
        with pytest.raises(TransportError, match="lost"):
            await asyncio.wait_for(waiting, 5)
        # the next call works, once both sides have reconnected and re-declared their queues
        assert await client.call("echo", value="after") == "after"
        await client.cast("note", text="cast after")
        await asyncio.wait_for(slow.received.wait(), 10)
        assert await client.prepare(server="h1").call("echo", value="direct") == "direct"
        await server.stop()
    finally:
        await bus.close()


SERVER_PROCESS = """
import asyncio, os, signal, sys
from pocketstack.common.config import RpcSettings
from pocketstack.common.context import get_current
from pocketstack.common.errors import NotFound
from pocketstack.common.rpc import RPCEndpoint, RPCServer, make_transport

class Worker(RPCEndpoint):
    namespace = "test"
    version = "1.2"

    async def whoami(self):
        await asyncio.sleep(0.02)
        return {"pid": os.getpid(), "context": get_current().to_dict()}

    async def fail(self, kind):
        raise NotFound(f"no {kind} here")

async def main():
    transport = make_transport(RpcSettings(transport_url=sys.argv[1]))
    server = RPCServer(transport, sys.argv[2], sys.argv[3], [Worker()])
    await server.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await stop.wait()
    await server.stop()
    await transport.close()

asyncio.run(main())
"""


async def test_amqp_servers_in_other_processes_share_a_topic(vhost: str, prefix: str) -> None:
    url = f"{BROKER}/{vhost}"
    children = [await asyncio.create_subprocess_exec(sys.executable, "-c", SERVER_PROCESS, url, prefix, f"w{i}",
                                                     stdout=asyncio.subprocess.PIPE) for i in range(2)]
    transport = AmqpTransport(url, call_timeout=10)
    try:
        for child in children:
            assert child.stdout is not None
            assert await asyncio.wait_for(child.stdout.readline(), 30) == b"ready\n"
        client = RecorderAPI(transport, topic=prefix).prepare()
        ctxt = RequestContext(auth_token="tok", user_id="u1", project_id="p1", roles=["member"])
        # RabbitMQ spreads a topic's messages over its consumers; a busy machine may let one take a whole
        # burst, so give it a few bursts to show both
        seen: set[int] = set()
        for _ in range(10):
            answers = await asyncio.gather(*(client.call("whoami", ctxt=ctxt) for _ in range(30)))
            assert all(a["context"] == ctxt.to_dict() for a in answers)
            seen |= {a["pid"] for a in answers}
            if seen == {child.pid for child in children}:
                break
        assert seen == {child.pid for child in children}
        only_w1 = await client.prepare(server="w1").call("whoami", ctxt=ctxt)
        assert only_w1["pid"] == children[1].pid
        with pytest.raises(NotFound, match="no flavor here"):
            await client.call("fail", ctxt=ctxt, kind="flavor")
    finally:
        for child in children:
            child.terminate()
            await asyncio.wait_for(child.wait(), 10)
        await transport.close()


async def test_amqp_unreachable_broker_is_a_clear_error() -> None:
    transport = AmqpTransport("amqp://guest:secret@127.0.0.1:1/", call_timeout=1)
    with pytest.raises(TransportError, match=r"cannot reach the message broker at amqp://guest:\*\*\*@127.0.0.1:1"):
        await RPCClient(transport, Target("x")).call("y")
    await transport.close()


async def test_get_transport_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings()
    assert settings.rpc.transport_url == "local://"
    first = get_transport(settings)
    assert isinstance(first, LocalTransport) and get_transport(settings) is first  # shared in the process
    monkeypatch.setenv("POCKETSTACK_RPC__TRANSPORT_URL", f"{BROKER}/")
    monkeypatch.setenv("POCKETSTACK_RPC__CALL_TIMEOUT", "7.5")
    amqp = get_transport(Settings())
    assert isinstance(amqp, AmqpTransport) and amqp.call_timeout == 7.5
    await close_transports()
    assert first.closed and amqp.closed and get_transport(settings) is not first
    await close_transports()
    with pytest.raises(ValueError, match="unsupported RPC transport_url"):
        get_transport(Settings(rpc={"transport_url": "kafka://x"}))


def test_serializer_names_what_cannot_cross() -> None:
    assert serializer.loads(serializer.dumps({"t": (1, 2), 3: "int key"})) == {"t": [1, 2], 3: "int key"}
    with pytest.raises(SerializationError, match=r"an integer outside 64 bits over RPC \(at a\.b\[0\]\)"):
        serializer.dumps({"a": {"b": [2**70]}})
    with pytest.raises(SerializationError, match=r"a value of type 'Decimal' over RPC \(at a\.2\)"):
        serializer.dumps({"a": {2: decimal.Decimal("1.5")}})
    with pytest.raises(SerializationError, match="type 'frozenset'"):
        serializer.dumps([frozenset()])
    with pytest.raises(SerializationError, match="malformed RPC message"):
        serializer.loads(b"\xc1")
