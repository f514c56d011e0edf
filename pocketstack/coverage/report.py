"""The coverage of each service's OpenStack API reference by its route table.

The api-ref's operations are in `data/<service>.toml` (made by scripts/coverage_data.py, each citing its `.inc`
file); the routes are the services' `ROUTES`. RULE (below, also printed in docs/coverage.md) says how an operation
gets its status. A route that no operation resolves to, and whose template is no operation's either (a
trailing-slash alias), must be in `data/extras.toml`, the commented allow-list of pocketstack-only and extension
routes, or tests/test_coverage.py fails.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import textwrap
import tomllib
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pocketstack.common.routes import Handler, RouteTable, routes

DATA = Path(__file__).parent / "data"
SERVICES = ("identity", "image", "network", "volume", "compute")
STATUSES = ("implemented", "partial", "missing", "removed")
# compute's api-ref paths lack the version prefix; `{api_version}` stands for the version document's
PREFIX = {"compute": "/v2.1"}
# volume's api-ref writes some paths without the project (optional from microversion 3.67)
VOLUME_PROJECT = "/v3/{project_id}"
RULE = """\
Each operation of the api-ref (a `.. rest_method::` line) is put in the route table's form: without a query or
a `.json` suffix, with a leading `/`; identity's without a deployment's `/identity` prefix; compute's with the
`/v2.1` prefix its api-ref omits (`{api_version}` is `v2.1`); volume's paths written without `{project_id}`
(the 3.67 form) get it back. It resolves as the router matches: to the first route, in table order, that has
the method and whose path matches (a route's `{param}` matches any segment, an api-ref `{param}` only a
route `{param}`, a trailing `/` is ignored). Then:

- **missing**: no route; **removed** instead when the api-ref says the API was removed upstream (Nova's cells,
  agents, nova-network, ...: Nova answers 410 too). Removed operations are counted apart, not as missing.
