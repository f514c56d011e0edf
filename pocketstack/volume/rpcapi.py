"""Client side of the volume manager's RPC interface (topic `volume`, server `host@backend`), as cinder-volume's."""

from __future__ import annotations

from typing import Any

from pocketstack.common.rpc import RPCAPI


def server_of(host: str) -> str:
    """The RPC server of a volume's backend: its `host@backend`, without the `#pool`."""
    return host.split("#", 1)[0]


class VolumeManagerAPI(RPCAPI):
    topic = "volume"
    namespace = "volume"
    version = "1.0"

    async def create_volume(self, host: str, volume_id: str) -> None:
        await self.prepare(server=server_of(host)).cast("create_volume", volume_id=volume_id)

    async def delete_volume(self, host: str, volume_id: str) -> None:
        await self.prepare(server=server_of(host)).cast("delete_volume", volume_id=volume_id)

    async def extend_volume(self, host: str, volume_id: str, new_size: int) -> None:
        await self.prepare(server=server_of(host)).cast("extend_volume", volume_id=volume_id,
                                                        new_size=new_size)

    async def create_snapshot(self, host: str, snapshot_id: str) -> None:
        await self.prepare(server=server_of(host)).cast("create_snapshot", snapshot_id=snapshot_id)

    async def delete_snapshot(self, host: str, snapshot_id: str) -> None:
        await self.prepare(server=server_of(host)).cast("delete_snapshot", snapshot_id=snapshot_id)

    async def revert_to_snapshot(self, host: str, volume_id: str, snapshot_id: str) -> None:
        await self.prepare(server=server_of(host)).cast("revert_to_snapshot", volume_id=volume_id,
                                                        snapshot_id=snapshot_id)

    async def copy_volume_to_image(self, host: str, volume_id: str, image_id: str, disk_format: str) -> None:
        await self.prepare(server=server_of(host)).cast("copy_volume_to_image", volume_id=volume_id,
                                                        image_id=image_id, disk_format=disk_format)

    async def attachment_update(self, host: str, attachment_id: str, connector: dict[str, Any]) -> dict[str, Any]:
        """Export the volume to the connector's host; returns the connection info (CALL)."""
        return await self.prepare(server=server_of(host)).call("attachment_update",
                                                               attachment_id=attachment_id, connector=connector)

    async def initialize_connection(self, host: str, volume_id: str, connector: dict[str, Any]) -> dict[str, Any]:
        return await self.prepare(server=server_of(host)).call("initialize_connection", volume_id=volume_id,
                                                               connector=connector)
