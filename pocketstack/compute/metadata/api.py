"""The metadata API's handlers: any path of a guest's metadata tree, and the password a guest posts, for a
signed proxy request."""

from __future__ import annotations

from typing import Protocol

from fastapi import Request
from starlette.responses import Response

from pocketstack.common.errors import BadRequest, NotFound
from pocketstack.compute.metadata.content import InstanceMetadata, MetadataNotFound, is_password_path
from pocketstack.compute.passwords import GUEST_PASSWORD_MAX


class MetadataSource(Protocol):
    """What the handler needs of the metadata service (`app.state.metadata`)."""

    def verify(self, request: Request) -> tuple[str, str]: ...

    async def instance_metadata(self, instance_id: str, project_id: str) -> InstanceMetadata: ...

    async def post_password(self, instance_id: str, project_id: str, password: str) -> None: ...


async def metadata(request: Request, path: str) -> Response:
    service: MetadataSource = request.app.state.metadata
    instance_id, project_id = service.verify(request)
    docs = await service.instance_metadata(instance_id, project_id)
    try:
        body, content_type = docs.lookup(path)
    except MetadataNotFound:
        raise NotFound("The resource could not be found.") from None
    return Response(body, media_type=content_type)


async def post_password(request: Request, path: str) -> Response:
    """`POST /openstack/<version>/password`: the guest's password, encrypted with its key pair, kept once."""
    service: MetadataSource = request.app.state.metadata
    instance_id, project_id = service.verify(request)
    if not is_password_path(path):
        raise NotFound("The resource could not be found.")
    body = await request.body()
    if len(body) > GUEST_PASSWORD_MAX:
        raise BadRequest("Request is too large.")
    try:
        password = body.decode()
    except UnicodeDecodeError:
        raise BadRequest("The password must be text.") from None
    await service.post_password(instance_id, project_id, password)
    return Response(b"", media_type="text/plain")
