"""`pocketstack up --distributed`: every role its own `pocketstack serve` process on one machine.

On start it gives the deployment its own RabbitMQ vhost and PostgreSQL databases on the engines named in the
`[distributed]` settings (names derived from the data dir, so a restart finds its state again), writes the
settings every process reads to DATA_DIR/pocketstack.toml, runs the migrations, starts identity (it bootstraps
the accounts and the catalog), then every other process of the plan. It prints the same ready line and writes the
same clouds.yaml as the all-in-one, starts again a process that dies, and stops them all on Ctrl-C or SIGTERM.
Logs go to DATA_DIR/log/NAME.log; DATA_DIR/processes.json lists the processes and their pids.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy.engine import make_url
from yarl import URL

from pocketstack.common.clients.base import close_http_session
from pocketstack.common.process import CommandError
from pocketstack.common.service import Role, print_created_users, run_event_loop, stored_passwords
from pocketstack.distributed.hosts import (
    EngineRelay,
    ManagementNetwork,
    controller_address,
    hosts_settings,
    namespace_hosts,
)
from pocketstack.distributed.serve import child_env, die_with_parent, ready_line
from pocketstack.services import ROLES, SERVICES
from pocketstack.settings import Settings

log = logging.getLogger("pocketstack.deploy")

CONFIG_FILE = "pocketstack.toml"  # the settings every process of the deployment reads
HOSTS_CONFIG_FILE = "pocketstack-hosts.toml"  # what the namespaced hosts' processes read instead (hosts.py)
DEPLOYMENT_FILE = "deployment.json"  # what was created on the engines, for `pocketstack purge`
PROCESSES_FILE = "processes.json"
LOG_DIR = "log"
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,40}$")


class DeployError(Exception):
    pass


def deployment_name(settings: Settings) -> str:
    """Prefix of the vhost and database names: configured, or derived from the data dir."""
    name = settings.distributed.name or "pocketstack_" + hashlib.sha1(
        str(settings.data_dir.resolve()).encode()).hexdigest()[:10]
    if not NAME_RE.match(name):
        raise DeployError(f"distributed.name {name!r}: use lower-case letters, digits and _ (at most 41)")
    return name


# ----- the settings file ---------------------------------------------------------------------------------------
def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return json.dumps(value)  # JSON strings and numbers are valid TOML
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def to_toml(data: dict[str, Any], prefix: str = "") -> str:
    """A small TOML writer for settings: scalars and lists, nested tables as [sections]."""
    lines = [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for key, value in data.items():
        if isinstance(value, dict):
            name = f"{prefix}{_toml_key(key)}"
            lines += ["", f"[{name}]", to_toml(value, name + ".").strip("\n")]
    return "\n".join(lines) + "\n"


def _database_url(server_url: str, database: str) -> str:
    return make_url(server_url).set(drivername="postgresql+asyncpg", database=database).render_as_string(
        hide_password=False)


def deployment_settings(settings: Settings) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the settings of every process, what to create on the engines): the configured values, plus a database
    per service and for the trace store where none is configured, a vhost where the bus is local, and the shared
    token cache."""
    name = deployment_name(settings)
    data = settings.model_dump(mode="json", exclude_none=True)
    data["data_dir"] = str(settings.data_dir.resolve())
    server = settings.distributed.database_server_url
    created: dict[str, Any] = {"name": name, "database_server_url": server, "databases": [],
                               "broker_url": settings.distributed.broker_url, "vhost": None}
    sections = [(spec.name.replace("-", "_"), spec.name) for spec in SERVICES if spec.database]
    for section, service in [*sections, ("trace", "trace")]:
        if not data[section].get("database_url"):
            database = f"{name}_{service.replace('-', '_')}"
            data[section]["database_url"] = _database_url(server, database)
            created["databases"].append(database)
    if settings.rpc.transport_url.startswith("local:"):
        data["rpc"]["transport_url"] = settings.distributed.broker_url.rstrip("/") + "/" + quote(name, safe="")
        created["vhost"] = name
    if settings.auth.cache_backend == "memory" and settings.distributed.cache_url:
        data["auth"].update(cache_backend="redis", cache_url=settings.distributed.cache_url)
    if settings.distributed.namespace_hosts:
        controller = controller_address(settings)
        if settings.bind in ("127.0.0.1", "localhost", "::1"):
            data["bind"] = controller  # the APIs (and the catalog) where the hosts reach them
        data["network"].setdefault("local_ip", controller)  # the network node's tunnel endpoint
    return data, created


