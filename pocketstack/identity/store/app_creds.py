"""Application credentials: a user's delegation of (some of) its roles on one project to a secret."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pocketstack.common.db import Database
from pocketstack.common.errors import Conflict, NotFound
from pocketstack.identity import models as m
from pocketstack.identity.store.access_rules import detach
from pocketstack.identity.store.common import Revoker, fetch_all, get_or_404, only


async def create_app_cred(db: Database, fields: dict[str, Any]) -> m.ApplicationCredential:
    """A new credential; 409 when the user already has one of that name."""
    async def write(session: AsyncSession) -> m.ApplicationCredential:
        cred = m.ApplicationCredential(**fields)
        session.add(cred)
        await session.flush()
        return cred
    try:
        return await db.run(write, write=True)
    except IntegrityError:
        raise Conflict(f"Conflict occurred attempting to store application_credential - Duplicate entry found "
                       f"with name {fields['name']}.") from None


async def list_app_creds(db: Database, user_id: str, name: str | None) -> list[m.ApplicationCredential]:
    query = only(select(m.ApplicationCredential).where(m.ApplicationCredential.user_id == user_id), name=name)
    return await fetch_all(db, query.order_by(m.ApplicationCredential.name))


async def _owned(session: AsyncSession, user_id: str, cred_id: str) -> m.ApplicationCredential:
    cred = await session.get(m.ApplicationCredential, cred_id)
    if cred is None or cred.user_id != user_id:
        raise NotFound(f"Could not find application credential: {cred_id}.")
    return cred


async def get_app_cred(db: Database, user_id: str, cred_id: str) -> m.ApplicationCredential:
    async def read(session: AsyncSession) -> m.ApplicationCredential:
        return await _owned(session, user_id, cred_id)
    return await db.run(read, write=False)


async def delete_app_cred(db: Database, revoker: Revoker, user_id: str, cred_id: str) -> None:
    """The credential, and the tokens made from it."""
    async def write(session: AsyncSession) -> None:
        await get_or_404(session, m.User, user_id, "user")
        await session.delete(await _owned(session, user_id, cred_id))
        await detach(session, cred_id)
        await revoker.add_revocation(session, application_credential_id=cred_id)
    await db.run(write, write=True)
