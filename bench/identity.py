"""Identity benchmark: token issue and token validate at concurrency 1, 8 and 32; JSON on stdout.

By default it starts its own all-in-one cloud (`pocketstack up` in a separate process, so the client does not
share the server's interpreter) on free ports with the default bcrypt cost; `--auth-url`, `--username`,
`--password`, `--project` point it at a running cloud instead.

    .venv/bin/python bench/identity.py [--validate-requests 5000] [--issue-requests 40] [--bcrypt-rounds 12]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import bcrypt


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def summary(latencies: list[float], errors: int, elapsed: float) -> dict:
    return {"requests": len(latencies) + errors, "errors": errors, "req_per_s": round(len(latencies) / elapsed, 1),
            "p50_ms": round(percentile(latencies, 50) * 1000, 2), "p95_ms": round(percentile(latencies, 95) * 1000, 2),
            "p99_ms": round(percentile(latencies, 99) * 1000, 2)}


def auth_body(user: str, password: str, project: str) -> dict:
    return {"auth": {"identity": {"methods": ["password"], "password": {
        "user": {"name": user, "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"name": "Default"}}}}}


async def run_load(n: int, concurrency: int, one_request) -> dict:
    latencies: list[float] = []
    errors = 0
    counter = iter(range(n))

    async def worker() -> None:
        nonlocal errors
        for i in counter:
            started = time.perf_counter()
            ok = await one_request(i)
            if ok:
                latencies.append(time.perf_counter() - started)
            else:
                errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return summary(latencies or [0.0], errors, time.perf_counter() - started)


async def bench(args: argparse.Namespace, auth_url: str) -> dict:
    body = auth_body(args.username, args.password, args.project)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        async def issue(_: int = 0) -> str | None:
            async with http.post(auth_url + "/auth/tokens?nocatalog", json=body) as resp:
                await resp.read()
                return resp.headers.get("X-Subject-Token") if resp.status == 201 else None

        tokens = [t for t in await asyncio.gather(*(issue() for _ in range(args.distinct_tokens))) if t]
        service_token = tokens[0]

        async def validate(i: int) -> bool:
            headers = {"X-Auth-Token": service_token, "X-Subject-Token": tokens[i % len(tokens)]}
            async with http.get(auth_url + "/auth/tokens?nocatalog", headers=headers) as resp:
                await resp.read()
                return resp.status == 200

        async def issue_ok(i: int) -> bool:
            return await issue(i) is not None

        results: dict = {"validate": {}, "issue": {}}
        for c in (1, 8, 32):
            await run_load(min(200, args.validate_requests), c, validate)  # warm-up
            results["validate"][f"c{c}"] = await run_load(args.validate_requests, c, validate)
        for c in (1, 8, 32):
            results["issue"][f"c{c}"] = await run_load(max(args.issue_requests, 3 * c), c, issue_ok)
    return results


def bcrypt_limit(rounds: int) -> dict:
    hashed = bcrypt.hashpw(b"benchmark-password", bcrypt.gensalt(rounds))
    samples = []
    for _ in range(5):
        started = time.perf_counter()
        bcrypt.checkpw(b"benchmark-password", hashed)
        samples.append(time.perf_counter() - started)
    hash_s = statistics.median(samples)
    cores = os.cpu_count() or 1
    return {"bcrypt_rounds": rounds, "hash_ms": round(hash_s * 1000, 1), "cores": cores,
            "limit_tokens_per_s": round(cores / hash_s, 2)}


def start_cloud(rounds: int) -> tuple[subprocess.Popen, str, str, Path]:
    data_dir = Path(tempfile.mkdtemp(prefix="pocketstack-bench-"))
    port = free_port()
    env = {**os.environ, "POCKETSTACK_IDENTITY__BCRYPT_ROUNDS": str(rounds), "POCKETSTACK_IDENTITY__PORT": str(port),
           "POCKETSTACK_IDENTITY__ADMIN_PASSWORD": "bench-admin", "POCKETSTACK_ACCESS_LOG": "false",
           "POCKETSTACK_CONFIG": "/nonexistent"}
    for name in ("IMAGE", "NETWORK", "COMPUTE", "VOLUME", "METADATA"):
        env[f"POCKETSTACK_{name}__PORT"] = str(free_port())
    exe = str(Path(sys.executable).with_name("pocketstack"))
    proc = subprocess.Popen([exe, "up", "--data-dir", str(data_dir), "--log-level", "warning"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip() == "pocketstack ready":
            break
    else:
        raise SystemExit("the cloud did not start")
    return proc, f"http://127.0.0.1:{port}/v3", "bench-admin", data_dir


def run_on_cloud(args: argparse.Namespace, bench_fn, rounds: int = 4) -> dict:
    """Run `bench_fn(args, auth_url)` against `--auth-url`, or against a cloud of its own started and stopped here."""
    proc = None
    try:
        if args.auth_url:
            auth_url = args.auth_url.rstrip("/")
        else:
            proc, auth_url, args.password, _ = start_cloud(rounds)
        return asyncio.run(bench_fn(args, auth_url))
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--auth-url")
    parser.add_argument("--username", default="admin")
    parser.add_argument("--password")
    parser.add_argument("--project", default="admin")
    parser.add_argument("--bcrypt-rounds", type=int, default=12, help="cost of the cloud the bench starts")
    parser.add_argument("--validate-requests", type=int, default=5000)
    parser.add_argument("--issue-requests", type=int, default=40)
    parser.add_argument("--distinct-tokens", type=int, default=16)
    args = parser.parse_args()
    results = run_on_cloud(args, bench, args.bcrypt_rounds)
    limit = bcrypt_limit(args.bcrypt_rounds)
    best_issue = max(r["req_per_s"] for r in results["issue"].values())
    results["bcrypt"] = limit
    results["issue_vs_bcrypt_limit"] = round(best_issue / limit["limit_tokens_per_s"], 3)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
