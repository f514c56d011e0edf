"""What every networking route shares: the manager, strict request bodies, and Neutron's list semantics
(filters on any attribute with repeated values, `fields`, sorting, `limit`/`marker` pagination with links)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlencode

from fastapi import Request, Response
from pydantic import BaseModel, ConfigDict, ValidationError

from pocketstack.common.app import json_body, json_response, request_context
from pocketstack.common.context import RequestContext
from pocketstack.common.errors import BadRequest, NotFound
from pocketstack.common.routes import Handler, Route
from pocketstack.network.l3 import NetworkManager

M = TypeVar("M", bound=BaseModel)
CONTROL_PARAMS = {"fields", "sort_key", "sort_dir", "limit", "marker", "page_reverse"}
TAG_FILTERS: dict[str, Callable[[set[str], set[str]], bool]] = {
    "tags": lambda have, wanted: wanted <= have,
    "tags-any": lambda have, wanted: bool(wanted & have),
    "not-tags": lambda have, wanted: not wanted <= have,
    "not-tags-any": lambda have, wanted: not wanted & have,
}


class Body(BaseModel):
    """A request body: unknown attributes are refused (400), aliases such as `router:external` accepted."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def manager(request: Request) -> NetworkManager:
    return request.app.state.manager


def context(request: Request) -> RequestContext:
    return request_context(request)


def describe(exc: ValidationError) -> str:
    unknown = [str(e["loc"][-1]) for e in exc.errors() if e.get("type") == "extra_forbidden" and len(e["loc"]) == 1]
    if unknown:
        return f"Unrecognized attribute(s) '{', '.join(unknown)}'"
    parts = []
    for e in exc.errors():
        field = ".".join(str(p) for p in e.get("loc", ()))
        msg = "Unrecognized attribute" if e.get("type") == "extra_forbidden" else e.get("msg", "is invalid")
        parts.append(f"Invalid input for {field}. Reason: {msg}." if field else f"{msg}.")
    return " ".join(parts) or "Invalid input."


async def parse(request: Request, key: str, model: type[M]) -> dict[str, Any]:
    """The attributes the request sets, validated by `model`, keyed by their API names."""
    body = await json_body(request)
    if not isinstance(body, dict) or not isinstance(body.get(key), dict):
        raise BadRequest(f"Resource body required: the request body must be an object with a '{key}' object.")
    try:
        data = model.model_validate(body[key])
    except ValidationError as exc:
        raise BadRequest(describe(exc))
    return data.model_dump(by_alias=True, exclude_unset=True)


def _fields(request: Request) -> list[str]:
    return [f for value in request.query_params.getlist("fields") for f in value.split(",") if f]


def shown(request: Request, key: str, item: dict[str, Any], status: int = 200) -> Response:
    fields = _fields(request)
    if fields:
        item = {k: v for k, v in item.items() if k in fields}
    return json_response({key: item}, status=status)


def _matches(value: Any, wanted: list[str]) -> bool:
    if isinstance(value, bool):
        return str(value).lower() in {w.lower() for w in wanted}
    if value is None:
        return any(w in ("", "None", "null") for w in wanted)
    if isinstance(value, list):
        for w in wanted:
            if "=" in w and any(isinstance(v, dict) for v in value):
                k, _, v = w.partition("=")
                if k.endswith("_substr"):  # fixed_ips=ip_address_substr=... (Neutron's ip-substring-filtering)
                    base = k.removesuffix("_substr")
                    if any(isinstance(d, dict) and v in str(d.get(base, "")) for d in value):
                        return True
                elif any(isinstance(d, dict) and str(d.get(k)) == v for d in value):
                    return True
            elif w in [str(v) for v in value]:
                return True
        return False
    return str(value) in wanted


def _sortable(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, 0)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (1, value)
    return (2, str(value))


def pushdown(request: Request, columns: dict[str, str]) -> dict[str, list[str]]:
    """Filters a manager can apply in SQL: {query name: column name} for the ones present."""
    return {column: request.query_params.getlist(name) for name, column in columns.items()
            if name in request.query_params}


