"""What the QEMU driver does on the host besides QEMU itself: taps on bridges, the config drive, files."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path
from typing import Any

from pyroute2 import AsyncIPRoute
from pyroute2.netlink.exceptions import NetlinkError

from pocketstack.common.process import CommandError, run_command
from pocketstack.compute.metadata.content import InstanceMetadata
from pocketstack.compute.virt.driver import DriverError
from pocketstack.compute.virt.qemu.domain import (
    CONSOLE_TAIL,
    Nic,
)


async def run_host(*args: str, within: float = 120.0, check: bool = True) -> tuple[int, str]:
    """Run a host command; returns (exit code, stderr+stdout); DriverError when `check` and it failed."""
    try:
        return await run_command(*args, within=within, check=check,
                                 env={**os.environ, "MTOOLS_SKIP_CHECK": "1", "LC_ALL": "C"})
    except CommandError as exc:
        raise DriverError(str(exc)) from None


TAP_FLAGS = {"no_pi": True, "one_queue": False, "vnet_hdr": False, "multi_queue": False}  # as `ip tuntap add`


async def _bridge_index(ipr: AsyncIPRoute, name: str) -> int:
    """The bridge's interface index; the bridge is made (up) when the network agent has not made it yet."""
    found = await ipr.link_lookup(ifname=name)
    if not found:
        try:
            await ipr.link("add", ifname=name, kind="bridge")
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:  # else another spawn made it meanwhile
                raise
        found = await ipr.link_lookup(ifname=name)
        await ipr.link("set", index=found[0], state="up")
    return found[0]


async def plug_tap(nic: Nic) -> None:
    """Tap for a port (multi-queue off) on its network's bridge, up, with the port's MTU (os-vif's plugging)."""
    try:
        async with AsyncIPRoute() as ipr:
            bridge = await _bridge_index(ipr, nic.bridge)
            if not await ipr.link_lookup(ifname=nic.tap):
                await ipr.link("add", ifname=nic.tap, kind="tuntap", mode="tap", ifr=TAP_FLAGS)
            (index,) = await ipr.link_lookup(ifname=nic.tap)
            attrs: dict[str, Any] = {"master": bridge, "state": "up"}
            if nic.mtu:
                attrs["mtu"] = nic.mtu
            await ipr.link("set", index=index, **attrs)
    except (NetlinkError, OSError, ValueError) as exc:
        raise DriverError(f"could not plug tap {nic.tap} into bridge {nic.bridge}: {exc}")


async def unplug_tap(tap: str) -> None:
    try:
        async with AsyncIPRoute() as ipr:
            for index in await ipr.link_lookup(ifname=tap):
                await ipr.link("del", index=index)
    except NetlinkError as exc:
        if exc.code != errno.ENODEV:
            raise DriverError(f"could not delete tap {tap}: {exc}")


def config_drive_files(instance: dict[str, Any], network_info: list[dict[str, Any]]) -> dict[str, bytes]:
    """The config drive's files: the same documents as the metadata API (OpenStack and EC2 trees)."""
    meta = instance.get("metadata")
    return InstanceMetadata({**instance, "network_info": network_info},
                            meta=dict(meta) if isinstance(meta, dict) else {}).config_drive_files()


async def make_config_drive(path: Path, files: dict[str, bytes]) -> None:
    """A vfat disk labelled config-2 holding `files` (made with mtools: nothing is mounted)."""
    with tempfile.TemporaryDirectory(prefix=".config-drive-", dir=path.parent) as tmp:
        root = Path(tmp)
        write_tree(root, files)
        size_kb = 1024 + 2 * sum(len(d) for d in files.values()) // 1024
        remove_file(path)
        await run_host("mkfs.vfat", "-C", "-n", "config-2", str(path), str(size_kb))
        tops = sorted({str(root / name.split("/", 1)[0]) for name in files})
        if tops:
            await run_host("mcopy", "-s", "-i", str(path), *tops, "::")




def write_tree(root: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        target = (root / name).resolve()
        if not target.is_relative_to(root.resolve()):
            raise DriverError(f"file {name!r} would be outside {root}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def file_size(path: Path) -> int:
    return path.stat().st_size


def remove_file(path: Path) -> None:
    path.unlink(missing_ok=True)


def read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def cpu_time_ns(pid: int) -> int:
    """User + system CPU time of a process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) * 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0


def console_tail(path: Path) -> str:
    """The last CONSOLE_TAIL bytes of the serial log, from a line start."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - CONSOLE_TAIL))
            data = f.read()
    except FileNotFoundError:
        return ""
    if size > CONSOLE_TAIL:
        data = data.split(b"\n", 1)[-1]
    return data.decode(errors="replace").replace("\r\n", "\n").replace("\r", "")


