"""`pocketstack coverage`: every route is an api-ref operation's or an allowed extra, docs/coverage.md is current,
the totals add up, and the matching rule does what pocketstack/coverage/report.py says."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

from pocketstack.compute.api import server_actions
from pocketstack.coverage import report
from pocketstack.coverage.render import DOC, render_markdown
from pocketstack.coverage.report import SERVICES, STATUSES, coverage, route_form, service_coverage

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def results() -> list[report.ServiceCoverage]:
    return coverage()


@pytest.mark.parametrize("service", SERVICES)
def test_every_route_is_known_to_the_coverage_data(service: str) -> None:
    """A route that no api-ref operation resolves to must be in data/extras.toml, with its reason."""
    unknown = service_coverage(service).unknown
    assert not unknown, (f"{service}: routes neither in the api-ref data nor in pocketstack/coverage/data/"
                         f"extras.toml: {unknown}")


@pytest.mark.parametrize("service", SERVICES)
def test_extras_are_routes_the_api_ref_does_not_know(service: str) -> None:
    """An allow-list entry names a route that exists and that no operation covers, so the list cannot go stale."""
    listed = {(e.method, e.path) for e in report.load_extras()[service]}
    used = {(e.method, e.path) for e in service_coverage(service).extras}
    assert listed == used, f"{service}: stale entries in extras.toml: {sorted(listed - used)}"
    assert all(e.reason.strip() for e in report.load_extras()[service])


def test_a_new_route_the_data_does_not_know_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    table = dict(report.route_table("image"))
    table["/v2/made-up"] = {"GET": lambda request: None}
    monkeypatch.setattr(report, "route_table", lambda service: table)
    assert service_coverage("image").unknown == [("GET", "/v2/made-up")]


def test_the_generated_document_is_current(results: list[report.ServiceCoverage]) -> None:
    assert DOC.read_text() == render_markdown(results), "run `pocketstack coverage --write`"


def test_the_totals_add_up(results: list[report.ServiceCoverage]) -> None:
    for result in results:
        totals = result.totals()
        _, ops = report.load_operations(result.service)
        assert sum(totals[s] for s in STATUSES) == totals["operations"] == len(ops) == len(result.rows)
        assert totals["implemented"] > 0
    doc = DOC.read_text()
    for result in results:
        totals = result.totals()
        row = f"| {result.service} | " + " | ".join(str(totals[s]) for s in STATUSES) + f" | {totals['operations']} |"
        assert row in doc


@pytest.mark.parametrize("service", SERVICES)
def test_the_data_cites_its_api_ref(service: str) -> None:
    header, ops = report.load_operations(service)
    assert header["repository"].startswith("openstack/") and re.fullmatch(r"[0-9a-f]{40}", header["commit"])
    assert ops and all(op.source.startswith("api-ref/source/") and op.source.endswith(".inc") for op in ops)
    assert all(op.method in {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"} and op.title for op in ops)
    assert all(route_form(service, op.path).startswith("/") for op in ops)


def test_paths_are_put_in_the_route_tables_form() -> None:
    assert route_form("compute", "/servers/{server_id}/action") == "/v2.1/servers/{server_id}/action"
    assert route_form("compute", "/{api_version}/") == "/v2.1/"
    assert route_form("compute", "/") == "/"
    assert route_form("volume", "v3/{project_id}/workers/cleanup") == "/v3/{project_id}/workers/cleanup"
    assert route_form("volume", "/v3/default-types/{project-id}") == "/v3/{project_id}/default-types/{project-id}"
    assert route_form("volume", "/v3/{admin_project_id}/os-quota-sets/{project_id}?{usage}=True") == (
        "/v3/{admin_project_id}/os-quota-sets/{project_id}")
    assert route_form("network", "/v2.0/quotas/{project_id}/details.json") == "/v2.0/quotas/{project_id}/details"


def test_matching_follows_the_route_order(results: list[report.ServiceCoverage]) -> None:
    """`GET /servers/{server_id}` resolves to the `{server_id}` route, not to the earlier `/servers/detail`."""
    rows = {(row.operation.method, row.operation.path): row for row in results[SERVICES.index("compute")].rows}
    assert rows[("GET", "/servers/{server_id}")].route == "GET /v2.1/servers/{server_id}"
    assert rows[("GET", "/servers/detail")].route == "GET /v2.1/servers/detail"


def test_server_actions_are_checked_against_the_dispatch(results: list[report.ServiceCoverage]) -> None:
    names = report.dispatched_names(server_actions.server_action)
    assert {"os-start", "os-stop", "reboot", "lock", "createImage", "os-resetState", "addSecurityGroup"} <= names
    actions = {row.operation.action: row for row in results[SERVICES.index("compute")].rows
               if row.operation.path == "/servers/{server_id}/action"}
    assert actions["createImage"].status == "implemented"
    assert all(row.status in ("partial", "removed") for name, row in actions.items() if name not in names)


def _script():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("coverage_data", ROOT / "scripts" / "coverage_data.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # the script's dataclass looks its module up
    spec.loader.exec_module(module)
    return module


def test_the_data_script_reads_rest_method_directives() -> None:
    text = "\n".join([
        "Widgets", "=======", "", ".. warning:: These fail with a 404 starting from microversion 2.9.", "",
        "Spin A Widget (spin Action)", "===========================", "",
        ".. rest_method:: POST /widgets/{widget_id}/action", "", "New in version 2.3", "",
        "Drop A Widget", "~~~~~~~~~~~~~", "", ".. rest_method::", "   DELETE /widgets/{widget_id}", "",
    ])
    ops = _script().operations("api-ref/source/widgets.inc", text)
    assert ops == [
        {"method": "POST", "path": "/widgets/{widget_id}/action", "title": "Spin A Widget (spin Action)",
         "action": "spin", "min_version": "2.3", "max_version": "2.8", "source": "api-ref/source/widgets.inc"},
        {"method": "DELETE", "path": "/widgets/{widget_id}", "title": "Drop A Widget", "max_version": "2.8",
         "source": "api-ref/source/widgets.inc"},
    ]


def test_a_literal_in_the_path_is_checked_where_the_handler_dispatches_on_it(
        results: list[report.ServiceCoverage]) -> None:
    rows = {(row.operation.method, row.operation.path): row for row in results[SERVICES.index("volume")].rows}
    assert rows[("PUT", "/v3/{project_id}/os-services/enable")].status == "implemented"
    assert rows[("PUT", "/v3/{project_id}/os-services/freeze")].status == "partial"
    # show_type does not compare its type_id itself (the store resolves `default`): not checked
    assert rows[("GET", "/v3/{project_id}/types/default")].status == "implemented"