def listing(request: Request, key: str, items: list[dict[str, Any]], attributes: set[str],
            handled: frozenset[str] = frozenset()) -> Response:
    """Filter, sort, paginate and trim a list of visible resources the way Neutron's API does.

    `handled`: filters the caller has already applied.
    """
    params = request.query_params
    for name, test in TAG_FILTERS.items():
        for value in params.getlist(name):
            wanted = {t for t in value.split(",") if t}
            items = [item for item in items if test(set(item.get("tags", ())), wanted)]
    for name in params:
        if name in CONTROL_PARAMS or name in handled or name in TAG_FILTERS:
            continue
        if name not in attributes:
            raise BadRequest(f"['{name}'] is invalid attribute for filtering", error_type="HTTPBadRequest")
        wanted = params.getlist(name)
        items = [item for item in items if name in item and _matches(item[name], wanted)]
    sort_keys = params.getlist("sort_key")
    sort_dirs = params.getlist("sort_dir")
    if sort_dirs and len(sort_dirs) != len(sort_keys):
        raise BadRequest("The number of sort_keys and sort_dirs must be same", error_type="HTTPBadRequest")
    for sort_key in reversed(sort_keys):
        if sort_key not in attributes:
            raise BadRequest(f"{sort_key} is an invalid attribute for sort_key", error_type="HTTPBadRequest")
    for index in reversed(range(len(sort_keys))):
        direction = sort_dirs[index] if sort_dirs else "asc"
        if direction not in ("asc", "desc"):
            raise BadRequest(f"{direction} is invalid value for sort_dir, valid values are 'asc' and 'desc'",
                             error_type="HTTPBadRequest")
        items.sort(key=lambda it, k=sort_keys[index]: _sortable(it.get(k)), reverse=direction == "desc")
    limit = None
    if params.get("limit"):
        try:
            limit = int(params["limit"])
        except ValueError:
            raise BadRequest(f"'{params['limit']}' is not an integer", error_type="InvalidInput")
        if limit < 0:
            raise BadRequest(f"Limit must be an integer 0 or greater and not '{limit}'", error_type="InvalidInput")
        limit = limit or None
    marker = params.get("marker")
    reverse = (params.get("page_reverse") or "").lower() == "true"
    start, end = 0, len(items)
    if marker:
        index = next((i for i, it in enumerate(items) if it.get("id") == marker), None)
        if index is None:
            raise NotFound(f"Marker {marker} could not be found.", error_type="NotFound")
        if reverse:
            end = index
        else:
            start = index + 1
    page = items[start:end]
    links = []
    if limit is not None:
        if reverse:
            more = len(page) > limit
            page = page[-limit:]
        else:
            more = len(page) > limit
            page = page[:limit]
        if more and page:
            links.append({"rel": "next" if not reverse else "previous",
                          "href": _page_url(request, page[-1 if not reverse else 0]["id"], reverse)})
        if marker and page:
            links.append({"rel": "previous" if not reverse else "next",
                          "href": _page_url(request, page[0 if not reverse else -1]["id"], not reverse)})
    fields = _fields(request)
    if fields:
        page = [{k: v for k, v in it.items() if k in fields} for it in page]
    body: dict[str, Any] = {key: page}
    if links:
        body[f"{key}_links"] = links
    return json_response(body)


def _page_url(request: Request, marker: str, reverse: bool) -> str:
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in ("marker", "page_reverse")]
    params.append(("marker", marker))
    if reverse:
        params.append(("page_reverse", "True"))
    query = urlencode(params)
    return f"{request.url.scheme}://{request.url.netloc}{request.url.path}?{query}"


@dataclass(frozen=True)
class Resource:
    """One Neutron resource's CRUD: list/create/show/update/delete, served by the manager's methods named after
    it (`list_networks`, `create_network`, `get_network`, `update_network`, `delete_network`)."""

    path: str  # e.g. "/v2.0/networks"
    kind: str  # the member's key, e.g. "network"
    collection: str  # the collection's key, e.g. "networks"
    attributes: set[str]
    create: type[BaseModel]
    update: type[BaseModel] | None  # None: no PUT
    list_items: Callable[[Request], Awaitable[list[dict[str, Any]]]] | None = None  # a list with SQL pushdown

    def routes(self) -> dict[str, dict[str, Handler | Route]]:
        """The route table rows: the collection, then the member."""
        member: dict[str, Handler | Route] = {"GET": self._show}
        if self.update is not None:
            member["PUT"] = self._update
        member["DELETE"] = Route(self._delete, status=204)
        return {self.path: {"GET": self._list, "POST": self._create}, f"{self.path}/{{resource_id}}": member}

    async def _list(self, request: Request) -> Response:
        key = self.collection
        items = (await self.list_items(request) if self.list_items is not None
                 else await getattr(manager(request), f"list_{key}")(context(request)))
        return listing(request, key, items, self.attributes)

    async def _create(self, request: Request) -> Response:
        body = await json_body(request)
        if isinstance(body, dict) and self.collection in body:
            return await self._create_bulk(request, body[self.collection])
        data = await parse(request, self.kind, self.create)
        created = await getattr(manager(request), f"create_{self.kind}")(context(request), data)
        return shown(request, self.kind, created, 201)

    async def _create_bulk(self, request: Request, items: Any) -> Response:
        """Bulk create (`{"networks": [...]}`), all or nothing: every item is validated before any is made, and
        if making one fails those already made are deleted again, as Neutron's emulated bulk does."""
        if not isinstance(items, list) or not items or not all(isinstance(item, dict) for item in items):
            raise BadRequest(f"Resource body required: '{self.collection}' must be a non-empty list of objects.")
        try:
            datas = [self.create.model_validate(item).model_dump(by_alias=True, exclude_unset=True)
                     for item in items]
        except ValidationError as exc:
            raise BadRequest(describe(exc))
        mgr, ctx = manager(request), context(request)
        created: list[dict[str, Any]] = []
        try:
            for data in datas:
                created.append(await getattr(mgr, f"create_{self.kind}")(ctx, data))
        except BaseException:
            for item in reversed(created):
                await getattr(mgr, f"delete_{self.kind}")(ctx, item["id"])
            raise
        fields = _fields(request)
        if fields:
            created = [{k: v for k, v in item.items() if k in fields} for item in created]
        return json_response({self.collection: created}, status=201)

    async def _show(self, request: Request, resource_id: str) -> Response:
        return shown(request, self.kind,
                     await getattr(manager(request), f"get_{self.kind}")(context(request), resource_id))

    async def _update(self, request: Request, resource_id: str) -> Response:
        assert self.update is not None
        data = await parse(request, self.kind, self.update)
        return shown(request, self.kind,
                     await getattr(manager(request), f"update_{self.kind}")(context(request), resource_id, data))

    async def _delete(self, request: Request, resource_id: str) -> Response:
        await getattr(manager(request), f"delete_{self.kind}")(context(request), resource_id)
        return Response(status_code=204)
