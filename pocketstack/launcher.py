"""The all-in-one cloud: every service on one asyncio loop, each on its own port (`pocketstack up`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import uvicorn
import yaml

from pocketstack.common import tracing
from pocketstack.common.clients.base import close_http_session, http_session
from pocketstack.common.rpc import close_transports
from pocketstack.common.service import Service, ServiceSpec, run_event_loop, stored_passwords
from pocketstack.services import SERVICES, install_flow_steps
from pocketstack.settings import Settings
from pocketstack.trace.store import TraceStore

log = logging.getLogger("pocketstack")


class _EmbeddedServer(uvicorn.Server):
    """uvicorn server that leaves signal handling to the launcher (several servers share one loop)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def write_clouds_yaml(settings: Settings) -> Path:
    """Write DATA_DIR/clouds.yaml with clouds `pocketstack` (admin) and `pocketstack-demo` (0600: passwords)."""
    passwords = stored_passwords(settings.data_dir)
    auth_url = settings.base_url("identity") + "/v3"

    def cloud(user: str, project: str) -> dict:
        password = getattr(settings.identity, f"{user}_password") or passwords.get(user, "")
        return {"auth": {"auth_url": auth_url, "username": user, "password": password, "project_name": project,
                         "user_domain_name": "Default", "project_domain_name": "Default"},
                "region_name": settings.region, "interface": "public", "identity_api_version": 3}

    path = settings.data_dir / "clouds.yaml"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump({"clouds": {"pocketstack": cloud("admin", "admin"),
                                   "pocketstack-demo": cloud("demo", "demo")}}, f, sort_keys=False)
    return path


async def _wait_answering(url: str, within: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        try:
            async with http_session().get(url) as resp:
                if resp.status < 500:
                    return
        except aiohttp.ClientError:
            pass
        if asyncio.get_running_loop().time() > deadline:
            raise RuntimeError(f"{url} did not answer within {within:.0f}s")
        await asyncio.sleep(0.05)


class AllInOne:
    def __init__(self, settings: Settings, specs: list[ServiceSpec] | None = None) -> None:
        self.settings = settings
        self.specs = specs if specs is not None else list(SERVICES)
        self.services: list[Service] = []
        self._servers: list[tuple[_EmbeddedServer, asyncio.Task[None]]] = []
        self.tracer: tracing.Tracer | None = None

    async def _serve(self, spec: ServiceSpec, service: Service) -> None:
        config = uvicorn.Config(service.app, host=self.settings.bind, port=self.settings.port(spec.name),
                                log_config=None, access_log=False, lifespan="off", loop="none", ws="none",
                                http="httptools", timeout_keep_alive=75, server_header=False)
        server = _EmbeddedServer(config)
        task = asyncio.create_task(server.serve(), name=f"serve-{spec.name}")
        self._servers.append((server, task))
        while not server.started:
            if task.done():
                task.result()  # raises the bind error
                raise RuntimeError(f"{spec.name} stopped while starting")
            await asyncio.sleep(0.01)
        await _wait_answering(self.settings.base_url(spec.name) + "/")

    async def start(self) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        if self.settings.trace.enabled:
            store = TraceStore(self.settings)
            await store.migrate()
            self.tracer = tracing.Tracer(store)
            await self.tracer.start()
            tracing.install(self.tracer)  # every server and task started below records into it
            install_flow_steps(self.specs)
        for spec in self.specs:
            service = spec.build(self.settings, self.specs)
            await service.start()
            self.services.append(service)
            await self._serve(spec, service)
        write_clouds_yaml(self.settings)
        if {"identity", "image"} <= {spec.name for spec in self.specs}:
            from pocketstack.guest.register import register_on_start

            await register_on_start(self.settings)

    async def stop(self) -> None:
        for server, _ in self._servers:
            server.should_exit = True
        for _, task in self._servers:
            with contextlib.suppress(Exception):
                await task
        self._servers.clear()
        for service in reversed(self.services):
            with contextlib.suppress(Exception):
                await service.stop()
        self.services.clear()
        if self.tracer is not None:
            await self.tracer.stop()
            await self.tracer.store.close()  # type: ignore[attr-defined]
            self.tracer = None
        await close_transports()
        await close_http_session()

    async def run(self, stop: asyncio.Event, on_ready: Callable[[], None] | None = None) -> None:
        try:
            await self.start()
            if on_ready is not None:
                on_ready()
            await stop.wait()
        finally:
            await self.stop()


def run_foreground(settings: Settings) -> None:
    """`pocketstack up`: run until Ctrl-C or SIGTERM, print the ready line once every service answers."""
    configure_logging(settings.log_level)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        cloud = AllInOne(settings)

        def ready() -> None:
            identity = next((s for s in cloud.services if s.name == "identity"), None)
            for user, password in getattr(identity, "created_passwords", {}).items():
                print(f"created user {user} with password {password} (also in "
                      f"{settings.data_dir / 'passwords.json'})", flush=True)
            print(f"clouds.yaml: {settings.data_dir / 'clouds.yaml'}", flush=True)
            print("pocketstack ready", flush=True)

        await cloud.run(stop, ready)

    run_event_loop(main(), host_networking=settings.network_agent_enabled or settings.compute.driver == "qemu")


class CloudThread:
    """The all-in-one cloud on a background thread with its own loop (tests and benchmarks)."""

    def __init__(self, settings: Settings, specs: list[ServiceSpec] | None = None) -> None:
        self.cloud = AllInOne(settings, specs)
        self.settings = settings
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="pocketstack-cloud", daemon=True)

    def _main(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            await self.cloud.run(self._stop, self._ready.set)

        try:
            asyncio.run(main())
        except BaseException as exc:
            self._error = exc
        finally:
            self._ready.set()

    def start(self, timeout: float = 60.0) -> CloudThread:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("the cloud did not become ready in time")
        if self._error is not None:
            raise RuntimeError("the cloud failed to start") from self._error
        return self

    def call(self, coro_factory: Callable[[], object], timeout: float = 60.0) -> object:
        """Run a coroutine on the cloud's loop from another thread and return its result."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro_factory(), self._loop).result(timeout)  # type: ignore[arg-type]

    def stop(self, timeout: float = 30.0) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
