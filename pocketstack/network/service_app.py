"""The network service as the launcher runs it: database, the compute notifier, the HTTP app."""

from __future__ import annotations

from pocketstack.common.app import create_app
from pocketstack.common.clients.compute_events import ComputeNotifier
from pocketstack.common.db import Database
from pocketstack.common.health import bus_check, database_check
from pocketstack.common.routes import build_router
from pocketstack.common.rpc import RPCServer, get_transport
from pocketstack.common.service import Service, ServiceSpec, remote_token_validator, service_token_provider
from pocketstack.network.agent.agent import NetworkAgent
from pocketstack.network.agent_rpc import AgentNotifier, PluginEndpoint
from pocketstack.network.api.routes import ROUTES
from pocketstack.network.bootstrap import create_default_networks
from pocketstack.network.l3 import NetworkManager
from pocketstack.network.rpcapi import TOPIC
from pocketstack.network.spec import SPEC
from pocketstack.settings import Settings

PUBLIC = {("GET", "/"), ("GET", "/v2.0"), ("GET", "/v2.0/")}


class NetworkAgentService(Service):
    """The host network agent alone (`pocketstack serve network-agent` on each compute host): RPC only."""

    name = "network-agent"

    def __init__(self, settings: Settings, specs: list[ServiceSpec] | None = None) -> None:
        self.settings = settings
        self.agent: NetworkAgent | None = None

    async def start(self) -> None:
        self.agent = NetworkAgent(self.settings, get_transport(self.settings))
        await self.agent.start()

    async def stop(self) -> None:
        if self.agent is not None:
            await self.agent.stop()
            if self.settings.network.agent_teardown_on_stop:
                await self.agent.teardown()


class NetworkService(Service):
    """The network API, the RPC server of the host agents and (all-in-one, `with_agent`) the host agent."""

    name = "network"

    def __init__(self, settings: Settings, specs: list[ServiceSpec], *, with_agent: bool = True) -> None:
        self.settings = settings
        self.spec = next(s for s in specs if s.name == "network")
        self.db = Database(settings.database_url("network"))
        self.tokens = service_token_provider(settings, "network", "neutron").token
        self.notifier = ComputeNotifier(settings.base_url("identity"), self.tokens, settings.region)
        self.manager = NetworkManager(settings, self.db, self.notifier)
        self.app = create_app(
            service_name="network", style=SPEC.errors,
            routers=[build_router(ROUTES)],
            validator=remote_token_validator(settings),
            is_public=lambda method, path: (method, path) in PUBLIC,
            access_log=settings.access_log, state={"manager": self.manager},
            health=[database_check(self.db), bus_check(settings)],
        )
        self.agent_notifier: AgentNotifier | None = None
        self.plugin_server: RPCServer | None = None
        self.agent_service = NetworkAgentService(settings) if with_agent and settings.network_agent_enabled \
            else None

    @property
    def agent(self) -> NetworkAgent | None:
        return self.agent_service.agent if self.agent_service is not None else None

    async def start(self) -> None:
        await self.db.migrate(self.spec.migrations_dir, self.spec.version_table)
        transport = get_transport(self.settings)
        self.agent_notifier = AgentNotifier(transport)
        self.manager.on_change = self.agent_notifier.changed
        self.plugin_server = RPCServer(transport, TOPIC, self.settings.compute.host, [PluginEndpoint(self.manager)])
        await self.plugin_server.start()
        if self.settings.network_agent_enabled and self.settings.network.default_networks:
            await create_default_networks(self.settings, self.manager, self.tokens)
        if self.agent_service is not None:
            await self.agent_service.start()

    async def stop(self) -> None:
        if self.agent_service is not None:
            await self.agent_service.stop()
        if self.plugin_server is not None:
            await self.plugin_server.stop()
        if self.agent_notifier is not None:
            await self.agent_notifier.drain()
        await self.notifier.drain()
        await self.db.close()


def create(settings: Settings, specs: list[ServiceSpec]) -> NetworkService:
    """The all-in-one's network service: API, agents' RPC and, when the data plane is enabled, the host agent."""
    return NetworkService(settings, specs)


def create_api(settings: Settings, specs: list[ServiceSpec]) -> NetworkService:
    """The network API and the agents' RPC server without a host agent (distributed: agents run on hosts)."""
    return NetworkService(settings, specs, with_agent=False)


def create_agent(settings: Settings, specs: list[ServiceSpec]) -> NetworkAgentService:
    return NetworkAgentService(settings, specs)
