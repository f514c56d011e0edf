"""The compute family in the all-in-one: API, conductor, scheduler and the compute agents on one local bus.

Each part is its own class talking to the others only over RPC (and the agents never open the database), so the
distributed mode runs the same classes as separate processes on RabbitMQ.
"""

from __future__ import annotations

import importlib
import logging

from sqlalchemy import func, select

from pocketstack.common.app import create_app
from pocketstack.common.clients.identity import IdentityClient, ServiceTokenProvider
from pocketstack.common.clients.image import ImageClient
from pocketstack.common.clients.network import NetworkClient
from pocketstack.common.config import Settings
from pocketstack.common.db import Database
from pocketstack.common.policy import PolicyEngine
from pocketstack.common.rpc import RPCServer, get_transport
from pocketstack.common.service import Service, ServiceSpec, remote_token_validator, service_password
from pocketstack.common.timeutils import utcnow
from pocketstack.compute import models as m
from pocketstack.compute.agent.manager import ComputeAgent
from pocketstack.compute.agent.rpcapi import ComputeAgentAPI
from pocketstack.compute.api.common import MICROVERSIONS, ComputeAPIState
from pocketstack.compute.conductor.manager import ConductorManager
from pocketstack.compute.conductor.rpcapi import ConductorAPI
from pocketstack.compute.policies import COMPUTE_POLICIES
from pocketstack.compute.scheduler.manager import SchedulerManager
from pocketstack.compute.virt import make_driver

log = logging.getLogger("pocketstack.compute")

# Router modules under pocketstack.compute.api, mounted in this order.
ROUTER_MODULES = ("versions", "servers", "server_actions", "flavors", "keypairs", "limits", "hosts",
                  "server_groups", "instance_actions", "server_meta", "volume_attachments")

PUBLIC = {("GET", "/"), ("GET", "/v2.1"), ("GET", "/v2.1/")}

# OpenStack's default flavors (DevStack also adds the small m1.nano and m1.micro).
DEFAULT_FLAVORS = [
    ("1", "m1.tiny", 1, 512, 1), ("2", "m1.small", 1, 2048, 20), ("3", "m1.medium", 2, 4096, 40),
    ("4", "m1.large", 4, 8192, 80), ("5", "m1.xlarge", 8, 16384, 160), ("42", "m1.nano", 1, 128, 1),
    ("84", "m1.micro", 1, 192, 1),
]


def _routers() -> list:
    routers = []
    for name in ROUTER_MODULES:
        try:
            module = importlib.import_module(f"pocketstack.compute.api.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"pocketstack.compute.api.{name}":
                raise
            continue
        routers.append(module.router)
    return routers


class ComputeService(Service):
    name = "compute"

    def __init__(self, settings: Settings, specs: list[ServiceSpec]) -> None:
        self.settings = settings
        self.spec = next(s for s in specs if s.name == "compute")
        self.db = Database(settings.database_url("compute"))
        self.policy = PolicyEngine(COMPUTE_POLICIES, settings.policy_file)
        self.state = ComputeAPIState(settings=settings, db=self.db, policy=self.policy, conductor=None,
                                     agents=None, image=ImageClient(settings.base_url("image")),
                                     network=NetworkClient(settings.base_url("network")))
        self.app = create_app(service_name="compute-api", style="nova", routers=_routers(),
                              validator=remote_token_validator(settings),
                              is_public=lambda method, path: (method, path) in PUBLIC,
                              access_log=settings.access_log, state={"compute": self.state},
                              microversion=MICROVERSIONS)
        self.servers: list[RPCServer] = []
        self.agents: list[ComputeAgent] = []
        self.conductor: ConductorManager | None = None

    async def start(self) -> None:
        await self.db.migrate(self.spec.migrations_dir, self.spec.version_table)
        await self._bootstrap_flavors()
        transport = get_transport(self.settings)
        self.state.conductor = ConductorAPI(transport)
        self.state.agents = ComputeAgentAPI(transport)
        cfg = self.settings.compute
        self.conductor = ConductorManager(self.settings, self.db, transport)
        scheduler = SchedulerManager(self.settings, self.db)
        for topic, endpoint in (("conductor", self.conductor), ("scheduler", scheduler)):
            server = RPCServer(transport, topic, cfg.host, [endpoint])
            await server.start()
            self.servers.append(server)
        await self.conductor.start()
        hosts = [f"{cfg.host}-fake{i}" for i in range(1, cfg.fake_hosts + 1)] if cfg.driver == "fake" else [cfg.host]
        identity = IdentityClient(self.settings.base_url("identity"))
        service_tokens = ServiceTokenProvider(identity, "nova", service_password(self.settings, "nova"))
        for host in hosts:
            agent = ComputeAgent(self.settings, host, make_driver(self.settings, host), transport,
                                 image=self.state.image, network=self.state.network, service_tokens=service_tokens)
            await agent.start()
            self.agents.append(agent)

    async def _bootstrap_flavors(self) -> None:
        async with self.db.session(write=True) as session:
            if await session.scalar(select(func.count()).select_from(m.Flavor)):
                return
            for flavorid, name, vcpus, ram, disk in DEFAULT_FLAVORS:
                session.add(m.Flavor(flavorid=flavorid, name=name, vcpus=vcpus, memory_mb=ram, root_gb=disk,
                                     ephemeral_gb=0, swap=0, rxtx_factor=1.0, is_public=True, disabled=False,
                                     created_at=utcnow()))

    async def stop(self) -> None:
        for agent in self.agents:
            await agent.stop()
        if self.conductor is not None:
            await self.conductor.stop()
        for server in self.servers:
            await server.stop()
        await self.db.close()


def create(settings: Settings, specs: list[ServiceSpec]) -> ComputeService:
    return ComputeService(settings, specs)
