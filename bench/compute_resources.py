"""Compute resource API benchmark: reads (flavors, key pairs, limits, quota detail, hypervisors, services) and
writes (key pair import + delete, server group create + delete) at concurrency 1 and 10; JSON on stdout.

It starts its own all-in-one cloud in a separate process (as bench/identity.py does, whose helpers it reuses) or
uses a running one with `--auth-url`/`--password`.

    .venv/bin/python bench/compute_resources.py [--requests 500]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import aiohttp
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

sys.path.insert(0, str(Path(__file__).parent))
from identity import auth_body, run_load, run_on_cloud

READS = ("/flavors/detail", "/os-keypairs", "/limits", "/os-quota-sets/{project}/detail", "/os-hypervisors/detail",
         "/os-services", "/os-server-groups")


async def bench(args: argparse.Namespace, auth_url: str) -> dict:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        async with http.post(auth_url + "/auth/tokens", json=auth_body(args.username, args.password,
                                                                        args.project)) as resp:
            token = resp.headers["X-Subject-Token"]
            body = await resp.json()
        project = body["token"]["project"]["id"]
        compute = next(e["url"] for s in body["token"]["catalog"] if s["type"] == "compute"
                       for e in s["endpoints"] if e["interface"] == "public")
        headers = {"X-Auth-Token": token, "OpenStack-API-Version": "compute 2.79"}
        public_key = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()

        def getter(path: str):
            async def get(_: int) -> bool:
                async with http.get(compute + path.format(project=project), headers=headers) as resp:
                    await resp.read()
                    return resp.status == 200
            return get

        async def keypair(i: int) -> bool:
            name = f"bench-{i}"
            async with http.post(compute + "/os-keypairs", headers=headers,
                                 json={"keypair": {"name": name, "public_key": public_key}}) as resp:
                await resp.read()
                created = resp.status == 201
            async with http.delete(f"{compute}/os-keypairs/{name}", headers=headers) as resp:
                return created and resp.status == 204

        async def group(i: int) -> bool:
            async with http.post(compute + "/os-server-groups", headers=headers,
                                 json={"server_group": {"name": f"bench-{i}", "policy": "affinity"}}) as resp:
                body = await resp.json()
                if resp.status != 200:
                    return False
            async with http.delete(f"{compute}/os-server-groups/{body['server_group']['id']}",
                                   headers=headers) as resp:
                return resp.status == 204

        results: dict = {}
        for path in READS:
            await run_load(50, 4, getter(path))  # warm-up
            results[f"GET {path}"] = {f"c{c}": await run_load(args.requests, c, getter(path)) for c in (1, 10)}
        for name, op in (("keypair import+delete", keypair), ("server group create+delete", group)):
            results[name] = {f"c{c}": await run_load(args.requests // 5, c, op) for c in (1, 10)}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--auth-url")
    parser.add_argument("--username", default="admin")
    parser.add_argument("--password")
    parser.add_argument("--project", default="admin")
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    print(json.dumps(run_on_cloud(args, bench), indent=2))


if __name__ == "__main__":
    main()
