"""Resources Keystone keeps as plain documents: the policies API (`/v3/policies`), OAuth1 consumers, and
OS-EP-FILTER (endpoint groups, and the endpoints and endpoint groups associated with a project)."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import Request, Response
from pydantic import Field

from pocketstack.common.app import json_body, json_response
from pocketstack.common.errors import BadRequest
from pocketstack.identity.api.common import (
    Open,
    collection,
    endpoint_body,
    enforce,
    link,
    manager,
    project_body,
    wrapped,
)
from pocketstack.identity.service import new_id
from pocketstack.identity.store import catalog, records
from pocketstack.identity.store.common import Endpoint, Project, fetch

EP_FILTER = "OS-EP-FILTER"


def _doc(request: Request, row: records.Record, path: str, **more: Any) -> dict[str, Any]:
    return {**row.data, "id": row.id, **more, "links": link(request, f"{path}/{row.id}")}


def _fields(data: Open, *named: str) -> dict[str, Any]:
    """The named fields that are set, and the extra attributes (Keystone keeps them)."""
    out = {k: getattr(data, k) for k in named if getattr(data, k) is not None}
    out.update({k: v for k, v in (data.model_extra or {}).items() if k not in ("id", "links")})
    return out


# ----- policies --------------------------------------------------------------------------------------------
class PolicyCreate(Open):
    blob: str
    type: str = Field(min_length=1, max_length=255)


class PolicyUpdate(Open):
    blob: str | None = None
    type: str | None = Field(None, min_length=1, max_length=255)


async def create_policy(request: Request) -> Response:
    enforce(request, "identity:create_policy")
    data = PolicyCreate.model_validate(wrapped(await json_body(request), "policy"))
    row = await records.create(manager(request).db, "policy", new_id(), _fields(data, "blob", "type"))
    return json_response({"policy": _doc(request, row, "policies")}, status=201)


async def list_policies(request: Request, type: str | None = None) -> Response:
    enforce(request, "identity:list_policy")
    rows = [r for r in await records.list_records(manager(request).db, "policy")
            if type is None or r.data.get("type") == type]
    return collection(request, "policies", [_doc(request, r, "policies") for r in rows])


async def get_policy(request: Request, policy_id: str) -> Response:
    enforce(request, "identity:get_policy")
    row = await records.get(manager(request).db, "policy", policy_id)
    return json_response({"policy": _doc(request, row, "policies")})


async def update_policy(request: Request, policy_id: str) -> Response:
    enforce(request, "identity:update_policy")
    data = PolicyUpdate.model_validate(wrapped(await json_body(request), "policy"))
    changes = _fields(data, "blob", "type")
    row, _ = await records.update(manager(request).db, "policy", policy_id, lambda cur: {**cur, **changes})
    return json_response({"policy": _doc(request, row, "policies")})


async def delete_policy(request: Request, policy_id: str) -> Response:
    enforce(request, "identity:delete_policy")
    await records.remove(manager(request).db, "policy", policy_id)
    return Response(status_code=204)


# ----- OAuth1 consumers ------------------------------------------------------------------------------------
class ConsumerBody(Open):
    description: str | None = None


async def create_consumer(request: Request) -> Response:
    enforce(request, "identity:create_consumer")
    body = await json_body(request)
    data = ConsumerBody.model_validate(wrapped(body, "consumer") if body else {})
    if "secret" in (data.model_extra or {}):
        raise BadRequest("Invalid input: a consumer's secret is generated, not given.")
    secret = secrets.token_urlsafe(32)
    row = await records.create(manager(request).db, "consumer", new_id(),
                               {**_fields(data), "description": data.description, "secret": secret})
    return json_response({"consumer": _consumer(request, row, with_secret=True)}, status=201)


def _consumer(request: Request, row: records.Record, *, with_secret: bool = False) -> dict[str, Any]:
    body = _doc(request, row, "OS-OAUTH1/consumers")
    if not with_secret:
        body.pop("secret", None)
    return body


async def list_consumers(request: Request) -> Response:
    enforce(request, "identity:list_consumer")
    rows = await records.list_records(manager(request).db, "consumer")
    return collection(request, "consumers", [_consumer(request, r) for r in rows])


async def get_consumer(request: Request, consumer_id: str) -> Response:
    enforce(request, "identity:get_consumer")
    row = await records.get(manager(request).db, "consumer", consumer_id)
    return json_response({"consumer": _consumer(request, row)})


async def update_consumer(request: Request, consumer_id: str) -> Response:
    enforce(request, "identity:update_consumer")
    data = ConsumerBody.model_validate(wrapped(await json_body(request), "consumer"))
    if "secret" in (data.model_extra or {}):
        raise BadRequest("Invalid input: a consumer's secret cannot be changed.")
    changes = _fields(data, "description")
    row, _ = await records.update(manager(request).db, "consumer", consumer_id, lambda cur: {**cur, **changes})
    return json_response({"consumer": _consumer(request, row)})


async def delete_consumer(request: Request, consumer_id: str) -> Response:
    enforce(request, "identity:delete_consumer")
    await records.remove(manager(request).db, "consumer", consumer_id)
    return Response(status_code=204)


# ----- endpoint groups -------------------------------------------------------------------------------------
FILTER_KEYS = {"interface", "service_id", "region_id"}


class EndpointGroupCreate(Open):
    name: str = Field(min_length=1, max_length=255)
    description: str | None = None
    filters: dict[str, Any]


class EndpointGroupUpdate(Open):
    name: str | None = Field(None, min_length=1, max_length=255)
    description: str | None = None
    filters: dict[str, Any] | None = None


def _check_filters(filters: dict[str, Any] | None) -> None:
    if filters is None:
        return
    if not filters or set(filters) - FILTER_KEYS or not all(isinstance(v, str) for v in filters.values()):
        raise BadRequest(f"Invalid input: an endpoint group's filters are strings among {sorted(FILTER_KEYS)}.")


def _group(request: Request, row: records.Record) -> dict[str, Any]:
    return _doc(request, row, f"{EP_FILTER}/endpoint_groups")


async def create_endpoint_group(request: Request) -> Response:
    enforce(request, "identity:create_endpoint_group")
    data = EndpointGroupCreate.model_validate(wrapped(await json_body(request), "endpoint_group"))
    _check_filters(data.filters)
    row = await records.create(manager(request).db, "endpoint_group", new_id(),
                               {**_fields(data, "name", "filters"), "description": data.description})
    return json_response({"endpoint_group": _group(request, row)}, status=201)


async def list_endpoint_groups(request: Request, name: str | None = None) -> Response:
    enforce(request, "identity:list_endpoint_group")
    rows = [r for r in await records.list_records(manager(request).db, "endpoint_group")
            if name is None or r.data.get("name") == name]
    return collection(request, "endpoint_groups", [_group(request, r) for r in rows])


async def get_endpoint_group(request: Request, group_id: str) -> Response:
    enforce(request, "identity:get_endpoint_group")
    row = await records.get(manager(request).db, "endpoint_group", group_id)
    return json_response({"endpoint_group": _group(request, row)})


async def check_endpoint_group(request: Request, group_id: str) -> Response:
    enforce(request, "identity:get_endpoint_group")
    await records.get(manager(request).db, "endpoint_group", group_id)
    return Response(status_code=200)


async def update_endpoint_group(request: Request, group_id: str) -> Response:
    enforce(request, "identity:update_endpoint_group")
    data = EndpointGroupUpdate.model_validate(wrapped(await json_body(request), "endpoint_group"))
    _check_filters(data.filters)
    changes = _fields(data, "name", "description", "filters")
    mgr = manager(request)
    row, _ = await records.update(mgr.db, "endpoint_group", group_id, lambda cur: {**cur, **changes})
    mgr.invalidate()
    return json_response({"endpoint_group": _group(request, row)})


async def delete_endpoint_group(request: Request, group_id: str) -> Response:
    enforce(request, "identity:delete_endpoint_group")
    mgr = manager(request)
    await records.remove(mgr.db, "endpoint_group", group_id)
    for assoc in await records.list_records(mgr.db, "project_endpoint_group"):
        if assoc.data.get("endpoint_group_id") == group_id:
            await records.remove(mgr.db, "project_endpoint_group", assoc.id)
    mgr.invalidate()
    return Response(status_code=204)


async def list_group_endpoints(request: Request, group_id: str) -> Response:
    enforce(request, "identity:list_endpoint_group")
    row = await records.get(manager(request).db, "endpoint_group", group_id)
    filters = row.data.get("filters") or {}
    endpoints = await catalog.list_endpoints(manager(request).db, filters.get("service_id"),
                                             filters.get("interface"), filters.get("region_id"), None)
    return collection(request, "endpoints", [endpoint_body(request, e) for e in endpoints])


# ----- project associations --------------------------------------------------------------------------------
async def _association(request: Request, kind: str, project_id: str, other_id: str) -> str:
    """Check that the project and the endpoint (or endpoint group) exist; the association's record id."""
    db = manager(request).db
    await fetch(db, Project, project_id, "project")
    if kind == "project_endpoint":
        await fetch(db, Endpoint, other_id, "endpoint")
    else:
        await records.get(db, "endpoint_group", other_id)
    return f"{project_id}:{other_id}"


