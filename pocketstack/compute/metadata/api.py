"""The metadata API's one handler: any path of a guest's metadata tree, for a signed proxy request."""

from __future__ import annotations

from typing import Protocol

from fastapi import Request
from starlette.responses import Response

from pocketstack.common.errors import NotFound
from pocketstack.compute.metadata.content import InstanceMetadata, MetadataNotFound


class MetadataSource(Protocol):
    """What the handler needs of the metadata service (`app.state.metadata`)."""

    def verify(self, request: Request) -> tuple[str, str]: ...

    async def instance_metadata(self, instance_id: str, project_id: str) -> InstanceMetadata: ...


async def metadata(request: Request, path: str) -> Response:
    service: MetadataSource = request.app.state.metadata
    instance_id, project_id = service.verify(request)
    docs = await service.instance_metadata(instance_id, project_id)
    try:
        body, content_type = docs.lookup(path)
    except MetadataNotFound:
        raise NotFound("The resource could not be found.") from None
    return Response(body, media_type=content_type)
