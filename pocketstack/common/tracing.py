"""Per-hop spans of the boot flow (FLOW.md), kept for `pocketstack trace`.

Every REST call between services, every RPC call or cast, and the DB and WORK steps that FLOW.md numbers
record a span: who called whom, what kind of hop, the FLOW.md step, when, how long, and the outcome, under the
global request id that travels with the request. Spans are buffered in memory and written in batches to the
trace store by the process's `Tracer`; without a tracer (unit tests) recording costs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextvars import ContextVar
from dataclasses import asdict, dataclass

from pocketstack.common.context import get_current

log = logging.getLogger("pocketstack.tracing")


@dataclass
class Span:
    request_id: str
    source: str
    target: str
    kind: str  # REST, CALL, CAST, DB, WORK
    operation: str
    step: str | None
    start: float
    duration: float
    outcome: str
    audit_id: str | None = None
    process: str | None = None  # the OS process that recorded it ("conductor[4242]"), in distributed mode
    span_id: str | None = None  # W3C trace context: 16 hex digits, and the span this one ran inside
    parent_id: str | None = None


# The span the current code runs inside (the hop that brought the work here): the parent of the spans it records.
current_span: ContextVar[str | None] = ContextVar("pocketstack_span", default=None)


def new_span_id() -> str:
    return os.urandom(8).hex()


def trace_id(request_id: str) -> str:
    """The W3C trace id of a global request id: its UUID (req-<uuid>), else a hash of it."""
    try:
        return uuid.UUID(request_id.removeprefix("req-")).hex
    except ValueError:
        return hashlib.sha256(request_id.encode()).hexdigest()[:32]


def traceparent(request_id: str, span_id: str) -> str:
    """The `traceparent` header of a hop (W3C Trace Context, sampled)."""
    return f"00-{trace_id(request_id)}-{span_id}-01"


def parent_of(header: str | None) -> str | None:
    """The parent span id a `traceparent` header names, or None when it is missing or malformed."""
    parts = (header or "").strip().split("-")
    if len(parts) == 4 and len(parts[2]) == 16 and all(c in "0123456789abcdef" for c in parts[2]) \
            and parts[2] != "0" * 16:
        return parts[2]
    return None


# The component running the current code ("compute-api", "conductor", "compute@host1", ...).
current_component: ContextVar[str] = ContextVar("pocketstack_component", default="client")


class Tracer:
    """Buffers spans and flushes them to the trace store every `interval` seconds (bounded buffer)."""

    def __init__(self, store: object, interval: float = 0.5, max_buffer: int = 100_000,
                 process: str | None = None, exporter: object | None = None) -> None:
        self.store = store
        self.exporter = exporter  # also given every batch (`export(spans)`): OpenTelemetry, when configured
        self.interval = interval
        self.process = process
        self.buffer: deque[Span] = deque(maxlen=max_buffer)
        self._task: asyncio.Task[None] | None = None

    def add(self, span: Span) -> None:
        if self.process is not None:
            span.process = self.process
        self.buffer.append(span)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.flush()
            except Exception:
                log.exception("writing spans failed; they are dropped")

    async def flush(self) -> None:
        if not self.buffer:
            return
        spans = [self.buffer.popleft() for _ in range(len(self.buffer))]
        try:
            await self.store.write([asdict(span) for span in spans])  # type: ignore[attr-defined]
        finally:
            if self.exporter is not None:
                try:
                    await self.exporter.export(spans)  # type: ignore[attr-defined]
                except Exception as exc:  # a collector that is down must not stop the trace store
                    log.warning("exporting %d spans failed: %s", len(spans), exc)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            await self.flush()


_tracer: ContextVar[Tracer | None] = ContextVar("pocketstack_tracer", default=None)


def install(tracer: Tracer | None) -> None:
    """Make `tracer` the recorder for this context and every task started from it."""
    _tracer.set(tracer)


def enabled() -> bool:
    return _tracer.get() is not None


def record(kind: str, target: str, operation: str, start: float, duration: float, *, step: str | None = None,
           outcome: str = "ok", source: str | None = None, audit_id: str | None = None,
           request_id: str | None = None, span_id: str | None = None, parent_id: str | None = None) -> None:
    """Record one hop. `span_id` when the hop's id was sent on with it (traceparent), `parent_id` when the hop
    did not run inside the current span (a client's request, whose parent came in its header)."""
    tracer = _tracer.get()
    if tracer is None:
        return
    if request_id is None:
        ctx = get_current()
        if ctx is None:
            return
        request_id = ctx.request_id
    tracer.add(Span(request_id=request_id, source=source or current_component.get(), target=target, kind=kind,
                    operation=operation, step=step, start=start, duration=duration, outcome=outcome,
                    audit_id=audit_id, span_id=span_id or new_span_id(),
                    parent_id=parent_id if parent_id is not None else current_span.get()))


@contextlib.contextmanager
def child_span(span_id: str | None) -> Iterator[None]:
    """Run the enclosed code inside span `span_id` (its spans become that one's children)."""
    if span_id is None:
        yield
        return
    token = current_span.set(span_id)
    try:
        yield
    finally:
        current_span.reset(token)


@contextlib.contextmanager
def sync_span(kind: str, operation: str, *, step: str | None = None, target: str | None = None) -> Iterator[None]:
    """`span` for synchronous code (a database transaction run in a worker thread)."""
    if _tracer.get() is None:
        yield
        return
    start, began = time.time(), time.perf_counter()
    outcome = "ok"
    span_id, parent_id = new_span_id(), current_span.get()
    token = current_span.set(span_id)
    try:
        yield
    except BaseException as exc:
        outcome = f"error: {type(exc).__name__}"
        raise
    finally:
        current_span.reset(token)
        record(kind, target or current_component.get(), operation, start, time.perf_counter() - began, step=step,
               outcome=outcome, span_id=span_id, parent_id=parent_id)


@contextlib.asynccontextmanager
async def span(kind: str, operation: str, *, step: str | None = None, target: str | None = None) -> AsyncIterator[None]:
    """Record the enclosed work as a span (target defaults to the current component: local DB/WORK)."""
    with sync_span(kind, operation, step=step, target=target):
        yield


# FLOW.md step numbers, as the services declare them (`pocketstack.services.install_flow_steps`): the REST hops
# each component makes, by callee, method ("" any) and path prefix; and the client requests a component answers.
_rest_steps: dict[str, list[tuple[str, str, str, str]]] = {}
_client_steps: dict[tuple[str, str, str], str] = {}


def install_flow_steps(rest: dict[str, list[tuple[str, str, str, str]]],
                       client: dict[tuple[str, str, str], str]) -> None:
    _rest_steps.clear()
    _rest_steps.update(rest)
    _client_steps.clear()
    _client_steps.update(client)


def rest_step(caller: str, callee: str, method: str, path: str) -> str | None:
    """The FLOW.md step of a REST hop from component `caller` ("compute@host1": its host is ignored)."""
    for dst, verb, prefix, step in _rest_steps.get(caller.split("@")[0], ()):
        if dst == callee and (not verb or verb == method) and path.startswith(prefix):
            return step
    return None


def client_step(component: str, method: str, path: str) -> str | None:
    """The FLOW.md step of a client's request to `component`."""
    return _client_steps.get((component, method, path.rstrip("/")))
