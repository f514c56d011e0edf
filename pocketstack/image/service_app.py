"""The image service as the launcher runs it: database, store, the HTTP app."""

from __future__ import annotations

from pocketstack.common.app import create_app
from pocketstack.common.db import Database
from pocketstack.common.health import database_check
from pocketstack.common.routes import build_router
from pocketstack.common.service import Service, ServiceSpec, remote_token_validator
from pocketstack.image.api import versions
from pocketstack.image.api.routes import ROUTES
from pocketstack.image.service import ImageManager
from pocketstack.image.spec import SPEC
from pocketstack.settings import Settings


class ImageService(Service):
    name = "image"

    def __init__(self, settings: Settings, specs: list[ServiceSpec]) -> None:
        self.settings = settings
        self.spec = next(s for s in specs if s.name == "image")
        self.db = Database(settings.database_url("image"))
        self.manager = ImageManager(settings, self.db)
        self.app = create_app(
            service_name="image", style=SPEC.errors,
            routers=[build_router(ROUTES)],
            validator=remote_token_validator(settings),
            is_public=lambda method, path: (method, path) in versions.PUBLIC_PATHS,
            access_log=settings.access_log, state={"manager": self.manager},
            health=[database_check(self.db)],
            # image data is streamed to the store, never held: only the JSON bodies are size-limited
            unlimited_body=lambda method, path: method == "PUT" and path.endswith(("/file", "/stage")),
            redirect_slashes=False,  # Glance's router: /v2/images/ is no image (404), not the list
        )

    async def start(self) -> None:
        await self.db.migrate(self.spec.migrations_dir, self.spec.version_table)
        await self.manager.recover()

    async def stop(self) -> None:
        await self.manager.stop()
        await self.db.close()


def create(settings: Settings, specs: list[ServiceSpec]) -> ImageService:
    return ImageService(settings, specs)
