"""The block storage service: the API (with its scheduler) and the volume manager of the configured backend,
talking over RPC (topic `volume`) as cinder-api and cinder-volume do.

The all-in-one runs both in one process (`create`); the distributed mode can run each as a process of its own
(`create_api`, `create_manager`), any number of API workers and one manager per backend host.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

from fastapi import Depends
from sqlalchemy import select
from sqlalchemy.orm import Session

from pocketstack.common.app import create_app
from pocketstack.common.clients.compute_events import ComputeNotifier
from pocketstack.common.clients.image import ImageClient
from pocketstack.common.db import Database
from pocketstack.common.health import bus_check, database_check
from pocketstack.common.policy import PolicyEngine
from pocketstack.common.routes import build_router
from pocketstack.common.rpc import RPCServer, get_transport
from pocketstack.common.service import Service, ServiceSpec, remote_token_validator, service_token_provider
from pocketstack.common.timeutils import utcnow
from pocketstack.settings import Settings
from pocketstack.volume import models as m
from pocketstack.volume.api import versions
from pocketstack.volume.api.common import MICROVERSIONS, VolumeAPIState, check_project
from pocketstack.volume.api.routes import PROJECT, ROUTES
from pocketstack.volume.backends import make_backend
from pocketstack.volume.manager import VolumeManager
from pocketstack.volume.policies import VOLUME_POLICIES
from pocketstack.volume.rpcapi import VolumeManagerAPI
from pocketstack.volume.spec import SPEC

log = logging.getLogger("pocketstack.volume")

SCHEDULER_BINARY = "cinder-scheduler"


class VolumeAPIService(Service):
    """The block storage API (cinder-api) with its scheduler: REST in, the database, casts to the managers."""

    name = "volume"

    def __init__(self, settings: Settings, specs: list[ServiceSpec], db: Database | None = None) -> None:
        self.settings = settings
        self.spec = next(s for s in specs if s.name == "volume")
        self._own_db = db is None
        self.db = db or Database(settings.database_url("volume"))
        self.state = VolumeAPIState(settings=settings, db=self.db,
                                    policy=PolicyEngine(VOLUME_POLICIES, settings.policy_file), manager=None,
                                    image=ImageClient(settings.base_url("image")))
        self.app = create_app(
            service_name="volume", style=SPEC.errors,
            routers=[build_router(ROUTES, scoped={PROJECT: [Depends(check_project)]})],
            validator=remote_token_validator(settings),
            is_public=lambda method, path: (method, path) in versions.PUBLIC_PATHS,
            access_log=settings.access_log, state={"volume": self.state}, microversion=MICROVERSIONS,
            health=[database_check(self.db), bus_check(settings)],
        )
        self._heartbeat: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.db.migrate(self.spec.migrations_dir, self.spec.version_table)
        await self.db.run(self._bootstrap, write=True)
        self.state.manager = VolumeManagerAPI(get_transport(self.settings))
        await self.db.run(self._report_scheduler, write=True)
        self._heartbeat = asyncio.create_task(self._beat())

    def _bootstrap(self, session: Session) -> None:
        """The default volume type exists (Cinder's `__DEFAULT__`), so a volume always has a type."""
        name = self.settings.volume.default_volume_type
        if session.scalar(select(m.VolumeType).where(m.VolumeType.name == name)) is None:
            session.add(m.VolumeType(id=str(uuid.uuid4()), name=name, description="Default Volume Type",
                                     is_public=True, created_at=utcnow()))

    def _report_scheduler(self, session: Session) -> None:
        """The heartbeat of this process's scheduler (it places volumes for the API)."""
        now = utcnow()
        host = self.settings.volume.host
        svc = session.scalar(select(m.Service).where(m.Service.host == host, m.Service.binary == SCHEDULER_BINARY))
        if svc is None:
            svc = m.Service(host=host, binary=SCHEDULER_BINARY, topic="cinder-scheduler",
                            availability_zone=self.settings.volume.availability_zone, created_at=now, report_count=0)
            session.add(svc)
        svc.report_count += 1
        svc.last_seen_up = svc.updated_at = now

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.settings.volume.report_interval)
            try:
                await self.db.run(self._report_scheduler, write=True)
            except Exception:
                log.exception("scheduler service report failed")

    async def stop(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
        if self._own_db:
            await self.db.close()


class VolumeManagerService(Service):
    """The volume manager (cinder-volume) of this host's backend, on topic `volume`, server `host@backend`.

    It uses the database the API migrated: start it after the API (the distributed mode's later stage)."""

    name = "volume-manager"

    def __init__(self, settings: Settings, specs: list[ServiceSpec], db: Database | None = None) -> None:
        self.settings = settings
        self._own_db = db is None
        self.db = db or Database(settings.database_url("volume"))
        image = ImageClient(settings.base_url("image"))
        tokens = service_token_provider(settings, "volume", "cinder")
        self.compute_events = ComputeNotifier(settings.base_url("identity"), tokens.token, settings.region)
        self.manager = VolumeManager(settings, self.db, make_backend(settings, image, tokens.token), image,
                                     compute_events=self.compute_events)
        self.server: RPCServer | None = None

    async def start(self) -> None:
        self.server = RPCServer(get_transport(self.settings), "volume", self.manager.service_host, [self.manager])
        await self.server.start()
        await self.manager.start()

    async def stop(self) -> None:
        await self.manager.stop()
        if self.server is not None:
            await self.server.stop()
        await self.compute_events.drain()
        if self._own_db:
            await self.db.close()


class VolumeService(Service):
    """API and manager in one process on the local bus and one database (the all-in-one)."""

    name = "volume"

    def __init__(self, settings: Settings, specs: list[ServiceSpec]) -> None:
        self.db = Database(settings.database_url("volume"))
        self.api = VolumeAPIService(settings, specs, db=self.db)
        self.manager = VolumeManagerService(settings, specs, db=self.db)
        self.app = self.api.app

    async def start(self) -> None:
        await self.api.start()
        await self.manager.start()

    async def stop(self) -> None:
        await self.manager.stop()
        await self.api.stop()
        await self.db.close()


def create(settings: Settings, specs: list[ServiceSpec]) -> VolumeService:
    return VolumeService(settings, specs)


def create_api(settings: Settings, specs: list[ServiceSpec]) -> VolumeAPIService:
    return VolumeAPIService(settings, specs)


def create_manager(settings: Settings, specs: list[ServiceSpec]) -> VolumeManagerService:
    return VolumeManagerService(settings, specs)
