"""Boot benchmark: N servers at concurrency C with the fake driver, every hop real; JSON on stdout.

It starts its own all-in-one cloud (`pocketstack up --compute-driver fake --fake-hosts 4` in a separate
process, hosts sized so that nothing runs out) unless `--cloud-url`-style options point it at one, uploads a small
image, makes a network, then for each concurrency boots N servers through `POST /v2.1/servers`, waits for each
to be ACTIVE (one poller: `GET /servers/detail?changes-since=` every --poll-ms), deletes them (at most 10 at a
time), and finally lists 1000 servers with `GET /servers/detail`.

Boot-to-ACTIVE is measured two ways: `server` from the database timestamps (the API receiving the create ->
vm_state=active, exact), and `observed` by the client (create sent -> ACTIVE seen, at poll granularity).

    .venv/bin/python bench/boot.py [--servers 200] [--concurrency 1,10,50] [--list-servers 1000] [--distributed]

With --distributed the cloud is `pocketstack up --distributed` (every service its own process on the local
RabbitMQ and PostgreSQL, in a vhost and databases of its own, dropped at the end).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import tomllib
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] * 1000, 1)


def start_cloud(data_dir: Path, hosts: int, distributed: bool) -> tuple[subprocess.Popen, dict[str, int]]:
    # every service on a free port: the volume and metadata APIs too, so no other cloud on the machine collides
    ports = {name: free_port() for name in ("identity", "image", "network", "volume", "compute", "metadata")}
    env = {**os.environ, "POCKETSTACK_CONFIG": "/nonexistent", "POCKETSTACK_ACCESS_LOG": "false",
           "POCKETSTACK_IDENTITY__ADMIN_PASSWORD": "bench-admin",
           "POCKETSTACK_COMPUTE__FAKE_VCPUS": "4096", "POCKETSTACK_COMPUTE__FAKE_MEMORY_MB": str(4 << 20),
           "POCKETSTACK_COMPUTE__FAKE_DISK_GB": "100000", "POCKETSTACK_COMPUTE__QUOTA_INSTANCES": "-1",
           "POCKETSTACK_COMPUTE__QUOTA_CORES": "-1", "POCKETSTACK_COMPUTE__QUOTA_RAM": "-1",
           "POCKETSTACK_NETWORK__QUOTA_PORT": "-1"}
    for name, port in ports.items():
        env[f"POCKETSTACK_{name.upper()}__PORT"] = str(port)
    if distributed:  # its own vhost and databases, dropped at the end (`pocketstack purge`)
        env.setdefault("POCKETSTACK_DISTRIBUTED__NAME", f"bench_{uuid.uuid4().hex[:10]}")
    exe = str(Path(sys.executable).with_name("pocketstack"))
    proc = subprocess.Popen([exe, "up", "--data-dir", str(data_dir), "--log-level", "warning",
                             "--compute-driver", "fake", "--fake-hosts", str(hosts),
                             *(["--distributed"] if distributed else [])],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True)
    assert proc.stdout is not None
    output = []
    for line in proc.stdout:
        if line.strip() == "pocketstack ready":
            return proc, ports
        output.append(line)
    raise SystemExit("the cloud did not start:\n" + "".join(output[-20:]))


class Client:
    def __init__(self, http: aiohttp.ClientSession, ports: dict[str, int]) -> None:
        self.http = http
        self.ports = ports
        self.token = ""

    def url(self, service: str, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}{path}"

    async def login(self) -> None:
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"name": "Default"}, "password": "bench-admin"}}},
            "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}
        async with self.http.post(self.url("identity", "/v3/auth/tokens"), json=body) as resp:
            self.token = resp.headers["X-Subject-Token"]

    async def req(self, method: str, service: str, path: str, **kwargs) -> tuple[int, dict]:
        headers = {"X-Auth-Token": self.token, "OpenStack-API-Version": "compute 2.79", **kwargs.pop("headers", {})}
        async with self.http.request(method, self.url(service, path), headers=headers, **kwargs) as resp:
            raw = await resp.read()
            return resp.status, (json.loads(raw) if raw and resp.content_type == "application/json" else {})


async def setup(client: Client) -> tuple[str, str]:
    _, image = await client.req("POST", "image", "/v2/images", json={
        "name": "bench", "disk_format": "raw", "container_format": "bare", "visibility": "public"})
    await client.req("PUT", "image", f"/v2/images/{image['id']}/file", data=b"\0" * 65536,
                     headers={"Content-Type": "application/octet-stream"})
    _, net = await client.req("POST", "network", "/v2.0/networks", json={"network": {"name": "bench"}})
    await client.req("POST", "network", "/v2.0/subnets", json={"subnet": {
        "network_id": net["network"]["id"], "cidr": "10.128.0.0/16", "ip_version": 4}})
    return image["id"], net["network"]["id"]


class Watcher:
    """One poller for all servers in flight: `GET /servers/detail?changes-since=` every `interval` seconds.

    Polling each server on its own would load the API with C requests per poll interval and measure the
    polling more than the boots; this costs a constant few requests per second whatever the concurrency.
    """

    def __init__(self, client: Client, interval: float) -> None:
        self.client = client
        self.interval = interval
        self.waiting: dict[str, asyncio.Future[str]] = {}
        self._task: asyncio.Task[None] | None = None

    def wait(self, server_id: str) -> asyncio.Future[str]:
        future = self.waiting.get(server_id)
        if future is None:
            future = self.waiting[server_id] = asyncio.get_running_loop().create_future()
        return future

    async def _run(self) -> None:
        while True:
            since = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=2)
            _, body = await self.client.req("GET", "compute", "/v2.1/servers/detail?changes-since="
                                            + since.strftime("%Y-%m-%dT%H:%M:%S") + "&limit=1000")
            for server in body.get("servers", []):
                if server["status"] in ("ACTIVE", "ERROR"):
                    future = self.wait(server["id"])
                    if not future.done():
                        future.set_result(server["status"])
            await asyncio.sleep(self.interval)

    def __enter__(self) -> Watcher:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


async def boot_many(client: Client, image: str, network: str, n: int, concurrency: int, poll: float,
                    tag: str) -> dict:
    observed: list[float] = []
    deletes: list[float] = []
    errors = 0
    ids: list[str] = []
    counter = iter(range(n))

    async def one(watcher: Watcher, i: int) -> None:
        nonlocal errors
        started = time.perf_counter()
        status, body = await client.req("POST", "compute", "/v2.1/servers", json={"server": {
            "name": f"{tag}-{i}", "imageRef": image, "flavorRef": "1", "networks": [{"uuid": network}]}})
        if status != 202:
            errors += 1
            return
        server_id = body["server"]["id"]
        ids.append(server_id)
        if await watcher.wait(server_id) == "ACTIVE":
            observed.append(time.perf_counter() - started)
        else:
            errors += 1

    async def worker(watcher: Watcher) -> None:
        for i in counter:
            await one(watcher, i)

    started = time.perf_counter()
    with Watcher(client, poll) as watcher:
        await asyncio.gather(*(worker(watcher) for _ in range(concurrency)))
    elapsed = time.perf_counter() - started

    delete_iter = iter(list(ids))

    async def deleter() -> None:
        for server_id in delete_iter:
            t = time.perf_counter()
            status, _ = await client.req("DELETE", "compute", f"/v2.1/servers/{server_id}")
            if status != 204:
                continue
            while True:  # poll until gone
                if (await client.req("GET", "compute", f"/v2.1/servers/{server_id}"))[0] == 404:
                    break
                await asyncio.sleep(0.05)
            deletes.append(time.perf_counter() - t)

    await asyncio.gather(*(deleter() for _ in range(min(concurrency, 10))))
    return {"servers": n, "concurrency": concurrency, "errors": errors,
            "boots_per_s": round(len(observed) / elapsed, 1),
            "observed_boot_to_active_ms": {"p50": pct(observed, 50), "p95": pct(observed, 95),
                                           "p99": pct(observed, 99)},
            "delete_ms": {"p50": pct(deletes, 50)}, "ids": ids}


async def server_side_latency(data_dir: Path, ids: list[str]) -> dict:
    """created_at (the API got the create) -> launched_at (vm_state=active), from the compute database (the
    all-in-one's SQLite file, or the distributed deployment's PostgreSQL database named in its settings)."""
    config = data_dir / "pocketstack.toml"
    if config.exists():
        import asyncpg

        url = tomllib.loads(config.read_text())["compute"]["database_url"].replace("+asyncpg", "")
        conn = await asyncpg.connect(url)
        try:
            rows = [(r[0], r[1]) for r in await conn.fetch(
                "SELECT created_at, launched_at FROM instances WHERE uuid = ANY($1::text[]) "
                "AND launched_at IS NOT NULL", ids)]
        finally:
            await conn.close()
    else:
        db = sqlite3.connect(data_dir / "compute.db")
        marks = ",".join("?" * len(ids))
        rows = [(datetime.fromisoformat(a), datetime.fromisoformat(b)) for a, b in db.execute(
            f"SELECT created_at, launched_at FROM instances WHERE uuid IN ({marks}) AND launched_at IS NOT NULL",
            ids).fetchall()]
        db.close()
    values = [(b - a).total_seconds() for a, b in rows]
    return {"p50": pct(values, 50), "p95": pct(values, 95), "p99": pct(values, 99)}


async def list_workload(client: Client, image: str, network: str, count: int, repeats: int) -> dict:
    await boot_many_nowait(client, image, network, count)
    samples = []
    size = 0
    for _ in range(repeats):
        t = time.perf_counter()
        _, body = await client.req("GET", "compute", "/v2.1/servers/detail?limit=1000")
        samples.append(time.perf_counter() - t)
        size = len(body.get("servers", []))
    return {"servers_listed": size, "p50_ms": pct(samples, 50), "p95_ms": pct(samples, 95)}


async def boot_many_nowait(client: Client, image: str, network: str, count: int) -> None:
    sem = asyncio.Semaphore(20)

    async def one(i: int) -> None:
        async with sem:
            await client.req("POST", "compute", "/v2.1/servers", json={"server": {
                "name": f"list-{i}", "imageRef": image, "flavorRef": "1", "networks": [{"uuid": network}]}})

    await asyncio.gather(*(one(i) for i in range(count)))
    while True:  # until every build has settled
        _, body = await client.req("GET", "compute", "/v2.1/servers/detail?status=BUILD&limit=1")
        if not body.get("servers"):
            return
        await asyncio.sleep(0.5)


async def run(args: argparse.Namespace, ports: dict[str, int], data_dir: Path) -> dict:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        client = Client(http, ports)
        await client.login()
        image, network = await setup(client)
        results = {}
        for c in args.concurrency:
            result = await boot_many(client, image, network, args.servers, c, args.poll_ms / 1000, f"c{c}")
            result["server_boot_to_active_ms"] = await server_side_latency(data_dir, result.pop("ids"))
            results[f"c{c}"] = result
        if args.list_servers:
            results["list_detail"] = await list_workload(client, image, network, args.list_servers, 20)
        return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", type=int, default=200)
    parser.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[1, 10, 50])
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--poll-ms", type=float, default=50.0, help="interval of the one status poller")
    parser.add_argument("--list-servers", type=int, default=1000)
    parser.add_argument("--distributed", action="store_true",
                        help="every service its own process on the local RabbitMQ and PostgreSQL (`up "
                        "--distributed`; POCKETSTACK_DISTRIBUTED__* and POCKETSTACK_COMPUTE__WORKERS shape it)")
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="pocketstack-bench-boot-"))
    proc, ports = start_cloud(data_dir, args.hosts, args.distributed)
    try:
        results = asyncio.run(run(args, ports, data_dir))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        if args.distributed:
            subprocess.run([str(Path(sys.executable).with_name("pocketstack")), "purge", "--data-dir",
                            str(data_dir)], capture_output=True, check=False)
    results["setup"] = {"driver": "fake", "hosts": args.hosts, "poll_ms": args.poll_ms, "cores": os.cpu_count(),
                        "mode": "distributed" if args.distributed else "all-in-one"}
    if args.distributed:
        settings = tomllib.loads((data_dir / "pocketstack.toml").read_text())
        results["setup"].update({k: settings["distributed"][k] for k in ("conductors", "schedulers",
                                                                          "hosts_per_process")},
                                api_workers=settings["compute"]["workers"])
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
