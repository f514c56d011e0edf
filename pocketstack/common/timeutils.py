"""Time helpers shared by the services (naive UTC datetimes in the databases)."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now in UTC, without tzinfo, as the databases store it."""
    return datetime.now(UTC).replace(tzinfo=None)
