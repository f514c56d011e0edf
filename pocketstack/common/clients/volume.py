"""Client of the block storage service for the compute side (FLOW.md steps 26-28): volumes and attachments.

Calls go to `/v3/{project_id}/...` of the caller's project (the current request context's unless given), at
microversion 3.44 (the attachments API with `os-complete`), with the caller's token and request id.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pocketstack.common.clients.base import ServiceClient
from pocketstack.common.context import get_current
from pocketstack.common.errors import APIError, NotFound

MICROVERSION = "volume 3.44"


class VolumeError(APIError):
    """A volume the compute side waits for ended in an error status."""

    status = 500


class VolumeClient(ServiceClient):
    def __init__(self, base_url: str) -> None:
        super().__init__(base_url, "volume")

    def _path(self, path: str, project_id: str | None) -> str:
        project = project_id or (get_current().project_id if get_current() else None)
        if not project:
            raise ValueError("a volume call needs a project: none given and no request context")
        return f"/v3/{project}{path}"

    async def _call(self, method: str, path: str, *, project_id: str | None = None, token: str | None = None,
                    json: Any = None, params: dict[str, Any] | None = None) -> Any:
        _, body, _ = await self.request(method, self._path(path, project_id), token=token, json=json,
                                        params=params, headers={"OpenStack-API-Version": MICROVERSION})
        return body

    async def get_volume(self, volume_id: str, **kw: Any) -> dict[str, Any]:
        return (await self._call("GET", f"/volumes/{volume_id}", **kw))["volume"]

    async def get_snapshot(self, snapshot_id: str, **kw: Any) -> dict[str, Any]:
        return (await self._call("GET", f"/snapshots/{snapshot_id}", **kw))["snapshot"]

    async def create_volume(self, size: int, *, image_id: str | None = None, snapshot_id: str | None = None,
                            name: str = "", availability_zone: str | None = None, **kw: Any) -> dict[str, Any]:
        volume: dict[str, Any] = {"size": size, "name": name}
        if image_id:
            volume["imageRef"] = image_id
        if snapshot_id:
            volume["snapshot_id"] = snapshot_id
        if availability_zone:
            volume["availability_zone"] = availability_zone
        return (await self._call("POST", "/volumes", json={"volume": volume}, **kw))["volume"]

    async def delete_volume(self, volume_id: str, **kw: Any) -> None:
        await self._call("DELETE", f"/volumes/{volume_id}", **kw)

    async def volume_action(self, volume_id: str, action: str, args: Any = None, **kw: Any) -> None:
        await self._call("POST", f"/volumes/{volume_id}/action", json={action: args or {}}, **kw)

    async def wait_for_volume(self, volume_id: str, wanted: str, *, within: float = 600.0, **kw: Any) -> dict[str, Any]:
        """Poll until the volume is `wanted` (every 50 ms at first, backing off to 1 s: a volume from a cached
        image is ready in a fraction of a second, the first one of a large image takes minutes); VolumeError when it
        ends in error or the time runs out."""
        deadline = time.monotonic() + within
        interval = 0.05
        while True:
            volume = await self.get_volume(volume_id, **kw)
            if volume["status"] == wanted:
                return volume
            if volume["status"].startswith("error"):
                raise VolumeError(f"Volume {volume_id} went to status {volume['status']} instead of {wanted}"
                                  f"{await self._reason(volume_id, **kw)}")
            if time.monotonic() > deadline:
                raise VolumeError(f"Volume {volume_id} is still {volume['status']} after {within:.0f}s, not "
                                  f"{wanted}.")
            await asyncio.sleep(interval)
            interval = min(interval * 1.5, 1.0)

    async def _reason(self, volume_id: str, **kw: Any) -> str:
        """The newest user message about the volume (why it failed), as `: message`, or ''."""
        try:
            body = await self._call("GET", "/messages", params={"resource_uuid": volume_id, "limit": 1,
                                                                "sort": "created_at:desc"}, **kw)
        except APIError:
            return ""
        return f": {body['messages'][0]['user_message']}" if body.get("messages") else "."

    # ----- attachments (3.27+, complete 3.44) --------------------------------------------------------------------
    async def attachment_create(self, volume_id: str, instance_uuid: str, connector: dict[str, Any] | None = None,
                                **kw: Any) -> dict[str, Any]:
        """Reserve the volume for the server; with a connector also export it (connection_info comes back)."""
        attachment: dict[str, Any] = {"volume_uuid": volume_id, "instance_uuid": instance_uuid}
        if connector is not None:
            attachment["connector"] = connector
        return (await self._call("POST", "/attachments", json={"attachment": attachment}, **kw))["attachment"]

    async def attachment_update(self, attachment_id: str, connector: dict[str, Any], **kw: Any) -> dict[str, Any]:
        return (await self._call("PUT", f"/attachments/{attachment_id}",
                                 json={"attachment": {"connector": connector}}, **kw))["attachment"]

    async def attachment_complete(self, attachment_id: str, **kw: Any) -> None:
        await self._call("POST", f"/attachments/{attachment_id}/action", json={"os-complete": None}, **kw)

    async def attachment_delete(self, attachment_id: str, **kw: Any) -> None:
        """Detach; an attachment already gone counts as detached."""
        try:
            await self._call("DELETE", f"/attachments/{attachment_id}", **kw)
        except NotFound:
            pass
