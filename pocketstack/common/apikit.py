"""What every service's API repeats, as one kit: policy enforcement on the request, the negotiated microversion,
ids, boolean and limit query values, and the OpenStack timestamp formats.

Each service keeps its own wording of errors (Nova's, Cinder's, Keystone's differ); the parsers here return
None or raise ValueError with a plain reason, and the service wraps that into its error.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Protocol

from fastapi import Request

from pocketstack.common.app import request_context
from pocketstack.common.context import RequestContext
from pocketstack.common.microversion import APIVersion, api_version
from pocketstack.common.policy import PolicyEngine

# A UUID with or without its dashes, as Nova's and Cinder's validators accept it.
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")

# oslo.utils' strutils.bool_from_string words.
TRUE_WORDS = frozenset({"1", "t", "true", "on", "y", "yes"})
FALSE_WORDS = frozenset({"0", "f", "false", "off", "n", "no"})


def is_uuid(value: str | None) -> bool:
    return bool(value) and bool(UUID_RE.match(value or ""))


def parse_bool(value: Any, *, empty: bool | None = None) -> bool:
    """A boolean from a query or body value (`true`/`false`/`1`/`0`/`yes`/`no`/`on`/`off`/`t`/`f`/`y`/`n`).

    `empty` is what an empty string means (Keystone: true); None rejects it. Raises ValueError otherwise.
    """
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text == "" and empty is not None:
        return empty
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise ValueError(f"{value!r} is not a boolean")


def parse_limit(raw: str | None, *, default: int, maximum: int) -> int:
    """A `limit` query value: a non-negative integer, capped at `maximum`. Raises ValueError with the reason."""
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"'{raw}' is not an integer") from None
    if value < 0:
        raise ValueError(f"{raw} is less than the minimum of 0")
    return min(value, maximum)


class HasPolicy(Protocol):
    policy: PolicyEngine


def enforce(request: Request, holder: HasPolicy, action: str, target: dict[str, Any] | None = None
            ) -> RequestContext:
    """Check `action` for the request's caller against `target` (default: the caller's own project)."""
    ctx = request_context(request)
    holder.policy.enforce(action, ctx, target or {"project_id": ctx.project_id})
    return ctx


def version(request: Request) -> APIVersion:
    """The microversion the edge negotiated for this request."""
    return api_version(request)


def iso_seconds(value: datetime | None) -> str | None:
    """2026-01-01T00:00:00Z: Nova's server bodies, Glance, Neutron."""
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def iso_micro(value: datetime | None) -> str | None:
    """2026-01-01T00:00:00.000000: Cinder, and Nova's actions, flavors and services."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f") if value else None


def iso_micro_z(value: float | datetime | None) -> str | None:
    """2026-01-01T00:00:00.000000Z: Keystone (also from a POSIX timestamp)."""
    if value is None:
        return None
    dt = datetime.fromtimestamp(value, UTC) if isinstance(value, float | int) else value
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
