"""DHCP for one network: dnsmasq in the network's `qdhcp-<network id>` namespace (Neutron's DHCP agent model).

dnsmasq runs as the agent's child in a session of its own, with a pid file under the agent's state dir: it
outlives an agent restart and the next agent adopts it by the pid file. Static host entries (MAC -> IP,
hostname) are in its hosts file and reloaded with SIGHUP when ports change; what is on its command line
(ranges, options) restarts it when the subnets change.
A port's extra_dhcp_opts are in the options file (reloaded with SIGHUP too), tagged by the port's host entry.
Options per subnet: 121 classless static routes (the metadata address via the DHCP port, the default route via
the gateway, the subnet's host routes), 3 router, 6 DNS servers, 15 domain, 26 MTU. Routes and MTU are forced
(sent even when not asked for), so minimal clients such as busybox udhcpc get them.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

log = logging.getLogger("pocketstack.network.agent")

METADATA_ADDRESS = "169.254.169.254"
DNSMASQ = "dnsmasq"


def hostname(ip: str) -> str:
    """Neutron's host name for an address: host-10-0-0-5 (host-fd00--5 for IPv6)."""
    return "host-" + ip.replace(".", "-").replace(":", "-")


def dhcp_subnets(net: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in net["subnets"] if s["enable_dhcp"] and s["ip_version"] == 4]


def routes_option(subnet: dict[str, Any], dhcp_ip: str | None) -> list[str]:
    """Option 121 as dnsmasq takes it: destination,router pairs."""
    routes: list[str] = []
    if dhcp_ip:
        routes += [f"{METADATA_ADDRESS}/32", dhcp_ip]
    for route in subnet["host_routes"]:
        if ipaddress.ip_network(route["destination"]).version == 4:
            routes += [route["destination"], route["nexthop"]]
    if subnet["gateway_ip"]:
        routes += ["0.0.0.0/0", subnet["gateway_ip"]]
    return routes


def port_tag(port: dict[str, Any]) -> str:
    return f"port-{port['id']}"


def _ipv4_options(port: dict[str, Any]) -> list[dict[str, Any]]:
    return [o for o in port.get("extra_dhcp_opts") or [] if o.get("ip_version", 4) == 4]


