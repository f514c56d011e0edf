"""The metadata API service: answers the network agent's metadata proxy for the guests (port 8775).

The proxy (pocketstack/network/agent) knows which port a request came from and forwards it with Nova's headers:
`X-Instance-ID`, `X-Tenant-ID` and `X-Instance-ID-Signature` (HMAC-SHA256 of the instance id with the shared
secret). There is no token: the signature is the authentication, so a guest cannot ask for another server's data.
"""

from __future__ import annotations

import hashlib
import hmac

from fastapi import Request

from pocketstack.common.app import create_app
from pocketstack.common.db import Database
from pocketstack.common.errors import BadRequest, Conflict, Forbidden, NotFound
from pocketstack.common.health import database_check
from pocketstack.common.routes import build_router
from pocketstack.common.service import Service, ServiceSpec, shared_secret
from pocketstack.compute.metadata.content import InstanceMetadata
from pocketstack.compute.metadata.routes import ROUTES
from pocketstack.compute.passwords import PasswordSeal
from pocketstack.compute.spec import METADATA_SECRET_KEY, METADATA_SPEC
from pocketstack.compute.store.instances import GuestStore
from pocketstack.settings import Settings


def sign_instance_id(secret: str, instance_id: str) -> str:
    """The `X-Instance-ID-Signature` the proxy sends for an instance id."""
    return hmac.new(secret.encode(), instance_id.encode(), hashlib.sha256).hexdigest()


class MetadataService(Service):
    name = "metadata"

    def __init__(self, settings: Settings, specs: list[ServiceSpec]) -> None:
        self.settings = settings
        self.db = Database(settings.database_url("compute"))  # read-only: compute owns and migrates it
        self.guests = GuestStore(self.db)
        self.app = create_app(service_name="metadata", style=METADATA_SPEC.errors, routers=[build_router(ROUTES)],
                              validator=None, is_public=lambda method, path: True, access_log=settings.access_log,
                              state={"metadata": self}, health=[database_check(self.db)])
        self._secret: str | None = None
        self._seal: PasswordSeal | None = None

    async def start(self) -> None:
        self._secret = shared_secret(self.settings, "metadata", METADATA_SECRET_KEY)
        self._seal = PasswordSeal(self._secret)

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
        found = await self.guests.guest_record(instance_id, project_id)
        if found is None:
            raise NotFound(f"Instance {instance_id} could not be found.")
        data, meta, key_type = found
        sealed, password = data.pop("admin_pass_sealed", None), data.pop("guest_password", "")
        if sealed and self._seal is not None:
            data["admin_pass"] = self._seal.unseal(sealed)
        return InstanceMetadata(data, meta, key_type, password)

    async def post_password(self, instance_id: str, project_id: str, password: str) -> None:
        """Keep the (encrypted) password a guest posts; 409 when it posted one already."""
        kept = await self.guests.post_password(instance_id, project_id, password)
        if kept is None:
            raise NotFound(f"Instance {instance_id} could not be found.")
        if not kept:
            raise Conflict("Password already set.")


def create(settings: Settings, specs: list[ServiceSpec]) -> MetadataService:
    return MetadataService(settings, specs)
