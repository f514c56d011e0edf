"""The volume proxies Nova still serves up to microversion 2.35: `os-volumes` and `os-snapshots`, in the compute
API's words (camelCase), translated to the block storage API over REST."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response

from pocketstack.common import apikit
from pocketstack.common.app import json_body, json_response, request_context
from pocketstack.common.errors import BadRequest, NotFound
from pocketstack.compute.api.common import state
from pocketstack.compute.api.proxy_images import require_proxy

MICROVERSION = {"OpenStack-API-Version": "volume 3.0"}


async def _call(request: Request, method: str, path: str, json: Any = None,
                params: dict[str, str] | None = None) -> Any:
    """A block storage call in the caller's project; its 404 becomes the compute API's."""
    project = request_context(request).project_id
    client = state(request).volume
    assert client is not None
    _, body, _ = await client.request(method, f"/v3/{project}{path}", json=json, params=params,
                                      headers=MICROVERSION)
    return body


def _created_at(value: str | None) -> str | None:
    return value.replace("Z", "") if value else value


def volume_view(volume: dict[str, Any]) -> dict[str, Any]:
    """A volume as the compute API's `os-volumes` shows it (attachments `[{}]` when it has none, as Nova's)."""
    attachments = [{"id": volume["id"], "volumeId": volume["id"], "serverId": a["server_id"],  # Nova's ids
                    "device": a.get("device") or ""}
                   for a in volume.get("attachments") or [] if a.get("server_id")]
    return {"id": volume["id"], "status": volume["status"], "size": volume["size"],
            "availabilityZone": volume.get("availability_zone") or "",
            "createdAt": _created_at(volume.get("created_at")),
            "displayName": volume.get("name"), "displayDescription": volume.get("description"),
            "volumeType": volume.get("volume_type"), "snapshotId": volume.get("snapshot_id"),
            "metadata": volume.get("metadata") or {}, "attachments": attachments or [{}]}


def snapshot_view(snapshot: dict[str, Any]) -> dict[str, Any]:
    return {"id": snapshot["id"], "volumeId": snapshot["volume_id"], "status": snapshot["status"],
            "size": snapshot["size"], "createdAt": _created_at(snapshot.get("created_at")),
            "displayName": snapshot.get("name"), "displayDescription": snapshot.get("description")}


def _window(request: Request, items: list[Any]) -> list[Any]:
    """`offset` and `limit` of a proxy list (Nova applies them to what the block storage API returned)."""
    q = request.query_params
    values = {}
    for key in ("offset", "limit"):
        raw = q.get(key)
        if raw is None:
            continue
        try:
            values[key] = int(raw)
        except ValueError:
            raise BadRequest(f"Invalid input for query parameters {key}. Value: {raw}.") from None
        if values[key] < 0:
            raise BadRequest(f"Invalid input for query parameters {key}. Value: {raw}.")
    start = values.get("offset", 0)
    return items[start:start + values["limit"] if "limit" in values else None]


def _size(value: Any) -> int:
    if isinstance(value, bool):
        value = None
    try:
        size = int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"Invalid input for field/attribute size. Value: {value}. "
                         f"'{value}' is not of type 'integer'") from None
    if size < 1:
        raise BadRequest(f"Invalid input for field/attribute size. Value: {value}. "
                         "0 is less than the minimum of 1" if size == 0 else
                         f"Invalid input for field/attribute size. Value: {value}.")
    return size


# ----- os-volumes --------------------------------------------------------------------------------------------
async def _list_volumes(request: Request) -> Response:
    require_proxy(request)
    apikit.enforce(request, state(request), "os_compute_api:os-volumes:list")
    body = await _call(request, "GET", "/volumes/detail")
    return json_response({"volumes": [volume_view(v) for v in _window(request, body["volumes"])]})


async def list_volumes(request: Request) -> Response:
    return await _list_volumes(request)


async def list_volumes_detail(request: Request) -> Response:
    return await _list_volumes(request)


async def show_volume(request: Request, volume_id: str) -> Response:
    require_proxy(request)
    apikit.enforce(request, state(request), "os_compute_api:os-volumes:show")
    try:
        body = await _call(request, "GET", f"/volumes/{volume_id}")
    except NotFound:
        raise NotFound(f"Volume {volume_id} could not be found.") from None
    return json_response({"volume": volume_view(body["volume"])})


async def create_volume(request: Request) -> Response:
    require_proxy(request)
    apikit.enforce(request, state(request), "os_compute_api:os-volumes:create")
    raw = await json_body(request)
    spec = raw.get("volume") if isinstance(raw, dict) else None
    if not isinstance(spec, dict):
        raise BadRequest("Invalid input: 'volume' is a required property.")
    if "size" not in spec:
        raise BadRequest("Invalid input for field/attribute volume. 'size' is a required property")
    volume: dict[str, Any] = {"size": _size(spec["size"])}
    for ours, theirs in (("display_name", "name"), ("display_description", "description"),
                         ("volume_type", "volume_type"), ("metadata", "metadata"),
                         ("availability_zone", "availability_zone"), ("snapshot_id", "snapshot_id"),
                         ("imageRef", "imageRef")):
        if spec.get(ours) is not None:
            volume[theirs] = spec[ours]
    if "metadata" in volume and not isinstance(volume["metadata"], dict):
        raise BadRequest("Invalid input for field/attribute metadata: it must be an object.")
    body = await _call(request, "POST", "/volumes", json={"volume": volume})
    return json_response({"volume": volume_view(body["volume"])})


async def delete_volume(request: Request, volume_id: str) -> Response:
    require_proxy(request)
    apikit.enforce(request, state(request), "os_compute_api:os-volumes:delete")
    try:
        await _call(request, "DELETE", f"/volumes/{volume_id}")
    except NotFound:
        raise NotFound(f"Volume {volume_id} could not be found.") from None
    return Response(status_code=202)


# ----- os-snapshots ------------------------------------------------------------------------------------------
async def _list_snapshots(request: Request) -> Response:
    require_proxy(request)
    apikit.enforce(request, state(request), "os_compute_api:os-volumes:snapshots:list")
    body = await _call(request, "GET", "/snapshots/detail")
    return json_response({"snapshots": [snapshot_view(s) for s in _window(request, body["snapshots"])]})


async def list_snapshots(request: Request) -> Response:
    return await _list_snapshots(request)


async def list_snapshots_detail(request: Request) -> Response:
    return await _list_snapshots(request)


async def show_snapshot(request: Request, snapshot_id: str) -> Response:
    require_proxy(request)
    apikit.enforce(request, state(request), "os_compute_api:os-volumes:snapshots:show")
    try:
        body = await _call(request, "GET", f"/snapshots/{snapshot_id}")
    except NotFound:
        raise NotFound(f"Snapshot {snapshot_id} could not be found.") from None
    return json_response({"snapshot": snapshot_view(body["snapshot"])})


async def create_snapshot(request: Request) -> Response:
    require_proxy(request)
    apikit.enforce(request, state(request), "os_compute_api:os-volumes:snapshots:create")
    raw = await json_body(request)
    spec = raw.get("snapshot") if isinstance(raw, dict) else None
    if not isinstance(spec, dict) or not isinstance(spec.get("volume_id"), str):
        raise BadRequest("Invalid input: 'snapshot' with a 'volume_id' is a required property.")
    force = spec.get("force", False)
    if isinstance(force, str):
        try:
            force = apikit.parse_bool(force)
        except ValueError:
            raise BadRequest(f"Invalid value '{force}' for force.") from None
    snapshot: dict[str, Any] = {"volume_id": spec["volume_id"], "force": bool(force)}
    if spec.get("display_name") is not None:
        snapshot["name"] = spec["display_name"]
    if spec.get("display_description") is not None:
        snapshot["description"] = spec["display_description"]
    body = await _call(request, "POST", "/snapshots", json={"snapshot": snapshot})
    return json_response({"snapshot": snapshot_view(body["snapshot"])})


async def delete_snapshot(request: Request, snapshot_id: str) -> Response:
    require_proxy(request)
    apikit.enforce(request, state(request), "os_compute_api:os-volumes:snapshots:delete")
    try:
        await _call(request, "DELETE", f"/snapshots/{snapshot_id}")
    except NotFound:
        raise NotFound(f"Snapshot {snapshot_id} could not be found.") from None
    return Response(status_code=202)