class DhcpServer:
    """dnsmasq of one network, its files in `directory`."""

    def __init__(self, network_id: str, namespace: str, interface: str, directory: Path) -> None:
        self.network_id = network_id
        self.namespace = namespace
        self.interface = interface
        self.dir = directory
        self.hosts_file = directory / "host"
        self.addn_hosts_file = directory / "addn_hosts"
        self.opts_file = directory / "opts"
        self.leases_file = directory / "leases"
        self.pid_file = directory / "pid"
        self.args_file = directory / "args"
        self.process: subprocess.Popen[bytes] | None = None  # when this agent started it

    # ----- configuration ------------------------------------------------------------------------------------
    def command(self, net: dict[str, Any], dhcp_port: dict[str, Any], lease_time: int, domain: str) -> list[str]:
        dhcp_ips = {a["subnet_id"]: a["ip_address"] for a in dhcp_port["fixed_ips"]}
        args = [DNSMASQ, "--no-hosts", "--no-resolv", "--conf-file=/dev/null", "--bind-interfaces",
                f"--interface={self.interface}", "--except-interface=lo", f"--pid-file={self.pid_file}",
                f"--dhcp-hostsfile={self.hosts_file}", f"--addn-hosts={self.addn_hosts_file}",
                f"--dhcp-optsfile={self.opts_file}",
                f"--dhcp-leasefile={self.leases_file}", f"--domain={domain}", "--dhcp-authoritative",
                # the state dir may be in a home only root can enter: dnsmasq keeps root to reread its files
                "--user=root", "--group=root"]
        lease_max = 0
        for index, subnet in enumerate(dhcp_subnets(net)):
            tag = f"subnet{index}"
            cidr = ipaddress.ip_network(subnet["cidr"])
            lease_max += cidr.num_addresses
            args.append(f"--dhcp-range=set:{tag},{cidr.network_address},static,{cidr.netmask},{lease_time}s")
            dhcp_ip = dhcp_ips.get(subnet["id"])
            args.append(f"--dhcp-option-force=tag:{tag},option:classless-static-route,"
                        + ",".join(routes_option(subnet, dhcp_ip)))
            args.append(f"--dhcp-option-force=tag:{tag},option:mtu,{net['mtu']}")
            args.append(f"--dhcp-option=tag:{tag},option:router" + (f",{subnet['gateway_ip']}"
                                                                   if subnet["gateway_ip"] else ""))
            dns = [d for d in subnet["dns_nameservers"] if ipaddress.ip_address(d).version == 4] or (
                [dhcp_ip] if dhcp_ip else [])
            if dns:
                args.append(f"--dhcp-option=tag:{tag},option:dns-server,{','.join(dns)}")
        args.append(f"--dhcp-lease-max={max(lease_max, 16)}")
        return args

    @staticmethod
    def hosts(net: dict[str, Any], ports: list[dict[str, Any]], domain: str) -> tuple[str, str]:
        """The dhcp-hostsfile (MAC,name,IP per address; `set:` the port's tag when it has options) and the
        addn-hosts file (DNS names) of the ports."""
        subnets = {s["id"] for s in dhcp_subnets(net)}
        dhcp_lines, dns_lines = [], []
        for port in sorted(ports, key=lambda p: p["id"]):
            if not port["admin_state_up"]:
                continue
            tag = f"set:{port_tag(port)}," if _ipv4_options(port) else ""
            for allocation in port["fixed_ips"]:
                if allocation["subnet_id"] not in subnets:
                    continue
                ip, name = allocation["ip_address"], hostname(allocation["ip_address"])
                dhcp_lines.append(f"{port['mac_address']},{tag}{name}.{domain},{ip}")
                dns_lines.append(f"{ip}\t{name}.{domain} {name}")
        return "".join(f"{line}\n" for line in dhcp_lines), "".join(f"{line}\n" for line in dns_lines)

    @staticmethod
    def options(ports: list[dict[str, Any]]) -> str:
        """The dhcp-optsfile: each port's IPv4 extra_dhcp_opts for its tag (a name, or an option number)."""
        lines = []
        for port in sorted(ports, key=lambda p: p["id"]):
            if not port["admin_state_up"]:
                continue
            for opt in _ipv4_options(port):
                name = opt["opt_name"] if opt["opt_name"].isdigit() else f"option:{opt['opt_name']}"
                lines.append(f"tag:{port_tag(port)},{name},{opt['opt_value']}")
        return "".join(f"{line}\n" for line in lines)

    # ----- the process --------------------------------------------------------------------------------------
    def pid(self) -> int | None:
        """The pid of this network's running dnsmasq (checked against its command line, pids get reused)."""
        if self.process is not None and self.process.poll() is not None:
            self.process = None  # it ended (and is reaped now)
        try:
            pid = int(self.pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        return pid if str(self.hosts_file).encode() in cmdline else None

    async def apply(self, net: dict[str, Any], dhcp_port: dict[str, Any], ports: list[dict[str, Any]],
                    lease_time: int, domain: str) -> str | None:
        """Bring dnsmasq to this configuration: 'started', 'restarted', 'reloaded' or None (nothing to do)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        args = self.command(net, dhcp_port, lease_time, domain)
        hosts, addn_hosts = self.hosts(net, ports, domain)
        changed = (_write_if_changed(self.hosts_file, hosts) | _write_if_changed(self.addn_hosts_file, addn_hosts)
                   | _write_if_changed(self.opts_file, self.options(ports)))
        args_changed = _write_if_changed(self.args_file, "\0".join(args))
        pid = self.pid()
        if pid is not None and not args_changed:
            if changed:
                os.kill(pid, signal.SIGHUP)
                return "reloaded"
            return None
        if pid is not None:
            await self._terminate(pid)
        try:
            await self._start(args)
        except RuntimeError:
            self.args_file.unlink(missing_ok=True)
            raise
        return "restarted" if pid is not None else "started"

    async def _start(self, args: list[str]) -> None:
        """Run dnsmasq as the agent's child (in the foreground: the agent reaps it; a daemon would be left to an
        init that may not reap), and wait until it has written its pid file or failed."""
        self.pid_file.unlink(missing_ok=True)
        errors = self.dir / "dnsmasq.err"
        with errors.open("w") as stderr:
            # `ip netns exec` execs dnsmasq in the namespace: the child's pid is dnsmasq's
            self.process = await asyncio.to_thread(
                subprocess.Popen, ["ip", "netns", "exec", self.namespace, *args, "--keep-in-foreground"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
        for _ in range(250):
            if self.process.poll() is not None:
                raise RuntimeError(f"dnsmasq for network {self.network_id} failed: "
                                   f"{errors.read_text().strip() or f'exit status {self.process.returncode}'}")
            if self.pid() == self.process.pid:
                return
            await asyncio.sleep(0.02)
        raise RuntimeError(f"dnsmasq for network {self.network_id} did not start within 5s")

    async def _terminate(self, pid: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            if self.process is not None and self.process.pid == pid:
                if self.process.poll() is not None:
                    self.process = None
                    return
            elif not _alive(pid):
                return
            await asyncio.sleep(0.02)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    async def stop(self) -> None:
        """Stop dnsmasq and remove its files."""
        pid = self.pid()
        if pid is not None:
            await self._terminate(pid)
        shutil.rmtree(self.dir, ignore_errors=True)


def _alive(pid: int) -> bool:
    """Whether the process runs (a zombie, waiting for a parent that is not us to reap it, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _write_if_changed(path: Path, text: str) -> bool:
    try:
        if path.read_text() == text:
            return False
    except FileNotFoundError:
        pass
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return True
