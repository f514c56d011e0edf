"""`pocketstack trace SERVER`: the boot of a server as a timeline of FLOW.md hops."""

from __future__ import annotations

import re
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from pocketstack.common.apikit import is_uuid
from pocketstack.common.clients.base import ServiceClient, close_http_session
from pocketstack.common.clients.identity import IdentityClient
from pocketstack.common.errors import APIError, NotFound
from pocketstack.common.service import stored_passwords
from pocketstack.settings import Settings
from pocketstack.trace.store import TraceStore


class TraceError(Exception):
    pass


# Deleted servers and their instance actions are readable since 2.21.
MICROVERSION = {"OpenStack-API-Version": "compute 2.21"}


def admin_auth(settings: Settings) -> dict[str, str]:
    """The admin cloud's credentials: DATA_DIR/clouds.yaml as the cloud wrote it, else the settings."""
    path = settings.data_dir / "clouds.yaml"
    if path.exists():
        return yaml.safe_load(path.read_text())["clouds"]["pocketstack"]["auth"]
    password = settings.identity.admin_password or stored_passwords(settings.data_dir).get("admin", "")
    return {"auth_url": settings.base_url("identity") + "/v3", "username": "admin", "password": password,
            "project_name": "admin"}


async def admin_session(settings: Settings) -> tuple[str, dict[str, Any]]:
    """A token of the admin cloud (clouds.yaml, else the settings) and the token's body (catalog, project)."""
    auth = admin_auth(settings)
    identity = IdentityClient(auth["auth_url"].removesuffix("/").removesuffix("/v3"))
    return await identity.issue_token(auth["username"], auth["password"], auth["project_name"])


def public_url(token_body: dict[str, Any], service_type: str) -> str | None:
    """The public endpoint of a service type in a token's catalog."""
    return next((e["url"] for entry in token_body.get("catalog", []) if entry["type"] == service_type
                 for e in entry["endpoints"] if e["interface"] == "public"), None)


async def _compute_client(settings: Settings) -> tuple[ServiceClient, str]:
    """A token of the admin cloud and the compute API of its catalog."""
    token, body = await admin_session(settings)
    url = public_url(body, "compute")
    if url is None:
        raise TraceError("the catalog has no compute endpoint")
    return ServiceClient(url, "compute"), token


async def find_server(settings: Settings, server: str) -> tuple[str, str, str]:
    """(uuid, name, request id of its create) for a server id or name, asked of the compute API as admin (the
    create action's request id is the one the spans of its boot carry)."""
    try:
        compute, token = await _compute_client(settings)
        uuid, name = await _server(compute, token, server)
        _, body, _ = await compute.request("GET", f"/servers/{uuid}/os-instance-actions", token=token,
                                           headers=MICROVERSION)
    except APIError as exc:
        raise TraceError(f"the cloud answered {exc.status}: {exc.message}")
    finally:
        await close_http_session()
    create = next((a for a in body["instanceActions"] if a["action"] == "create"), None)
    return uuid, name, create["request_id"] if create else ""


async def _server(compute: ServiceClient, token: str, server: str) -> tuple[str, str]:
    """(uuid, name): the server with that id, else the live server of that name, else the latest deleted one."""
    if is_uuid(server):
        try:
            _, body, _ = await compute.request("GET", f"/servers/{server}", token=token, headers=MICROVERSION)
            return body["server"]["id"], body["server"]["name"]
        except NotFound:
            pass
    exact = {"name": f"^{re.escape(server)}$", "all_tenants": "1"}
    _, body, _ = await compute.request("GET", "/servers", token=token, params=exact, headers=MICROVERSION)
    live = body["servers"]
    if len(live) > 1:
        raise TraceError(f"{len(live)} servers are named {server!r}; give the server's ID")
    if not live:
        _, body, _ = await compute.request("GET", "/servers/detail", token=token, headers=MICROVERSION,
                                           params={**exact, "deleted": "true"})
        live = [s for s in body["servers"] if s.get("status") == "DELETED"]
    if not live and is_uuid(server):  # a deleted server's own id
        return server, server
    if not live:
        raise TraceError(f"no server {server!r}")
    return live[0]["id"], live[0]["name"]


async def collect(settings: Settings, server: str) -> dict[str, Any]:
    uuid, name, request_id = await find_server(settings, server)
    trace = await collect_request(settings, request_id)
    if trace is None:
        raise TraceError(f"no spans recorded for server {name} (request {request_id}); tracing may be off or "
                         "the spans have expired")
    return {"server": {"id": uuid, "name": name}, **trace}


async def collect_request(settings: Settings, request_id: str) -> dict[str, Any] | None:
    """The hops of one request (and the token issue before it) from the span store; None without spans."""
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
        return None
    origin = spans[0].start
    hops = [{"step": s.step, "from": s.source, "to": s.target, "kind": s.kind, "operation": s.operation,
             "offset_ms": round((s.start - origin) * 1000, 2), "duration_ms": round(s.duration * 1000, 2),
             "outcome": s.outcome, "request_id": s.request_id, "process": s.process} for s in rows]
    end = max(s.start + s.duration for s in spans)
    return {"request_id": request_id, "hops": hops,
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
