"""Network benchmark: port create (IPAM) at concurrency 1, 10 and 50 on one subnet, and port list/show; JSON on
stdout.

It starts its own all-in-one cloud (`pocketstack up` in a separate process, as bench/identity.py does) unless
`--auth-url`/`--password` point it at a running one.

    .venv/bin/python bench/network.py [--ports 300] [--auth-url URL --password PW]
"""

from __future__ import annotations

import argparse
import json
import uuid

import aiohttp
from identity import auth_body, run_load, run_on_cloud


async def bench(args: argparse.Namespace, auth_url: str) -> dict:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        async with http.post(auth_url + "/auth/tokens", json=auth_body("admin", args.password, "admin")) as resp:
            token = resp.headers["X-Subject-Token"]
            issued = (await resp.json())["token"]
            catalog, project_id = issued["catalog"], issued["project"]["id"]
        network = next(e["url"] for s in catalog if s["type"] == "network" for e in s["endpoints"]
                       if e["interface"] == "public").rstrip("/") + "/v2.0"
        headers = {"X-Auth-Token": token}

        async def post(path: str, key: str, body: dict) -> dict:
            async with http.post(network + path, json={key: body}, headers=headers) as resp:
                return (await resp.json())[key]

        async with http.put(f"{network}/quotas/{project_id}", json={"quota": {"port": -1}},
                            headers=headers) as resp:
            await resp.read()
        net = await post("/networks", "network", {"name": f"bench-{uuid.uuid4().hex[:6]}"})
        await post("/subnets", "subnet", {"network_id": net["id"], "cidr": "10.128.0.0/16", "ip_version": 4})
        created: list[str] = []
        addresses: list[str] = []

        async def create_port(_: int) -> bool:
            async with http.post(network + "/ports", json={"port": {"network_id": net["id"]}},
                                 headers=headers) as resp:
                body = await resp.json()
                if resp.status != 201:
                    return False
                created.append(body["port"]["id"])
                addresses.append(body["port"]["fixed_ips"][0]["ip_address"])
                return True

        async def show_port(i: int) -> bool:
            async with http.get(f"{network}/ports/{created[i % len(created)]}", headers=headers) as resp:
                await resp.read()
                return resp.status == 200

        async def list_ports(_: int) -> bool:
            async with http.get(f"{network}/ports?network_id={net['id']}", headers=headers) as resp:
                await resp.read()
                return resp.status == 200

        results: dict = {"port_create": {}}
        for concurrency in (1, 10, 50):
            results["port_create"][f"c{concurrency}"] = await run_load(args.ports, concurrency, create_port)
        results["distinct_addresses"] = len(set(addresses)) == len(addresses)
        results["port_show_c10"] = await run_load(1000, 10, show_port)
        results[f"port_list_{len(created)}_ports_c4"] = await run_load(40, 4, list_ports)
        for port_id in created:
            async with http.delete(f"{network}/ports/{port_id}", headers=headers) as resp:
                await resp.read()
        async with http.delete(f"{network}/networks/{net['id']}", headers=headers) as resp:
            await resp.read()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--auth-url")
    parser.add_argument("--password")
    parser.add_argument("--ports", type=int, default=300, help="ports created at each concurrency level")
    args = parser.parse_args()
    print(json.dumps(run_on_cloud(args, bench), indent=2))


if __name__ == "__main__":
    main()