async def add_project_endpoint(request: Request, project_id: str, endpoint_id: str) -> Response:
    enforce(request, "identity:create_project_endpoint")
    key = await _association(request, "project_endpoint", project_id, endpoint_id)
    mgr = manager(request)
    await records.update(mgr.db, "project_endpoint", key, lambda _: {"endpoint_id": endpoint_id},
                         create_missing=True, owner=project_id)
    mgr.invalidate()
    return Response(status_code=204)


async def check_project_endpoint(request: Request, project_id: str, endpoint_id: str) -> Response:
    enforce(request, "identity:get_project_endpoint")
    key = await _association(request, "project_endpoint", project_id, endpoint_id)
    await records.get(manager(request).db, "project_endpoint", key)
    return Response(status_code=204)


async def remove_project_endpoint(request: Request, project_id: str, endpoint_id: str) -> Response:
    enforce(request, "identity:delete_project_endpoint")
    mgr = manager(request)
    await records.remove(mgr.db, "project_endpoint", f"{project_id}:{endpoint_id}")
    mgr.invalidate()
    return Response(status_code=204)


async def list_project_endpoints(request: Request, project_id: str) -> Response:
    enforce(request, "identity:list_project_endpoint")
    db = manager(request).db
    await fetch(db, Project, project_id, "project")
    ids = {r.data["endpoint_id"] for r in await records.list_records(db, "project_endpoint", owner=project_id)}
    endpoints = [e for e in await catalog.list_endpoints(db, None, None, None, None) if e.id in ids]
    return collection(request, "endpoints", [endpoint_body(request, e) for e in endpoints])


