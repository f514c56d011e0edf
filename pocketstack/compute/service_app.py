"""The compute family: API, conductor, scheduler and compute agents, each a Service of its own.

The parts talk to each other only over RPC (and the agents never open the database): the all-in-one runs all four
in one process on the local bus (`ComputeService`), the distributed mode runs each as its own process on RabbitMQ
(`pocketstack serve compute-api|conductor|scheduler|compute`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from pocketstack.common import metrics
from pocketstack.common.app import create_app
from pocketstack.common.clients.identity import ServiceTokenProvider
from pocketstack.common.clients.image import ImageClient
from pocketstack.common.clients.network import NetworkClient
from pocketstack.common.db import Database
from pocketstack.common.health import bus_check, database_check
from pocketstack.common.policy import PolicyEngine
from pocketstack.common.routes import build_router
from pocketstack.common.rpc import RPCServer, get_transport
from pocketstack.common.service import Service, ServiceSpec, remote_token_validator, service_token_provider
from pocketstack.common.timeutils import utcnow
from pocketstack.compute.agent.manager import ComputeAgent
from pocketstack.compute.agent.rpcapi import ComputeAgentAPI
from pocketstack.compute.api.common import MICROVERSIONS, ComputeAPIState
from pocketstack.compute.api.routes import ROUTES
from pocketstack.compute.conductor.manager import ALL_IN_ONE_BINARIES, ConductorManager
from pocketstack.compute.conductor.rpcapi import ConductorAPI
from pocketstack.compute.policies import COMPUTE_POLICIES
from pocketstack.compute.scheduler.manager import SchedulerManager
from pocketstack.compute.spec import SPEC
from pocketstack.compute.store.flavors import FlavorStore
from pocketstack.compute.store.instances import count_by_state, record_heartbeat
from pocketstack.compute.virt import make_driver
from pocketstack.settings import Settings

log = logging.getLogger("pocketstack.compute")


PUBLIC = {("GET", "/"), ("GET", "/v2"), ("GET", "/v2/"), ("GET", "/v2.1"), ("GET", "/v2.1/")}

# OpenStack's default flavors (DevStack also adds the small m1.nano and m1.micro).
DEFAULT_FLAVORS = [
    ("1", "m1.tiny", 1, 512, 1), ("2", "m1.small", 1, 2048, 20), ("3", "m1.medium", 2, 4096, 40),
    ("4", "m1.large", 4, 8192, 80), ("5", "m1.xlarge", 8, 16384, 160), ("42", "m1.nano", 1, 128, 1),
    ("84", "m1.micro", 1, 192, 1),
]


def agent_hosts(settings: Settings) -> list[str]:
    """Host names of the compute agents a process runs: `hosts` if set, else HOST-fake1..N (fake), else HOST."""
    cfg = settings.compute
    if cfg.hosts:
        return list(cfg.hosts)
    return [f"{cfg.host}-fake{i}" for i in range(1, cfg.fake_hosts + 1)] if cfg.driver == "fake" else [cfg.host]


def nova_service_tokens(settings: Settings) -> ServiceTokenProvider:
    """Tokens of the compute family's service user (`nova`), for its calls to image, network and volume."""
    return service_token_provider(settings, "compute", "nova")


# The compute family is four roles, each of which `pocketstack serve` can run alone on the amqp bus (distributed
# mode); the all-in-one ComputeService below runs all four on one local bus and one database.

class ComputeAPIService(Service):
    """The compute API (nova-api): REST in, the database, casts to the conductor and the agents."""

    name = "compute-api"

    def __init__(self, settings: Settings, specs: list[ServiceSpec], db: Database | None = None) -> None:
        self.settings = settings
        self.spec = next(s for s in specs if s.name == "compute")
        self._own_db = db is None
        self.db = db or Database(settings.database_url("compute"))
        self.policy = PolicyEngine(COMPUTE_POLICIES, settings.policy_file)
        self._counting: asyncio.Task[None] | None = None
        self.state = ComputeAPIState(settings=settings, db=self.db, policy=self.policy, conductor=None,
                                     agents=None, image=ImageClient(settings.base_url("image")),
                                     network=NetworkClient(settings.base_url("network")))
        self.app = create_app(service_name="compute-api", style=SPEC.errors, routers=[build_router(ROUTES)],
                              validator=remote_token_validator(settings),
                              is_public=lambda method, path: (method, path) in PUBLIC,
                              access_log=settings.access_log, state={"compute": self.state},
                              microversion=MICROVERSIONS, health=[database_check(self.db), bus_check(settings)],
                              redirect_slashes=False)  # Nova's router: /os-volumes/ is no volume (404), not the list

    async def start(self) -> None:
        await self.db.migrate(self.spec.migrations_dir, self.spec.version_table)
        await self._bootstrap_flavors()
        transport = get_transport(self.settings)
        self.state.conductor = ConductorAPI(transport)
        self.state.agents = ComputeAgentAPI(transport)
        self._counting = asyncio.create_task(self._count_servers(), name="count-servers")

    async def _count_servers(self, every: float = 10.0) -> None:
        """Keep the servers-by-state gauge of /metrics current (a GROUP BY every `every` seconds)."""
        reported: set[str] = set()
        while True:
            try:
                metrics.set_counts(metrics.SERVERS, await self.db.run(count_by_state, write=False), reported)
            except Exception as exc:  # the database may be down for a while: /healthcheck says so
                log.debug("counting servers by state failed: %s", exc)
            await asyncio.sleep(every)

    async def _bootstrap_flavors(self) -> None:
        await FlavorStore(self.db).add_defaults(DEFAULT_FLAVORS)

    async def stop(self) -> None:
        if self._counting is not None:
            self._counting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._counting
        if self._own_db:
            await self.db.close()


