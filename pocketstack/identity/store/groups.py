"""Groups and their members."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from pocketstack.common.db import Database
from pocketstack.common.errors import BadRequest, NotFound
from pocketstack.identity import models as m
from pocketstack.identity.service import IdentityManager, new_id
from pocketstack.identity.store.common import get_or_404, revoke_group_members
from pocketstack.identity.store.resources import apply_changes, duplicate_name

T = TypeVar("T")
L = TypeVar("L")


async def create(db: Database, *, name: str, domain_id: str, description: str,
                 extra: dict[str, Any] | None = None) -> m.Group:
    """A new group of an existing domain (400 otherwise); 409 when its name is taken in the domain."""
    async def write(session: AsyncSession) -> m.Group:
        with duplicate_name("group", name, domain_id):
            if await session.get(m.Domain, domain_id) is None:
                raise BadRequest(f"Invalid input: domain {domain_id} does not exist.")
            group = m.Group(id=new_id(), name=name, domain_id=domain_id, description=description,
                            extra=extra or {})
            session.add(group)
            await session.flush()
        return group
    return await db.run(write, write=True)


async def update(db: Database, group_id: str, attrs: dict[str, str], extra: dict[str, Any] | None = None) -> m.Group:
    """Set a group's `attrs` (name, description); 409 when the name is taken."""
    async def write(session: AsyncSession) -> m.Group:
        with duplicate_name("group", attrs.get("name")):
            group = await get_or_404(session, m.Group, group_id, "group")
            apply_changes(group, attrs, extra or {})
            await session.flush()
        return group
    return await db.run(write, write=True)


async def remove(mgr: IdentityManager, group_id: str) -> None:
    """Delete a group with its grants and memberships; its members lose the tokens of the roles it had."""
    async def write(session: AsyncSession) -> None:
        group = await get_or_404(session, m.Group, group_id, "group")
        if await session.scalar(select(m.Assignment.role_id).where(m.Assignment.actor_id == group_id).limit(1)):
            await revoke_group_members(mgr, session, group_id)
        await session.execute(delete(m.Assignment).where(m.Assignment.actor_id == group_id))
        await session.execute(delete(m.Membership).where(m.Membership.group_id == group_id))
        await session.delete(group)
    await mgr.db.run(write, write=True)


async def _related(db: Database, model: type[T], entity_id: str, kind: str, listed: type[L],
                   listed_key: InstrumentedAttribute[str], key: InstrumentedAttribute[str]) -> list[L]:
    """The `listed` rows, by name, a membership links to the `kind` row `entity_id` (404 when it is not there)."""
    async def read(session: AsyncSession) -> list[L]:
        await get_or_404(session, model, entity_id, kind)
        query = (select(listed).join(m.Membership, listed_key == listed.id)  # type: ignore[attr-defined]
                 .where(key == entity_id).order_by(listed.name))  # type: ignore[attr-defined]
        return list((await session.scalars(query)).all())
    return await db.run(read, write=False)


async def members(db: Database, group_id: str) -> list[m.User]:
    """The users, by name, in a group."""
    return await _related(db, m.Group, group_id, "group", m.User, m.Membership.user_id, m.Membership.group_id)


async def of_user(db: Database, user_id: str) -> list[m.Group]:
    """The groups, by name, the user is a member of."""
    return await _related(db, m.User, user_id, "user", m.Group, m.Membership.group_id, m.Membership.user_id)


async def _membership(session: AsyncSession, group_id: str, user_id: str) -> m.Membership | None:
    """The membership of an existing user in an existing group (404 for either missing), or None."""
    await get_or_404(session, m.Group, group_id, "group")
    await get_or_404(session, m.User, user_id, "user")
    return await session.get(m.Membership, (user_id, group_id))


async def add_member(db: Database, group_id: str, user_id: str) -> None:
    """Make the user a member of the group (nothing when it already is)."""
    async def write(session: AsyncSession) -> None:
        if await _membership(session, group_id, user_id) is None:
            session.add(m.Membership(user_id=user_id, group_id=group_id))
    await db.run(write, write=True)


async def check_member(db: Database, group_id: str, user_id: str) -> None:
    """404 unless the user is a member of the group."""
    async def read(session: AsyncSession) -> None:
        if await _membership(session, group_id, user_id) is None:
            raise NotFound(f"User {user_id} is not a member of group {group_id}.")
    await db.run(read, write=False)


async def remove_member(mgr: IdentityManager, group_id: str, user_id: str) -> None:
    """End a membership (404 when there is none) and revoke the user's tokens."""
    async def write(session: AsyncSession) -> None:
        membership = await session.get(m.Membership, (user_id, group_id))
        if membership is None:
            raise NotFound(f"User {user_id} is not a member of group {group_id}.")
        await session.delete(membership)
        await mgr.add_revocation(session, user_id=user_id)
    await mgr.db.run(write, write=True)
