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
from pocketstack.common.service import (
    Service,
    ServiceSpec,
    print_created_users,
    run_event_loop,
    stored_passwords,
)
from pocketstack.progress import StartProgress
from pocketstack.services import SERVICES, install_flow_steps
from pocketstack.settings import Settings
from pocketstack.trace.store import TraceStore, otlp_exporter

log = logging.getLogger("pocketstack")


class _EmbeddedServer(uvicorn.Server):
    """uvicorn server that leaves signal handling to the launcher (several servers share one loop)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str, log_dir: Path | None = None) -> None:
    """Service logs on the terminal; with `log_dir`, the access log goes to `log_dir/access.log` instead (on the
    terminal too at debug level). uvicorn's own start and stop lines, the same for every port, are left out."""
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT)
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(log_dir / "access.log")
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        access = logging.getLogger("pocketstack.access")
        access.addHandler(handler)
        access.setLevel(logging.INFO)
        access.propagate = level.lower() == "debug"


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
    def __init__(self, settings: Settings, specs: list[ServiceSpec] | None = None,
                 progress: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self.progress = progress or (lambda step: log.info("%s", step))  # each start step, as it begins
        self.specs = specs if specs is not None else list(SERVICES)
        self.services: list[Service] = []
        self._servers: list[tuple[_EmbeddedServer, asyncio.Task[None]]] = []
        self.tracer: tracing.Tracer | None = None

    async def _serve(self, spec: ServiceSpec, service: Service) -> None:
        config = uvicorn.Config(service.app, host=self.settings.bind, port=self.settings.port(spec.name),
                                log_config=None, access_log=False, lifespan="off", loop="none",
                                ws="websockets-sansio" if any(r.websocket for r in spec.roles) else "none",
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
        log.info("%s listening on %s", spec.name, self.settings.base_url(spec.name))

    async def start(self) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        if self.settings.trace.enabled:
            store = TraceStore(self.settings)
            await store.migrate()
            self.tracer = tracing.Tracer(store, exporter=otlp_exporter(self.settings))
            await self.tracer.start()
            tracing.install(self.tracer)  # every server and task started below records into it
            install_flow_steps(self.specs)
        for spec in self.specs:
            migrations = " (database migrations first)" if spec.migrations_dir.is_dir() else ""
            self.progress(f"starting {spec.name}{migrations}")
            service = spec.build(self.settings, self.specs)
            await service.start()
            self.services.append(service)
            await self._serve(spec, service)
        write_clouds_yaml(self.settings)
        if {"identity", "image"} <= {spec.name for spec in self.specs}:
            from pocketstack.guest.register import register_on_start

            if self.settings.compute.driver == "qemu":
                self.progress("the test guest image: built from Debian packages on the first start (a minute or so)")
            await register_on_start(self.settings)

    async def stop(self) -> None:
        for server, _ in self._servers:
            server.should_exit = True
        for _, task in self._servers:
            with contextlib.suppress(Exception):
                await task
        self._servers.clear()
        for service in reversed(self.services):
            try:
                await service.stop()
            except Exception as exc:
                log.warning("%s did not stop cleanly: %s", service.name, exc)
            else:
                log.info("%s stopped", service.name)
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
    configure_logging(settings.log_level, settings.data_dir / "log")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        progress = StartProgress()  # Rich's step lines on a terminal, log lines elsewhere
        cloud = AllInOne(settings, progress=progress.step)

        def ready() -> None:
            progress.done()
            identity = next((s for s in cloud.services if s.name == "identity"), None)
            print_created_users(getattr(identity, "created_passwords", {}), settings.data_dir)
            print(f"clouds.yaml: {settings.data_dir / 'clouds.yaml'}; access log: "
                  f"{settings.data_dir / 'log' / 'access.log'}", flush=True)
            if any(spec.name == "dashboard" for spec in cloud.specs):
                print(f"dashboard: {settings.base_url('dashboard')}/", flush=True)
            if any(spec.name == "vnc" for spec in cloud.specs):
                print(f"consoles: serial ws://{settings.host}:{settings.port('serial-console')}/, noVNC "
                      f"{settings.base_url('vnc')}/vnc_lite.html (URLs: `openstack console url show`)", flush=True)
            print("pocketstack ready", flush=True)

        try:
            await cloud.run(stop, ready)
        finally:
            progress.done()
        for line in still_running(settings):
            print(line, flush=True)

    run_event_loop(main(), host_networking=settings.network_agent_enabled or settings.compute.driver == "qemu")


def still_running(settings: Settings) -> list[str]:
    """What a stop leaves on the host for the guests (they keep running and are adopted by the next start)."""
    lines = ["pocketstack stopped"]
    instances = settings.compute.instances_path or settings.data_dir / "instances"
    guests = sorted(p.parent.name for p in instances.glob("*/domain.json")) if settings.compute.driver == "qemu" \
        else []
    if guests:
        lines.append(f"still running: {len(guests)} QEMU guest(s) ({', '.join(g[:8] for g in guests)}), adopted by "
                     "the next `pocketstack up`")
    agent_state = (settings.network.agent_state_dir or settings.data_dir / "network-agent") / "owned.json"
    if settings.network_agent_enabled and not settings.network.agent_teardown_on_stop and agent_state.exists():
        lines.append("still in place: the network data plane (bridges, DHCP and router namespaces, nftables)")
    if len(lines) > 1:
        lines.append("`pocketstack purge` removes them")
    return lines


def purge(settings: Settings) -> list[str]:
    """Remove what a stopped all-in-one leaves on the host: its QEMU guests (processes, taps, disks) and the network
    data plane. The databases in the data dir stay; the servers' records show the guests gone on the next start."""
    import socket

    from pocketstack.distributed.deploy import remove_data_plane

    with socket.socket() as probe:
        probe.settimeout(1)
        if probe.connect_ex((settings.bind, settings.port("identity"))) == 0:
            raise RuntimeError(f"the cloud of {settings.data_dir} is running ({settings.base_url('identity')}): "
                               "stop it first")
    done: list[str] = []
    instances = settings.compute.instances_path or settings.data_dir / "instances"
    agent_state = (settings.network.agent_state_dir or settings.data_dir / "network-agent") / "owned.json"
    guests = list(instances.glob("*/domain.json"))
    if (guests or agent_state.exists()) and os.geteuid() != 0:
        raise RuntimeError("removing the guests and the host data plane needs root")
    if guests:
        from pocketstack.compute.virt.qemu import QemuDriver

        removed = asyncio.run(QemuDriver("purge", settings).remove_all())
        done.append(f"removed {len(removed)} QEMU guest(s): {', '.join(removed)}")
    if agent_state.exists():
        done += asyncio.run(remove_data_plane(settings))
        agent_state.unlink(missing_ok=True)
    return done or [f"nothing to remove for {settings.data_dir}"]


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
