"""The dashboard's settings section (`[dashboard]`)."""

from __future__ import annotations

from pydantic import Field

from pocketstack.common.config import ServiceSettings


class DashboardSettings(ServiceSettings):
    """The web dashboard `pocketstack up` serves (8000 + the port offset)."""

    port: int = 8000
    session_hours: float = Field(8.0, gt=0, description="hours a login lasts (at most the token's own life)")
