"""`pocketstack serve ROLE`: one role of the cloud in this process, until SIGTERM or Ctrl-C.

A role with an HTTP API and `workers` > 1 runs as a supervisor and that many worker processes: the supervisor
binds the listening socket, runs the role's start-up work once (migrations, bootstrap) so the workers find it
done, then starts the workers on the inherited socket (the kernel spreads connections over them) and starts a
worker again when one dies. Each process records its spans into the shared trace store, labelled with its
role and pid, so `pocketstack trace` shows which process did each hop.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import uvicorn

from pocketstack.common import tracing
from pocketstack.common.clients.base import close_http_session
from pocketstack.common.db import configure_pool
from pocketstack.common.rpc import close_transports
from pocketstack.common.service import Role, run_event_loop
from pocketstack.launcher import _EmbeddedServer
from pocketstack.services import SERVICES, install_flow_steps
from pocketstack.settings import Settings
from pocketstack.trace.store import TraceStore, otlp_exporter

log = logging.getLogger("pocketstack.serve")

WORKER_READY = "pocketstack serve worker ready"


def ready_line(role: Role) -> str:
    return f"pocketstack serve {role.name} ready"


def configure_logging(level: str, role: Role) -> None:
    logging.basicConfig(level=level.upper(),
                        format=f"%(asctime)s %(levelname)s {role.name}[%(process)d] %(name)s: %(message)s")


def listen_port(role: Role, settings: Settings, port: int | None) -> int:
    assert role.api is not None
    return port if port is not None else settings.port(role.api)


def serve(role: Role, settings: Settings, *, port: int | None = None, worker_fd: int | None = None) -> None:
    """Run `role` until SIGTERM/SIGINT; `port` overrides the configured listening port (e.g. behind haproxy).
    A failure to start is logged and ends the process with status 1."""
    configure_logging(settings.log_level, role)
    configure_pool(settings.distributed.db_pool_size, settings.distributed.db_max_overflow)
    workers = settings.service(role.api).workers if role.api else 1
    try:
        if workers > 1 and worker_fd is None:
            Supervisor(role, settings, listen_port(role, settings, port), workers).run()
            return
        line = WORKER_READY if worker_fd is not None else ready_line(role)
        run_event_loop(_serve(role, settings, port, worker_fd, line),
                       host_networking=role.host_networking(settings))
    except Exception:
        log.exception("%s failed", role.name)
        raise SystemExit(1) from None


def child_env(env: Mapping[str, str]) -> dict[str, str]:
    """`env` with the source root of this pocketstack first on PYTHONPATH. Children start with `-P` (the working
    directory is not searched), so they import this very code: a checkout run through another checkout's venv
    starts its own children, never the venv's editable install."""
    import pocketstack

    root = str(Path(pocketstack.__file__).resolve().parent.parent)
    rest = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != root]
    return {**env, "PYTHONPATH": os.pathsep.join([root, *rest])}


def die_with_parent() -> None:
    """In a child before exec: SIGTERM when its parent dies, so no process outlives the one that started it."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


async def _serve(role: Role, settings: Settings, port: int | None, worker_fd: int | None, line: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tracer = None
    if settings.trace.enabled:
        store = TraceStore(settings)
        await store.migrate()
        tracer = tracing.Tracer(store, process=f"{role.name}[{os.getpid()}]",
                                exporter=otlp_exporter(settings))
        await tracer.start()
        tracing.install(tracer)  # the server and every task started below record into it
        install_flow_steps()
    service = role.build(settings, SERVICES)
    server: _EmbeddedServer | None = None
    server_task: asyncio.Task[None] | None = None
    try:
        await service.start()
        if role.api is not None:
            config = uvicorn.Config(service.app, host=settings.bind, port=listen_port(role, settings, port),
                                    log_config=None, access_log=False, lifespan="off", loop="none",
                                    ws="websockets-sansio" if role.websocket else "none",
                                    http="httptools", timeout_keep_alive=75, server_header=False)
            server = _EmbeddedServer(config)
            sockets = [socket.socket(fileno=worker_fd)] if worker_fd is not None else None
            server_task = asyncio.create_task(server.serve(sockets=sockets), name=f"serve-{role.name}")
            while not server.started:
                if server_task.done():
                    server_task.result()  # raises the bind error
                    raise RuntimeError(f"{role.name} stopped while starting")
                await asyncio.sleep(0.01)
        print(line, flush=True)
        waiting = [asyncio.create_task(stop.wait()), *([server_task] if server_task else [])]
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        waiting[0].cancel()
    finally:
        if server is not None and server_task is not None:
            server.should_exit = True
            with contextlib.suppress(BaseException):
                await server_task
        try:
            await service.stop()
        except Exception:
            log.exception("stopping %s failed", role.name)
        if tracer is not None:
            await tracer.stop()
            await tracer.store.close()  # type: ignore[attr-defined]
        await close_transports()
        await close_http_session()


async def _prepare(role: Role, settings: Settings) -> None:
    """The role's start-up work once (migrations, bootstrap), before its workers start."""
    service = role.build(settings, SERVICES)
    try:
        await service.start()
    finally:
        await service.stop()
        await close_transports()
        await close_http_session()


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class Supervisor:
    """The parent of a role's API worker processes: one listening socket, workers kept at `count`."""

    restart_delay = 1.0

    def __init__(self, role: Role, settings: Settings, port: int, count: int) -> None:
        self.role, self.settings, self.port, self.count = role, settings, port, count
        self.stopping = threading.Event()
        self.workers: list[subprocess.Popen[str] | None] = [None] * count
        self.ready: list[threading.Event] = [threading.Event() for _ in range(count)]

    def _spawn(self, index: int, sock: socket.socket) -> None:
        # -P: the same pocketstack as this process, whatever the working directory holds
        cmd = [sys.executable, "-P", "-m", "pocketstack.cli", "serve", self.role.name, "--worker-fd",
               str(sock.fileno()), "--port", str(self.port)]
        proc = subprocess.Popen(cmd, pass_fds=[sock.fileno()], stdout=subprocess.PIPE, text=True,
                                env=child_env(os.environ), preexec_fn=die_with_parent)
        self.workers[index] = proc
        self.ready[index].clear()
        threading.Thread(target=self._relay, args=(index, proc), daemon=True).start()
        log.info("worker %d started (pid %d)", index + 1, proc.pid)

    def _relay(self, index: int, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.strip() == WORKER_READY:
                self.ready[index].set()
            else:
                sys.stdout.write(line)
                sys.stdout.flush()

    def run(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self.stopping.set())
        sock = bind_socket(self.settings.bind, self.port)
        try:
            run_event_loop(_prepare(self.role, self.settings),
                           host_networking=self.role.host_networking(self.settings))
            for index in range(self.count):
                self._spawn(index, sock)
            announced = False
            died_at: dict[int, float] = {}
            while not self.stopping.wait(0.2):
                if not announced and all(event.is_set() for event in self.ready):
                    print(ready_line(self.role), flush=True)
                    announced = True
                for index, proc in enumerate(self.workers):
                    if proc is None or proc.poll() is None:
                        continue
                    first_seen = died_at.setdefault(index, time.monotonic())
                    if time.monotonic() - first_seen >= self.restart_delay:
                        log.warning("worker %d (pid %d) exited with %s; starting another", index + 1, proc.pid,
                                    proc.returncode)
                        del died_at[index]
                        self._spawn(index, sock)
        finally:
            self._stop_workers()
            sock.close()

    def _stop_workers(self) -> None:
        alive = [p for p in self.workers if p is not None and p.poll() is None]
        for proc in alive:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in alive:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
