"""What a service declares of itself (`ServiceSpec`, its `Role`s, its FLOW rows) and gives the launcher (a
`Service`: an ASGI app plus start/stop hooks), with the secrets services share through the data dir.

The registry of the services, in start order, is `pocketstack.services.SERVICES`.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp

from pocketstack.common.auth import CachedTokenValidator, TokenValidator
from pocketstack.common.cache import make_cache
from pocketstack.common.clients.identity import IdentityClient, RemoteTokenValidator, ServiceTokenProvider
from pocketstack.common.config import CoreSettings
from pocketstack.common.errors import FAULT_STYLE, ErrorStyle


@dataclass(frozen=True)
class Role:
    """One kind of process of a service: what `pocketstack serve NAME` runs and how `up --distributed` places it.

    Its factory builds a `Service` (the same classes the all-in-one runs) from the settings and the registry's
    services; `api` names the settings section of the HTTP API it serves (its port, database and `workers`), None
    for processes that only speak RPC.
    """

    name: str  # `pocketstack serve NAME`
    factory: str  # "package.module:function" taking (settings, specs), returning a Service
    api: str | None = None  # settings section of the HTTP API served (port, workers); None: RPC only
    stage: int = 1  # `up --distributed` starts the stages in order, each once the previous one is ready
    copies: str | None = None  # `[distributed]` field giving how many processes `up --distributed` runs
    per_hosts: bool = False  # `up --distributed` runs one per group of compute hosts (POCKETSTACK_COMPUTE__HOSTS)
    host_section: str | None = None  # settings section whose `host` names this process (`serve --host`);
    # None: the host name every process of the deployment shares (`[compute] host`)
    # whether `up --distributed` runs it (the network agent runs where the all-in-one would run it)
    wanted: Callable[[Any], bool] = lambda settings: True
    # whether it drives host networking (netlink through pyroute2: asyncio's own loop, not uvloop)
    host_networking: Callable[[Any], bool] = lambda settings: False
    host_local: bool = False  # runs on every compute host (inside each namespaced host of `up --distributed`)
    websocket: bool = False  # its API takes websocket connections (the console proxies)

    def build(self, settings: Any, specs: list[ServiceSpec]) -> Service:
        module_name, func = self.factory.split(":")
        return getattr(importlib.import_module(module_name), func)(settings, specs)

    def instances(self, settings: Any) -> int:
        return getattr(settings.distributed, self.copies) if self.copies else 1


@dataclass(frozen=True)
class RestStep:
    """A FLOW.md step of a REST hop this service makes: to `callee`, `method` ("" any) on a path under `prefix`."""

    callee: str
    method: str
    prefix: str
    step: str


@dataclass(frozen=True)
class ServiceSpec:
    """A service as it declares itself (its package's `spec.py`): the launcher, `serve`, the catalog and the
    tracer read these declarations; common/ knows no service by name."""

    name: str  # settings section and process name, e.g. "identity"
    catalog_type: str | None  # e.g. "identity", "compute"; None: not in the catalog (metadata)
    catalog_name: str  # e.g. "keystone", "nova"
    url_path: str  # appended to the base URL in the catalog, e.g. "/v3", "/v2.1"
    factory: str  # "package.module:function" building the all-in-one Service from (settings, specs)
    extra_types: tuple[str, ...] = ()  # further catalog types served by the same endpoint
    database: bool = True  # has its own database and `migrations/` folder in its package
    service_user: str | None = None  # the identity user the service calls other services as (e.g. "nova")
    shared_secret: str | None = None  # key of a secret generated once into the data dir (unless configured)
    roles: tuple[Role, ...] = ()  # its processes in the distributed mode
    # FLOW.md rows: REST hops it makes (by callee, method and path), and the client requests it answers
    rest_steps: tuple[RestStep, ...] = ()
    client_steps: tuple[tuple[str, str, str], ...] = ()  # (method, path, step)
    module: str = ""  # the package, when `factory` is not directly below it
    errors: ErrorStyle = FAULT_STYLE  # how its API spells an error body

    @property
    def package(self) -> str:
        return self.module or self.factory.split(":")[0].rsplit(".", 1)[0]

    @property
    def migrations_dir(self) -> Path:
        return Path(importlib.import_module(self.package).__file__).parent / "migrations"  # type: ignore[arg-type]

    @property
    def version_table(self) -> str:
        return f"alembic_version_{self.name.replace('-', '_')}"

    @property
    def components(self) -> tuple[str, ...]:
        """The names its processes record spans under: the service's and its roles' ("conductor", ...)."""
        return (self.name, *(role.name for role in self.roles))

    def build(self, settings: Any, specs: list[ServiceSpec]) -> Service:
        module_name, func = self.factory.split(":")
        return getattr(importlib.import_module(module_name), func)(settings, specs)


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


def print_created_users(passwords: dict[str, str], data_dir: Path) -> None:
    """Name the users the first start created; their passwords stay in the private passwords.json (never on a
    terminal or in a log that captures it)."""
    for user in passwords:
        print(f"created user {user}; its password is in {data_dir / 'passwords.json'} (mode 0600)", flush=True)


def stored_passwords(data_dir: Path) -> dict[str, str]:
    """Passwords generated on first start (users admin, demo and the service users), kept 0600 in the data dir."""
    path = data_dir / PASSWORDS_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def save_passwords(data_dir: Path, passwords: dict[str, str]) -> None:
    path = data_dir / PASSWORDS_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(passwords, f, indent=2)


def service_password(settings: CoreSettings, section: str, user: str) -> str:
    """The password of a service user: `service_password` of its service's settings section, else the one
    generated into the data dir."""
    configured = getattr(settings.service(section), "service_password", None)
    if configured:
        return configured
    password = stored_passwords(settings.data_dir).get(user)
    if password is None:
        raise RuntimeError(f"no password for service user {user!r}: set it in the configuration")
    return password


def service_token_provider(settings: CoreSettings, section: str, user: str) -> ServiceTokenProvider:
    """Tokens of a service user (project `service`), for the calls its service makes to other services; its
    password is looked up on first use (the all-in-one's identity generates it at bootstrap)."""
    return ServiceTokenProvider(IdentityClient(settings.base_url("identity")), user,
                                lambda: service_password(settings, section, user))


def shared_secret(settings: CoreSettings, section: str, key: str) -> str:
    """A secret two services share (e.g. the metadata proxy's): `shared_secret` of the settings section, else
    the one the identity bootstrap generated into the data dir under `key`."""
    configured = getattr(settings.service(section), "shared_secret", None)
    if configured:
        return configured
    secret = stored_passwords(settings.data_dir).get(key)
    if secret is None:
        raise RuntimeError(f"no shared secret {key!r}: set [{section}] shared_secret in the configuration")
    return secret


def remote_token_validator(settings: CoreSettings) -> TokenValidator:
    """The validator a non-identity service uses: REST to identity behind the shared TTL cache."""
    cache = make_cache(settings.auth.cache_backend, settings.auth.cache_url, settings.auth.cache_size)
    client = IdentityClient(settings.base_url("identity"))
    return CachedTokenValidator(RemoteTokenValidator(client), cache, settings.auth.cache_ttl)


def run_event_loop(main: Coroutine[Any, Any, None], *, host_networking: bool) -> None:
    """Run a process's main coroutine: on uvloop, unless this process drives host networking.

    pyroute2's async netlink sockets (the network agent's bridges and namespaces, the qemu driver's taps) need
    asyncio's own loop: uvloop cannot open an AF_NETLINK datagram endpoint ("invalid family 16"). pyroute2 also
    forks children for namespace work and stops them with SIGTERM: a child still running this process's signal
    handlers would pass that signal on to our loop (the wakeup fd is shared) and stop the whole process, so its
    children get the default handlers.
    """
    import pyroute2.config

    pyroute2.config.disable_mp_signal = True  # despite the name: every forked child, not only 'mp' mode
    if not host_networking:
        try:
            import uvloop
        except ImportError:
            pass
        else:
            uvloop.run(main)
            return
    asyncio.run(main)
