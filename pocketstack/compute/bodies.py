"""Request-body and query helpers shared by the compute API handlers (flavors, key pairs, quotas, groups,
metadata); outside `api/` because they are no handlers."""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel

from pocketstack.common.app import json_body
from pocketstack.common.errors import BadRequest

M = TypeVar("M", bound=BaseModel)


async def wrapped(request: Request, key: str) -> Any:
    """The value under `key` of a JSON object body (`{"flavor": {...}}`), 400 when the body has no such key."""
    raw = await json_body(request)
    if not isinstance(raw, dict) or key not in raw:
        raise BadRequest(f"Invalid input for field/attribute {key}: '{key}' is a required property")
    return raw[key]


async def parse(request: Request, key: str, model: type[M]) -> M:
    """The object under `key`, validated by `model` (pydantic errors become 400 at the edge)."""
    value = await wrapped(request, key)
    if not isinstance(value, dict):
        raise BadRequest(f"Invalid input for field/attribute {key}: it must be an object")
    return model.model_validate(value)


def query_bool(request: Request, name: str) -> bool | None:
    """A boolean query parameter as Nova reads it (true/false/1/0/yes/no/on/off); None when absent."""
    raw = request.query_params.get(name)
    if raw is None:
        return None
    value = raw.strip().lower()
    if value in ("1", "true", "t", "yes", "y", "on"):
        return True
    if value in ("0", "false", "f", "no", "n", "off"):
        return False
    raise BadRequest(f"Invalid input for query parameters {name}. Value: {raw}. '{raw}' is not a boolean")


def display_name(value: str) -> str:
    """A resource name as Nova accepts it: printable, no leading or trailing whitespace (pydantic validator)."""
    if value.strip() != value or not value.isprintable():
        raise ValueError("name may not have leading or trailing whitespace nor control characters")
    return value
