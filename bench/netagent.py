"""Host network data plane benchmark (needs root): tap up -> port ACTIVE, DHCP lease, metadata through the proxy.

It starts an all-in-one cloud on free ports with the network agent, makes a network and N ports bound to the
agent's host, then plugs N stand-in guests at once (a namespace each, its NIC a veth whose host end is the port's
tap on the bridge, as the compute driver does) and measures:
- `active`: tap created -> port ACTIVE seen through the API (polled every 20 ms), and `agent`: the tap's netlink
  event -> the agent's ACTIVE report (the agent's own clock); the network's DHCP is ready before the taps come;
- `dhcp`: a busybox udhcpc run to a lease, all guests at once;
- `metadata`: GET http://169.254.169.254/... from a guest through the proxy to a stand-in metadata API.
Everything it made is removed at the end. JSON on stdout.

    .venv/bin/python bench/netagent.py [--guests 8] [--metadata-requests 50]
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import openstack

from pocketstack.launcher import CloudThread
from pocketstack.services import SERVICES
from pocketstack.settings import Settings

UDHCPC_SCRIPT = """#!/bin/sh
[ "$1" = bound ] || exit 0
ip addr add "$ip/$mask" dev "$interface"
set -- $staticroutes
while [ $# -ge 2 ]; do ip route replace "$1" via "$2" dev "$interface"; shift 2; done
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sh(*cmd: str) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def summary(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    return {"n": len(values), "min": round(values[0], 4), "median": round(statistics.median(values), 4),
            "max": round(values[-1], 4)}


class MetadataStandIn(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"uuid": self.headers.get("X-Instance-ID")}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--guests", type=int, default=8)
    parser.add_argument("--metadata-requests", type=int, default=50)
    args = parser.parse_args()
    tag = uuid.uuid4().hex[:6]
    data_dir = Path(tempfile.mkdtemp(prefix="bench-netagent-"))
    sections: dict[str, dict[str, Any]] = {s.name: {"port": free_port()} for s in SERVICES}
    sections["identity"].update(bcrypt_rounds=4, admin_password="admin-secret", demo_password="demo-secret")
    sections["compute"].update(host=f"bn{tag}", driver="fake")
    sections["metadata"] = {"port": free_port()}
    sections["network"].update(agent_enabled=True, default_networks=False)
    settings = Settings(data_dir=data_dir, log_level="warning", access_log=False, **sections)
    stand_in = ThreadingHTTPServer(("127.0.0.1", settings.port("metadata")), MetadataStandIn)
    threading.Thread(target=stand_in.serve_forever, daemon=True).start()
    cloud = CloudThread(settings, [s for s in SERVICES if s.name != "metadata"]).start()
    agent = next(s for s in cloud.cloud.services if s.name == "network").agent
    conn = openstack.connect(auth_url=settings.base_url("identity") + "/v3", username="admin",
                             password="admin-secret", project_name="admin", user_domain_name="Default",
                             project_domain_name="Default")
    namespaces: list[str] = []
    script = data_dir / "udhcpc.sh"
    script.write_text(UDHCPC_SCRIPT)
    script.chmod(0o755)
    result: dict[str, Any] = {"guests": args.guests}
    net = conn.network.create_network(name=f"bench-{tag}")
    try:
        conn.network.create_subnet(network_id=net.id, cidr="10.93.0.0/24", ip_version=4)
        made = [conn.network.create_port(network_id=net.id, device_owner="compute:nova",
                                         device_id=str(uuid.uuid4()), binding_host_id=settings.compute.host)
                for _ in range(args.guests)]
        bridge = made[0].binding_vif_details["bridge_name"]
        deadline = time.monotonic() + 30
        while not any(p.status == "ACTIVE" for p in conn.network.ports(network_id=net.id,
                                                                       device_owner="network:dhcp")):
            if time.monotonic() > deadline:
                raise RuntimeError("the agent did not set up the network's DHCP")
            time.sleep(0.02)
        time.sleep(0.5)  # the network is ready: what follows measures plugging alone
        plugged: dict[str, float] = {}
        for i, port in enumerate(made):
            ns = f"bn{tag}{i}"
            namespaces.append(ns)
            tap = "tap" + port.id[:11]
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "add", tap, "type", "veth", "peer", "name", f"bn{tag}p{i}")
            sh("ip", "link", "set", f"bn{tag}p{i}", "netns", ns, "name", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "address", port.mac_address, "up")
            sh("ip", "link", "set", tap, "master", bridge, "up")
            plugged[port.id] = time.monotonic()
        active: dict[str, float] = {}
        while len(active) < len(made):
            for port in conn.network.ports(network_id=net.id, device_owner="compute:nova"):
                if port.status == "ACTIVE" and port.id not in active:
                    active[port.id] = time.monotonic() - plugged[port.id]
            if time.monotonic() > deadline + 30:
                raise RuntimeError(f"only {len(active)} of {len(made)} ports went ACTIVE")
            time.sleep(0.02)
        result["active"] = summary(list(active.values()))
        result["agent"] = summary([agent.plug_latency[p.id] for p in made if p.id in agent.plug_latency])

        def lease(ns: str) -> float:
            began = time.monotonic()
            subprocess.run(["ip", "netns", "exec", ns, "busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-f",
                            "-t", "10", "-T", "1", "-O", "staticroutes", "-s", str(script)],
                           check=True, capture_output=True, timeout=30)
            return time.monotonic() - began

        with ThreadPoolExecutor(len(namespaces)) as pool:
            result["dhcp"] = summary(list(pool.map(lease, namespaces)))
        code = ("import time, urllib.request\n"
                "t = []\n"
                f"for _ in range({args.metadata_requests}):\n"
                "    s = time.perf_counter()\n"
                "    urllib.request.urlopen('http://169.254.169.254/openstack/latest/meta_data.json').read()\n"
                "    t.append(time.perf_counter() - s)\n"
                "print(' '.join(map(str, t)))\n")
        times = [float(x) for x in sh("ip", "netns", "exec", namespaces[0], sys.executable, "-c", code).split()]
        result["metadata"] = summary(times)
    finally:
        for ns in namespaces:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        for port in conn.network.ports(network_id=net.id):
            if port.device_owner != "network:dhcp":
                conn.network.delete_port(port)
        conn.network.delete_network(net)

        async def stop_and_teardown() -> None:
            await agent.stop()
            await agent.teardown()

        cloud.call(stop_and_teardown)
        cloud.stop()
        stand_in.shutdown()
        stand_in.server_close()
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
