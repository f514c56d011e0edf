"""The image proxy Nova still serves up to microversion 2.35 (image metadata up to 2.38): `/images` in the
compute API's words, translated to the image service's v2 API over REST."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import Request, Response

from pocketstack.common import apikit
from pocketstack.common.app import json_body, json_response
from pocketstack.common.errors import BadRequest, Forbidden, NotFound
from pocketstack.compute.api.common import base_url, limit_param, state

PROXY_MAX = "2.35"  # Nova's image, network and volume proxies answer 404 above
METADATA_MAX = "2.38"  # /images/{id}/metadata answers 404 above

# Glance v2 attributes that are the image itself; every other attribute is a property (Nova's `metadata`)
CORE_ATTRIBUTES = {"id", "name", "status", "visibility", "protected", "checksum", "os_hash_algo", "os_hash_value",
                   "owner", "size", "virtual_size", "min_ram", "min_disk", "created_at", "updated_at", "tags",
                   "disk_format", "container_format", "self", "file", "schema", "locations", "direct_url",
                   "os_hidden", "stores"}
_STATUS = {"active": "ACTIVE", "queued": "SAVING", "saving": "SAVING", "uploading": "SAVING",
           "importing": "SAVING", "killed": "ERROR", "deleted": "DELETED", "pending_delete": "DELETED",
           "deactivated": "ERROR"}
_STATUS_FILTER = {"ACTIVE": "active", "SAVING": "saving", "ERROR": "killed", "DELETED": "deleted"}
_PROGRESS = {"ACTIVE": 100, "SAVING": 25}


def require_proxy(request: Request, maximum: str = PROXY_MAX) -> None:
    """404 above the last microversion of a proxy API, as Nova answers."""
    if apikit.version(request) > maximum:
        raise NotFound("The resource could not be found.")


def _timestamp(value: str | None) -> str | None:
    """Glance's timestamps in the compute API's form (seconds, Z)."""
    if not value:
        return value
    try:
        return apikit.iso_seconds(datetime.fromisoformat(value.replace("Z", "+00:00")).replace(tzinfo=None))
    except ValueError:
        return value


def _properties(image: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in image.items() if k not in CORE_ATTRIBUTES}


def _links(request: Request, image_id: str) -> list[dict[str, str]]:
    root = base_url(request)
    return [{"rel": "self", "href": f"{root}/v2.1/images/{image_id}"},
            {"rel": "bookmark", "href": f"{root}/images/{image_id}"},
            {"rel": "alternate", "type": "application/vnd.openstack.image",
             "href": f"{state(request).image.base_url}/images/{image_id}"}]


def image_view(request: Request, image: dict[str, Any]) -> dict[str, Any]:
    status = _STATUS.get(image.get("status", ""), "UNKNOWN")
    body: dict[str, Any] = {
        "id": image["id"], "name": image.get("name"), "status": status, "created": _timestamp(image.get("created_at")),
        "updated": _timestamp(image.get("updated_at")), "minDisk": image.get("min_disk") or 0,
        "minRam": image.get("min_ram") or 0, "progress": _PROGRESS.get(status, 0),
        "metadata": _properties(image), "links": _links(request, image["id"]),
        "OS-EXT-IMG-SIZE:size": image.get("size"),
    }
    server = image.get("instance_uuid")
    if server:
        root = base_url(request)
        body["server"] = {"id": server, "links": [{"rel": "self", "href": f"{root}/v2.1/servers/{server}"},
                                                  {"rel": "bookmark", "href": f"{root}/servers/{server}"}]}
    return body


def _list_params(request: Request) -> dict[str, str]:
    """Glance's query for the compute API's image filters (name, status, server, type, changes-since)."""
    q = request.query_params
    params: dict[str, str] = {}
    if q.get("name"):
        params["name"] = q["name"]
    if q.get("status"):
        params["status"] = _STATUS_FILTER.get(q["status"].upper(), q["status"].lower())
    if q.get("server"):
        params["instance_uuid"] = q["server"].rstrip("/").rsplit("/", 1)[-1]
    if q.get("type"):
        params["image_type"] = q["type"]
    if q.get("changes-since"):
        params["updated_at"] = f"gte:{q['changes-since']}"
    for key in ("minRam", "minDisk"):
        if q.get(key):
            params["min_ram" if key == "minRam" else "min_disk"] = q[key]
    if q.get("marker"):
        params["marker"] = q["marker"]
    return params


async def _images(request: Request) -> tuple[list[dict[str, Any]], int]:
    require_proxy(request)
    apikit.enforce(request, state(request), "os_compute_api:images:list")
    limit = limit_param(request)
    params = {**_list_params(request), "limit": str(limit)}
    _, body, _ = await state(request).image.request("GET", "/v2/images", params=params)
    images = body["images"]
    q = request.query_params
    for key, attr in (("minRam", "min_ram"), ("minDisk", "min_disk")):  # Nova: at least this much
        if q.get(key):
            try:
                floor = int(q[key])
            except ValueError:
                raise BadRequest(f"Invalid input for query parameters {key}. Value: {q[key]}.") from None
            images = [i for i in images if (i.get(attr) or 0) >= floor]
    return images, limit


def _page(request: Request, items: list[dict[str, Any]], limit: int) -> dict[str, Any]:
    body: dict[str, Any] = {"images": items}
    if items and len(items) >= limit:
        params = dict(request.query_params)
        params["marker"] = items[-1]["id"]
        query = "&".join(f"{k}={v}" for k, v in params.items())
        body["images_links"] = [{"rel": "next", "href": f"{base_url(request)}{request.url.path}?{query}"}]
    return body


async def list_images(request: Request) -> Response:
    images, limit = await _images(request)
    return json_response(_page(request, [{"id": i["id"], "name": i.get("name"), "links": _links(request, i["id"])}
                                         for i in images], limit))


async def list_images_detail(request: Request) -> Response:
    images, limit = await _images(request)
    return json_response(_page(request, [image_view(request, i) for i in images], limit))


async def _image(request: Request, image_id: str, action: str, maximum: str = PROXY_MAX) -> dict[str, Any]:
    require_proxy(request, maximum)
    apikit.enforce(request, state(request), action)
    try:
        _, body, _ = await state(request).image.request("GET", f"/v2/images/{image_id}")
    except NotFound:
        raise NotFound("Image not found.") from None
    return body


async def show_image(request: Request, image_id: str) -> Response:
    image = await _image(request, image_id, "os_compute_api:images:show")
    return json_response({"image": image_view(request, image)})


async def delete_image(request: Request, image_id: str) -> Response:
    await _image(request, image_id, "os_compute_api:images:delete")
    try:
        await state(request).image.request("DELETE", f"/v2/images/{image_id}")
    except NotFound:
        raise NotFound("Image not found.") from None
    return Response(status_code=204)


# ----- image metadata (<= 2.38) ------------------------------------------------------------------------------
async def _patch(request: Request, image: dict[str, Any], wanted: dict[str, Any]) -> dict[str, Any]:
    """Make the image's properties `wanted` (a JSON patch of the differences); its properties after."""
    current = _properties(image)
    limit = state(request).settings.compute.quota_metadata_items
    if len(wanted) > limit:
        raise Forbidden("Quota exceeded for metadata_items: the image may have at most "
                        f"{limit} metadata items.")
    ops = [{"op": "remove", "path": f"/{key}"} for key in current if key not in wanted]
    ops += [{"op": "replace" if key in current else "add", "path": f"/{key}", "value": value}
            for key, value in wanted.items() if current.get(key) != value]
    try:  # even with nothing to change: Glance decides whether the caller may change the image
        _, body, _ = await state(request).image.request(
            "PATCH", f"/v2/images/{image['id']}", json=ops,
            headers={"Content-Type": "application/openstack-images-v2.1-json-patch"})
    except NotFound:
        raise NotFound("Image not found.") from None
    return _properties(body)


