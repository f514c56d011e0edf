"""Resize and cold migration with the QEMU driver (Nova libvirt's migrate_disk_and_power_off, finish_migration,
confirm_migration, finish_revert_migration), mixed into `QemuDriver`.

The source powers the guest off and sets its instance dir aside as `<uuid>_resize` (kept until confirm or revert).
The destination (the same machine: hosts share the file system, each with its own instances path) copies the
qcow2 overlay into its own instance dir, points it at the image in its own cache (fetched once, as for a boot;
flattened when the image is gone), grows it to the new flavor's root disk with `qemu-img resize` (never shrinks),
and starts QEMU with the new `-m`/`-smp`. Revert drops the destination's copy and renames the kept dir back."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pocketstack.compute.virt.driver import DriverError
from pocketstack.compute.virt.qemu.domain import Disk, Domain, GiB
from pocketstack.compute.virt.qemu.host import run_host

if TYPE_CHECKING:
    from pocketstack.compute.virt.qemu.driver import QemuDriver


def _kept(driver: QemuDriver, uuid: str) -> Path:
    return driver.instances_path / f"{uuid}_resize"


async def _virtual_size(path: Path) -> int:
    _, out = await run_host("qemu-img", "info", "-U", "--output=json", str(path))
    return int(json.loads(out)["virtual-size"])


class QemuResize:
    """The QEMU driver's move methods; `self` is the `QemuDriver`."""

    async def migrate_disk_and_power_off(self: QemuDriver, instance: dict[str, Any], dest_host: str,
                                         flavor: dict[str, Any]) -> dict[str, Any]:
        """Power the guest off (ACPI, then stopped hard) and set its dir aside as `<uuid>_resize`; the new root
        disk may not be smaller than the current one."""
        uuid = instance["uuid"]
        domain = self._load(uuid)
        d = self._dir(uuid)
        root = next((disk for disk in domain.disks if disk.path == str(d / "disk")), None)
        if root is not None and flavor.get("disk") and flavor["disk"] * GiB < await _virtual_size(d / "disk"):
            raise DriverError("Unable to resize disk down.")
        if self.running_pid(uuid) is not None:
            await self._shutdown(uuid, self.cfg.shutdown_timeout)
            await self._kill(uuid)
        kept = _kept(self, uuid)
        if kept.exists():
            shutil.rmtree(kept)
        os.replace(d, kept)
        return {"qemu": {"source_dir": str(kept), "old_dir": str(d)}}

    async def finish_migration(self: QemuDriver, instance: dict[str, Any], disk_info: dict[str, Any],
                               network_info: list[dict[str, Any]], block_device_info: dict[str, Any] | None,
                               power_on: bool) -> None:
        uuid = instance["uuid"]
        info = disk_info.get("qemu") or {}
        source, old_dir = Path(info["source_dir"]), info["old_dir"]
        old = Domain.from_json(json.loads((source / "domain.json").read_text()))
        d = self._dir(uuid)
        if self.running_pid(uuid) is not None:
            raise DriverError(f"server {uuid} already runs on host {self.host}")
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        try:
            disks: list[Disk] = []
            for disk in old.disks:
                if disk.path == f"{old_dir}/disk":
                    await self._take_root(instance, source / "disk", d / "disk")
                    disks.append(replace(disk, path=str(d / "disk")))
                elif disk.path == f"{old_dir}/disk.config":
                    await asyncio.to_thread(shutil.copyfile, source / "disk.config", d / "disk.config")
                    disks.append(replace(disk, path=str(d / "disk.config")))
                else:  # volumes: files this machine reaches as the source did
                    disks.append(disk)
            domain = Domain(uuid=uuid, name=old.name, vcpus=instance["vcpus"], memory_mb=instance["memory_mb"],
                            machine=old.machine, disks=disks, nics=old.nics)
            self._save(domain)
            if power_on:
                await self._start(domain)
        except BaseException:
            with contextlib.suppress(Exception):
                await self._kill(uuid)
            shutil.rmtree(d, ignore_errors=True)
            raise

    async def _take_root(self: QemuDriver, instance: dict[str, Any], source: Path, disk: Path) -> None:
        """The overlay copied here on this host's cached base (flattened when the image cannot be had), then
        grown to the flavor's root disk."""
        base = None
        if instance.get("image_ref"):
            with contextlib.suppress(DriverError):
                base = await self.cached_image({"id": instance["image_ref"]})
        if base is not None:
            await asyncio.to_thread(shutil.copyfile, source, disk)
            await run_host("qemu-img", "rebase", "-u", "-f", "qcow2", "-b", str(base), "-F", "raw", str(disk))
        else:
            await run_host("qemu-img", "convert", "-f", "qcow2", "-O", "qcow2", str(source), str(disk), within=3600)
        size = (instance.get("root_gb") or 0) * GiB
        if size > await _virtual_size(disk):
            await run_host("qemu-img", "resize", "-q", "-f", "qcow2", str(disk), str(size))

    async def confirm_migration(self: QemuDriver, instance: dict[str, Any]) -> None:
        """The kept dir of the moved guest goes."""
        await asyncio.to_thread(shutil.rmtree, _kept(self, instance["uuid"]), True)

    async def finish_revert_migration(self: QemuDriver, instance: dict[str, Any], network_info: list[dict[str, Any]],
                                      block_device_info: dict[str, Any] | None, power_on: bool) -> None:
        """The kept dir is the server's again and it starts (a guest never set aside is started if stopped)."""
        uuid = instance["uuid"]
        kept, d = _kept(self, uuid), self._dir(uuid)
        if kept.exists():
            if self.running_pid(uuid) is not None:
                await self._kill(uuid)
            if d.exists():
                shutil.rmtree(d)
            os.replace(kept, d)
        domain = self._load(uuid)
        if power_on and self.running_pid(uuid) is None:
            await self._start(domain)
