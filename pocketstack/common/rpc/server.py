"""The server's side: `RPCEndpoint` (the base of a service's RPC manager) and `RPCServer`.

    class ConductorEndpoint(RPCEndpoint):
        namespace = "conductor"
        version = "1.1"

        async def get_instance(self, uuid: str) -> dict:
            ctxt = get_current()  # the caller's context, restored for this message
            ...

    server = RPCServer(transport, "conductor", host, [ConductorEndpoint(...)])
    await server.start()

Every public method of an endpoint subclass can be called, with keyword arguments only. A request is handled by
an endpoint of its namespace whose version has the same major and at least the requested minor; otherwise the
caller gets `UnsupportedVersion`.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from pocketstack.common import tracing
from pocketstack.common.context import RequestContext, current_context
from pocketstack.common.rpc import serializer
from pocketstack.common.rpc.exceptions import (
    InvalidArguments,
    NoSuchMethod,
    SerializationError,
    UnsupportedVersion,
    encode_failure,
    is_registered,
)
from pocketstack.common.rpc.transport import Subscription, Target, Transport
from pocketstack.common.rpc.version import is_compatible, parse_version

log = logging.getLogger("pocketstack.rpc")


class RPCEndpoint:
    """Base of an RPC endpoint: its public methods are the interface `namespace` at `version`."""

    namespace: ClassVar[str | None] = None
    version: ClassVar[str] = "1.0"

    def rpc_methods(self) -> dict[str, Callable[..., Any]]:
        base = set(dir(RPCEndpoint))
        return {name: getattr(self, name) for name in dir(type(self))
                if not name.startswith("_") and name not in base and callable(getattr(self, name))}


class Dispatcher:
    """Finds the endpoint and method for a request and calls it."""

    def __init__(self, endpoints: Sequence[RPCEndpoint]) -> None:
        self.endpoints = list(endpoints)
        self._methods: list[tuple[RPCEndpoint, dict[str, Callable[..., Any]]]] = []
        for endpoint in self.endpoints:
            parse_version(endpoint.version)
            self._methods.append((endpoint, endpoint.rpc_methods()))
        self._signatures: dict[Callable[..., Any], inspect.Signature] = {}
        self._compatible: dict[tuple[str | None, str], list[dict[str, Callable[..., Any]]]] = {}

    def _methods_for(self, namespace: str | None, version: str) -> list[dict[str, Callable[..., Any]]]:
        key = (namespace, version)
        found = self._compatible.get(key)
        if found is None:
            found = [methods for ep, methods in self._methods
                     if ep.namespace == namespace and is_compatible(ep.version, version)]
            if len(self._compatible) < 1024:  # bounded: versions come from the wire
                self._compatible[key] = found
        return found

    async def dispatch(self, method: str, namespace: str | None, version: str, args: dict[str, Any]) -> Any:
        compatible = self._methods_for(namespace, version)
        if not compatible:
            handled = ", ".join(sorted({ep.version for ep, _ in self._methods if ep.namespace == namespace}))
            raise UnsupportedVersion(
                f"RPC version {version} of namespace {namespace!r} is not supported here (versions handled: "
                f"{handled or 'none'}); method {method!r} refused")
        for methods in compatible:
            func = methods.get(method)
            if func is None:
                continue
            signature = self._signatures.get(func)
            if signature is None:
                signature = self._signatures[func] = inspect.signature(func)
            try:
                signature.bind(**args)
            except TypeError as exc:
                raise InvalidArguments(f"bad arguments for RPC method {method!r}: {exc}") from None
            result = func(**args)
            return await result if inspect.isawaitable(result) else result
        raise NoSuchMethod(f"no RPC method {method!r} in namespace {namespace!r} at version {version}")


class RPCServer:
    """Serves endpoints on a topic as `server` (a host name): the topic's queue (shared with the topic's other
    servers), its own `topic.server` queue and the topic's fanout."""

    def __init__(self, transport: Transport, topic: str, server: str, endpoints: Sequence[RPCEndpoint],
                 max_concurrency: int = 64, component: str | None = None) -> None:
        self.transport = transport
        self.target = Target(topic, server)
        self.dispatcher = Dispatcher(endpoints)
        self.max_concurrency = max_concurrency
        self._subscription: Subscription | None = None
        # the name spans give this server's work: "conductor", "scheduler", "compute@host1" (default: the topic)
        self.component = component or topic

    async def start(self) -> None:
        if self._subscription is None:
            assert self.target.server is not None
            self._subscription = await self.transport.subscribe(
                self.target.topic, self.target.server, self.handle, self.max_concurrency)

    async def stop(self, grace: float = 10.0) -> None:
        """Stop taking messages; wait up to `grace` seconds for those being handled."""
        if self._subscription is not None:
            subscription, self._subscription = self._subscription, None
            await subscription.stop(grace)

    async def handle(self, body: bytes, wants_reply: bool) -> bytes | None:
        """Decode one request, run it under the caller's context, encode the reply (None for a cast)."""
        method = "?"
        token = None
        component_token = tracing.current_component.set(self.component)
        try:
            request = serializer.loads(body)
            method = str(request["method"])
            args = request.get("args") or {}
            if not isinstance(args, dict) or not all(isinstance(k, str) for k in args):
                raise SerializationError("RPC arguments must be a mapping of names to values")
            context = request.get("context")
            token = current_context.set(RequestContext.from_dict(context) if context else None)
            span = request.get("span")
            with tracing.child_span(span if isinstance(span, str) else None):
                result = await self.dispatcher.dispatch(method, request.get("namespace"),
                                                        str(request["version"]), args)
        except Exception as exc:
            if not wants_reply or not is_registered(type(exc)):
                log.exception("RPC %s %r on %s failed", "call" if wants_reply else "cast", method,
                              self.target.routing_key)
            return serializer.dumps({"failure": encode_failure(exc)}) if wants_reply else None
        finally:
            if token is not None:
                current_context.reset(token)
            tracing.current_component.reset(component_token)
        if not wants_reply:
            return None
        try:
            return serializer.dumps({"result": result})
        except SerializationError as exc:
            log.error("RPC %r on %s returned what cannot be sent: %s", method, self.target.routing_key, exc)
            return serializer.dumps({"failure": encode_failure(exc)})