async def list_endpoint_projects(request: Request, endpoint_id: str) -> Response:
    enforce(request, "identity:list_project_endpoint")
    db = manager(request).db
    await fetch(db, Endpoint, endpoint_id, "endpoint")
    project_ids = [r.owner for r in await records.list_records(db, "project_endpoint")
                   if r.data.get("endpoint_id") == endpoint_id]
    projects = [await fetch(db, Project, pid, "project") for pid in project_ids if pid]
    return collection(request, "projects", [project_body(request, p) for p in projects])


async def add_group_project(request: Request, group_id: str, project_id: str) -> Response:
    enforce(request, "identity:create_endpoint_group_in_project")
    key = await _association(request, "project_endpoint_group", project_id, group_id)
    mgr = manager(request)
    await records.update(mgr.db, "project_endpoint_group", key, lambda _: {"endpoint_group_id": group_id},
                         create_missing=True, owner=project_id)
    mgr.invalidate()
    return Response(status_code=204)


async def get_group_project(request: Request, group_id: str, project_id: str) -> Response:
    enforce(request, "identity:get_endpoint_group_in_project")
    key = await _association(request, "project_endpoint_group", project_id, group_id)
    await records.get(manager(request).db, "project_endpoint_group", key)
    project = await fetch(manager(request).db, Project, project_id, "project")
    return json_response({"project": project_body(request, project)})


async def remove_group_project(request: Request, group_id: str, project_id: str) -> Response:
    enforce(request, "identity:delete_endpoint_group_in_project")
    mgr = manager(request)
    await records.remove(mgr.db, "project_endpoint_group", f"{project_id}:{group_id}")
    mgr.invalidate()
    return Response(status_code=204)


async def list_group_projects(request: Request, group_id: str) -> Response:
    enforce(request, "identity:list_endpoint_group_in_project")
    db = manager(request).db
    await records.get(db, "endpoint_group", group_id)
    project_ids = [r.owner for r in await records.list_records(db, "project_endpoint_group")
                   if r.data.get("endpoint_group_id") == group_id]
    projects = [await fetch(db, Project, pid, "project") for pid in project_ids if pid]
    return collection(request, "projects", [project_body(request, p) for p in projects])


async def list_project_groups(request: Request, project_id: str) -> Response:
    enforce(request, "identity:list_endpoint_group_in_project")
    db = manager(request).db
    await fetch(db, Project, project_id, "project")
    group_ids = {r.data["endpoint_group_id"]
                 for r in await records.list_records(db, "project_endpoint_group", owner=project_id)}
    groups = [r for r in await records.list_records(db, "endpoint_group") if r.id in group_ids]
    return collection(request, "endpoint_groups", [_group(request, r) for r in groups])
