"""What every block storage route shares: state, the project in the URL, policy, bodies, links and Cinder's list
semantics (filters, `sort`, `limit`/`marker`/`offset` with next links, `with_count`)."""

from __future__ import annotations

import ast
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlencode

from fastapi import Request
from pydantic import BaseModel, ValidationError

from pocketstack.common.app import describe_validation_error, json_body, request_context
from pocketstack.common.clients.image import ImageClient
from pocketstack.common.context import RequestContext
from pocketstack.common.db import Database
from pocketstack.common.errors import BadRequest, NotFound
from pocketstack.common.microversion import APIVersion, MicroversionSpec, api_version
from pocketstack.common.policy import PolicyEngine
from pocketstack.settings import Settings
from pocketstack.volume.store.lookups import is_uuid  # noqa: F401 -- the API's id check, shared with the store

MICROVERSIONS = MicroversionSpec("volume", "3.0", "3.65")
MAX_LIMIT = 1000  # osapi_max_limit
M = TypeVar("M", bound=BaseModel)


@dataclass
class VolumeAPIState:
    """Everything the block storage handlers share; lives on `app.state.volume`."""

    settings: Settings
    db: Database
    policy: PolicyEngine
    manager: Any  # pocketstack.volume.rpcapi.VolumeManagerAPI, set when the service starts
    image: ImageClient


def state(request: Request) -> VolumeAPIState:
    return request.app.state.volume


def check_project(request: Request, project_id: str) -> None:
    """The project in the URL must be the token's (Cinder answers 400 "Malformed request url" otherwise)."""
    if project_id != request_context(request).project_id:
        raise BadRequest("Malformed request url")


def enforce(request: Request, action: str, target: dict[str, Any] | None = None) -> RequestContext:
    ctx = request_context(request)
    state(request).policy.enforce(action, ctx, target or {"project_id": ctx.project_id})
    return ctx


def authorize(request: Request, action: str) -> Callable[[Any], None]:
    """The policy check of `action` on the project of the row it is given (the store calls it on the row it
    loaded, inside the transaction)."""
    return lambda row: enforce(request, action, {"project_id": row.project_id})


def version(request: Request) -> APIVersion:
    return api_version(request)


def require_version(request: Request, minimum: str) -> None:
    """Routes that exist from a microversion on answer 404 below it, as Cinder's versioned controllers do."""
    if version(request) < minimum:
        raise NotFound(f"The resource could not be found: it needs microversion {minimum} or later.")


def isotime(value: datetime | None) -> str | None:
    """Cinder's timestamps: 2026-01-01T00:00:00.000000."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f") if value else None


def links(request: Request, kind: str, ident: str) -> list[dict[str, str]]:
    root = f"{request.url.scheme}://{request.url.netloc}"
    project = request.path_params.get("project_id", "")
    return [{"rel": "self", "href": f"{root}/v3/{project}/{kind}/{ident}"},
            {"rel": "bookmark", "href": f"{root}/{project}/{kind}/{ident}"}]


async def body_of(request: Request, key: str, model: type[M], *, strict: bool = True) -> M:
    """The `key` object of the JSON body, validated; unknown attributes are 400 unless `strict` is off."""
    raw = await json_body(request)
    if not isinstance(raw, dict) or not isinstance(raw.get(key), dict):
        raise BadRequest(f"Missing required element '{key}' in request body.")
    data = raw[key]
    if not strict:
        data = {k: v for k, v in data.items() if k in model.model_fields or any(
            f.alias == k for f in model.model_fields.values())}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise BadRequest(describe_validation_error(exc))


def bool_param(value: Any, name: str) -> bool:
    """Cinder's strict boolean parsing of query and body values."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "t", "yes", "y", "on"):
        return True
    if text in ("false", "0", "f", "no", "n", "off"):
        return False
    raise BadRequest(f"Invalid input received: '{name}' must be a boolean, got {value!r}.")


def int_param(value: Any, name: str, minimum: int = 0) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"Invalid input received: {name} must be an integer, got {value!r}.")
    if number < minimum:
        raise BadRequest(f"Invalid input received: {name} must be >= {minimum}.")
    return number


def metadata_param(value: str) -> dict[str, str]:
    """The `metadata` filter: a JSON object or a Python dict literal (what the clients send)."""
    for parse in (json.loads, ast.literal_eval):
        try:
            parsed = parse(value)
        except (ValueError, SyntaxError):
            continue
        if isinstance(parsed, dict):
            return {str(k): str(v) for k, v in parsed.items()}
    raise BadRequest(f"Invalid input received: metadata filter {value!r} is not a dictionary.")


def check_metadata(metadata: Any, what: str = "metadata") -> dict[str, str]:
    if not isinstance(metadata, dict):
        raise BadRequest(f"Invalid input received: {what} must be a dictionary of strings.")
    for key, value in metadata.items():
        if not isinstance(key, str) or not 1 <= len(key) <= 255:
            raise BadRequest(f"Invalid input received: {what} keys must be strings of 1 to 255 characters.")
        if not isinstance(value, str) or len(value) > 255:
            raise BadRequest(f"Invalid input received: {what} value for {key!r} must be a string of at most 255 "
                             "characters.")
    return metadata


# ----- lists -----------------------------------------------------------------------------------------------------
PAGING = {"limit", "marker", "offset", "sort", "sort_key", "sort_dir", "with_count", "all_tenants"}
_TIME_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "gt": lambda a, b: a > b, "gte": lambda a, b: a >= b, "lt": lambda a, b: a < b, "lte": lambda a, b: a <= b,
    "eq": lambda a, b: a == b, "neq": lambda a, b: a != b}


