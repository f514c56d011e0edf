"""The RPC bus between the processes of a service family (compute-api -> conductor -> scheduler -> compute).

`get_transport(settings)` gives the process's transport for `settings.rpc.transport_url`: `local://` (asyncio
queues in this process, the all-in-one default) or `amqp://user:pass@host:5672/vhost` (RabbitMQ). On it,
`RPCAPI` subclasses (each service's `rpcapi.py`) call and cast, and `RPCServer`s serve `RPCEndpoint`s.
"""

from __future__ import annotations

import asyncio
import weakref

from pocketstack.common.config import CoreSettings, RpcSettings
from pocketstack.common.rpc.client import RPCAPI, RPCClient
from pocketstack.common.rpc.exceptions import (
    InvalidArguments,
    MessagingTimeout,
    NoSuchMethod,
    RemoteError,
    RPCError,
    RPCVersionCapError,
    SerializationError,
    TransportError,
    UnsupportedVersion,
    register_remote_exception,
)
from pocketstack.common.rpc.server import RPCEndpoint, RPCServer
from pocketstack.common.rpc.transport import Target, Transport

__all__ = [
    "RPCAPI", "InvalidArguments", "MessagingTimeout", "NoSuchMethod", "RPCClient", "RPCEndpoint", "RPCError",
    "RPCServer", "RPCVersionCapError", "RemoteError", "SerializationError", "Target", "Transport",
    "TransportError", "UnsupportedVersion", "close_transports", "get_transport", "make_transport",
    "register_remote_exception",
]

# One transport per URL and event loop: the services of an all-in-one share the local bus of their loop, and
# clouds run on separate threads (tests) each get their own.
_shared: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Transport]] = weakref.WeakKeyDictionary()


def make_transport(rpc: RpcSettings) -> Transport:
    """A new transport for the URL (scheme local:// or amqp://, amqps://)."""
    scheme = rpc.transport_url.split("://", 1)[0].lower() if "://" in rpc.transport_url else ""
    if scheme == "local":
        from pocketstack.common.rpc.local import LocalTransport

        return LocalTransport(call_timeout=rpc.call_timeout)
    if scheme in ("amqp", "amqps"):
        from pocketstack.common.rpc.amqp import AmqpTransport

        return AmqpTransport(rpc.transport_url, exchange=rpc.exchange, call_timeout=rpc.call_timeout)
    raise ValueError(f"unsupported RPC transport_url {rpc.transport_url!r}: use local:// or amqp://...")


def get_transport(settings: CoreSettings) -> Transport:
    """The transport this process shares for settings.rpc (call from within the running event loop)."""
    loop = asyncio.get_running_loop()
    transports = _shared.setdefault(loop, {})
    transport = transports.get(settings.rpc.transport_url)
    if transport is None or transport.closed:
        transport = transports[settings.rpc.transport_url] = make_transport(settings.rpc)
    return transport


async def close_transports() -> None:
    """Close the transports shared on the running loop (the launcher, at shutdown)."""
    transports = _shared.pop(asyncio.get_running_loop(), {})
    for transport in transports.values():
        await transport.close()
