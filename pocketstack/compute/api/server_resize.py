"""`resize`, `confirmResize`, `revertResize` and `migrate` server actions (Nova's servers resize actions and
os-migrate-server). The API checks and records the move (a `migrations` row, task resize_prep) and casts it to the
conductor, which schedules a destination and drives the hosts; confirm goes to the source host (which frees the
old guest), revert to the destination (which hands the server back to the source)."""

from __future__ import annotations

import contextlib
from typing import Any

from fastapi import Request, Response

from pocketstack.common import apikit
from pocketstack.common.app import request_context
from pocketstack.common.context import RequestContext
from pocketstack.common.errors import BadRequest, Conflict
from pocketstack.compute.api.common import state
from pocketstack.compute.store.migrations import MigrationStore


def _store(request: Request) -> MigrationStore:
    api = state(request)
    return MigrationStore(api.db, api.settings)


def _checker(request: Request, ctx: RequestContext, policy: str) -> Any:
    api = state(request)

    def check(inst: Any) -> None:
        api.policy.enforce(policy, ctx, {"project_id": inst.project_id, "user_id": inst.user_id})
        if inst.locked and not ctx.is_admin:
            raise Conflict(f"Instance {inst.uuid} is locked")

    return check


def _extra(args: dict[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(args) - allowed)
    if extra:
        raise BadRequest(f"Additional properties are not allowed ({', '.join(repr(k) for k in extra)} "
                         f"{'was' if len(extra) == 1 else 'were'} unexpected)")


async def _cast_move(request: Request, instance_uuid: str, migration_uuid: str, host: str | None) -> None:
    api = state(request)
    ctx = request_context(request)
    try:
        assert api.conductor is not None
        await api.conductor.migrate_server(instance_uuid, migration_uuid, ctx.request_id, host=host)
    except BaseException:
        with contextlib.suppress(Exception):
            await _store(request).abandon(migration_uuid, instance_uuid)
        raise


async def _resize(request: Request, server_id: str, args: Any) -> Response:
    """`resize` to `flavorRef` (with `OS-DCF:diskConfig`)."""
    ctx = request_context(request)
    if not isinstance(args, dict):
        raise BadRequest(f"Invalid input for field/attribute resize. Value: {args}. {args!r} is not of type "
                         "'object'")
    _extra(args, {"flavorRef", "OS-DCF:diskConfig"})
    if "flavorRef" not in args:
        raise BadRequest("Invalid input for field/attribute resize. Value: {}. 'flavorRef' is a required property")
    ref = args["flavorRef"]
    if not isinstance(ref, str | int) or isinstance(ref, bool) or not str(ref).strip():
        raise BadRequest(f"Invalid input for field/attribute flavorRef. Value: {ref}. {ref!r} is not valid")
    disk_config = args.get("OS-DCF:diskConfig")
    if disk_config is not None and disk_config not in ("AUTO", "MANUAL"):
        raise BadRequest(f"Invalid input for field/attribute OS-DCF:diskConfig. Value: {disk_config}. "
                         f"'{disk_config}' is not one of ['AUTO', 'MANUAL']")
    flavor_ref = str(ref).rstrip("/").rsplit("/", 1)[-1]
    started = await _store(request).start_move(
        server_id, ctx, _checker(request, ctx, "os_compute_api:servers:resize"), "resize", flavor_ref,
        None if disk_config is None else disk_config == "AUTO")
    await _cast_move(request, started.instance_uuid, started.migration_uuid, None)
    return Response(status_code=202)


async def _migrate(request: Request, server_id: str, args: Any) -> Response:
    """`migrate` (admin): to a host the scheduler picks, or to `host` (2.56)."""
    ctx = request_context(request)
    api = state(request)
    host = None
    if args is not None and apikit.version(request) >= "2.56":  # before 2.56 Nova reads nothing of the body
        if not isinstance(args, dict):
            raise BadRequest(f"Invalid input for field/attribute migrate. Value: {args}. {args!r} is not of type "
                             "'object', 'null'")
        _extra(args, {"host"})
        host = args.get("host")
        if host is not None and (not isinstance(host, str) or not 1 <= len(host) <= 255):
            raise BadRequest(f"Invalid input for field/attribute host. Value: {host}. It must be a string of 1 to "
                             "255 characters.")
    inst = await api.servers.visible(server_id, ctx)
    api.policy.enforce("os_compute_api:os-migrate-server:migrate", ctx, {"project_id": inst.project_id})
    if host is not None:
        api.policy.enforce("os_compute_api:os-migrate-server:migrate:host", ctx, {"project_id": inst.project_id})
        if host not in await api.servers.host_zones():
            raise BadRequest(f"Compute host {host} could not be found.")
        if host == inst.host:
            raise BadRequest("Cannot migrate to the host where the server exists.")
    started = await _store(request).start_move(
        server_id, ctx, _checker(request, ctx, "os_compute_api:os-migrate-server:migrate"), "migrate", None)
    await _cast_move(request, started.instance_uuid, started.migration_uuid, host)
    return Response(status_code=202)


async def _confirm(request: Request, server_id: str, args: Any) -> Response:
    """`confirmResize`: the source host frees the old guest and its claim (204, as Nova)."""
    ctx = request_context(request)
    api = state(request)
    migration, host = await _store(request).start_finish(
        server_id, ctx, _checker(request, ctx, "os_compute_api:servers:confirm_resize"), "confirmResize")
    await api.agents.confirm_resize(host, migration.instance_uuid, migration.uuid)
    return Response(status_code=204)


async def _revert(request: Request, server_id: str, args: Any) -> Response:
    """`revertResize`: the destination drops the new guest, the source runs the old one again."""
    ctx = request_context(request)
    api = state(request)
    migration, host = await _store(request).start_finish(
        server_id, ctx, _checker(request, ctx, "os_compute_api:servers:revert_resize"), "revertResize")
    await api.agents.revert_resize(host, migration.instance_uuid, migration.uuid)
    return Response(status_code=202)


# request body key -> handler, for server_actions
SERVER_ACTIONS = {"resize": _resize, "migrate": _migrate, "confirmResize": _confirm, "revertResize": _revert}