def time_filter(value: str, name: str) -> Callable[[datetime | None], bool]:
    """`created_at=gt:2026-01-01T00:00:00` (3.60): one or more comparisons joined by commas."""
    checks = []
    for part in value.split(","):
        op, _, when = part.partition(":")
        if op not in _TIME_OPS or not when:
            raise BadRequest(f"Invalid input received: {name} filter {part!r} must look like gt:2026-01-01T00:00:00 "
                             f"(operators: {', '.join(_TIME_OPS)}).")
        try:
            moment = datetime.fromisoformat(when.replace("Z", "+00:00")).replace(tzinfo=None)
        except ValueError:
            raise BadRequest(f"Invalid input received: {when!r} is not an ISO 8601 time.")
        checks.append((_TIME_OPS[op], moment))
    return lambda actual: actual is not None and all(cmp(actual, moment) for cmp, moment in checks)


def sort_spec(request: Request, allowed: dict[str, str], default: str = "created_at") -> list[tuple[str, bool]]:
    """[(attribute, descending)] from `sort=k1:dir,k2` or `sort_key`/`sort_dir`; unknown keys are 400."""
    q = request.query_params
    if "sort" in q and ("sort_key" in q or "sort_dir" in q):
        raise BadRequest("The 'sort_key' and 'sort_dir' parameters are deprecated and cannot be used with the "
                         "'sort' parameter.")
    items: list[tuple[str, str]] = []
    if "sort" in q:
        for part in q["sort"].split(","):
            key, _, direction = part.strip().partition(":")
            items.append((key, direction or "desc"))
    elif "sort_key" in q or "sort_dir" in q:
        items.append((q.get("sort_key", default), q.get("sort_dir", "desc")))
    else:
        items.append((default, "desc"))
    spec = []
    for key, direction in items:
        if key not in allowed:
            raise BadRequest(f"Invalid input received: sort key {key!r} is not one of {', '.join(sorted(allowed))}.")
        if direction.lower() not in ("asc", "desc"):
            raise BadRequest(f"Invalid input received: sort direction {direction!r} is not asc or desc.")
        spec.append((allowed[key], direction.lower() == "desc"))
    return spec


def _sort_value(value: Any) -> tuple[int, Any]:
    return (0, "") if value is None else (1, value)


def paginate(request: Request, items: Sequence[Any], sort: list[tuple[str, bool]],
             ident: Callable[[Any], str] = lambda item: item.id) -> tuple[list[Any], int, bool]:
    """Sort, then apply marker, offset and limit; returns (page, total before paging, whether to link a next page)."""
    ordered = list(items)
    ordered.sort(key=ident, reverse=sort[0][1] if sort else True)  # stable tie-break on the id
    for attr, desc in reversed(sort):
        ordered.sort(key=lambda item, a=attr: _sort_value(getattr(item, a)), reverse=desc)
    total = len(ordered)
    q = request.query_params
    if q.get("marker"):
        position = next((i for i, item in enumerate(ordered) if ident(item) == q["marker"]), None)
        if position is None:
            raise NotFound(f"Marker {q['marker']} could not be found.")  # Cinder's MarkerNotFound
        ordered = ordered[position + 1:]
    if q.get("offset"):
        ordered = ordered[int_param(q["offset"], "offset"):]
    limit = min(int_param(q["limit"], "limit"), MAX_LIMIT) if q.get("limit") else MAX_LIMIT
    page = ordered[:limit]
    return page, total, bool(page) and len(page) == limit  # a full page links on, as Cinder's (maybe to an empty one)


def collection(request: Request, key: str, views: list[dict[str, Any]], total: int, more: bool,
               path: str | None = None) -> dict[str, Any]:
    """A list body with its next link (marker = the last id) and, from 3.45 when asked, the count."""
    body: dict[str, Any] = {key: views}
    if more and views:
        params = {k: v for k, v in request.query_params.items() if k != "marker"}
        params["marker"] = views[-1]["id"]
        root = f"{request.url.scheme}://{request.url.netloc}"
        project = request.path_params.get("project_id", "")
        body[f"{key}_links"] = [{"rel": "next",
                                 "href": f"{root}/v3/{project}/{path or key}?{urlencode(params)}"}]
    if version(request) >= "3.45" and bool_param(request.query_params.get("with_count", False), "with_count"):
        body["count"] = total
    return body


def check_filters(request: Request, allowed: set[str]) -> dict[str, str]:
    """The filters of a list request; unknown ones are 400 as with Cinder's resource_filters."""
    filters = {k: v for k, v in request.query_params.items() if k not in PAGING}
    unknown = [k for k in filters if k.rstrip("~") not in allowed or (k.endswith("~") and version(request) < "3.34")]
    if unknown:
        raise BadRequest(f"Invalid input received: Invalid filters {', '.join(sorted(unknown))} are found in query "
                         "options.")
    return filters


def text_matches(actual: str | None, wanted: str, like: bool) -> bool:
    if like:
        return actual is not None and wanted.lower() in actual.lower()
    return actual == wanted


def all_projects(request: Request, ctx: RequestContext) -> bool:
    """`all_tenants` lists every project's resources for admins; others get their own (Cinder ignores it)."""
    raw = request.query_params.get("all_tenants")
    return raw is not None and ctx.is_admin and bool_param(raw or "true", "all_tenants")
