"""Per-hop spans of the boot flow (FLOW.md), kept for `pocketstack trace`.

Every REST call between services, every RPC call or cast, and the DB and WORK steps that FLOW.md numbers
record a span: who called whom, what kind of hop, the FLOW.md step, when, how long, and the outcome, under the
global request id that travels with the request. Spans are buffered in memory and written in batches to the
trace store by the process's `Tracer`; without a tracer (unit tests) recording costs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
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


# The component running the current code ("compute-api", "conductor", "compute@host1", ...).
current_component: ContextVar[str] = ContextVar("pocketstack_component", default="client")


class Tracer:
    """Buffers spans and flushes them to the trace store every `interval` seconds (bounded buffer)."""

    def __init__(self, store: object, interval: float = 0.5, max_buffer: int = 100_000,
                 process: str | None = None) -> None:
        self.store = store
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
        batch = [asdict(self.buffer.popleft()) for _ in range(len(self.buffer))]
        await self.store.write(batch)  # type: ignore[attr-defined]

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
           request_id: str | None = None) -> None:
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
                    audit_id=audit_id))


@contextlib.contextmanager
def sync_span(kind: str, operation: str, *, step: str | None = None, target: str | None = None) -> Iterator[None]:
    """`span` for synchronous code (a database transaction run in a worker thread)."""
    if _tracer.get() is None:
        yield
        return
    start, began = time.time(), time.perf_counter()
    outcome = "ok"
    try:
        yield
    except BaseException as exc:
        outcome = f"error: {type(exc).__name__}"
        raise
    finally:
        record(kind, target or current_component.get(), operation, start, time.perf_counter() - began, step=step,
               outcome=outcome)


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
