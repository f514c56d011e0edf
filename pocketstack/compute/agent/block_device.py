"""The compute agent's volume work (FLOW.md steps 26-28): the volumes of a build, attach and detach on a running
server, and what a server's deletion does to its volumes.

Volume calls go to the block storage API as the user whose request this is (their token travels in the RPC
context). Every volume this code creates or attaches during a build is recorded as it happens, so a failed build
gives back exactly that: attachments deleted, volumes it created deleted, mappings as they were.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import platform
import sys
from dataclasses import dataclass
from typing import Any

from pocketstack.common.clients.volume import VolumeClient
from pocketstack.common.errors import APIError, NotFound
from pocketstack.compute.conductor.rpcapi import ConductorAPI
from pocketstack.compute.virt.driver import ComputeDriver

log = logging.getLogger("pocketstack.compute.agent")

ROOT_DEVICE = "/dev/vda"
CREATING_GRACE = 300.0  # seconds a failed build waits for a volume it created to finish creating, to delete it


class VolumeSetupError(Exception):
    """A volume of the build could not be made or attached; retrying on another host would not help."""


@dataclass
class Prepared:
    """One volume a build made ready: what to undo if the build fails."""

    bdm_id: int
    volume_id: str
    created: bool  # this build created the volume (from an image, a snapshot or blank)
    attachment_id: str | None = None


class BlockDevices:
    def __init__(self, host: str, driver: ComputeDriver, conductor: ConductorAPI, volume: VolumeClient) -> None:
        self.host = host
        self.driver = driver
        self.conductor = conductor
        self.volume = volume

    def connector(self, mountpoint: str | None) -> dict[str, Any]:
        """This host as the volume service sees an attaching host (os-brick's connector properties)."""
        return {"host": self.host, "platform": platform.machine(), "os_type": sys.platform, "multipath": False,
                "mountpoint": mountpoint}

    # ----- build ----------------------------------------------------------------------------------------------
    async def prepare(self, instance: dict[str, Any], prepared: list[Prepared]) -> dict[str, Any] | None:
        """Create the volumes the mappings ask for, attach them all to this host; the driver's block_device_info
        (Nova's shape), or None when the server has no volumes. `prepared` collects what to undo on failure."""
        bdms = [b for b in instance["block_device_mapping"] if b["destination_type"] == "volume"]
        if not bdms:
            return None
        mapping = []
        for bdm in bdms:
            try:
                volume_id = await self._volume_of(bdm, prepared)
                attachment = await self.volume.attachment_create(volume_id, instance["uuid"],
                                                                 self.connector(bdm["device_name"]))
                prepared[-1].attachment_id = attachment["id"]
                await self.volume.attachment_complete(attachment["id"])
            except APIError as exc:
                raise VolumeSetupError(f"Volume for {bdm['device_name']} could not be set up: {exc.message}") from exc
            connection_info = attachment["connection_info"]
            await self.conductor.bdm_update(bdm["id"], {"attachment_id": attachment["id"],
                                                        "connection_info": connection_info})
            mapping.append({"connection_info": connection_info, "mount_device": bdm["device_name"],
                            "boot_index": bdm["boot_index"], "delete_on_termination": bdm["delete_on_termination"],
                            "volume_id": volume_id})
        return {"root_device_name": ROOT_DEVICE, "block_device_mapping": mapping}

    async def _volume_of(self, bdm: dict[str, Any], prepared: list[Prepared]) -> str:
        """The mapping's volume: the one named, or a new one from its image, snapshot or nothing (blank)."""
        if bdm["source_type"] == "volume":
            prepared.append(Prepared(bdm["id"], bdm["volume_id"], created=False))
            return bdm["volume_id"]
        volume = await self.volume.create_volume(
            bdm["volume_size"], image_id=bdm["image_id"] if bdm["source_type"] == "image" else None,
            snapshot_id=bdm["snapshot_id"] if bdm["source_type"] == "snapshot" else None)
        prepared.append(Prepared(bdm["id"], volume["id"], created=True))
        await self.conductor.bdm_update(bdm["id"], {"volume_id": volume["id"]})
        await self.volume.wait_for_volume(volume["id"], "available")
        return volume["id"]

    async def rollback(self, prepared: list[Prepared]) -> None:
        """Undo a failed build's volume work: detach, delete the volumes it created, reset the mappings."""
        for item in reversed(prepared):
            try:
                if item.attachment_id:
                    await self.volume.attachment_delete(item.attachment_id)
                if item.created:
                    await self._delete_created(item.volume_id)
                await self.conductor.bdm_update(item.bdm_id, {
                    "volume_id": None if item.created else item.volume_id, "attachment_id": None,
                    "connection_info": None})
            except Exception:
                log.exception("%s: could not undo the volume %s of a failed build", self.host, item.volume_id)
        prepared.clear()

    async def _delete_created(self, volume_id: str) -> None:
        """Delete a volume this build created, once it is no longer being created."""
        deadline = asyncio.get_running_loop().time() + CREATING_GRACE
        while True:
            try:
                volume = await self.volume.get_volume(volume_id)
            except NotFound:
                return
            if volume["status"] != "creating" or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.2)
        await self.volume.delete_volume(volume_id)

    # ----- a server's deletion ----------------------------------------------------------------------------------
    async def release(self, instance: dict[str, Any]) -> None:
        """Detach every volume; delete those marked delete_on_termination. Failures are logged, never fatal:
        the server goes anyway (as with Nova), and the volume stays for the user to deal with."""
        for bdm in instance["block_device_mapping"]:
            if bdm["destination_type"] != "volume" or not bdm["volume_id"]:
                continue
            try:
                if bdm["attachment_id"]:
                    await self.volume.attachment_delete(bdm["attachment_id"])
                if bdm["delete_on_termination"]:
                    with contextlib.suppress(NotFound):
                        await self.volume.delete_volume(bdm["volume_id"])
            except Exception:
                log.exception("%s: could not release volume %s of server %s", self.host, bdm["volume_id"],
                              instance["uuid"])

    # ----- attach and detach on a server --------------------------------------------------------------------------
    async def attach(self, instance: dict[str, Any], bdm: dict[str, Any]) -> None:
        """Export the reserved volume to this host, plug it into the guest, complete the attachment. On failure
        the attachment is deleted (the volume is available again) and the mapping goes."""
        plugged = False
        connection_info = None
        try:
            attachment = await self.volume.attachment_update(bdm["attachment_id"], self.connector(bdm["device_name"]))
            connection_info = attachment["connection_info"]
            await self.driver.attach_volume(instance, connection_info, bdm["device_name"])
            plugged = True
            await self.volume.attachment_complete(bdm["attachment_id"])
            await self.conductor.bdm_update(bdm["id"], {"connection_info": connection_info})
        except Exception:
            if plugged:
                with contextlib.suppress(Exception):
                    await self.driver.detach_volume(instance, connection_info, bdm["device_name"])
            with contextlib.suppress(Exception):
                await self.volume.attachment_delete(bdm["attachment_id"])
            with contextlib.suppress(Exception):
                await self.conductor.bdm_destroy(bdm["id"])
            raise

    async def detach(self, instance: dict[str, Any], bdm: dict[str, Any]) -> None:
        """Unplug the volume from the guest, delete the attachment, drop the mapping. If the guest does not let
        go, the volume goes back to in-use (roll_detaching) and stays attached."""
        try:
            if bdm["connection_info"]:
                await self.driver.detach_volume(instance, bdm["connection_info"], bdm["device_name"])
        except Exception:
            with contextlib.suppress(Exception):
                await self.volume.volume_action(bdm["volume_id"], "os-roll_detaching")
            raise
        if bdm["attachment_id"]:
            await self.volume.attachment_delete(bdm["attachment_id"])
        await self.conductor.bdm_destroy(bdm["id"])
