"""`os-aggregates`: host aggregates (create, list, show, update, delete) and their actions (add_host, remove_host,
set_metadata); an aggregate's `availability_zone` metadata makes its hosts a zone."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Request, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from pocketstack.common.apikit import enforce, iso_micro, version
from pocketstack.common.app import json_body, json_response
from pocketstack.common.errors import BadRequest
from pocketstack.compute.api.common import state
from pocketstack.compute.bodies import display_name, parse
from pocketstack.compute.store.aggregates import Aggregate, AggregateStore, aggregate_metadata, aggregate_zone

Name = Annotated[str, Field(min_length=1, max_length=255), AfterValidator(display_name)]


def _zone_name(value: str | None) -> str | None:
    if value is not None and ":" in value:
        raise ValueError("an availability zone name may not contain ':'")
    return value


ZoneName = Annotated[str | None, Field(min_length=1, max_length=255), AfterValidator(_zone_name)]


class AggregateCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    availability_zone: ZoneName = None


class AggregateUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    availability_zone: ZoneName = None


class HostBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    host: str = Field(min_length=1, max_length=255)


class MetadataBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    metadata: dict[Annotated[str, Field(min_length=1, max_length=255)],
                   Annotated[str, Field(max_length=255)] | None] = Field(min_length=1)


def _aggregates(request: Request) -> AggregateStore:
    return AggregateStore(state(request).db)


def _view(request: Request, aggregate: Aggregate, full: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": aggregate.id, "name": aggregate.name, "availability_zone": aggregate_zone(aggregate),
        "created_at": iso_micro(aggregate.created_at), "updated_at": iso_micro(aggregate.updated_at),
        "deleted": False, "deleted_at": None,
    }
    if full:
        body.update(hosts=[h.host for h in aggregate.hosts], metadata=aggregate_metadata(aggregate))
    if version(request) >= "2.41":
        body["uuid"] = aggregate.uuid
    return body


def _id(aggregate_id: str) -> int:
    """The integer id of the path (any integer: a negative one is simply not found, as in Nova)."""
    try:
        return int(aggregate_id)
    except ValueError:
        raise BadRequest(f"Invalid input for field/attribute id. Value: {aggregate_id}. It must be an "
                         "integer") from None


async def list_aggregates(request: Request) -> Response:
    enforce(request, state(request), "os_compute_api:os-aggregates:index", {})
    return json_response({"aggregates": [_view(request, a) for a in await _aggregates(request).list()]})


async def create_aggregate(request: Request) -> Response:
    enforce(request, state(request), "os_compute_api:os-aggregates:create", {})
    body = await parse(request, "aggregate", AggregateCreate)
    aggregate = await _aggregates(request).create(body.name, body.availability_zone)
    return json_response({"aggregate": _view(request, aggregate, full=False)})


async def show_aggregate(request: Request, aggregate_id: str) -> Response:
    enforce(request, state(request), "os_compute_api:os-aggregates:show", {})
    return json_response({"aggregate": _view(request, await _aggregates(request).get(_id(aggregate_id)))})


async def update_aggregate(request: Request, aggregate_id: str) -> Response:
    enforce(request, state(request), "os_compute_api:os-aggregates:update", {})
    ident = _id(aggregate_id)
    body = await parse(request, "aggregate", AggregateUpdate)
    if not body.model_fields_set:
        raise BadRequest("Invalid input for field/attribute aggregate: give at least one of name and "
                         "availability_zone")
    if "name" in body.model_fields_set and body.name is None:
        raise BadRequest("Invalid input for field/attribute name. Value: None. None is not of type 'string'")
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    aggregate = await _aggregates(request).update(ident, changes)
    return json_response({"aggregate": _view(request, aggregate)})


async def delete_aggregate(request: Request, aggregate_id: str) -> Response:
    enforce(request, state(request), "os_compute_api:os-aggregates:delete", {})
    await _aggregates(request).delete(_id(aggregate_id))
    return Response(status_code=200)


ACTIONS = {"add_host": ("os_compute_api:os-aggregates:add_host", HostBody),
           "remove_host": ("os_compute_api:os-aggregates:remove_host", HostBody),
           "set_metadata": ("os_compute_api:os-aggregates:set_metadata", MetadataBody)}


async def aggregate_action(request: Request, aggregate_id: str) -> Response:
    raw = await json_body(request)
    if not isinstance(raw, dict) or len(raw) != 1 or next(iter(raw)) not in ACTIONS:
        raise BadRequest("Invalid input: the body must be one of add_host, remove_host and set_metadata.")
    action = next(iter(raw))
    rule, model = ACTIONS[action]
    enforce(request, state(request), rule, {})
    ident = _id(aggregate_id)
    body = await parse(request, action, model)
    store = _aggregates(request)
    if isinstance(body, MetadataBody):
        aggregate = await store.set_metadata(ident, body.metadata)
    elif action == "add_host":
        aggregate = await store.add_host(ident, body.host)
    else:
        aggregate = await store.remove_host(ident, body.host)
    return json_response({"aggregate": _view(request, aggregate)})
