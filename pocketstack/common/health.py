"""`/healthcheck` on every service, as oslo.middleware's healthcheck answers it.

`GET /healthcheck` is 200 `OK` when every dependency answers and 503 when one does not (text, or with `Accept:
application/json` one reason per dependency); `HEAD` is 204 or 503. It needs no token, so load balancers and
`pocketstack status` can probe it; the reasons name the dependency and the error's class, never a URL or secret.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from pocketstack.common.config import CoreSettings
from pocketstack.common.db import Database
from pocketstack.common.rpc import get_transport

HEALTH_PATH = "/healthcheck"
PROBE_TIMEOUT = 3.0


@dataclass(frozen=True)
class HealthCheck:
    """One dependency: `probe` returns when it answers and raises when it does not."""

    name: str
    probe: Callable[[], Awaitable[Any]]


def database_check(db: Database, name: str = "database") -> HealthCheck:
    return HealthCheck(name, lambda: db.run(lambda session: session.execute(text("SELECT 1")).scalar(), write=False))


def bus_check(settings: CoreSettings) -> HealthCheck:
    return HealthCheck("message bus", lambda: get_transport(settings).check())


async def run_checks(checks: list[HealthCheck]) -> tuple[bool, list[dict[str, Any]]]:
    """Probe every dependency at once; whether all answered, and one reason each."""

    async def one(check: HealthCheck) -> dict[str, Any]:
        began = time.perf_counter()
        try:
            await asyncio.wait_for(check.probe(), PROBE_TIMEOUT)
        except Exception as exc:  # any failure is the dependency being down
            reason = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
            return {"class": check.name, "reason": f"DOWN: {reason}", "ok": False}
        return {"class": check.name, "reason": "OK", "ok": True,
                "details": f"answered in {(time.perf_counter() - began) * 1000:.1f} ms"}

    reasons = list(await asyncio.gather(*(one(check) for check in checks)))
    return all(r["ok"] for r in reasons), reasons
