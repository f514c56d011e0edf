"""Route tables: each service's URL map as one declaration, path -> method -> handler (as Placement's
ROUTE_DECLARATIONS), turned into the FastAPI router its app serves.

    ROUTES: RouteTable = {
        "/v2.1/flavors": {"GET": flavors.list_flavors, "POST": flavors.create_flavor},
        "/v2.1/flavors/{flavor_id}": {"GET": flavors.show_flavor, "DELETE": Route(flavors.delete, status=202)},
    }

Paths match in the order of the table (put `/servers/detail` before `/servers/{server_id}`). A handler is a
plain async function taking the FastAPI request (and path parameters by name); it returns a Response.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter
from fastapi.params import Depends

Handler = Callable[..., Any]


@dataclass(frozen=True)
class Route:
    """A handler with what FastAPI needs beyond it: the status of a response the handler does not build."""

    handler: Handler
    status: int | None = None


RouteTable = Mapping[str, Mapping[str, Handler | Route]]


def routes(table: RouteTable) -> Iterator[tuple[str, str, Route]]:
    """(path, method, route) of every entry, in the table's order."""
    for path, methods in table.items():
        for method, entry in methods.items():
            yield path, method, entry if isinstance(entry, Route) else Route(entry)


def build_router(table: RouteTable, *, prefix: str = "", dependencies: Sequence[Depends] = (),
                 scoped: Mapping[str, Sequence[Depends]] | None = None) -> APIRouter:
    """The router serving `table`, each path under `prefix`; `dependencies` run before each handler, and
    `scoped` ones before the handlers of the paths under a path prefix (volume: the project check of
    `/v3/{project_id}/...`)."""
    router = APIRouter(prefix=prefix, dependencies=list(dependencies))
    for path, method, route in routes(table):
        options: dict[str, Any] = {} if route.status is None else {"status_code": route.status}
        extra = [dep for start, deps in (scoped or {}).items() if path.startswith(start + "/") for dep in deps]
        if extra:
            options["dependencies"] = extra
        router.add_api_route(path, route.handler, methods=[method], name=f"{method} {prefix}{path}", **options)
    return router


def handlers(table: RouteTable) -> set[Handler]:
    return {route.handler for _, _, route in routes(table)}
