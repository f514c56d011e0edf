"""The network service as the launcher runs it: database, the compute notifier, the HTTP app."""

from __future__ import annotations

import json
import time
from datetime import datetime

from pocketstack.common.app import create_app
from pocketstack.common.clients.identity import IdentityClient
from pocketstack.common.config import Settings
from pocketstack.common.db import Database
from pocketstack.common.service import Service, ServiceSpec, remote_token_validator
from pocketstack.network.api import core, l3, quotas, security, tags, versions
from pocketstack.network.l3 import NetworkManager
from pocketstack.network.notifier import ComputeNotifier, TokenSource

PUBLIC = {("GET", "/"), ("GET", "/v2.0"), ("GET", "/v2.0/")}


def service_token_source(settings: Settings) -> TokenSource:
    """Log in with the network service's credentials (default: the admin account) for calls to compute."""
    conf = settings.network
    client = IdentityClient(settings.base_url("identity"))

    async def issue() -> tuple[str, float]:
        password = conf.service_password or settings.identity.admin_password
        if password is None:  # the all-in-one's generated admin password
            stored = settings.data_dir / "passwords.json"
            password = json.loads(stored.read_text()).get(conf.service_username, "") if stored.exists() else ""
        token, body = await client.issue_token(conf.service_username, password, conf.service_project)
        expires = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00")).timestamp()
        return token, expires if expires else time.time() + 300

    return issue


class NetworkService(Service):
    name = "network"

    def __init__(self, settings: Settings, specs: list[ServiceSpec]) -> None:
        self.settings = settings
        self.spec = next(s for s in specs if s.name == "network")
        self.db = Database(settings.database_url("network"))
        self.notifier = ComputeNotifier(settings.base_url("identity"), service_token_source(settings),
                                        settings.region)
        self.manager = NetworkManager(settings, self.db, self.notifier)
        self.app = create_app(
            service_name="network", style="neutron",
            routers=[versions.router, core.router, security.router, l3.router, quotas.router, tags.router],
            validator=remote_token_validator(settings),
            is_public=lambda method, path: (method, path) in PUBLIC,
            access_log=settings.access_log, state={"manager": self.manager},
        )

    async def start(self) -> None:
        await self.db.migrate(self.spec.migrations_dir, self.spec.version_table)

    async def stop(self) -> None:
        await self.notifier.drain()
        await self.db.close()


def create(settings: Settings, specs: list[ServiceSpec]) -> NetworkService:
    return NetworkService(settings, specs)