- **partial**: a route, but its handler does not dispatch the operation's name: the action of an
  `.../action` body, or the literal last segment of the path where the route has a parameter
  (`os-services/disable` on `os-services/{service_id}`; counted only when the handler compares that parameter
  itself). The dispatched names are the string literals, and the keys or items of the module-level tables,
  that the handler compares against or looks up, read from its source (compute's `server_action` and the
  `SERVER_ACTIONS` tables it consults, volume's `ACTIONS`, ...). Also partial: the operation needs a
  microversion above the service's maximum (`MICROVERSIONS` of compute and volume).
- **implemented**: otherwise. This says a route serves the operation, not that every parameter of the
  api-ref is honoured; the conformance runs (docs/conformance.md) test behaviour.
"""
# the services with microversions: where their MicroversionSpec lives
MICROVERSIONS = {"compute": "pocketstack.compute.api.common", "volume": "pocketstack.volume.api.common"}


@dataclass(frozen=True)
class Operation:
    """One `.. rest_method::` of the api-ref."""

    method: str
    path: str
    title: str
    source: str
    action: str | None = None
    min_version: str | None = None
    max_version: str | None = None
    removed: bool = False


@dataclass(frozen=True)
class Row:
    operation: Operation
    status: str
    route: str | None = None  # "METHOD /path" of the route it resolved to
    note: str = ""


@dataclass(frozen=True)
class Extra:
    """A route the api-ref does not know, allowed by data/extras.toml."""

    method: str
    path: str
    reason: str


@dataclass
class ServiceCoverage:
    service: str
    repository: str
    commit: str
    max_version: str | None
    rows: list[Row] = field(default_factory=list)
    extras: list[Extra] = field(default_factory=list)
    unknown: list[tuple[str, str]] = field(default_factory=list)  # routes neither the api-ref nor extras know

    def totals(self) -> dict[str, int]:
        counts = Counter(row.status for row in self.rows)
        return {status: counts.get(status, 0) for status in STATUSES} | {"operations": len(self.rows)}


def load_operations(service: str) -> tuple[dict[str, Any], list[Operation]]:
    """The data file's header (repository, commit) and its operations."""
    data = tomllib.loads((DATA / f"{service}.toml").read_text())
    return ({k: v for k, v in data.items() if k != "operation"},
            [Operation(**op) for op in data.get("operation", [])])


def load_extras() -> dict[str, list[Extra]]:
    data = tomllib.loads((DATA / "extras.toml").read_text())
    return {service: [Extra(**e) for e in data.get(service, [])] for service in SERVICES}


def route_table(service: str) -> RouteTable:
    return importlib.import_module(f"pocketstack.{service}.api.routes").ROUTES


def _segments(path: str) -> list[str]:
    return path.rstrip("/").split("/")[1:] if path != "/" else []


def _is_param(segment: str) -> bool:
    return segment.startswith("{") and segment.endswith("}")


def _matches(route_path: str, api_path: str) -> bool:
    ours, theirs = _segments(route_path), _segments(api_path)
    return len(ours) == len(theirs) and all(
        _is_param(o) or (o == t and not _is_param(t)) for o, t in zip(ours, theirs, strict=True))


def _template(path: str) -> tuple[str, ...]:
    return tuple("{}" if _is_param(s) else s for s in _segments(path))


def route_form(service: str, path: str) -> str:
    """An api-ref path as the route table writes it: without a query or a `.json` format suffix, with compute's
    version prefix and volume's project."""
    path = "/" + path.partition("?")[0].removesuffix(".json").lstrip("/")  # cinder writes one without its `/`
    if service == "identity":
        path = path.removeprefix("/identity")  # OS-OAUTH2's page writes the deployment's path prefix
    segments = _segments(path)
    if service == "volume" and len(segments) > 1 and segments[0] == "v3" and not _is_param(segments[1]):
        return VOLUME_PROJECT + path.removeprefix("/v3")  # the 3.67 form, without the project
    prefix = PREFIX.get(service)
    if prefix is None or path == "/":
        return path
    if path.startswith("/{api_version}"):
        return prefix + path.removeprefix("/{api_version}")
    return path if path.startswith(prefix + "/") else prefix + path


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def _dict_keys(module: Any, node: ast.expr) -> set[str]:
    """The keys of the module-level dict (or the items of the tuple, list or set) `node` names (`ACTIONS`,
    `other_module.SERVER_ACTIONS`), if it is one."""
    value: Any = None
    if isinstance(node, ast.Name):
        value = getattr(module, node.id, None)
    elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        value = getattr(getattr(module, node.value.id, None), node.attr, None)
    if isinstance(value, dict | tuple | list | set | frozenset):
        return {k for k in value if isinstance(k, str)}
    return set()


def _names(node: ast.expr, module: Any) -> set[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return {e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
    return _dict_keys(module, node)


def _is_name(node: ast.AST, variable: str | None) -> bool:
    return variable is None or (isinstance(node, ast.Name) and node.id == variable)


def dispatched_names(handler: Handler, variable: str | None = None) -> set[str]:
    """The names a handler can dispatch: the string literals it compares against and the keys of the tables it
    looks a name up in (`name in X`, `X.get(name)`, `X[name]`); with `variable`, only where that variable is
    the one compared or looked up."""
    module = inspect.getmodule(handler)
    tree = ast.parse(textwrap.dedent(inspect.getsource(handler)))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            sides = (node.left, *node.comparators)
            if any(_is_name(side, variable) for side in sides):
                for side in sides:
                    names |= _names(side, module)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
              and node.args and _is_name(node.args[0], variable)):
            names |= _dict_keys(module, node.func.value)
        elif isinstance(node, ast.Subscript) and _is_name(node.slice, variable):
            names |= _dict_keys(module, node.value)
    return names


def _resolve(table: list[tuple[str, str, Handler]], method: str, path: str) -> tuple[str, str, Handler] | None:
    return next((entry for entry in table if entry[1] == method and _matches(entry[0], path)), None)


def _dispatch(op: Operation, route_path: str, api_path: str) -> tuple[str, str | None] | None:
    """(the name the handler must dispatch, the variable it is in): an `.../action` body's action (any
    variable), or the api-ref's literal last segment where the route has a parameter (`os-services/disable` on
    `os-services/{action}`; checked only if the handler compares that parameter itself)."""
    if op.action is not None:
        return op.action, None
    ours, theirs = _segments(route_path), _segments(api_path)
    if ours and _is_param(ours[-1]) and not _is_param(theirs[-1]):
        return theirs[-1], ours[-1][1:-1]
    return None


def _status(op: Operation, api_path: str, found: tuple[str, str, Handler] | None, max_version: str | None) -> Row:
    if found is None:
        return Row(op, "removed" if op.removed else "missing",
                   note="removed upstream" if op.removed else "")
    path, method, handler = found
    route = f"{method} {path}"
    if (dispatch := _dispatch(op, path, api_path)) is not None:
        name, variable = dispatch
        names = dispatched_names(handler, variable)
        if (op.action or names) and name not in names:
            what = f"action {name}" if op.action else f"`{name}` in the path"
            if op.removed:
                return Row(op, "removed", route, f"removed upstream; {what} not dispatched")
            return Row(op, "partial", route, f"{what} not dispatched")
    if op.min_version and max_version and _version_key(op.min_version) > _version_key(max_version):
        return Row(op, "partial", route, f"needs microversion {op.min_version}, pocketstack's maximum is "
                                         f"{max_version}")
    return Row(op, "implemented", route)


def service_coverage(service: str, extras: list[Extra] | None = None) -> ServiceCoverage:
    """Every api-ref operation of `service` against its route table."""
    header, ops = load_operations(service)
    spec = importlib.import_module(MICROVERSIONS[service]).MICROVERSIONS if service in MICROVERSIONS else None
    result = ServiceCoverage(service, header["repository"], header["commit"], spec.maximum if spec else None)
    table = [(path, method, route.handler) for path, method, route in routes(route_table(service))]
    used: set[tuple[str, str]] = set()
    for op in ops:
        api_path = route_form(service, op.path)
        found = _resolve(table, op.method, api_path)
        if found is not None:
            used.add((found[1], found[0]))
        result.rows.append(_status(op, api_path, found, result.max_version))
    templates = {(op.method, _template(route_form(service, op.path))) for op in ops}
    allowed = {(e.method, e.path): e for e in (extras if extras is not None else load_extras()[service])}
    for path, method, _ in table:
        if (method, path) in used or (method, _template(path)) in templates:
            continue
        if (method, path) in allowed:
            result.extras.append(allowed[(method, path)])
        else:
            result.unknown.append((method, path))
    return result


def coverage() -> list[ServiceCoverage]:
    extras = load_extras()
    return [service_coverage(service, extras[service]) for service in SERVICES]


def as_json(results: list[ServiceCoverage]) -> dict[str, Any]:
    return {r.service: {"repository": r.repository, "commit": r.commit, "max_microversion": r.max_version,
                        "totals": r.totals(),
                        "operations": [asdict(row.operation) | {"status": row.status, "route": row.route,
                                                                 "note": row.note} for row in r.rows],
                        "pocketstack_only": [asdict(e) for e in r.extras],
                        "unknown_routes": [{"method": m, "path": p} for m, p in r.unknown]}
            for r in results}
