"""What every service package gives the launcher: an ASGI app plus start/stop hooks; and the service registry."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
from abc import ABC, abstractmethod
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp

from pocketstack.common.auth import CachedTokenValidator, TokenValidator
from pocketstack.common.cache import make_cache
from pocketstack.common.clients.identity import IdentityClient, RemoteTokenValidator
from pocketstack.common.config import Settings


@dataclass(frozen=True)
class ServiceSpec:
    """A service as the launcher and the catalog know it."""

    name: str  # settings section and process name, e.g. "identity"
    catalog_type: str | None  # e.g. "identity", "compute"; None: not in the catalog (metadata)
    catalog_name: str  # e.g. "keystone", "nova"
    url_path: str  # appended to the base URL in the catalog, e.g. "/v3", "/v2.1"
    factory: str  # "package.module:function" building the Service from Settings
    extra_types: tuple[str, ...] = ()  # further catalog types served by the same endpoint
    database: bool = True  # has its own database and `migrations/` folder in its package
    service_user: str | None = None  # the identity user the service calls other services as (e.g. "nova")

    @property
    def package(self) -> str:
        return self.factory.split(":")[0].rsplit(".", 1)[0]

    @property
    def migrations_dir(self) -> Path:
        return Path(importlib.import_module(self.package).__file__).parent / "migrations"  # type: ignore[arg-type]

    @property
    def version_table(self) -> str:
        return f"alembic_version_{self.name.replace('-', '_')}"

    def build(self, settings: Settings, specs: list[ServiceSpec]) -> Service:
        module_name, func = self.factory.split(":")
        return getattr(importlib.import_module(module_name), func)(settings, specs)


# In start order. Each service issue adds its line here.
SERVICES: list[ServiceSpec] = [
    ServiceSpec("identity", "identity", "keystone", "/v3", "pocketstack.identity.service_app:create"),
    ServiceSpec("image", "image", "glance", "", "pocketstack.image.service_app:create"),
    ServiceSpec("network", "network", "neutron", "", "pocketstack.network.service_app:create",
                service_user="neutron"),
    ServiceSpec("volume", "block-storage", "cinder", "/v3/$(project_id)s", "pocketstack.volume.service_app:create",
                extra_types=("volumev3",), service_user="cinder"),
    ServiceSpec("compute", "compute", "nova", "/v2.1", "pocketstack.compute.service_app:create", service_user="nova"),
    ServiceSpec("metadata", None, "nova-metadata", "", "pocketstack.compute.metadata.service_app:create",
                database=False),
]


class Service(ABC):
    name: str
    app: ASGIApp

    @abstractmethod
    async def start(self) -> None:
        """Migrate the database, bootstrap, start background tasks. Called before the app serves."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop background tasks and close connections."""


PASSWORDS_FILE = "passwords.json"


def stored_passwords(data_dir: Path) -> dict[str, str]:
    """Passwords generated on first start (users admin, demo and the service users), kept 0600 in the data dir."""
    path = data_dir / PASSWORDS_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def save_passwords(data_dir: Path, passwords: dict[str, str]) -> None:
    path = data_dir / PASSWORDS_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(passwords, f, indent=2)


def service_password(settings: Settings, user: str) -> str:
    """The password of a service user: from its service's settings, else the one generated into the data dir."""
    for spec in SERVICES:
        if spec.service_user == user:
            configured = getattr(settings.service(spec.name), "service_password", None)
            if configured:
                return configured
    password = stored_passwords(settings.data_dir).get(user)
    if password is None:
        raise RuntimeError(f"no password for service user {user!r}: set it in the configuration")
    return password


METADATA_SECRET_KEY = "metadata_proxy_shared_secret"


def metadata_secret(settings: Settings) -> str:
    """The secret the metadata proxy signs instance ids with (Nova's metadata_proxy_shared_secret).

    Configured in `[metadata] shared_secret`, else generated once into the data dir by the identity bootstrap.
    """
    if settings.metadata.shared_secret:
        return settings.metadata.shared_secret
    secret = stored_passwords(settings.data_dir).get(METADATA_SECRET_KEY)
    if secret is None:
        raise RuntimeError("no metadata shared secret: set [metadata] shared_secret in the configuration")
    return secret


def remote_token_validator(settings: Settings) -> TokenValidator:
    """The validator a non-identity service uses: REST to identity behind the shared TTL cache."""
    cache = make_cache(settings.auth.cache_backend, settings.auth.cache_url, settings.auth.cache_size)
    client = IdentityClient(settings.base_url("identity"))
    return CachedTokenValidator(RemoteTokenValidator(client), cache, settings.auth.cache_ttl)


def run_event_loop(main: Coroutine[Any, Any, None], settings: Settings, *,
                   host_networking: bool | None = None) -> None:
    """Run a process's main coroutine: on uvloop, unless this process drives host networking (`host_networking`;
    None: when the settings run the network agent or the qemu driver, as the all-in-one does).

    pyroute2's async netlink sockets (the network agent's bridges and namespaces, the qemu driver's taps) need
    asyncio's own loop: uvloop cannot open an AF_NETLINK datagram endpoint ("invalid family 16"). pyroute2 also
    forks children for namespace work and stops them with SIGTERM: a child still running this process's signal
    handlers would pass that signal on to our loop (the wakeup fd is shared) and stop the whole process, so its
    children get the default handlers.
    """
    import pyroute2.config

    pyroute2.config.disable_mp_signal = True  # despite the name: every forked child, not only 'mp' mode
    if host_networking is None:
        host_networking = settings.network_agent_enabled or settings.compute.driver == "qemu"
    if not host_networking:
        try:
            import uvloop
        except ImportError:
            pass
        else:
            uvloop.run(main)
            return
    asyncio.run(main)
