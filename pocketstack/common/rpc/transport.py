"""The transport contract: move opaque message bodies to a topic, a topic's server, or every server of a topic.

Routing (the same on every transport):
- `Target(topic)`: one of the servers consuming the topic gets the message (competing consumers share work);
- `Target(topic, server)`: only that server (routing key `topic.server`);
- `fanout(topic)`: every server of the topic that is listening now.
A call's request waits at most its timeout in a queue; a message sent where no queue exists is dropped (a call
to nobody then times out, a cast to nobody is lost, as with oslo.messaging on RabbitMQ).
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pocketstack.common.rpc.exceptions import TransportError

# Gets a request body and whether the sender waits for a reply; returns the reply body (None for casts).
Handler = Callable[[bytes, bool], Awaitable[bytes | None]]


@dataclass(frozen=True)
class Target:
    """Where a message goes: a topic (`conductor`, `compute`) and optionally one server on it (a host name)."""

    topic: str
    server: str | None = None

    def __post_init__(self) -> None:
        # Host names may hold dots (routing key "compute.host1.example.org"); topics may not, so the routing
        # key stays unambiguous. AMQP wildcards would turn a binding into a pattern.
        if not self.topic or any(c in self.topic for c in ".#* "):
            raise ValueError(f"invalid RPC topic {self.topic!r}: a non-empty name without '.', '#', '*', ' '")
        if self.server is not None and (not self.server or any(c in self.server for c in "#* ")):
            raise ValueError(f"invalid RPC server {self.server!r}: a non-empty name without '#', '*', ' '")

    @property
    def routing_key(self) -> str:
        return f"{self.topic}.{self.server}" if self.server else self.topic


class Subscription(ABC):
    """A server's consumption of its queues; stop() ends it after the messages being handled are done."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drain(self, grace: float) -> None:
        """Wait for the handlers in flight, cancelling those still running after `grace` seconds."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    @abstractmethod
    async def stop(self, grace: float = 10.0) -> None: ...


class Transport(ABC):
    """One connection to a bus, shared by every client and server of a process."""

    def __init__(self, call_timeout: float = 60.0) -> None:
        self.closed = False
        self.call_timeout = call_timeout  # for calls that name no timeout of their own
        self._pending: dict[object, asyncio.Future[bytes]] = {}  # calls waiting for their reply, by id

    async def start(self) -> None:
        """Connect (idempotent). Sending and subscribing start the transport on their own when needed."""
        if self.closed:
            raise TransportError("the RPC transport is closed")

    @abstractmethod
    async def call(self, target: Target, body: bytes, within: float) -> bytes:
        """Send a request and wait for its reply body; MessagingTimeout when none comes in time."""

    @abstractmethod
    async def cast(self, target: Target, body: bytes) -> None:
        """Send a one-way message."""

    @abstractmethod
    async def fanout(self, topic: str, body: bytes) -> None:
        """Send a one-way message to every server of the topic that listens now."""

    @abstractmethod
    async def subscribe(self, topic: str, server: str, handler: Handler, max_concurrency: int = 64) -> Subscription:
        """Consume `topic` (shared with the topic's other servers), `topic.server` and the topic's fanout."""

    async def check(self) -> None:
        """Raise when the bus cannot be reached (the health check); the in-process bus always can."""
        return None

    @property
    def pending_calls(self) -> int:
        """Calls waiting for their reply (0 once every call has returned or timed out)."""
        return len(self._pending)

    async def close(self) -> None:
        self.closed = True
        for future in self._pending.values():
            future.cancel()
