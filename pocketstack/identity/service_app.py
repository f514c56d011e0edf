"""The identity service as the launcher runs it: database, keys, bootstrap, the HTTP app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from pocketstack.common.app import create_app
from pocketstack.common.db import Database
from pocketstack.common.errors import NotFound, Unauthorized
from pocketstack.common.health import database_check
from pocketstack.common.routes import build_router
from pocketstack.common.service import Service, ServiceSpec
from pocketstack.identity.api.routes import ROUTES
from pocketstack.identity.bootstrap import bootstrap
from pocketstack.identity.service import IdentityManager
from pocketstack.identity.spec import SPEC
from pocketstack.settings import Settings

log = logging.getLogger("pocketstack.identity")

PUBLIC = {("GET", "/"), ("GET", "/v3"), ("GET", "/v3/"), ("POST", "/v3/auth/tokens")}


class LocalTokenValidator:
    """Identity validates the tokens sent to itself without a network hop."""

    def __init__(self, manager: IdentityManager) -> None:
        self.manager = manager

    async def validate(self, token: str) -> dict[str, Any]:
        try:
            payload, ctx = await self.manager.validate(token)
        except NotFound as exc:
            raise Unauthorized(exc.message)
        return self.manager.token_body(payload, ctx, catalog=False)


class IdentityService(Service):
    name = "identity"

    def __init__(self, settings: Settings, specs: list[ServiceSpec]) -> None:
        self.settings = settings
        self.specs = specs
        self.spec = next(s for s in specs if s.name == "identity")
        self.db = Database(settings.database_url("identity"))
        self.manager = IdentityManager(settings, self.db)
        self.created_passwords: dict[str, str] = {}
        self._purger: asyncio.Task[None] | None = None
        self.app = create_app(
            service_name="identity", style=SPEC.errors,
            routers=[build_router(ROUTES)],
            validator=LocalTokenValidator(self.manager),
            is_public=lambda method, path: (method, path) in PUBLIC,
            access_log=settings.access_log, state={"manager": self.manager},
            health=[database_check(self.db)],
        )

    async def start(self) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.manager.keys.initialize()
        self.manager.credential_keys.initialize()
        await self.db.migrate(self.spec.migrations_dir, self.spec.version_table)
        self.created_passwords = await bootstrap(self.manager, self.settings, self.specs)
        self._purger = asyncio.create_task(self._purge_revocations())

    async def _purge_revocations(self) -> None:
        while True:
            await asyncio.sleep(300)
            try:
                removed = await self.manager.purge_expired_revocations()
                if removed:
                    log.info("purged %d expired revocation events", removed)
            except Exception:  # keep the loop alive; the next round retries
                log.exception("purging revocation events failed")

    async def stop(self) -> None:
        if self._purger is not None:
            self._purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._purger
        await self.db.close()


def create(settings: Settings, specs: list[ServiceSpec]) -> IdentityService:
    return IdentityService(settings, specs)
