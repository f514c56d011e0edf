"""A throwaway network for running guests without the cloud (driver tests, `bench/guest.py`). Needs root.

It plays the parts the network service plays for a real server: a bridge whose address the host reaches guests
from, and in a namespace attached to it a DHCP server (dnsmasq, static host entries, option 121 with the
metadata route as Neutron's DHCP agent sends it) and a metadata server at 169.254.169.254 that answers each
guest by its address, as the metadata proxy does. Every host resource carries the sandbox's prefix and
`close()` removes them all.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

METADATA_IP = "169.254.169.254"

METADATA_SERVER = r"""
import http.server, pathlib, sys
root = pathlib.Path(sys.argv[1]).resolve()
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        path = (root / self.client_address[0] / self.path.lstrip("/")).resolve()
        if root in path.parents and path.is_file():
            data = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        else:
            self.send_error(404)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer((sys.argv[2], 80), Handler).serve_forever()
"""


def _ip(*args: str, netns: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = ["ip", *(["-n", netns] if netns else []), *args]
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


def _free_subnet() -> ipaddress.IPv4Network:
    used = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
    for _ in range(200):
        net = ipaddress.IPv4Network(f"10.{random.randint(200, 250)}.{random.randint(0, 255)}.0/24")
        if str(net.network_address)[:-1] not in used:
            return net
    raise RuntimeError("no free 10.x.y.0/24 for the sandbox")


class GuestNetwork:
    """Bridge `<prefix>br` with the host at .1; namespace `<prefix>ns` at .2 with dnsmasq and metadata."""

    def __init__(self, prefix: str | None = None) -> None:
        self.prefix = prefix or f"ps{random.randbytes(3).hex()}"
        if len(self.prefix) > 12:
            raise ValueError("prefix too long for interface names")
        self.bridge, self.netns = f"{self.prefix}br", f"{self.prefix}ns"
        self.veth_host, self.veth_ns = f"{self.prefix}vh", f"{self.prefix}vn"
        self.subnet = _free_subnet()
        hosts = list(self.subnet.hosts())
        self.host_ip, self.server_ip = str(hosts[0]), str(hosts[1])
        self._free = [str(ip) for ip in hosts[9:200]]
        self.dir = Path(tempfile.mkdtemp(prefix=f"{self.prefix}-"))
        os.chmod(self.dir, 0o755)
        self.hosts_file = self.dir / "dhcp-hosts"
        self.metadata_dir = self.dir / "metadata"
        self._procs: list[subprocess.Popen[bytes]] = []
        self.guests: dict[str, str] = {}  # mac -> ip

    def start(self) -> GuestNetwork:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def _start(self) -> None:
        _ip("link", "add", "name", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.host_ip}/{self.subnet.prefixlen}", "dev", self.bridge)
        _ip("link", "set", "dev", self.bridge, "up")
        _ip("netns", "add", self.netns)
        _ip("link", "add", self.veth_host, "type", "veth", "peer", "name", self.veth_ns)
        _ip("link", "set", "dev", self.veth_ns, "netns", self.netns)
        _ip("link", "set", "dev", self.veth_host, "master", self.bridge, "up")
        _ip("addr", "add", f"{self.server_ip}/{self.subnet.prefixlen}", "dev", self.veth_ns, netns=self.netns)
        _ip("addr", "add", f"{METADATA_IP}/32", "dev", self.veth_ns, netns=self.netns)
        _ip("link", "set", "dev", self.veth_ns, "up", netns=self.netns)
        _ip("link", "set", "dev", "lo", "up", netns=self.netns)
        self.hosts_file.write_text("")
        self.metadata_dir.mkdir()
        self._procs.append(subprocess.Popen(
            ["ip", "netns", "exec", self.netns, "dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts",
             "--port=0", "--user=root", "--group=root", f"--interface={self.veth_ns}", "--bind-interfaces",
             f"--dhcp-range={self.subnet.network_address},static,{self.subnet.netmask},12h",
             f"--dhcp-hostsfile={self.hosts_file}", f"--dhcp-leasefile={self.dir / 'leases'}",
             f"--pid-file={self.dir / 'dnsmasq.pid'}", f"--dhcp-option=option:router,{self.host_ip}",
             f"--dhcp-option=option:classless-static-route,{METADATA_IP}/32,{self.server_ip},"
             f"0.0.0.0/0,{self.host_ip}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        self._procs.append(subprocess.Popen(
            ["ip", "netns", "exec", self.netns, sys.executable, "-c", METADATA_SERVER, str(self.metadata_dir),
             METADATA_IP], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 10
        while not (self.dir / "dnsmasq.pid").exists() or not self._metadata_answers():
            for proc in self._procs:
                if proc.poll() is not None:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    raise RuntimeError(f"sandbox {proc.args[3]} exited: {err}")
            if time.monotonic() > deadline:
                raise RuntimeError("the sandbox's dnsmasq or metadata server did not start")
            time.sleep(0.05)

    def _metadata_answers(self) -> bool:
        probe = subprocess.run(["ip", "netns", "exec", self.netns, sys.executable, "-c",
                                f"import socket; socket.create_connection(('{METADATA_IP}', 80), 1)"],
                               capture_output=True)
        return probe.returncode == 0

    def add_guest(self, mac: str, meta_data: dict[str, Any] | None = None, user_data: bytes | None = None) -> str:
        """A DHCP entry for `mac` (and metadata for its address, when given); returns the guest's address."""
        ip = self._free.pop(0)
        self.guests[mac] = ip
        with open(self.hosts_file, "a") as f:
            f.write(f"{mac},{ip}\n")
        self._reload_dhcp()
        if meta_data is not None:
            latest = self.metadata_dir / ip / "openstack" / "latest"
            latest.mkdir(parents=True)
            (latest / "meta_data.json").write_text(json.dumps(meta_data))
            if user_data is not None:
                (latest / "user_data").write_bytes(user_data)
        return ip

    def _reload_dhcp(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            os.kill(int((self.dir / "dnsmasq.pid").read_text()), signal.SIGHUP)

    def close(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if proc.stderr:
                proc.stderr.close()
        self._procs.clear()
        _ip("netns", "del", self.netns, check=False)
        for link in (self.veth_host, self.bridge):
            _ip("link", "del", "dev", link, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> GuestNetwork:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def random_mac() -> str:
    """A MAC in OpenStack's fa:16:3e prefix."""
    return "fa:16:3e:" + ":".join(f"{b:02x}" for b in random.randbytes(3))


def tcp_open(ip: str, port: int = 22, within: float = 1.0) -> bool:
    try:
        with socket.create_connection((ip, port), within):
            return True
    except OSError:
        return False


def ssh(ip: str, key: Path, command: str, within: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Run `command` on the guest as root with `key` (OpenSSH client, host keys not checked)."""
    return subprocess.run(
        ["ssh", "-i", str(key), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o",
         "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=5", "-o",
         "IdentitiesOnly=yes", f"root@{ip}", command], capture_output=True, text=True, timeout=within)


def wait_ssh(ip: str, key: Path, within: float = 120.0) -> float:
    """Seconds until an SSH login as root with `key` runs a command; TimeoutError after `within`."""
    start = time.monotonic()
    while time.monotonic() - start < within:
        if tcp_open(ip, 22, 1.0):
            with contextlib.suppress(subprocess.TimeoutExpired):
                if ssh(ip, key, "true", within=15).returncode == 0:
                    return time.monotonic() - start
        time.sleep(0.1)
    raise TimeoutError(f"no SSH login on {ip} within {within:g} s")


def make_key(directory: Path) -> Path:
    """A fresh ed25519 key pair (directory/id_ed25519 and .pub)."""
    key = directory / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key
