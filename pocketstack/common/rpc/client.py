"""The caller's side: `RPCClient` (a prepared target) and `RPCAPI`, the base of every service's `rpcapi.py`.

    class ConductorAPI(RPCAPI):
        topic = "conductor"
        namespace = "conductor"
        version = "1.1"  # the newest version this client can speak

        async def build_instances(self, instances: list[dict]) -> None:
            await self.prepare(version="1.0").cast("build_instances", instances=instances)

        async def get_instance(self, uuid: str) -> dict:
            version = "1.1" if self.can_send_version("1.1") else "1.0"
            return await self.prepare(version=version).call("get_instance", uuid=uuid)

`version_cap` pins what the client sends during a rolling upgrade (servers still on an older minor).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from pocketstack.common import metrics, tracing
from pocketstack.common.context import RequestContext, get_current
from pocketstack.common.rpc import serializer
from pocketstack.common.rpc.exceptions import RPCVersionCapError, decode_failure
from pocketstack.common.rpc.transport import Target, Transport
from pocketstack.common.rpc.version import is_compatible, parse_version

_UNSET: Any = object()

def encode_request(ctxt: RequestContext | None, method: str, namespace: str | None, version: str,
                   kwargs: dict[str, Any], span_id: str | None = None) -> bytes:
    """The message every transport carries: method, namespace, version, arguments, the caller's context and the
    span of this hop (W3C trace context: the callee's spans are its children)."""
    if ctxt is None:
        ctxt = get_current()
    return serializer.dumps({
        "method": method,
        "namespace": namespace,
        "version": version,
        "args": kwargs,
        "span": span_id,
        # the fields of RequestContext.to_dict(), without asdict()'s deep copy: the message is a copy already
        "context": {name: getattr(ctxt, name) for name in ctxt.__dataclass_fields__} if ctxt is not None else None,
    })


@dataclass(frozen=True)
class RPCClient:
    """Sends to one target at one version; `prepare()` returns a copy with other options."""

    transport: Transport
    target: Target
    namespace: str | None = None
    version: str = "1.0"
    version_cap: str | None = None
    timeout: float | None = None  # None: the transport's call timeout (Settings.rpc.call_timeout)
    fanout: bool = False
    steps: Mapping[tuple[str, str], str] = field(default_factory=dict)  # FLOW.md step by (call|cast, method)

    def __post_init__(self) -> None:
        parse_version(self.version)
        if self.version_cap is not None:
            parse_version(self.version_cap)

    def prepare(self, *, server: str | None = _UNSET, version: str | None = None, timeout: float | None = None,
                fanout: bool | None = None, topic: str | None = None) -> RPCClient:
        target = Target(topic or self.target.topic, self.target.server if server is _UNSET else server)
        return replace(self, target=target, version=version or self.version,
                       timeout=timeout if timeout is not None else self.timeout,
                       fanout=self.fanout if fanout is None else fanout)

    def can_send_version(self, version: str) -> bool:
        """Whether `version` is within the cap (always, when no cap is set)."""
        return self.version_cap is None or is_compatible(self.version_cap, version)

    def _check_cap(self, method: str) -> None:
        if not self.can_send_version(self.version):
            raise RPCVersionCapError(f"cannot send {method!r} at version {self.version}: the version cap is "
                                     f"{self.version_cap}")

    async def call(self, method: str, /, *, ctxt: RequestContext | None = None, **kwargs: Any) -> Any:
        """Call `method` on one server of the target and return its result, or raise its exception.

        The request context sent is the current one (the request being served), unless `ctxt` names another.
        Raises MessagingTimeout when no reply comes in time.
        """
        if self.fanout:
            raise ValueError("a fanout target can only be cast to")
        self._check_cap(method)
        span_id = tracing.new_span_id()
        body = encode_request(ctxt, method, self.namespace, self.version, kwargs, span_id)
        timeout = self.timeout if self.timeout is not None else self.transport.call_timeout
        started, began = time.time(), time.perf_counter()
        outcome = "ok"
        try:
            reply = serializer.loads(await self.transport.call(self.target, body, timeout))
            if "failure" in reply:
                outcome = f"error: {reply['failure'].get('type', 'remote error')}"
                raise decode_failure(reply["failure"])
            return reply.get("result")
        except Exception as exc:
            if outcome == "ok":
                outcome = f"error: {type(exc).__name__}"
            raise
        finally:
            elapsed = time.perf_counter() - began
            tracing.record("CALL", self.target.routing_key, method, started, elapsed,
                           step=self.steps.get(("call", method)), outcome=outcome, span_id=span_id)
            metrics.RPC_MESSAGES.labels("call", self.target.topic, method, outcome.split(":")[0]).inc()
            metrics.RPC_CALL_SECONDS.labels(self.target.topic, method).observe(elapsed)

    async def cast(self, method: str, /, *, ctxt: RequestContext | None = None, **kwargs: Any) -> None:
        """Send `method` one-way: to one server of the target, or every server of the topic when fanout (the
        context as `call` sends it)."""
        self._check_cap(method)
        span_id = tracing.new_span_id()
        body = encode_request(ctxt, method, self.namespace, self.version, kwargs, span_id)
        started, began = time.time(), time.perf_counter()
        if self.fanout:
            await self.transport.fanout(self.target.topic, body)
        else:
            await self.transport.cast(self.target, body)
        tracing.record("CAST", self.target.topic if self.fanout else self.target.routing_key, method, started,
                       time.perf_counter() - began, step=self.steps.get(("cast", method)), span_id=span_id)
        metrics.RPC_MESSAGES.labels("fanout" if self.fanout else "cast", self.target.topic, method, "ok").inc()


class RPCAPI:
    """Base of a service's versioned RPC client (`rpcapi.py`)."""

    topic: ClassVar[str]
    namespace: ClassVar[str | None] = None
    version: ClassVar[str] = "1.0"  # the newest version of the interface this client knows
    steps: ClassVar[Mapping[tuple[str, str], str]] = {}  # FLOW.md steps of its hops, by (call|cast, method)

    def __init__(self, transport: Transport, *, version_cap: str | None = None, timeout: float | None = None,
                 topic: str | None = None) -> None:
        cap = version_cap or self.version
        if not is_compatible(self.version, cap):
            raise ValueError(f"version cap {cap} is not a version of {type(self).__name__} ({self.version})")
        self.client = RPCClient(transport, Target(topic or self.topic), namespace=self.namespace,
                                version=cap, version_cap=cap, timeout=timeout, steps=self.steps)

    def can_send_version(self, version: str) -> bool:
        return self.client.can_send_version(version)

    def prepare(self, **options: Any) -> RPCClient:
        return self.client.prepare(**options)
