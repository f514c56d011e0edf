"""`os-migrations` (every server's resizes and migrations, with Nova's filters; uuid and paging since 2.59,
changes-before 2.66, user and project 2.80) and `servers/{id}/migrations` (2.23: a server's live migrations in
progress, as Nova lists only those there; pocketstack has no live migration, so the list is empty)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import Request, Response

from pocketstack.common.apikit import enforce, iso_micro, version
from pocketstack.common.app import json_response, request_context
from pocketstack.common.errors import BadRequest, NotFound
from pocketstack.compute.api.common import base_url, limit_param, state
from pocketstack.compute.store.migrations import Migration, MigrationQuery, MigrationStore

MIGRATION_TYPES = ("evacuation", "live-migration", "migration", "resize")


def _parse_iso(name: str, raw: str) -> datetime:
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"Invalid input for query parameters {name}. Value: {raw}. '{raw}' is not a "
                         "'date-time'") from None
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def _view(request: Request, mig: Migration) -> dict[str, Any]:
    ver = version(request)
    body: dict[str, Any] = {
        "id": mig.id, "instance_uuid": mig.instance_uuid, "source_compute": mig.source_compute,
        "dest_compute": mig.dest_compute, "source_node": mig.source_node, "dest_node": mig.dest_node,
        "dest_host": mig.dest_host, "status": mig.status, "old_instance_type_id": mig.old_instance_type_id,
        "new_instance_type_id": mig.new_instance_type_id, "created_at": iso_micro(mig.created_at),
        "updated_at": iso_micro(mig.updated_at)}
    if ver >= "2.23":
        body["migration_type"] = mig.migration_type
    if ver >= "2.59":
        body["uuid"] = mig.uuid
    if ver >= "2.80":
        body["user_id"], body["project_id"] = mig.user_id, mig.project_id
    return body


def _bool(name: str, raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on", "t", "y"):
        return True
    if lowered in ("0", "false", "no", "off", "f", "n"):
        return False
    raise BadRequest(f"Invalid input for query parameters {name}. Value: {raw}. Unrecognized value '{raw}'")


async def list_migrations(request: Request) -> Response:
    """The migrations of servers, newest first, filtered as Nova filters them (hidden ones only when asked)."""
    enforce(request, state(request), "os_compute_api:os-migrations:index", {})
    q = request.query_params
    ver = version(request)
    kind = q.get("migration_type")
    if kind is not None and kind not in MIGRATION_TYPES:
        raise BadRequest(f"Invalid input for query parameters migration_type. Value: {kind}. It must be one of "
                         f"{', '.join(MIGRATION_TYPES)}")
    query = MigrationQuery(instance_uuid=q.get("instance_uuid"), source_compute=q.get("source_compute"),
                           status=q.get("status"), migration_type=kind, host=q.get("host"),
                           hidden=_bool("hidden", q["hidden"]) if q.get("hidden") is not None else False)
    limit = None
    if ver >= "2.59":
        limit = limit_param(request)
        query.limit, query.marker = limit, q.get("marker")
        if q.get("changes-since") is not None:
            query.changes_since = _parse_iso("changes-since", q["changes-since"])
        if ver >= "2.66" and q.get("changes-before") is not None:
            query.changes_before = _parse_iso("changes-before", q["changes-before"])
            if query.changes_since and query.changes_before < query.changes_since:
                raise BadRequest("The value of changes-since must be less than or equal to changes-before.")
    if ver >= "2.80":
        for name in ("user_id", "project_id"):
            if q.get(name) is not None and not q[name]:
                raise BadRequest(f"Invalid input for query parameters {name}: it may not be empty")
        query.user_id, query.project_id = q.get("user_id"), q.get("project_id")
    api = state(request)
    rows = await MigrationStore(api.db, api.settings).list(query)
    if ver < "2.23":
        rows = [r for r in rows if r.migration_type != "live-migration"]
    body: dict[str, Any] = {"migrations": [_view(request, r) for r in rows]}
    if limit is not None and rows and len(rows) >= limit:
        params = {**dict(q), "marker": rows[-1].uuid}
        query_string = "&".join(f"{k}={v}" for k, v in params.items())
        body["migrations_links"] = [{"rel": "next", "href": f"{base_url(request)}{request.url.path}?"
                                                            f"{query_string}"}]
    return json_response(body)


async def list_server_migrations(request: Request, server_id: str) -> Response:
    """A server's live migrations in progress (2.23): none, as pocketstack moves servers only cold."""
    if version(request) < "2.23":
        raise NotFound("The resource could not be found.")
    ctx = request_context(request)
    api = state(request)
    inst = await api.servers.visible(server_id, ctx)
    api.policy.enforce("os_compute_api:servers:migrations:index", ctx, {"project_id": inst.project_id})
    return json_response({"migrations": []})


async def show_server_migration(request: Request, server_id: str, migration_id: str) -> Response:
    """One live migration in progress of a server (2.23): never found (cold moves are not listed there)."""
    if version(request) < "2.23":
        raise NotFound("The resource could not be found.")
    ctx = request_context(request)
    api = state(request)
    inst = await api.servers.visible(server_id, ctx)
    api.policy.enforce("os_compute_api:servers:migrations:show", ctx, {"project_id": inst.project_id})
    raise NotFound(f"Migration {migration_id} for instance {server_id} not found")
