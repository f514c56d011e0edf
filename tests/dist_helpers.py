"""A real distributed deployment for tests: `pocketstack up --distributed` on the machine's RabbitMQ and PostgreSQL,
in a vhost and databases of its own (dropped at the end), every process in one process group (killed at the end).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests
import yaml
from conftest import OPENSTACK_CLI, free_port

POCKETSTACK = str(Path(sys.executable).with_name("pocketstack"))
PG_SERVER = os.environ.get("DIST_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
BROKER = os.environ.get("DIST_TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/")
ADMIN_PASSWORD = "dist-admin"


def rabbitmqctl(*args: str) -> str:
    exe = shutil.which("rabbitmqctl")
    if exe is None:
        pytest.fail("rabbitmqctl is not installed: the distributed tests need the machine's RabbitMQ")
    # its own session: as root it runs through `su`, which may signal the process group it was started in
    done = subprocess.run([exe, "-q", *args], capture_output=True, text=True, timeout=120, start_new_session=True)
    if done.returncode != 0:
        raise AssertionError(f"rabbitmqctl {' '.join(args)} failed: {done.stderr or done.stdout}")
    return done.stdout


def engines_available() -> None:
    """Fail (not skip) without the engines: scripts/services.sh starts them."""
    import asyncpg

    async def check() -> None:
        conn = await asyncpg.connect(PG_SERVER, timeout=5)
        await conn.close()

    try:
        asyncio.run(check())
    except Exception as exc:
        pytest.fail(f"no PostgreSQL at {PG_SERVER} (run scripts/services.sh): {exc}")
    rabbitmqctl("status")


def pg(sql: str, *args: Any, database: str | None = None) -> list[Any]:
    """Run one statement on the PostgreSQL server (optionally in one database); the rows."""
    import asyncpg

    url = PG_SERVER if database is None else PG_SERVER.rsplit("/", 1)[0] + "/" + database

    async def run() -> list[Any]:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    return asyncio.run(run())


class Deployment:
    """`pocketstack up --distributed` in a process group of its own, and the ways tests reach it."""

    def __init__(self, data_dir: Path, fake_hosts: int = 4, driver: str = "fake", host: str = "127.0.0.1",
                 **settings: str) -> None:
        """`host`: where the APIs listen (the controller's management address with namespaced hosts)."""
        self.data_dir = data_dir
        self.driver, self.host = driver, host
        self.name = f"pstest_{uuid.uuid4().hex[:10]}"
        self.ports = {name: free_port() for name in ("identity", "image", "network", "volume", "compute",
                                                                 "metadata", "dashboard", "serial-console", "vnc")}
        self.env = {**os.environ, "POCKETSTACK_DISTRIBUTED__NAME": self.name,
                    "POCKETSTACK_DISTRIBUTED__DATABASE_SERVER_URL": PG_SERVER,
                    "POCKETSTACK_DISTRIBUTED__BROKER_URL": BROKER,
                    "POCKETSTACK_IDENTITY__BCRYPT_ROUNDS": "4", "POCKETSTACK_IDENTITY__ADMIN_PASSWORD": ADMIN_PASSWORD,
                    "POCKETSTACK_IDENTITY__DEMO_PASSWORD": "dist-demo", "POCKETSTACK_ACCESS_LOG": "false",
                    **{f"POCKETSTACK_{name.upper().replace('-', '_')}__PORT": str(port)
                       for name, port in self.ports.items()},
                    **{f"POCKETSTACK_{key.upper()}": value for key, value in settings.items()}}
        self.fake_hosts = fake_hosts
        self.proc: subprocess.Popen[str] | None = None
        self.lines: list[str] = []
        self._token: str | None = None

    def start(self, within: float = 300.0) -> Deployment:
        self.proc = subprocess.Popen(
            [POCKETSTACK, "up", "--distributed", "--data-dir", str(self.data_dir), "--log-level", "info",
             "--compute-driver", self.driver,
             *(["--fake-hosts", str(self.fake_hosts)] if self.driver == "fake" else [])],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=self.env, start_new_session=True)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.lines.append(line.rstrip())
            if line.strip() == "pocketstack ready":
                return self
        self.kill()
        raise AssertionError("pocketstack up --distributed did not get ready:\n" + "\n".join(self.lines[-40:]))

    def stop(self) -> int | None:
        """SIGTERM to `up` (as Ctrl-C would), then SIGKILL to whatever is left of the group; the exit status."""
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(60)
        except subprocess.TimeoutExpired:
            code = None
        self.kill()
        return code

    def kill(self) -> None:
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(30)

    def purge(self) -> str:
        """`pocketstack purge` (unless a test already did); its output."""
        done = None
        if (self.data_dir / "deployment.json").exists():
            done = subprocess.run([POCKETSTACK, "purge", "--data-dir", str(self.data_dir)], capture_output=True,
                                  text=True, env=self.env, timeout=120)
        # whatever `purge` could not drop, dropped here: nothing of a test run may stay behind
        for (name,) in pg("SELECT datname FROM pg_database WHERE datname LIKE $1", self.name + "%"):
            pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if self.name in rabbitmqctl("list_vhosts", "--no-table-headers", "name").split():
            rabbitmqctl("delete_vhost", self.name)
        assert done is None or done.returncode == 0, done.stderr
        return done.stdout if done is not None else ""

    # ----- what it runs ---------------------------------------------------------------------------------------
    def processes(self) -> dict[str, dict[str, Any]]:
        return json.loads((self.data_dir / "processes.json").read_text())

    def pid(self, name: str) -> int:
        return self.processes()[name]["pid"]

    def process_of_host(self, host: str) -> str:
        return next(name for name, p in self.processes().items() if host in p["hosts"] and p["role"] == "compute")

    def workers(self, name: str) -> list[int]:
        """Pids of the API worker processes of a `serve` supervisor."""
        return sorted(child.pid for child in psutil.Process(self.pid(name)).children())

    def wait_restarted(self, name: str, old_pid: int, within: float = 60.0) -> int:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            pid = self.processes()[name]["pid"]
            if pid and pid != old_pid and psutil.pid_exists(pid):
                return pid
            time.sleep(0.2)
        raise AssertionError(f"{name} was not started again within {within:.0f}s")

    @property
    def config(self) -> Path:
        return self.data_dir / "pocketstack.toml"

    def log(self, name: str) -> str:
        return (self.data_dir / "log" / f"{name}.log").read_text(errors="replace")

    # ----- clients --------------------------------------------------------------------------------------------
    def url(self, service: str, path: str = "") -> str:
        return f"http://{self.host}:{self.ports[service]}{path}"

    def token(self, fresh: bool = False) -> str:
        if self._token is None or fresh:
            resp = requests.post(self.url("identity", "/v3/auth/tokens"), timeout=30, json={"auth": {
                "identity": {"methods": ["password"], "password": {"user": {
                    "name": "admin", "domain": {"name": "Default"}, "password": ADMIN_PASSWORD}}},
                "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}})
            assert resp.status_code == 201, resp.text
            self._token = resp.headers["X-Subject-Token"]
        return self._token

    def api(self, method: str, service: str, path: str, **kwargs: Any) -> requests.Response:
        """One request on a new connection (no pooling: each one may land on another API worker)."""
        headers = {"X-Auth-Token": self.token(), "OpenStack-API-Version": "compute 2.79",
                   **kwargs.pop("headers", {})}
        with requests.Session() as session:
            return session.request(method, self.url(service, path), headers=headers, timeout=60, **kwargs)

    def cli(self, *args: str, check: bool = True, cloud: str = "pocketstack") -> Any:
        """`openstack` as admin (`cloud`: or another entry of clouds.yaml); its JSON output parsed with -f json."""
        env = {**os.environ, "OS_CLIENT_CONFIG_FILE": str(self.data_dir / "clouds.yaml")}
        done = subprocess.run([OPENSTACK_CLI, "--os-cloud", cloud, *args], capture_output=True, text=True,
                              env=env, timeout=300)
        if check and done.returncode != 0:
            raise AssertionError(f"openstack {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
        if not check:
            return done
        return json.loads(done.stdout) if "json" in args and done.stdout.strip() else done.stdout

    def clouds(self) -> dict[str, Any]:
        return yaml.safe_load((self.data_dir / "clouds.yaml").read_text())["clouds"]

    # ----- servers --------------------------------------------------------------------------------------------
    def setup_boot_resources(self) -> tuple[str, str]:
        """An image and a network to boot from (REST, quick)."""
        image = self.api("POST", "image", "/v2/images", json={
            "name": "dist", "disk_format": "raw", "container_format": "bare", "visibility": "public"}).json()
        put = self.api("PUT", "image", f"/v2/images/{image['id']}/file", data=b"\0" * 65536,
                       headers={"Content-Type": "application/octet-stream"})
        assert put.status_code == 204, put.text
        net = self.api("POST", "network", "/v2.0/networks", json={"network": {"name": "dist"}}).json()["network"]
        sub = self.api("POST", "network", "/v2.0/subnets", json={"subnet": {
            "network_id": net["id"], "cidr": "10.77.0.0/16", "ip_version": 4}})
        assert sub.status_code == 201, sub.text
        return image["id"], net["id"]

    def boot(self, name: str, image: str, network: str) -> str:
        resp = self.api("POST", "compute", "/v2.1/servers", json={"server": {
            "name": name, "imageRef": image, "flavorRef": "1", "networks": [{"uuid": network}]}})
        assert resp.status_code == 202, resp.text
        return resp.json()["server"]["id"]

    def server(self, server_id: str) -> dict[str, Any]:
        resp = self.api("GET", "compute", f"/v2.1/servers/{server_id}")
        assert resp.status_code == 200, resp.text
        return resp.json()["server"]

    def wait_server(self, server_id: str, within: float = 90.0,
                    until: tuple[str, ...] = ("ACTIVE", "ERROR")) -> dict[str, Any]:
        deadline = time.monotonic() + within
        server: dict[str, Any] = {}
        while time.monotonic() < deadline:
            resp = self.api("GET", "compute", f"/v2.1/servers/{server_id}")
            if resp.status_code == 200:
                server = resp.json()["server"]
                if server["status"] in until:
                    return server
            time.sleep(0.3)
        raise AssertionError(f"server {server_id} still {server.get('status')} "
                             f"({server.get('OS-EXT-STS:task_state')}) after {within:.0f}s")

    def allocations(self, server_id: str) -> int:
        rows = pg("SELECT count(*) FROM allocations WHERE consumer_uuid = $1", server_id,
                  database=f"{self.name}_compute")
        return rows[0][0]

    def ports_of(self, server_id: str) -> list[dict[str, Any]]:
        resp = self.api("GET", "network", f"/v2.0/ports?device_id={server_id}")
        assert resp.status_code == 200, resp.text
        return resp.json()["ports"]

    def trace(self, server: str) -> dict[str, Any]:
        done = subprocess.run([POCKETSTACK, "trace", server, "--json", "--config", str(self.config)],
                              capture_output=True, text=True, env=self.env, timeout=60)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)