class ConductorService(Service):
    """The conductor (nova-conductor): build orchestration and the agents' database access, on topic `conductor`."""

    name = "conductor"

    def __init__(self, settings: Settings, specs: list[ServiceSpec], db: Database | None = None,
                 binaries: tuple[tuple[str, str], ...] = (("nova-conductor", "conductor"),)) -> None:
        self.settings = settings
        self._own_db = db is None
        self.db = db or Database(settings.database_url("compute"))
        self.binaries = binaries
        self.manager: ConductorManager | None = None
        self.server: RPCServer | None = None

    async def start(self) -> None:
        transport = get_transport(self.settings)
        self.manager = ConductorManager(self.settings, self.db, transport,
                                        network=NetworkClient(self.settings.base_url("network")),
                                        service_tokens=nova_service_tokens(self.settings), binaries=self.binaries)
        self.server = RPCServer(transport, "conductor", self.settings.compute.host, [self.manager])
        await self.server.start()
        await self.manager.start()

    async def stop(self) -> None:
        if self.manager is not None:
            await self.manager.stop()
        if self.server is not None:
            await self.server.stop()
        if self._own_db:
            await self.db.close()


class SchedulerService(Service):
    """The scheduler (nova-scheduler): `select_destinations` on topic `scheduler`, with its own heartbeat."""

    name = "scheduler"

    def __init__(self, settings: Settings, specs: list[ServiceSpec], db: Database | None = None,
                 heartbeat: bool = True) -> None:
        self.settings = settings
        self._own_db = db is None
        self.db = db or Database(settings.database_url("compute"))
        self.heartbeat = heartbeat
        self.server: RPCServer | None = None
        self._beat: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.server = RPCServer(get_transport(self.settings), "scheduler", self.settings.compute.host,
                                [SchedulerManager(self.settings, self.db)])
        await self.server.start()
        if self.heartbeat:
            await self._report()
            self._beat = asyncio.create_task(self._beating())

    async def _report(self) -> None:
        host, now = self.settings.compute.host, utcnow()
        await self.db.run(lambda session: record_heartbeat(session, self.settings.compute, host, "nova-scheduler",
                                                           "scheduler", now), write=True)

    async def _beating(self) -> None:
        while True:
            await asyncio.sleep(self.settings.compute.report_interval)
            try:
                await self._report()
            except Exception as exc:
                log.warning("scheduler heartbeat failed: %s", exc)

    async def stop(self) -> None:
        if self._beat is not None:
            self._beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beat
        if self.server is not None:
            await self.server.stop()
        if self._own_db:
            await self.db.close()


class ComputeAgentsService(Service):
    """The compute agents (nova-compute) of this process, one per host name (several with the fake driver)."""

    name = "compute"

    def __init__(self, settings: Settings, specs: list[ServiceSpec], image: ImageClient | None = None,
                 network: NetworkClient | None = None) -> None:
        self.settings = settings
        self.image = image or ImageClient(settings.base_url("image"))
        self.network = network or NetworkClient(settings.base_url("network"))
        self.agents: list[ComputeAgent] = []

    async def start(self) -> None:
        transport = get_transport(self.settings)
        service_tokens = nova_service_tokens(self.settings)
        for host in agent_hosts(self.settings):
            driver = make_driver(self.settings, host, image=self.image, service_tokens=service_tokens)
            agent = ComputeAgent(self.settings, host, driver, transport,
                                 image=self.image, network=self.network, service_tokens=service_tokens)
            await agent.start()
            self.agents.append(agent)

    async def stop(self) -> None:
        for agent in self.agents:
            await agent.stop()


class ComputeService(Service):
    """The whole compute family in one process on the local bus and one database (the all-in-one)."""

    name = "compute"

    def __init__(self, settings: Settings, specs: list[ServiceSpec]) -> None:
        self.settings = settings
        self.db = Database(settings.database_url("compute"))
        self.api = ComputeAPIService(settings, specs, db=self.db)
        self.state = self.api.state
        self.app = self.api.app
        self.conductor_service = ConductorService(settings, specs, db=self.db, binaries=ALL_IN_ONE_BINARIES)
        self.scheduler_service = SchedulerService(settings, specs, db=self.db, heartbeat=False)
        self.agents_service = ComputeAgentsService(settings, specs, image=self.state.image,
                                                   network=self.state.network)

    @property
    def conductor(self) -> ConductorManager | None:
        return self.conductor_service.manager

    @property
    def agents(self) -> list[ComputeAgent]:
        return self.agents_service.agents

    async def start(self) -> None:
        await self.api.start()
        await self.scheduler_service.start()
        await self.conductor_service.start()
        await self.agents_service.start()

    async def stop(self) -> None:
        await self.agents_service.stop()
        await self.conductor_service.stop()
        await self.scheduler_service.stop()
        await self.api.stop()
        await self.db.close()


def create(settings: Settings, specs: list[ServiceSpec]) -> ComputeService:
    return ComputeService(settings, specs)


def create_api(settings: Settings, specs: list[ServiceSpec]) -> ComputeAPIService:
    return ComputeAPIService(settings, specs)


def create_conductor(settings: Settings, specs: list[ServiceSpec]) -> ConductorService:
    return ConductorService(settings, specs)


def create_scheduler(settings: Settings, specs: list[ServiceSpec]) -> SchedulerService:
    return SchedulerService(settings, specs)


def create_agents(settings: Settings, specs: list[ServiceSpec]) -> ComputeAgentsService:
    return ComputeAgentsService(settings, specs)