def _metadata_arg(raw: Any, key: str) -> dict[str, str]:
    value = raw.get(key) if isinstance(raw, dict) else None
    if not isinstance(value, dict):
        raise BadRequest(f"Invalid input: '{key}' is a required property.")
    for k, v in value.items():
        if not isinstance(v, str) or not 1 <= len(k) <= 255 or len(v) > 255:
            raise BadRequest("Invalid metadata: keys must be 1-255 characters and values strings of at most 255.")
    return value


async def list_metadata(request: Request, image_id: str) -> Response:
    image = await _image(request, image_id, "os_compute_api:image-metadata:index", METADATA_MAX)
    return json_response({"metadata": _properties(image)})


async def merge_metadata(request: Request, image_id: str) -> Response:
    image = await _image(request, image_id, "os_compute_api:image-metadata:create", METADATA_MAX)
    metadata = _metadata_arg(await json_body(request), "metadata")
    return json_response({"metadata": await _patch(request, image, {**_properties(image), **metadata})})


async def replace_metadata(request: Request, image_id: str) -> Response:
    image = await _image(request, image_id, "os_compute_api:image-metadata:update_all", METADATA_MAX)
    metadata = _metadata_arg(await json_body(request), "metadata")
    return json_response({"metadata": await _patch(request, image, metadata)})


async def show_metadata_item(request: Request, image_id: str, key: str) -> Response:
    image = await _image(request, image_id, "os_compute_api:image-metadata:show", METADATA_MAX)
    props = _properties(image)
    if key not in props:
        raise NotFound(f"Image {image_id} has no metadata item {key}.")
    return json_response({"meta": {key: props[key]}})


async def set_metadata_item(request: Request, image_id: str, key: str) -> Response:
    image = await _image(request, image_id, "os_compute_api:image-metadata:update", METADATA_MAX)
    meta = _metadata_arg(await json_body(request), "meta")
    if len(meta) != 1:
        raise BadRequest("Request body contains too many items")
    if key not in meta:
        raise BadRequest("Request body and URI mismatch")
    props = await _patch(request, image, {**_properties(image), **meta})
    return json_response({"meta": {key: props[key]}})


async def delete_metadata_item(request: Request, image_id: str, key: str) -> Response:
    image = await _image(request, image_id, "os_compute_api:image-metadata:delete", METADATA_MAX)
    props = _properties(image)
    if key not in props:
        raise NotFound(f"Image {image_id} has no metadata item {key}.")
    del props[key]
    await _patch(request, image, props)
    return Response(status_code=204)
