"""Quotas (`/v2.0/quotas`) and IP availability (`/v2.0/network-ip-availabilities`)."""

from __future__ import annotations

from fastapi import Request, Response

from pocketstack.common.app import json_body, json_response
from pocketstack.common.errors import BadRequest
from pocketstack.network.api.common import context, listing, manager, shown

AVAILABILITY_ATTRS = {"network_id", "network_name", "project_id", "tenant_id", "total_ips", "used_ips",
                      "subnet_ip_availability", "ip_version"}


async def list_quotas(request: Request) -> Response:
    return json_response({"quotas": await manager(request).list_quotas(context(request))})


async def show_quota(request: Request, project_id: str) -> Response:
    return json_response({"quota": await manager(request).get_quota(context(request), project_id)})


async def show_default_quota(request: Request, project_id: str) -> Response:
    return json_response({"quota": await manager(request).get_quota(context(request), project_id, default=True)})


async def show_quota_details(request: Request, project_id: str) -> Response:
    return json_response({"quota": await manager(request).get_quota(context(request), project_id, detail=True)})


async def update_quota(request: Request, project_id: str) -> Response:
    body = await json_body(request)
    if not isinstance(body, dict) or not isinstance(body.get("quota"), dict):
        raise BadRequest("Resource body required: the request body must be an object with a 'quota' object.")
    quota = await manager(request).update_quota(context(request), project_id, body["quota"])
    return json_response({"quota": quota})


async def delete_quota(request: Request, project_id: str) -> Response:
    await manager(request).delete_quota(context(request), project_id)
    return Response(status_code=204)


async def list_availabilities(request: Request) -> Response:
    items = await manager(request).ip_availabilities(context(request))
    ip_version = request.query_params.get("ip_version")
    if ip_version is not None:  # matches networks having a subnet of that version
        items = [i for i in items if any(str(s["ip_version"]) == ip_version for s in i["subnet_ip_availability"])]
    return listing(request, "network_ip_availabilities", items, AVAILABILITY_ATTRS, frozenset({"ip_version"}))


async def show_availability(request: Request, network_id: str) -> Response:
    items = await manager(request).ip_availabilities(context(request), network_id)
    return shown(request, "network_ip_availability", items[0])
