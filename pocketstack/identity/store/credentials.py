"""Credentials (`/v3/credentials`, and EC2 key pairs through OS-EC2): their blob is kept Fernet-encrypted."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pocketstack.common.db import Database
from pocketstack.common.errors import BadRequest, Conflict, NotFound
from pocketstack.identity import models as m
from pocketstack.identity.store.common import fetch_all, get_or_404, only


async def create(db: Database, fields: dict[str, Any]) -> m.Credential:
    """A credential of an existing user (and project, when it names one); 409 for an id that is taken."""
    async def write(session: AsyncSession) -> m.Credential:
        await get_or_404(session, m.User, fields["user_id"], "user")
        if fields.get("project_id") and await session.get(m.Project, fields["project_id"]) is None:
            raise BadRequest(f"Invalid input: project {fields['project_id']} does not exist.")
        if await session.get(m.Credential, fields["id"]) is not None:
            raise Conflict(f"Conflict occurred attempting to store credential - Duplicate ID, {fields['id']}.")
        cred = m.Credential(**fields)
        session.add(cred)
        await session.flush()
        return cred
    return await db.run(write, write=True)


async def get(db: Database, cred_id: str, user_id: str | None = None) -> m.Credential:
    """A credential (of `user_id`, when given); 404 otherwise."""
    async def read(session: AsyncSession) -> m.Credential:
        cred = await session.get(m.Credential, cred_id)
        if cred is None or (user_id is not None and cred.user_id != user_id):
            raise NotFound(f"Could not find credential: {cred_id}.")
        return cred
    return await db.run(read, write=False)


async def list_credentials(db: Database, user_id: str | None, type: str | None) -> list[m.Credential]:
    return await fetch_all(db, only(select(m.Credential).order_by(m.Credential.id), user_id=user_id, type=type))


async def update(db: Database, cred_id: str, changes: dict[str, Any]) -> m.Credential:
    async def write(session: AsyncSession) -> m.Credential:
        cred = await get_or_404(session, m.Credential, cred_id, "credential")
        if changes.get("project_id") and await session.get(m.Project, changes["project_id"]) is None:
            raise BadRequest(f"Invalid input: project {changes['project_id']} does not exist.")
        extra = changes.pop("extra", None)
        for attr, value in changes.items():
            setattr(cred, attr, value)
        if extra:
            cred.extra = {**(cred.extra or {}), **extra}
        await session.flush()
        return cred
    return await db.run(write, write=True)


async def delete(db: Database, cred_id: str, user_id: str | None = None) -> None:
    async def write(session: AsyncSession) -> None:
        cred = await session.get(m.Credential, cred_id)
        if cred is None or (user_id is not None and cred.user_id != user_id):
            raise NotFound(f"Could not find credential: {cred_id}.")
        await session.delete(cred)
    await db.run(write, write=True)
