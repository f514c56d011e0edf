"""What every compute API route uses: the shared state (with its stores), links and pagination."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from pocketstack.common import apikit
from pocketstack.common.app import request_context
from pocketstack.common.clients.image import ImageClient
from pocketstack.common.clients.network import NetworkClient
from pocketstack.common.clients.volume import VolumeClient
from pocketstack.common.db import Database
from pocketstack.common.errors import BadRequest, Conflict
from pocketstack.common.microversion import MicroversionSpec
from pocketstack.common.policy import PolicyEngine
from pocketstack.compute import states
from pocketstack.compute.agent.rpcapi import ComputeAgentAPI
from pocketstack.compute.conductor.rpcapi import ConductorAPI
from pocketstack.compute.passwords import PasswordSeal
from pocketstack.compute.store.actions import ActionStore
from pocketstack.compute.store.attachments import AttachmentStore
from pocketstack.compute.store.migrations import MigrationStore
from pocketstack.compute.store.quotas import QuotaStore
from pocketstack.compute.store.server_meta import ServerMetaStore
from pocketstack.compute.store.servers import ServerStore
from pocketstack.settings import Settings

MICROVERSIONS = MicroversionSpec("compute", "2.1", "2.79", legacy_header="X-OpenStack-Nova-API-Version")


@dataclass
class ComputeAPIState:
    """Everything the compute API handlers share; lives on `app.state.compute`."""

    settings: Settings
    db: Database
    policy: PolicyEngine
    conductor: ConductorAPI | None  # set when the service starts (the transport exists then)
    agents: ComputeAgentAPI | None
    image: ImageClient
    network: NetworkClient
    volume: VolumeClient | None = None  # the block storage API (FLOW.md 26-28); made from the settings when None
    servers: ServerStore = field(init=False)
    server_meta: ServerMetaStore = field(init=False)
    attachments: AttachmentStore = field(init=False)
    actions: ActionStore = field(init=False)
    quotas: QuotaStore = field(init=False)
    _seal: PasswordSeal | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.volume is None:
            self.volume = VolumeClient(self.settings.base_url("volume"))
        self.servers = ServerStore(self.db, self.settings)
        self.server_meta = ServerMetaStore(self.db, self.settings)
        self.attachments = AttachmentStore(self.db)
        self.actions = ActionStore(self.db)
        self.quotas = QuotaStore(self.db, self.settings)

    def password_seal(self) -> PasswordSeal | None:
        """The seal of admin passwords (read once the identity bootstrap has made the shared secret)."""
        if self._seal is None:
            self._seal = PasswordSeal.from_settings(self.settings)
        return self._seal


def state(request: Request) -> ComputeAPIState:
    return request.app.state.compute


# ----- links and pages --------------------------------------------------------------------------------------
def base_url(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def links(request: Request, kind: str, ident: str) -> list[dict[str, str]]:
    root = base_url(request)
    return [{"rel": "self", "href": f"{root}/v2.1/{kind}/{ident}"},
            {"rel": "bookmark", "href": f"{root}/{kind}/{ident}"}]


def limit_param(request: Request, default: int = 1000, maximum: int = 1000) -> int:
    raw = request.query_params.get("limit")
    try:
        return apikit.parse_limit(raw, default=default, maximum=maximum)
    except ValueError as exc:
        raise BadRequest(f"Invalid input for query parameters limit. Value: {raw}. {exc}") from None


def next_link(request: Request, kind: str, items: list[dict[str, Any]], limit: int,
              key: str = "id") -> list[dict[str, str]]:
    """The `<kind>_links` next link when a page came back full."""
    if not items or len(items) < limit:
        return []
    params = dict(request.query_params)
    params["marker"] = str(items[-1][key])
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return [{"rel": "next", "href": f"{base_url(request)}{request.url.path}?{query}"}]


def page_body(request: Request, collection: str, items: list[dict[str, Any]], limit: int) -> dict[str, Any]:
    """`{collection: items}` with its `<collection>_links` next link when the page came back full."""
    body: dict[str, Any] = {collection: items}
    more = next_link(request, collection, items, limit)
    if more:
        body[f"{collection}_links"] = more
    return body


async def delete_instance(request: Request, server_id: str, policy: str) -> None:
    """A server's delete (DELETE, or the forceDelete action): policy, lock, then its host tears it down."""
    ctx = request_context(request)
    api = state(request)
    inst = await api.servers.visible(server_id, ctx)
    api.policy.enforce(policy, ctx, {"project_id": inst.project_id})
    if inst.locked and not ctx.is_admin:
        raise Conflict(f"Instance {inst.uuid} is locked")
    kept = None
    if inst.vm_state == states.RESIZED:  # the source still keeps the old guest: it goes, as Nova confirms first
        kept = await MigrationStore(api.db, api.settings).finished(inst.uuid)
    host = await api.servers.start_delete(inst.uuid, server_id, ctx)
    if kept is not None:
        await api.agents.confirm_resize(kept[1], inst.uuid, kept[0])
    if host is not None:
        await api.agents.terminate_instance(host, server_id)