# ----- the engines ---------------------------------------------------------------------------------------------
def _plain_postgres(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def create_databases(server_url: str, names: list[str]) -> None:
    import asyncpg

    try:
        conn = await asyncpg.connect(_plain_postgres(server_url), timeout=10)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise DeployError(f"cannot reach PostgreSQL at {make_url(server_url)!r} (distributed.database_server_url): "
                          f"{exc}") from exc
    try:
        existing = {row["datname"] for row in await conn.fetch("SELECT datname FROM pg_database")}
        for name in names:
            if name not in existing:
                await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def _rabbitmqctl(*args: str) -> str:
    exe = shutil.which("rabbitmqctl")
    if exe is None:
        raise DeployError("rabbitmqctl is not installed: create the vhost yourself and set rpc.transport_url")
    # its own session: as root it runs through `su`, which may signal the process group it was started in
    done = subprocess.run([exe, "-q", *args], capture_output=True, text=True, timeout=60, start_new_session=True)
    if done.returncode != 0:
        raise DeployError(f"rabbitmqctl {' '.join(args)} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def create_vhost(broker_url: str, vhost: str) -> None:
    if vhost not in _rabbitmqctl("list_vhosts", "--no-table-headers", "name").split():
        _rabbitmqctl("add_vhost", vhost)
    user = URL(broker_url).user or "guest"
    _rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")


async def remove_data_plane(settings: Settings) -> list[str]:
    """What this machine's network agent made (the network node: DHCP and router namespaces, bridges, VXLAN
    devices, nftables), as `network.agent_teardown_on_stop` would have removed it."""
    from pocketstack.common.rpc.local import LocalTransport
    from pocketstack.network.agent.agent import NetworkAgent

    agent = NetworkAgent(settings, LocalTransport())
    owned = json.loads((agent.state_dir / "owned.json").read_text())
    await agent.teardown()
    return [f"removed the network agent's data plane ({len(owned.get('namespaces', []))} namespaces, "
            f"{len(owned.get('bridges', []))} bridges, {len(owned.get('tunnels', []))} VXLAN devices, nftables)"]


def purge(data_dir: Path) -> list[str]:
    """Drop what `up --distributed` created for this data dir: its databases and vhost, and its namespaced hosts
    (with the guests still running there) and management bridge."""
    path = data_dir / DEPLOYMENT_FILE
    if not path.exists():
        raise DeployError(f"no {DEPLOYMENT_FILE} in {data_dir}: nothing was deployed from it")
    created = json.loads(path.read_text())
    done = []
    config = data_dir / CONFIG_FILE
    if config.exists():
        settings = Settings(**tomllib.loads(config.read_text()))
        hosts = namespace_hosts(settings, created["name"])
        agent_state = (settings.network.agent_state_dir or data_dir / "network-agent") / "owned.json"
        if (hosts or agent_state.exists()) and os.geteuid() != 0:
            raise DeployError("removing the host data plane and the namespaced hosts needs root")
        if agent_state.exists():
            done += asyncio.run(remove_data_plane(settings))
        if hosts:
            done += asyncio.run(ManagementNetwork(settings, hosts).teardown())

    async def drop() -> None:
        import asyncpg

        conn = await asyncpg.connect(_plain_postgres(created["database_server_url"]), timeout=10)
        try:
            for name in created["databases"]:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                done.append(f"dropped database {name}")
        finally:
            await conn.close()

    asyncio.run(drop())
    if created.get("vhost"):
        if created["vhost"] in _rabbitmqctl("list_vhosts", "--no-table-headers", "name").split():
            _rabbitmqctl("delete_vhost", created["vhost"])
        done.append(f"deleted vhost {created['vhost']}")
    path.unlink()
    return done


# ----- the processes -------------------------------------------------------------------------------------------
@dataclass
class Process:
    """One `pocketstack serve` process of the plan and its current OS process."""

    name: str  # "identity", "conductor-2", "compute-1"
    role: Role
    env: dict[str, str] = field(default_factory=dict)
    hosts: list[str] = field(default_factory=list)
    netns: str | None = None  # it runs on a namespaced host: in its namespace, with the hosts' settings
    proc: asyncio.subprocess.Process | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    started_at: float = 0.0


def plan(settings: Settings) -> list[Process]:
    """The processes of the deployment, in start order, from the role table and the [distributed] settings."""
    from pocketstack.compute.service_app import agent_hosts

    base = settings.compute.host
    namespaced = namespace_hosts(settings, deployment_name(settings))
    processes = []
    for role in ROLES:
        if not role.wanted(settings):
            continue
        if namespaced and role.host_local:
            if role.name == "network-agent":
                processes.append(Process(role.name, role))  # the network node: DHCP, metadata, routers
            for host in namespaced:
                local = settings.data_dir.resolve() / "hosts" / host.name  # the host's own disk
                env = {"POCKETSTACK_COMPUTE__HOST": host.name, "POCKETSTACK_COMPUTE__HOSTS": json.dumps([host.name]),
                       "POCKETSTACK_COMPUTE__INSTANCES_PATH": str(local / "instances"),
                       "POCKETSTACK_NETWORK__AGENT_STATE_DIR": str(local / "network-agent"),
                       "POCKETSTACK_NETWORK__LOCAL_IP": host.address}
                processes.append(Process(f"{role.name}-{host.name}", role, env, [host.name], host.netns))
        elif role.per_hosts:
            hosts, size = agent_hosts(settings), settings.distributed.hosts_per_process
            for i, start in enumerate(range(0, len(hosts), size), 1):
                group = hosts[start:start + size]
                processes.append(Process(f"{role.name}-{i}", role, {"POCKETSTACK_COMPUTE__HOSTS": json.dumps(group)},
                                         group))
        elif role.copies:
            count = role.instances(settings)
            for i in range(1, count + 1):
                host = base if count == 1 else f"{base}-{i}"
                processes.append(Process(f"{role.name}-{i}", role, {"POCKETSTACK_COMPUTE__HOST": host}, [host]))
        else:
            processes.append(Process(role.name, role))
    return processes


class Deployment:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.data_dir = settings.data_dir.resolve()
        self.config_path = self.data_dir / CONFIG_FILE
        self.log_dir = self.data_dir / LOG_DIR
        self.processes = plan(settings)
        self.namespaced = namespace_hosts(settings, deployment_name(settings))
        self.management = ManagementNetwork(settings, self.namespaced)
        self.relay: EngineRelay | None = None
        self.stopping = False
        self.created_passwords: dict[str, str] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # ----- preparation --------------------------------------------------------------------------------------
    async def prepare(self) -> None:
        """Engines, settings file and migrations, before any process starts."""
        from pocketstack.cli import sync_databases

        if self.namespaced and os.geteuid() != 0:
            raise DeployError("namespaced compute hosts (distributed.namespace_hosts) need root: namespaces, "
                              "veths and a bridge")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(exist_ok=True)
        data, created = deployment_settings(self.settings)
        (self.data_dir / DEPLOYMENT_FILE).write_text(json.dumps(created, indent=2))  # `purge` finds it all
        if created["databases"]:
            await create_databases(self.settings.distributed.database_server_url, created["databases"])
        if created["vhost"]:
            await asyncio.to_thread(create_vhost, self.settings.distributed.broker_url, created["vhost"])
        fd = os.open(self.config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # may hold passwords
        with os.fdopen(fd, "w") as f:
            f.write("# written by `pocketstack up --distributed`: the settings of every process it starts\n")
            f.write(to_toml(data))
        self.settings = Settings(**data)  # exactly what the processes read
        if self.namespaced:
            try:
                await self.management.ensure()
            except CommandError as exc:
                raise DeployError(f"could not make the namespaced hosts: {exc}") from exc
            hosts_data, engine_ports = hosts_settings(data, self.management.controller)
            fd = os.open(self.data_dir / HOSTS_CONFIG_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write("# written by `pocketstack up --distributed`: the settings of the processes on the "
                        "namespaced hosts\n")
                f.write(to_toml(hosts_data))
            self.relay = EngineRelay(self.management.controller, engine_ports, {h.address for h in self.namespaced})
            await self.relay.start()
        await sync_databases(self.settings)

    def child_env(self, process: Process) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("POCKETSTACK_")}  # the file says it all
        config = self.data_dir / HOSTS_CONFIG_FILE if process.netns else self.config_path
        return child_env({**env, "POCKETSTACK_CONFIG": str(config), **process.env})

    # ----- processes ----------------------------------------------------------------------------------------
    def _log(self, process: Process) -> Any:
        return open(self.log_dir / f"{process.name}.log", "ab")

    def _spawn_task(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def spawn(self, process: Process) -> None:
        process.ready.clear()
        with self._log(process) as logfile:
            inside = ("ip", "netns", "exec", process.netns) if process.netns else ()
            process.proc = await asyncio.create_subprocess_exec(  # -P: this pocketstack, whatever the cwd holds
                *inside, sys.executable, "-P", "-m", "pocketstack.cli", "serve", process.role.name,
                env=self.child_env(process),
                stdout=asyncio.subprocess.PIPE, stderr=logfile, stdin=asyncio.subprocess.DEVNULL,
                preexec_fn=die_with_parent)
        process.started_at = time.monotonic()
        self._spawn_task(self._read(process, process.proc))
        self.write_processes()

    async def _read(self, process: Process, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            if line == ready_line(process.role):
                process.ready.set()
            else:
                with self._log(process) as logfile:
                    logfile.write(raw)

    def log_tail(self, process: Process, lines: int = 15) -> str:
        path = self.log_dir / f"{process.name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    async def wait_ready(self, processes: list[Process], within: float = 180.0) -> None:
        async def one(process: Process) -> None:
            assert process.proc is not None
            ready = asyncio.create_task(process.ready.wait())
            exited = asyncio.create_task(process.proc.wait())
            done, _ = await asyncio.wait([ready, exited], timeout=within, return_when=asyncio.FIRST_COMPLETED)
            ready.cancel()
            exited.cancel()
            if not process.ready.is_set():
                why = "exited" if exited in done else f"was not ready within {within:.0f}s"
                raise DeployError(f"{process.name} {why}; the end of {self.log_dir / process.name}.log:\n"
                                  f"{self.log_tail(process)}")

        await asyncio.gather(*(one(p) for p in processes))

    def write_processes(self) -> None:
        table = {p.name: {"role": p.role.name, "pid": p.proc.pid if p.proc else None, "hosts": p.hosts,
                          "netns": p.netns,
                          "port": self.settings.port(p.role.api) if p.role.api else None}
                 for p in self.processes}
        tmp = self.data_dir / f".{PROCESSES_FILE}.tmp"
        tmp.write_text(json.dumps(table, indent=2))
        os.replace(tmp, self.data_dir / PROCESSES_FILE)

    async def start(self) -> None:
        from pocketstack.guest.register import register_on_start
        from pocketstack.launcher import write_clouds_yaml

        await self.prepare()
        before = stored_passwords(self.data_dir)
        for stage in sorted({p.role.stage for p in self.processes}):
            group = [p for p in self.processes if p.role.stage == stage]
            for process in group:
                await self.spawn(process)
            await self.wait_ready(group)
        after = stored_passwords(self.data_dir)
        self.created_passwords = {user: after[user] for user in ("admin", "demo")
                                  if user in after and user not in before}
        write_clouds_yaml(self.settings)
        await register_on_start(self.settings)  # the test guest image, as the all-in-one does

    async def supervise(self) -> None:
        """Start again, after `restart_delay`, a process that died (as systemd's Restart=on-failure would)."""
        while not self.stopping:
            await asyncio.sleep(0.2)
            for process in self.processes:
                if self.stopping or process.proc is None or process.proc.returncode is None:
                    continue
                log.warning("%s (pid %d) exited with %s; starting it again in %.1fs", process.name,
                            process.proc.pid, process.proc.returncode, self.settings.distributed.restart_delay)
                dead = process.proc
                process.proc = None
                self._spawn_task(self._restart(process, dead))

    async def _restart(self, process: Process, dead: asyncio.subprocess.Process) -> None:
        await asyncio.sleep(self.settings.distributed.restart_delay)
        if not self.stopping:
            await self.spawn(process)

    async def stop(self) -> None:
        """SIGTERM to every process, the compute agents first and identity last; SIGKILL after 20s."""
        self.stopping = True
        running = [p.proc for p in reversed(self.processes) if p.proc is not None and p.proc.returncode is None]
        for proc in running:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(20):
                await asyncio.gather(*(proc.wait() for proc in running))
        except TimeoutError:
            for proc in running:
                if proc.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
            await asyncio.gather(*(proc.wait() for proc in running))
        if self.relay is not None:
            await self.relay.stop()
        if self.namespaced and self.settings.network.agent_teardown_on_stop:
            await self.management.teardown()


def run_distributed(settings: Settings) -> int:
    """`pocketstack up --distributed`: run until Ctrl-C or SIGTERM; the exit status."""
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    status = 0

    async def main() -> None:
        nonlocal status
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        deployment = Deployment(settings)
        starting = asyncio.create_task(deployment.start())
        stopped = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait([starting, stopped], return_when=asyncio.FIRST_COMPLETED)
            if not starting.done():
                starting.cancel()
                with contextlib.suppress(BaseException):
                    await starting
                return
            starting.result()
            data_dir = deployment.data_dir
            print_created_users(deployment.created_passwords, data_dir)
            print(f"clouds.yaml: {data_dir / 'clouds.yaml'}", flush=True)
            print(f"settings: {deployment.config_path} (pocketstack trace --config ...); logs: "
                  f"{deployment.log_dir}/", flush=True)
            print("pocketstack ready", flush=True)
            supervising = asyncio.create_task(deployment.supervise())
            await stopped
            supervising.cancel()
        except DeployError as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            status = 1
        finally:
            stopped.cancel()
            await deployment.stop()
            await close_http_session()  # the guest image registration's connections

    try:
        run_event_loop(main(), host_networking=False)  # it only starts and watches processes
    except DeployError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    return status
