"""Key pairs (`/os-keypairs`): one user's named public keys, under the project's key_pairs quota."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pocketstack.common.db import Database
from pocketstack.common.errors import BadRequest, Conflict, Forbidden, NotFound
from pocketstack.common.timeutils import utcnow
from pocketstack.compute import models as m
from pocketstack.compute.store.quotas import project_limits_sync
from pocketstack.settings import Settings

KeyPair = m.KeyPair  # the row type the API's views render


def _get(session: Session, user_id: str, name: str) -> m.KeyPair:
    kp = session.scalar(select(m.KeyPair).where(m.KeyPair.user_id == user_id, m.KeyPair.name == name))
    if kp is None:
        raise NotFound(f"Keypair {name} not found for user {user_id}")
    return kp


class KeypairStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, settings: Settings, project_id: str, user_id: str, name: str, public_key: str,
                     fingerprint: str) -> m.KeyPair:
        """A new ssh key pair of `user_id`; 409 when the name is taken, 403 over the project's key_pairs quota."""

        def create(session: Session) -> m.KeyPair:
            exists = session.scalar(select(m.KeyPair.id).where(m.KeyPair.user_id == user_id, m.KeyPair.name == name))
            if exists is not None:
                raise Conflict(f"Key pair '{name}' already exists.")
            limit = project_limits_sync(session, settings, project_id)["key_pairs"]
            count = session.scalar(select(func.count()).select_from(m.KeyPair).where(m.KeyPair.user_id == user_id))
            if 0 <= limit <= count:
                raise Forbidden("Quota exceeded, too many key pairs.")
            keypair = m.KeyPair(name=name, user_id=user_id, fingerprint=fingerprint, public_key=public_key,
                                type="ssh", created_at=utcnow())
            session.add(keypair)
            return keypair

        try:
            return await self.db.run(create, write=True)
        except IntegrityError:  # a concurrent import of the same name
            raise Conflict(f"Key pair '{name}' already exists.") from None

    async def page(self, user_id: str, marker: str | None, limit: int) -> list[m.KeyPair]:
        """A user's key pairs by name, after `marker` (a name; 400 when the user has no such key pair)."""

        def read(session: Session) -> list[m.KeyPair]:
            query = select(m.KeyPair).where(m.KeyPair.user_id == user_id).order_by(m.KeyPair.name)
            if marker is not None:
                if session.scalar(select(m.KeyPair.id).where(m.KeyPair.user_id == user_id,
                                                             m.KeyPair.name == marker)) is None:
                    raise BadRequest(f"marker [{marker}] not found")
                query = query.where(m.KeyPair.name > marker)
            return list(session.scalars(query.limit(limit)).all())

        return await self.db.run(read, write=False)

    async def get(self, user_id: str, name: str) -> m.KeyPair:
        return await self.db.run(lambda s: _get(s, user_id, name), write=False)

    async def delete(self, user_id: str, name: str) -> None:
        await self.db.run(lambda s: s.delete(_get(s, user_id, name)), write=True)
