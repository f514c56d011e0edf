"""Helpers of the network agent tests: namespaces standing in for guests, a stand-in compute metadata API, and
the probes that check what is left on the host."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

UDHCPC_SCRIPT = """#!/bin/sh
# what a guest's DHCP client script does (busybox udhcpc calls it with the lease in the environment)
case "$1" in
  deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    [ -n "$mtu" ] && ip link set "$interface" mtu "$mtu"
    if [ -n "$staticroutes" ]; then
      set -- $staticroutes
      while [ $# -ge 2 ]; do ip route replace "$1" via "$2" dev "$interface"; shift 2; done
    elif [ -n "$router" ]; then
      ip route replace default via "${router%% *}" dev "$interface"
    fi
    env > "$LEASE_ENV"
    ;;
esac
"""


def sh(*cmd: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)


def link_exists(name: str, netns: str | None = None) -> bool:
    return sh("ip", *(["-n", netns] if netns else []), "link", "show", name, check=False).returncode == 0


class Guest:
    """A namespace standing in for a guest: its NIC is the inner end of a veth whose host end is the port's tap
    (`tap` + port id[:11]), as the compute driver makes it."""

    def __init__(self, name: str, port: dict[str, Any], workdir: Path, *, plug: bool = True) -> None:
        self.ns = name
        self.port = port
        self.tap = "tap" + port["id"][:11]
        self.nic = "eth0"
        self.workdir = workdir
        self.procs: list[subprocess.Popen[str]] = []
        sh("ip", "netns", "add", name)
        sh("ip", "link", "add", self.tap, "type", "veth", "peer", "name", f"{name[:10]}p")
        sh("ip", "link", "set", f"{name[:10]}p", "netns", name)
        self.run("ip", "link", "set", f"{name[:10]}p", "name", self.nic)
        self.run("ip", "link", "set", self.nic, "address", port["mac_address"])
        self.run("ip", "link", "set", "lo", "up")
        self.run("ip", "link", "set", self.nic, "up")
        bridge = (port.get("binding:vif_details") or {}).get("bridge_name")
        if plug and bridge:  # as compute does: the bridge is made when the agent has not yet
            if not link_exists(bridge):
                sh("ip", "link", "add", bridge, "type", "bridge", check=False)
                sh("ip", "link", "set", bridge, "up")
            sh("ip", "link", "set", self.tap, "master", bridge)
        sh("ip", "link", "set", self.tap, "up")

    @property
    def ip(self) -> str:
        return self.port["fixed_ips"][0]["ip_address"]

    def run(self, *cmd: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return sh("ip", "netns", "exec", self.ns, *cmd, check=check, timeout=timeout)

    def configure(self, cidr: str, gateway: str | None = None) -> None:
        """A static address (as a guest without DHCP would have)."""
        self.run("ip", "addr", "add", cidr, "dev", self.nic)
        if gateway:
            self.run("ip", "route", "replace", "default", "via", gateway)

    def dhcp(self) -> dict[str, str]:
        """busybox udhcpc as a guest runs it; returns the lease's environment."""
        script = self.workdir / "udhcpc.sh"
        script.write_text(UDHCPC_SCRIPT)
        script.chmod(0o755)
        lease = self.workdir / f"{self.ns}.lease"
        proc = subprocess.run(["ip", "netns", "exec", self.ns, "busybox", "udhcpc", "-i", self.nic, "-n", "-q",
                               "-f", "-t", "10", "-T", "1", "-O", "staticroutes", "-O", "mtu", "-s", str(script)],
                              capture_output=True, text=True, timeout=30,
                              env={**os.environ, "LEASE_ENV": str(lease)})
        if proc.returncode != 0:
            raise AssertionError(f"udhcpc in {self.ns} got no lease: {proc.stdout} {proc.stderr}")
        return dict(line.split("=", 1) for line in lease.read_text().splitlines() if "=" in line)

    def http_get(self, url: str, timeout: float = 5.0) -> tuple[int, str]:
        """(status, body) of a GET from inside the guest; status 0 when nothing answered."""
        code = ("import sys, urllib.request, urllib.error\n"
                "try:\n"
                f"    r = urllib.request.urlopen({url!r}, timeout={timeout})\n"
                "    print(r.status); print(r.read().decode(), end='')\n"
                "except urllib.error.HTTPError as e:\n"
                "    print(e.code); print(e.read().decode(), end='')\n"
                "except OSError as e:\n"
                "    print(0); print(e, end='')\n")
        out = self.run("python3", "-c", code, timeout=timeout + 10).stdout
        status, _, body = out.partition("\n")
        return int(status), body

    def serve_http(self, port: int, address: str = "0.0.0.0") -> None:
        """A TCP listener in the guest (an HTTP server answering its client's address)."""
        code = ("import http.server\n"
                "class H(http.server.BaseHTTPRequestHandler):\n"
                "    def do_GET(self):\n"
                "        body = self.client_address[0].encode()\n"
                "        self.send_response(200); self.send_header('Content-Length', str(len(body)))\n"
                "        self.end_headers(); self.wfile.write(body)\n"
                "    def log_message(self, *a): pass\n"
                f"http.server.ThreadingHTTPServer(({address!r}, {port}), H).serve_forever()\n")
        proc = subprocess.Popen(["ip", "netns", "exec", self.ns, "python3", "-c", code], text=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(proc)
        wait_for(lambda: f":{port} " in self.run("ss", "-ltnH").stdout, 10, f"listener on {port} in {self.ns}")

    def delete(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait()
        self.procs.clear()
        sh("ip", "link", "del", self.tap, check=False)
        sh("ip", "netns", "del", self.ns, check=False)


class MetadataStub:
    """Stands in for the compute metadata API (built elsewhere): checks Nova's proxy headers and the signature,
    answers with what it was told."""

    def __init__(self, port: int, secret: Callable[[], str]) -> None:
        stub = self
        self.requests: list[dict[str, Any]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                instance = self.headers.get("X-Instance-ID", "")
                expected = hmac.new(secret().encode(), instance.encode(), hashlib.sha256).hexdigest()
                seen = {"path": self.path, "instance_id": instance, "project_id": self.headers.get("X-Tenant-ID"),
                        "forwarded_for": self.headers.get("X-Forwarded-For"),
                        "signed": hmac.compare_digest(expected, self.headers.get("X-Instance-ID-Signature", ""))}
                stub.requests.append(seen)
                body = json.dumps(seen).encode()
                self.send_response(200 if seen["signed"] else 403)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def leftovers(ids: list[str], names: list[str], table: str, data_dir: Path) -> list[str]:
    """What is still on the host of a cloud: namespaces and links naming one of `ids` (or named in `names`),
    its nftables tables, and dnsmasq processes working in its data dir."""
    found = []
    for ns in sh("ip", "netns", "list").stdout.split():
        if any(i in ns for i in ids) or ns in names:
            found.append(f"namespace {ns}")
    for line in sh("ip", "-o", "link").stdout.splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        if name in names or any(name.endswith(i[:11]) for i in ids):
            found.append(f"link {name}")
    for line in sh("nft", "list", "tables").stdout.splitlines():
        if line.split()[-1] == table:
            found.append(line)
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if "dnsmasq" in cmdline and str(data_dir) in cmdline:
            found.append(f"dnsmasq pid {pid}")
    return found


def tcp_reachable(ip: str, port: int, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=timeout):
            return True
    except OSError:
        return False

