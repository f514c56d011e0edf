"""What every compute API route uses: the shared state, policy, microversion, links, pagination, lookups."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import Request

from pocketstack.common.app import request_context
from pocketstack.common.clients.image import ImageClient
from pocketstack.common.clients.network import NetworkClient
from pocketstack.common.clients.volume import VolumeClient
from pocketstack.common.context import RequestContext
from pocketstack.common.db import Database
from pocketstack.common.errors import BadRequest
from pocketstack.common.microversion import APIVersion, MicroversionSpec, api_version
from pocketstack.common.policy import PolicyEngine
from pocketstack.settings import Settings

MICROVERSIONS = MicroversionSpec("compute", "2.1", "2.79", legacy_header="X-OpenStack-Nova-API-Version")


@dataclass
class ComputeAPIState:
    """Everything the compute API handlers share; lives on `app.state.compute`."""

    settings: Settings
    db: Database
    policy: PolicyEngine
    conductor: Any  # pocketstack.compute.conductor.rpcapi.ConductorAPI
    agents: Any  # pocketstack.compute.agent.rpcapi.ComputeAgentAPI
    image: ImageClient
    network: NetworkClient
    volume: VolumeClient | None = None  # the block storage API (FLOW.md 26-28); made from the settings when None

    def __post_init__(self) -> None:
        if self.volume is None:
            self.volume = VolumeClient(self.settings.base_url("volume"))


def state(request: Request) -> ComputeAPIState:
    return request.app.state.compute


def enforce(request: Request, action: str, target: dict[str, Any] | None = None) -> RequestContext:
    ctx = request_context(request)
    state(request).policy.enforce(action, ctx, target or {"project_id": ctx.project_id})
    return ctx


def version(request: Request) -> APIVersion:
    return api_version(request)


def base_url(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def links(request: Request, kind: str, ident: str) -> list[dict[str, str]]:
    root = base_url(request)
    return [{"rel": "self", "href": f"{root}/v2.1/{kind}/{ident}"},
            {"rel": "bookmark", "href": f"{root}/{kind}/{ident}"}]


def isotime(value: datetime | None) -> str | None:
    """Nova's timestamp format in server bodies: 2026-01-01T00:00:00Z."""
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def isotime_micro(value: datetime | None) -> str | None:
    """The format with microseconds Nova uses for actions, flavors and services: 2026-01-01T00:00:00.000000."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f") if value else None


def limit_param(request: Request, default: int = 1000, maximum: int = 1000) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"Invalid input for query parameters limit. Value: {raw}. '{raw}' is not an integer")
    if value < 0:
        raise BadRequest(f"Invalid input for query parameters limit. Value: {raw}. {raw} is less than the minimum "
                         "of 0")
    return min(value, maximum)


def next_link(request: Request, kind: str, items: list[dict[str, Any]], limit: int,
              key: str = "id") -> list[dict[str, str]]:
    """The `<kind>_links` next link when a page came back full."""
    if not items or len(items) < limit:
        return []
    params = dict(request.query_params)
    params["marker"] = str(items[-1][key])
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return [{"rel": "next", "href": f"{base_url(request)}{request.url.path}?{query}"}]

