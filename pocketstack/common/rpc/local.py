"""The in-process transport (all-in-one): asyncio queues with the routing semantics of the AMQP transport.

Bodies are the same serialised bytes as on the wire, so what works here works across processes, and nothing
mutable is shared between caller and server.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass

from pocketstack.common.rpc.exceptions import MessagingTimeout, TransportError
from pocketstack.common.rpc.transport import Handler, Subscription, Target, Transport

log = logging.getLogger("pocketstack.rpc")


@dataclass(slots=True)
class _Delivery:
    body: bytes
    reply: Callable[[bytes], None] | None  # set for calls
    deadline: float | None  # loop time after which the caller no longer waits (the TTL of a request)


class LocalTransport(Transport):
    def __init__(self, call_timeout: float = 60.0) -> None:
        super().__init__(call_timeout)
        # Like AMQP queues, a topic's and a server's queue outlive their consumers once declared.
        self._queues: dict[str, asyncio.Queue[_Delivery]] = {}
        self._fanout: dict[str, set[asyncio.Queue[_Delivery]]] = {}
        self._ids = itertools.count()

    def _queue(self, key: str) -> asyncio.Queue[_Delivery]:
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = asyncio.Queue()
        return queue

    def _check_open(self) -> None:
        if self.closed:
            raise TransportError("the RPC transport is closed")

    async def call(self, target: Target, body: bytes, within: float) -> bytes:
        self._check_open()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bytes] = loop.create_future()

        def reply(data: bytes) -> None:
            if not future.done():
                future.set_result(data)

        def expire() -> None:
            if not future.done():
                future.set_exception(MessagingTimeout(f"no reply from {target.routing_key!r} within {within:g}s"))

        call_id = next(self._ids)
        self._pending[call_id] = future
        timer = loop.call_later(within, expire)
        try:
            queue = self._queues.get(target.routing_key)
            if queue is not None:
                queue.put_nowait(_Delivery(body, reply, loop.time() + within))
            return await future
        finally:
            timer.cancel()
            del self._pending[call_id]

    async def cast(self, target: Target, body: bytes) -> None:
        self._check_open()
        queue = self._queues.get(target.routing_key)
        if queue is not None:
            queue.put_nowait(_Delivery(body, None, None))

    async def fanout(self, topic: str, body: bytes) -> None:
        self._check_open()
        for queue in self._fanout.get(topic, ()):
            queue.put_nowait(_Delivery(body, None, None))

    async def subscribe(self, topic: str, server: str, handler: Handler, max_concurrency: int = 64) -> Subscription:
        self._check_open()
        Target(topic, server)  # validates the names
        own_fanout: asyncio.Queue[_Delivery] = asyncio.Queue()
        self._fanout.setdefault(topic, set()).add(own_fanout)
        queues = [self._queue(topic), self._queue(f"{topic}.{server}"), own_fanout]
        return _LocalSubscription(self, topic, own_fanout, queues, handler, max_concurrency)


class _LocalSubscription(Subscription):
    def __init__(self, transport: LocalTransport, topic: str, own_fanout: asyncio.Queue[_Delivery],
                 queues: list[asyncio.Queue[_Delivery]], handler: Handler, max_concurrency: int) -> None:
        super().__init__()
        self.transport, self.topic, self.own_fanout, self.handler = transport, topic, own_fanout, handler
        self._slots = asyncio.Semaphore(max_concurrency)
        self._consumers = [asyncio.create_task(self._consume(q)) for q in queues]

    async def _consume(self, queue: asyncio.Queue[_Delivery]) -> None:
        while True:
            delivery = await queue.get()
            try:
                await self._slots.acquire()
            except asyncio.CancelledError:
                queue.put_nowait(delivery)  # not started: leave it to the topic's other servers
                raise
            self._spawn(self._handle(delivery))
            await asyncio.sleep(0)  # let the topic's other servers take the next one (round robin, as AMQP)

    async def _handle(self, delivery: _Delivery) -> None:
        try:
            if delivery.deadline is not None and asyncio.get_running_loop().time() > delivery.deadline:
                return  # the caller has given up: the request expired in the queue
            reply = await self.handler(delivery.body, delivery.reply is not None)
            if delivery.reply is not None and reply is not None:
                delivery.reply(reply)
        except Exception:
            log.exception("RPC handler failed on topic %s", self.topic)
        finally:
            self._slots.release()

    async def stop(self, grace: float = 10.0) -> None:
        self.transport._fanout.get(self.topic, set()).discard(self.own_fanout)
        for consumer in self._consumers:
            consumer.cancel()
        await asyncio.gather(*self._consumers, return_exceptions=True)
        await self._drain(grace)
