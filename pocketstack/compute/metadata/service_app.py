"""The metadata API service: answers the network agent's metadata proxy for the guests (port 8775).

The proxy (pocketstack/network/agent) knows which port a request came from and forwards it with Nova's headers:
`X-Instance-ID`, `X-Tenant-ID` and `X-Instance-ID-Signature` (HMAC-SHA256 of the instance id with the shared
secret). There is no token: the signature is the authentication, so a guest cannot ask for another server's data.
"""

from __future__ import annotations

import hashlib
import hmac

from fastapi import APIRouter, Request
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response

from pocketstack.common.app import create_app
from pocketstack.common.db import Database
from pocketstack.common.errors import BadRequest, Forbidden, NotFound
from pocketstack.common.service import Service, ServiceSpec, shared_secret
from pocketstack.compute import models as m
from pocketstack.compute.metadata.content import InstanceMetadata, MetadataNotFound
from pocketstack.compute.spec import METADATA_SECRET_KEY, METADATA_SPEC
from pocketstack.compute.store.instances import instance_dict
from pocketstack.settings import Settings

router = APIRouter()


def sign_instance_id(secret: str, instance_id: str) -> str:
    """The `X-Instance-ID-Signature` the proxy sends for an instance id."""
    return hmac.new(secret.encode(), instance_id.encode(), hashlib.sha256).hexdigest()


class MetadataService(Service):
    name = "metadata"

    def __init__(self, settings: Settings, specs: list[ServiceSpec]) -> None:
        self.settings = settings
        self.db = Database(settings.database_url("compute"))  # read-only: compute owns and migrates it
        self.app = create_app(service_name="metadata", style=METADATA_SPEC.errors, routers=[router],
                              validator=None, is_public=lambda method, path: True, access_log=settings.access_log,
                              state={"metadata": self})
        self._secret: str | None = None

    async def start(self) -> None:
        self._secret = shared_secret(self.settings, "metadata", METADATA_SECRET_KEY)

    async def stop(self) -> None:
        await self.db.close()

    def verify(self, request: Request) -> tuple[str, str]:
        """The instance id and project of a signed proxy request; 400 when headers miss, 403 when forged."""
        instance_id = request.headers.get("X-Instance-ID")
        project_id = request.headers.get("X-Tenant-ID")
        signature = request.headers.get("X-Instance-ID-Signature")
        if not instance_id or not project_id or not signature:
            raise BadRequest("X-Instance-ID, X-Tenant-ID and X-Instance-ID-Signature headers are required")
        assert self._secret is not None
        if not hmac.compare_digest(sign_instance_id(self._secret, instance_id), signature):
            raise Forbidden("Invalid proxy request signature.")
        return instance_id, project_id

    async def instance_metadata(self, instance_id: str, project_id: str) -> InstanceMetadata:
        def load(session: Session) -> InstanceMetadata | None:
            inst = session.get(m.Instance, instance_id)
            if inst is None or inst.deleted or inst.project_id != project_id:
                return None
            data = instance_dict(inst)
            data.update(launch_index=inst.launch_index, reservation_id=inst.reservation_id)
            meta = {key: value for key, value in session.execute(
                select(m.InstanceMetadata.key, m.InstanceMetadata.value)
                .where(m.InstanceMetadata.instance_uuid == instance_id))}
            key_type = "ssh"
            if inst.key_name:
                key_type = session.scalar(select(m.KeyPair.type).where(
                    m.KeyPair.user_id == inst.user_id, m.KeyPair.name == inst.key_name)) or "ssh"
            return InstanceMetadata(data, meta, key_type)

        found = await self.db.run(load, write=False)
        if found is None:
            raise NotFound(f"Instance {instance_id} could not be found.")
        return found


@router.get("/{path:path}")
async def metadata(request: Request, path: str) -> Response:
    service: MetadataService = request.app.state.metadata
    instance_id, project_id = service.verify(request)
    docs = await service.instance_metadata(instance_id, project_id)
    try:
        body, content_type = docs.lookup(path)
    except MetadataNotFound:
        raise NotFound("The resource could not be found.") from None
    return Response(body, media_type=content_type)


def create(settings: Settings, specs: list[ServiceSpec]) -> MetadataService:
    return MetadataService(settings, specs)
