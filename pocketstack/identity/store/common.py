"""What every identity store module shares: the row types the API renders, get-or-404, and revocation."""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pocketstack.common.db import Database
from pocketstack.common.errors import NotFound
from pocketstack.identity import models as m

T = TypeVar("T")

# The row types handlers and views see (typed without importing the models).
Domain = m.Domain
Project = m.Project
User = m.User
Group = m.Group
Role = m.Role
Region = m.Region
CatalogService = m.CatalogService
Endpoint = m.Endpoint
ApplicationCredential = m.ApplicationCredential
Credential = m.Credential
Trust = m.Trust
Record = m.Record


async def get_or_404(session: AsyncSession, model: type[T], entity_id: str, kind: str) -> T:
    """The `kind` row `entity_id`; Keystone's 404 otherwise."""
    row = await session.get(model, entity_id)
    if row is None:
        raise NotFound(f"Could not find {kind}: {entity_id}.")
    return row


class Revoker(Protocol):
    """Records a revocation event in the caller's transaction (the identity manager, which also drops its caches)."""

    async def add_revocation(self, session: AsyncSession, **match: str | None) -> None: ...


async def revoke_group_members(revoker: Revoker, session: AsyncSession, group_id: str, **match: str | None) -> None:
    """Implied revocation for every member of a group that lost a role."""
    user_ids = (await session.scalars(select(m.Membership.user_id).where(m.Membership.group_id == group_id))).all()
    for user_id in user_ids:
        await revoker.add_revocation(session, user_id=user_id, **match)


def only(query: Any, **equal: Any) -> Any:
    """`query` narrowed to rows whose columns equal the given values; a value of None is no filter."""
    model = query.column_descriptions[0]["entity"]
    for column, value in equal.items():
        if value is not None:
            query = query.where(getattr(model, column) == value)
    return query


async def fetch(db: Database, model: type[T], entity_id: str, kind: str) -> T:
    """`GET /v3/<kind>s/{id}`: the row, or 404."""
    async def read(session: AsyncSession) -> T:
        return await get_or_404(session, model, entity_id, kind)
    return await db.run(read, write=False)


async def fetch_all(db: Database, query: Any) -> list[Any]:
    """Every row `query` selects, in one read transaction."""
    async def read(session: AsyncSession) -> list[Any]:
        return list((await session.scalars(query)).all())
    return await db.run(read, write=False)
