"""Remote console tokens (Nova's console_auth_tokens): the token goes to the caller in its console URL, only its
sha256 is kept; a token is valid until it expires (consoleauth.token_ttl) and goes with its server."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from pocketstack.common.db import Database
from pocketstack.common.timeutils import utcnow
from pocketstack.compute import models as m


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class ConsoleConnection:
    """Where a token's console is: the guest's host and port, or the unix socket `internal_access_path` of its
    host (port 0)."""

    console_type: str
    instance_uuid: str
    host: str
    port: int
    internal_access_path: str | None


class ConsoleTokenStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def authorize(self, instance_uuid: str, console_type: str, host: str, port: int,
                        internal_access_path: str | None, access_url_base: str, ttl: int) -> str:
        """A new token for the console of `instance_uuid` (the expired tokens are purged on the way)."""
        token = secrets.token_urlsafe(32)

        def write(session: Session) -> None:
            now = utcnow()
            session.execute(delete(m.ConsoleAuthToken).where(m.ConsoleAuthToken.expires <= now))
            session.add(m.ConsoleAuthToken(
                token_hash=token_hash(token), console_type=console_type, host=host, port=port,
                internal_access_path=internal_access_path, instance_uuid=instance_uuid,
                access_url_base=access_url_base, created_at=now, expires=now + timedelta(seconds=ttl)))

        await self.db.run(write, write=True)
        return token

    async def validate(self, token: str, console_types: tuple[str, ...] | None = None) -> ConsoleConnection | None:
        """The console a token opens, None when it is unknown, expired, of another type or its server is gone."""
        def read(session: Session) -> ConsoleConnection | None:
            row = session.scalar(select(m.ConsoleAuthToken).join(
                m.Instance, m.Instance.uuid == m.ConsoleAuthToken.instance_uuid).where(
                m.ConsoleAuthToken.token_hash == token_hash(token), m.ConsoleAuthToken.expires > utcnow(),
                m.Instance.deleted.is_(False)))
            if row is None or (console_types is not None and row.console_type not in console_types):
                return None
            return ConsoleConnection(row.console_type, row.instance_uuid, row.host, row.port,
                                     row.internal_access_path)

        return await self.db.run(read, write=False)
