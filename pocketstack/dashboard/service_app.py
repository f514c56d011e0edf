"""The dashboard as a `Service` the launcher and `serve dashboard` run."""

from __future__ import annotations

from typing import Any

from pocketstack.common.service import Service, ServiceSpec
from pocketstack.dashboard.app import create_app
from pocketstack.dashboard.session import SessionStore


class DashboardService(Service):
    name = "dashboard"

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.sessions = SessionStore(settings.dashboard.session_hours * 3600)
        self.app = create_app(settings, self.sessions)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        await self.sessions.close()


def create(settings: Any, specs: list[ServiceSpec]) -> DashboardService:
    return DashboardService(settings)
