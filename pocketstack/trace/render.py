"""`pocketstack trace SERVER`: the boot of a server as a timeline of FLOW.md hops."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from pocketstack.common.db import Database

# Import of the compute models only to find the server's request id: this is an operator tool reading the
# compute database directly, like `nova-manage`, not a service.
from pocketstack.compute import models as compute_models
from pocketstack.settings import Settings
from pocketstack.trace.store import TraceStore


class TraceError(Exception):
    pass


async def find_server(settings: Settings, server: str) -> tuple[str, str, str]:
    """(uuid, name, request id of its create) for a server id or name."""
    db = Database(settings.database_url("compute"))
    try:
        async with db.session(write=False) as session:
            inst = await session.get(compute_models.Instance, server)
            if inst is None:
                matches = (await session.scalars(select(compute_models.Instance).where(
                    compute_models.Instance.display_name == server).order_by(
                    compute_models.Instance.deleted, compute_models.Instance.created_at.desc()))).all()
                live = [i for i in matches if not i.deleted]
                if len(live) > 1:
                    raise TraceError(f"{len(live)} servers are named {server!r}; give the server's ID")
                inst = live[0] if live else (matches[0] if matches else None)
            if inst is None:
                raise TraceError(f"no server {server!r}")
            return inst.uuid, inst.display_name, inst.request_id or ""
    finally:
        await db.close()


async def collect(settings: Settings, server: str) -> dict[str, Any]:
    uuid, name, request_id = await find_server(settings, server)
    store = TraceStore(settings)
    try:
        spans = await store.spans(request_id)
        issue = None
        first_audit = next((s.audit_id for s in spans if s.audit_id), None)
        if first_audit:
            issue = await store.token_issue(first_audit)
    finally:
        await store.close()
    rows = ([issue] if issue is not None else []) + spans
    if not spans:
        raise TraceError(f"no spans recorded for server {name} (request {request_id}); tracing may be off or "
                         "the spans have expired")
    origin = spans[0].start
    hops = [{"step": s.step, "from": s.source, "to": s.target, "kind": s.kind, "operation": s.operation,
             "offset_ms": round((s.start - origin) * 1000, 2), "duration_ms": round(s.duration * 1000, 2),
             "outcome": s.outcome, "request_id": s.request_id, "process": s.process} for s in rows]
    end = max(s.start + s.duration for s in spans)
    return {"server": {"id": uuid, "name": name}, "request_id": request_id, "hops": hops,
            "total_ms": round((end - origin) * 1000, 2)}


def render(trace: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console(width=max(Console().width, 160))
    table = Table(title=f"boot of {trace['server']['name']} ({trace['server']['id']}), request {trace['request_id']}")
    processes = any(hop.get("process") for hop in trace["hops"])  # distributed mode: who recorded each hop
    for column, justify in (("step", "right"), ("from -> to", "left"), ("kind", "left"), ("operation", "left"),
                            ("offset ms", "right"), ("duration ms", "right"), ("outcome", "left"),
                            *([("recorded by", "left")] if processes else [])):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for hop in trace["hops"]:
        table.add_row(hop["step"] or "", f"{hop['from']} -> {hop['to']}", hop["kind"], hop["operation"],
                      f"{hop['offset_ms']:.1f}", f"{hop['duration_ms']:.1f}", hop["outcome"],
                      *([hop.get("process") or ""] if processes else []))
    console.print(table)
    console.print(f"total: {trace['total_ms']:.1f} ms from the create request to the last hop")
