"""Subnet pools (`subnet_allocation`): prefixes a project's subnets are cut from. A subnet created with a
`subnetpool_id` gets the lowest free CIDR of its `prefixlen` (or the pool's default), or the CIDR it asks for if
that lies in the pool and is free; the allocation reads the pool row FOR UPDATE, so concurrent creates take turns.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pocketstack.common.context import RequestContext
from pocketstack.common.errors import BadRequest, Conflict
from pocketstack.network import ipam
from pocketstack.network import models as m
from pocketstack.network.manager import Core, new_id, stamp, standard

BITS = {4: 32, 6: 128}
DEFAULT_MIN = {4: 8, 6: 64}


def _prefixes(raw: list[str], version: int | None) -> tuple[int, list[str]]:
    """The pool's prefixes, parsed, of one IP version and merged (`collapse_addresses`)."""
    if not raw:
        raise ipam.invalid("A subnet pool needs at least one prefix.")
    nets = []
    for prefix in raw:
        try:
            nets.append(ipaddress.ip_network(prefix, strict=False))
        except ValueError:
            raise ipam.invalid(f"'{prefix}' is not a valid IP subnet.")
    versions = {n.version for n in nets}
    if len(versions) > 1 or (version is not None and versions != {version}):
        raise ipam.invalid("Cannot mix IPv4 and IPv6 prefixes in a subnet pool.")
    return nets[0].version, [str(n) for n in ipaddress.collapse_addresses(nets)]  # type: ignore[arg-type]


