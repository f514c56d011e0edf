"""Shared fixtures: a real all-in-one cloud on free ports, openstacksdk connections and the `openstack` CLI."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import openstack
import pytest
from image_helpers import Raw

from pocketstack.launcher import CloudThread
from pocketstack.services import SERVICES
from pocketstack.settings import Settings

os.environ["POCKETSTACK_CONFIG"] = "/nonexistent/pocketstack.toml"  # tests never read a developer's config
for _key in [k for k in os.environ if k.startswith(("POCKETSTACK_", "OS_"))]:
    if _key != "POCKETSTACK_CONFIG":
        del os.environ[_key]

OPENSTACK_CLI = str(Path(sys.executable).with_name("openstack"))


def require(*binaries: str, root: bool = False) -> None:
    """Skip (outside CI; fail in CI, where scripts/install.sh provides everything) when the host lacks a tool."""
    missing = [b for b in binaries if shutil.which(b) is None]
    reason = f"missing on this host: {', '.join(missing)}" if missing else None
    if root and os.geteuid() != 0:
        reason = "needs root (taps, bridges, namespaces)"
    if reason:
        if os.environ.get("CI"):
            raise AssertionError(f"{reason} (CI must provide it)")
        pytest.skip(reason)


_PORTS_GIVEN: set[int] = set()


def free_port() -> int:
    """A port nobody listens on, below the kernel's ephemeral range: a port the kernel picked (bind to 0) can be
    given to an outgoing connection before a service of a test, started later, binds it."""
    ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(1000):
        port = random.randrange(20000, ephemeral_low)
        if port in _PORTS_GIVEN:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _PORTS_GIVEN.add(port)
        return port
    raise RuntimeError("no free port below the ephemeral range")


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings for a test cloud: every service on a free port, a cheap bcrypt cost, state under data_dir."""
    values: dict[str, Any] = {"data_dir": data_dir, "log_level": "warning", "access_log": False}
    for spec in SERVICES:
        values[spec.name.replace("-", "_")] = {"port": free_port()}
    values["identity"].update(bcrypt_rounds=4, admin_password="admin-secret", demo_password="demo-secret")
    if "compute" in values:
        # the fake driver unless a test asks for qemu (the default where QEMU is installed and we are root);
        # several fake hosts: real scheduling between hosts (anti-affinity, reschedules)
        values["compute"].update(driver="fake", fake_hosts=2)
    # when the network agent runs (qemu driver): its own public range and bridge (never the host's 172.24.4.0/24
    # and br-ex), and nothing of its data plane left once the cloud stops
    tag = uuid.uuid4().hex[:8]
    values["network"].update(public_cidr=f"100.{random.randint(64, 127)}.{random.randint(0, 255)}.0/24",
                             bridge_mappings={"public": f"ex{tag}"}, agent_teardown_on_stop=True)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(values.get(key), dict):
            values[key].update(value)
        else:
            values[key] = value
    return Settings(**values)


class Cloud:
    """A running all-in-one cloud and the ways tests talk to it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.thread = CloudThread(settings)
        self.clouds_yaml = settings.data_dir / "clouds.yaml"

    def start(self) -> Cloud:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.thread.stop()

    @property
    def auth_url(self) -> str:
        return self.settings.base_url("identity") + "/v3"

    def url(self, service: str) -> str:
        return self.settings.base_url(service)

    def conn(self, cloud: str = "pocketstack", **auth: Any) -> openstack.connection.Connection:
        """An openstacksdk connection from the cloud's clouds.yaml (or explicit auth values)."""
        if auth:
            return openstack.connect(auth_url=self.auth_url, user_domain_name="Default",
                                     project_domain_name="Default", region_name=self.settings.region,
                                     identity_api_version="3", **auth)
        config = openstack.config.OpenStackConfig(config_files=[str(self.clouds_yaml)])
        return openstack.connection.Connection(config=config.get_one(cloud=cloud))

    def cli(self, *args: str, cloud: str = "pocketstack", check: bool = True,
            env: dict[str, str] | None = None) -> Any:
        """Run the real `openstack` CLI; JSON output is parsed when `-f json` is among the arguments."""
        full_env = {**os.environ, "OS_CLIENT_CONFIG_FILE": str(self.clouds_yaml), **(env or {})}
        cmd = [OPENSTACK_CLI, *(["--os-cloud", cloud] if cloud else []), *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=120)
        if check and proc.returncode != 0:
            raise AssertionError(f"openstack {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
        if not check:
            return proc
        if "json" in args and proc.stdout.strip():
            return json.loads(proc.stdout)
        return proc.stdout


@pytest.fixture(scope="session")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    data_dir = tmp_path_factory.mktemp("cloud")
    running = Cloud(make_settings(data_dir)).start()
    try:
        yield running
    finally:
        running.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def admin(cloud: Cloud) -> openstack.connection.Connection:
    """openstacksdk as the admin user (project admin)."""
    return cloud.conn()


@pytest.fixture(scope="module")
def demo(cloud: Cloud) -> openstack.connection.Connection:
    """openstacksdk as the demo user (member of project demo)."""
    return cloud.conn("pocketstack-demo")


@pytest.fixture(scope="module")
def raw(cloud: Cloud) -> Raw:
    """Raw image API calls (exact statuses and bodies) as admin."""
    return Raw(cloud.url("image"), cloud.conn().auth_token)


@pytest.fixture(scope="module")
def demo_raw(cloud: Cloud) -> Raw:
    """The same as demo (a member of project demo)."""
    return Raw(cloud.url("image"), cloud.conn("pocketstack-demo").auth_token)


@pytest.fixture
def prefix() -> str:
    """A per-test name prefix so resources of different tests (and runs) cannot collide."""
    return f"t{uuid.uuid4().hex[:8]}"


@contextlib.asynccontextmanager
async def postgres_database(server: str, prefix: str) -> AsyncIterator[str]:
    """A fresh PostgreSQL database named `<prefix>_<random>` on `server` (a libpq URL of a database to connect to
    for CREATE/DROP), yielded as an asyncpg SQLAlchemy URL and dropped afterwards. Skips when no server answers,
    except in CI (scripts/services.sh starts one there)."""
    asyncpg = pytest.importorskip("asyncpg")
    try:
        admin_conn = await asyncpg.connect(server, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        if os.environ.get("CI"):
            raise AssertionError(f"no PostgreSQL server in CI: {exc}")
        pytest.skip(f"no PostgreSQL server: {exc}")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    await admin_conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + f"/{name}"
    finally:
        await admin_conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin_conn.close()
