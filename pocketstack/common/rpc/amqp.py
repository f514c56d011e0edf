"""The RabbitMQ transport (distributed mode) on aio-pika.

Layout on the broker, per control exchange (default "pocketstack"):
- a topic exchange; queue `topic` bound with key `topic` (shared by the topic's servers: competing consumers),
  queue `topic.server` bound with key `topic.server` (one server);
- per topic a fanout exchange `topic_fanout`, each server binding an exclusive auto-delete queue of its own;
- per transport (process) an exclusive reply queue; replies find their call through the correlation id.
Requests of calls carry a TTL equal to the call's timeout, so a call nobody answers leaves no message behind.
Casts and call requests go out on the confirmed channel and are mandatory: one the broker cannot route yet (right
after a broker restart, before the servers have re-declared their queues) comes back with the confirmation and is
published again until a queue takes it, or `publish_timeout` (casts), or the call's timeout, runs out; a call to a
topic nobody serves still ends with MessagingTimeout. (A return is only seen through a publisher confirmation: on
a channel without confirms the broker's basic.return is dropped.) Replies go out unconfirmed on the channel that
consumes the reply queue, since the reply itself confirms the call.
The connection is robust: after a drop aio-pika reconnects and re-declares queues, bindings and consumers;
calls waiting when the connection went down fail at once with TransportError (their reply queue went with it),
and a new call waits until the reply queue is back before it sends its request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from aio_pika.exceptions import CONNECTION_EXCEPTIONS
from aiormq.abc import DeliveredMessage
from yarl import URL

from pocketstack.common.rpc.exceptions import MessagingTimeout, TransportError
from pocketstack.common.rpc.transport import Handler, Subscription, Target, Transport

log = logging.getLogger("pocketstack.rpc")

CONTENT_TYPE = "application/msgpack"


def _redacted(url: str) -> str:
    parsed = URL(url)
    return str(parsed.with_password("***")) if parsed.password else url


class AmqpTransport(Transport):
    def __init__(self, url: str, exchange: str = "pocketstack", reconnect_interval: float = 0.5,
                 publish_timeout: float = 30.0, call_timeout: float = 60.0) -> None:
        super().__init__(call_timeout)
        self.url = url
        self.exchange_name = exchange
        self.reconnect_interval = reconnect_interval
        self.publish_timeout = publish_timeout
        self._lock = asyncio.Lock()
        self.connection: AbstractRobustConnection | None = None
        self._confirmed: AbstractChannel | None = None  # casts, fanouts and call requests: the broker confirms each
        self._fast: AbstractChannel | None = None  # the reply queue and replies: the reply is the confirmation
        self._topic_confirmed: AbstractExchange | None = None
        self._fanout_exchanges: dict[str, AbstractExchange] = {}
        self._reply_queue: AbstractQueue | None = None

    async def start(self) -> None:
        if self.connection is not None:
            return
        async with self._lock:
            if self.connection is not None:
                return
            if self.closed:
                raise TransportError("the RPC transport is closed")
            extra: dict[str, Any] = {}
            if "reconnect_interval" not in URL(self.url).query:
                extra["reconnect_interval"] = self.reconnect_interval
            try:
                connection = await aio_pika.connect_robust(
                    self.url, client_properties={"connection_name": f"pocketstack-rpc pid={os.getpid()}"},
                    **extra)
            except CONNECTION_EXCEPTIONS as exc:
                raise TransportError(f"cannot reach the message broker at {_redacted(self.url)}: {exc}") from exc
            try:
                await self._declare(connection)
            except BaseException:
                await connection.close()
                raise
            connection.close_callbacks.add(self._on_connection_lost)
            self.connection = connection

    async def _declare(self, connection: AbstractRobustConnection) -> None:
        self._confirmed = await connection.channel(publisher_confirms=True)
        self._fast = await connection.channel(publisher_confirms=False)
        self._topic_confirmed = await self._confirmed.declare_exchange(self.exchange_name, aio_pika.ExchangeType.TOPIC)
        self._reply_queue = await self._fast.declare_queue(f"reply_{uuid.uuid4().hex}", exclusive=True,
                                                           auto_delete=True)
        await self._reply_queue.consume(self._on_reply, no_ack=True)

    def _on_connection_lost(self, _sender: Any, exc: BaseException | None = None) -> None:
        if self._pending:
            log.warning("connection to the message broker lost with %d calls waiting", len(self._pending))
        for future in self._pending.values():
            if not future.done():
                future.set_exception(TransportError(
                    "the connection to the message broker was lost while the call waited for its reply"))

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        future = self._pending.get(message.correlation_id)
        if future is not None and not future.done():
            future.set_result(message.body)
        # else: a late reply to a call that timed out; dropped

    async def _publish(self, channel: AbstractChannel, exchange: AbstractExchange, message: aio_pika.Message,
                       routing_key: str, within: float, mandatory: bool = False) -> None:
        """Publish; while the connection is down, again each time it is restored (robust reconnection) until
        `within` runs out. A broker restart first shows as a closed channel that only later reopens.

        `mandatory` (on the confirmed channel only): a message the broker cannot route is published again
        until a queue takes it. After a broker restart the queues come back only as their consumers reconnect,
        and a cast or call request sent in between would otherwise be dropped."""
        last: BaseException | str | None = None
        try:
            async with asyncio.timeout(within):
                while True:
                    try:
                        result = await exchange.publish(message, routing_key, mandatory=mandatory)
                        if not isinstance(result, DeliveredMessage):
                            return
                        if last is None:
                            log.info("no queue takes %s yet; publishing it again", routing_key)
                        last = "no queue is bound to it"
                    except CONNECTION_EXCEPTIONS as exc:
                        if self.closed:
                            raise TransportError("the RPC transport is closed") from exc
                        if last is None:
                            log.info("publish to %s failed (%r); waiting for the broker connection", routing_key,
                                     exc)
                        last = exc
                    await asyncio.sleep(0.1)
                    await channel.ready()
        except TimeoutError:
            raise TransportError(f"could not publish to {routing_key!r} within {within:g}s: "
                                 f"{last if isinstance(last, str) else f'the message broker is unreachable ({last!r})'}"
                                 ) from None

    async def call(self, target: Target, body: bytes, within: float) -> bytes:
        await self.start()
        assert self._fast is not None and self._confirmed is not None and self._topic_confirmed is not None
        assert self._reply_queue is not None
        correlation_id = uuid.uuid4().hex
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = future
        try:
            async with asyncio.timeout(within):
                await self._fast.ready()  # after a reconnection: the reply queue and its consumer are back
                message = aio_pika.Message(body, content_type=CONTENT_TYPE, correlation_id=correlation_id,
                                           reply_to=self._reply_queue.name, expiration=within)
                await self._publish(self._confirmed, self._topic_confirmed, message, target.routing_key, within,
                                    mandatory=True)
                return await future
        except TimeoutError:
            raise MessagingTimeout(f"no reply from {target.routing_key!r} within {within:g}s") from None
        finally:
            del self._pending[correlation_id]

    async def cast(self, target: Target, body: bytes) -> None:
        await self.start()
        assert self._confirmed is not None and self._topic_confirmed is not None
        message = aio_pika.Message(body, content_type=CONTENT_TYPE)
        await self._publish(self._confirmed, self._topic_confirmed, message, target.routing_key,
                            self.publish_timeout, mandatory=True)

    async def _fanout_exchange(self, channel: AbstractChannel, topic: str) -> AbstractExchange:
        return await channel.declare_exchange(f"{self.exchange_name}.{topic}_fanout", aio_pika.ExchangeType.FANOUT)

    async def fanout(self, topic: str, body: bytes) -> None:
        await self.start()
        assert self._confirmed is not None
        exchange = self._fanout_exchanges.get(topic)
        if exchange is None:
            exchange = self._fanout_exchanges[topic] = await self._fanout_exchange(self._confirmed, topic)
        await self._publish(self._confirmed, exchange, aio_pika.Message(body, content_type=CONTENT_TYPE), topic,
                            self.publish_timeout)

    async def reply(self, reply_to: str, correlation_id: str | None, body: bytes) -> None:
        assert self._fast is not None
        message = aio_pika.Message(body, content_type=CONTENT_TYPE, correlation_id=correlation_id)
        await self._publish(self._fast, self._fast.default_exchange, message, reply_to, self.publish_timeout)

    async def subscribe(self, topic: str, server: str, handler: Handler, max_concurrency: int = 64) -> Subscription:
        target = Target(topic, server)
        await self.start()
        assert self.connection is not None
        subscription = _AmqpSubscription(self, handler, max_concurrency)
        try:
            await subscription.start(target)
        except BaseException:
            await subscription.stop(grace=0)
            raise
        return subscription

    async def check(self) -> None:
        await self.start()  # an API process connects on its first message: the probe may be that one
        if self.connection is None or self.connection.is_closed:
            raise ConnectionError("not connected to the broker")

    async def close(self) -> None:
        await super().close()
        if self.connection is not None:
            with contextlib.suppress(Exception):
                await self.connection.close()
            self.connection = None


class _AmqpSubscription(Subscription):
    def __init__(self, transport: AmqpTransport, handler: Handler, max_concurrency: int) -> None:
        super().__init__()
        self.transport, self.handler = transport, handler
        self.max_concurrency = max_concurrency
        self._slots = asyncio.Semaphore(max_concurrency)
        self._channel: AbstractChannel | None = None
        self._consumers: list[tuple[AbstractQueue, str]] = []

    async def start(self, target: Target) -> None:
        assert self.transport.connection is not None
        # Unacknowledged messages count against the prefetch, and a message is acknowledged when a handler
        # slot takes it: a busy server stops receiving and the topic's other servers get the work.
        channel = self._channel = await self.transport.connection.channel()
        await channel.set_qos(prefetch_count=self.max_concurrency)
        topic_exchange = await channel.declare_exchange(self.transport.exchange_name, aio_pika.ExchangeType.TOPIC)
        shared = await channel.declare_queue(target.topic, durable=False, auto_delete=False)
        await shared.bind(topic_exchange, target.topic)
        own = await channel.declare_queue(target.routing_key, durable=False, auto_delete=False)
        await own.bind(topic_exchange, target.routing_key)
        fanout_exchange = await self.transport._fanout_exchange(channel, target.topic)
        fanout = await channel.declare_queue(
            f"{self.transport.exchange_name}.{target.routing_key}_fanout_{uuid.uuid4().hex[:12]}",
            exclusive=True, auto_delete=True)
        await fanout.bind(fanout_exchange)
        for queue in (shared, own, fanout):
            self._consumers.append((queue, await queue.consume(self._on_message)))

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        self._spawn(self._handle(message))

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        async with self._slots:
            try:
                await message.ack()
            except CONNECTION_EXCEPTIONS:
                return  # the channel went down before we started: the broker redelivers it
            try:
                reply = await self.handler(message.body, bool(message.reply_to))
                if reply is not None and message.reply_to:
                    await self.transport.reply(message.reply_to, message.correlation_id, reply)
            except Exception:
                log.exception("RPC handler failed for %s", message.routing_key)

    async def stop(self, grace: float = 10.0) -> None:
        for queue, tag in self._consumers:
            with contextlib.suppress(*CONNECTION_EXCEPTIONS):
                await queue.cancel(tag)
        self._consumers.clear()
        await self._drain(grace)
        if self._channel is not None:
            with contextlib.suppress(*CONNECTION_EXCEPTIONS):
                await self._channel.close()