class SubnetPools(Core):
    def subnetpool_view(self, pool: m.SubnetPool) -> dict[str, Any]:
        return {"id": pool.id, "name": pool.name, **standard(pool), "ip_version": pool.ip_version,
                "prefixes": list(pool.prefixes), "default_prefixlen": pool.default_prefixlen,
                "min_prefixlen": pool.min_prefixlen, "max_prefixlen": pool.max_prefixlen, "shared": pool.shared,
                "is_default": pool.is_default, "default_quota": pool.default_quota, "address_scope_id": None}

    def _pool_target(self, pool: m.SubnetPool) -> dict[str, Any]:
        return {"project_id": pool.project_id, "shared": pool.shared}

    async def visible_subnetpool(self, session: AsyncSession, ctx: RequestContext, pool_id: str) -> m.SubnetPool:
        pool = await session.get(m.SubnetPool, pool_id)
        if pool is None or not self.allowed("get_subnetpool", ctx, self._pool_target(pool)):
            raise ipam.pool_not_found(pool_id)
        return pool

    @staticmethod
    def _lengths(version: int, prefixes: list[str], data: dict[str, Any], pool: m.SubnetPool | None
                 ) -> tuple[int, int, int]:
        """(default, min, max) prefix lengths, checked: min <= default <= max <= the address bits."""
        low = data.get("min_prefixlen", pool.min_prefixlen if pool else DEFAULT_MIN[version])
        high = data.get("max_prefixlen", pool.max_prefixlen if pool else BITS[version])
        default = data.get("default_prefixlen", pool.default_prefixlen if pool else low)
        widest = min(ipaddress.ip_network(p).prefixlen for p in prefixes)
        if not 0 <= low <= default <= high <= BITS[version]:
            raise ipam.invalid(f"Illegal prefix bounds: min_prefixlen={low}, default_prefixlen={default}, "
                               f"max_prefixlen={high}.")
        if low < widest:
            low = widest  # a subnet cannot be wider than the pool's widest prefix
            default = max(default, low)
        return default, low, high

    async def _one_default(self, session: AsyncSession, pool: m.SubnetPool) -> None:
        others = await session.scalars(select(m.SubnetPool).where(
            m.SubnetPool.is_default.is_(True), m.SubnetPool.ip_version == pool.ip_version,
            m.SubnetPool.id != pool.id))
        if others.first() is not None:
            raise BadRequest(f"Invalid input for operation: a default subnet pool for IPv{pool.ip_version} "
                             "already exists.", error_type="InvalidInput")

    async def list_subnetpools(self, ctx: RequestContext) -> list[dict[str, Any]]:
        async def _read(session: AsyncSession) -> Any:
            rows = await session.scalars(select(m.SubnetPool).order_by(m.SubnetPool.created_at, m.SubnetPool.id))
            memo: dict[Any, bool] = {}
            return [self.subnetpool_view(p) for p in rows
                    if self.allowed("get_subnetpool", ctx, self._pool_target(p), memo)]

        return await self.db.run(_read, write=False)

    async def get_subnetpool(self, ctx: RequestContext, pool_id: str) -> dict[str, Any]:
        async def _read(session: AsyncSession) -> Any:
            return self.subnetpool_view(await self.visible_subnetpool(session, ctx, pool_id))

        return await self.db.run(_read, write=False)

    async def create_subnetpool(self, ctx: RequestContext, data: dict[str, Any]) -> dict[str, Any]:
        project_id = self.owner_project(ctx, data)
        version, prefixes = _prefixes(data["prefixes"], data.get("ip_version"))
        default, low, high = self._lengths(version, prefixes, data, None)
        target = {"project_id": project_id, "shared": data.get("shared", False)}
        self.enforce("create_subnetpool", ctx, target)
        self.enforce_attrs("create_subnetpool", ctx, data, target, {"shared": False, "is_default": False})

        async def create(session: AsyncSession) -> dict[str, Any]:
            pool = m.SubnetPool(
                id=new_id(), project_id=project_id, name=data.get("name", ""),
                description=data.get("description", ""), ip_version=version, prefixes=prefixes,
                default_prefixlen=default, min_prefixlen=low, max_prefixlen=high,
                shared=data.get("shared", False), is_default=data.get("is_default", False),
                default_quota=data.get("default_quota"))
            if pool.is_default:
                await self._one_default(session, pool)
            stamp(pool, created=True)
            session.add(pool)
            await session.flush()
            return self.subnetpool_view(pool)

        return await self.write(create)

    async def update_subnetpool(self, ctx: RequestContext, pool_id: str, data: dict[str, Any]) -> dict[str, Any]:
        async def update(session: AsyncSession) -> dict[str, Any]:
            pool = await self.visible_subnetpool(session, ctx, pool_id)
            target = self._pool_target(pool)
            self.enforce("update_subnetpool", ctx, target)
            self.enforce_attrs("update_subnetpool", ctx, data, target, {"is_default": pool.is_default})
            if "prefixes" in data:
                _, prefixes = _prefixes(data["prefixes"], pool.ip_version)
                kept = [ipaddress.ip_network(p) for p in prefixes]
                if not all(any(ipaddress.ip_network(old).subnet_of(new) for new in kept)  # type: ignore[arg-type]
                           for old in pool.prefixes):
                    raise ipam.invalid("Existing prefixes must be a subset of the new prefixes.")
                pool.prefixes = prefixes
            pool.default_prefixlen, pool.min_prefixlen, pool.max_prefixlen = self._lengths(
                pool.ip_version, list(pool.prefixes), data, pool)
            for attr in ("name", "description", "default_quota"):
                if attr in data:
                    setattr(pool, attr, data[attr])
            if data.get("is_default") and not pool.is_default:
                await self._one_default(session, pool)
            if "is_default" in data:
                pool.is_default = data["is_default"]
            stamp(pool)
            await session.flush()
            return self.subnetpool_view(pool)

        return await self.write(update)

    async def delete_subnetpool(self, ctx: RequestContext, pool_id: str) -> None:
        async def delete(session: AsyncSession) -> None:
            pool = await self.visible_subnetpool(session, ctx, pool_id)
            self.enforce("delete_subnetpool", ctx, self._pool_target(pool))
            used = await session.scalars(select(m.Subnet.id).where(m.Subnet.subnetpool_id == pool.id).limit(1))
            if used.first() is not None:
                raise Conflict(f"Unable to complete operation on subnet pool {pool.id}: subnets are allocated "
                               "from it.", error_type="SubnetPoolInUse")
            await session.delete(pool)

        await self.write(delete)
