"""Authorization matrix: every (route, method) of every service's route table, called as each persona (project A's
admin, manager, member and reader, a member and a reader of project B, for identity a system reader and a system
admin, no token), with the outcome OpenStack's default policies give (tests/policy_expectations.py): allowed (no
401/403, no 5xx) or denied (403, or 404 where the service hides what another project owns; 401 without a token).
Listings must not show project B (or another user) what project A's member keeps, nor admin-only attributes to
anyone else.

Requests that change something run as a denied persona against project A's real resource (so a leak shows); an
allowed persona sends them for an unknown id or with an empty body, so nothing is changed and a 404 or 400 counts
as let through by policy."""

from __future__ import annotations

import importlib
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import Cloud, make_settings
from policy_expectations import Expectation, allows, table
from policy_matrix_helpers import ANON, PERSONAS, UNKNOWN, World, build_world, fill
from policy_matrix_setup import BODIES, PRIVATE, SETUP, USER_PRIVATE

from pocketstack.common.routes import routes

SERVICES = ("identity", "compute", "network", "volume", "image")
SAFE = ("GET", "HEAD")


def _route_keys(service: str) -> set[tuple[str, str]]:
    module = importlib.import_module(f"pocketstack.{service}.api.routes")
    return {(method, path) for path, method, _ in routes(module.ROUTES)}


@pytest.mark.parametrize("service", SERVICES)
def test_every_route_has_an_expectation(service: str) -> None:
    expected = {(exp.method, exp.path) for exp in table(service).values()}
    served = _route_keys(service)
    assert served - expected == set(), f"routes of {service} without an expectation"
    assert expected - served == set(), f"expectations of {service} for routes it does not serve"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data_dir = tmp_path_factory.mktemp("matrix-cloud")
    cloud = Cloud(make_settings(data_dir)).start()
    try:
        urls = {service: cloud.url(service) for service in SERVICES}
        yield build_world(urls, cloud.conn().auth_token)
    finally:
        cloud.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def _verdict(exp: Expectation, persona: str, status: int, real: bool) -> str | None:
    """Why `status` is wrong for `persona` on a route expected as `exp`, or None."""
    if status >= 500:
        return "a server error"
    if persona == ANON:
        if exp.category == "doc" or (exp.category == "public") == (status != 401):
            return None
        return f"{status} without a token"
    if allows(exp, persona):
        return f"{status} for an allowed persona" if status in (401, 403) else None
    if status == 403 or (status == 404 and not (persona == "reader" and real and exp.category == "write")):
        return None
    return f"{status}: not denied"


def _request(world: World, service: str, exp: Expectation, persona: str) -> tuple[int, bool, str]:
    values = {**world.ids[service], "project_id": world.ids[service].get("project_id", world.projects["A"])}
    if service == "volume":  # Cinder's URL project is the caller's own
        values["url_project"] = world.projects[PERSONAS.get(persona, ("", "A"))[1]]
    allowed = (persona != ANON and allows(exp, persona)) or exp.category in ("public", "doc")
    unknown: set[str] = set()
    body: Any = BODIES.get(service, {}).get(exp.body) if exp.body else None
    if allowed and exp.method not in SAFE:
        unknown = {p for p in exp.params() if p not in exp.keep}
        if not unknown:  # a create: an empty body, refused before anything is made
            body = {}
    path, real = fill(exp.path, values, exp.overrides, unknown)
    if body is None and exp.method in ("POST", "PUT", "PATCH"):
        body = {}
    body = _resolve(body, values)
    headers: dict[str, str] = {}
    if exp.path == "/v3/auth/tokens" and exp.method != "POST":  # a fresh token of project A's member
        headers["X-Subject-Token"] = world.token_of("member")
    if exp.microversion:
        headers["OpenStack-API-Version"] = f"{service} {exp.microversion}"
    asked = ""
    if exp.query:
        key, _, value = exp.query.partition("=")
        asked = str(_resolve(value, values))
        path += f"?{key}={asked}"
    resp = world.call(service, persona, exp.method, path, body, headers)
    if asked:  # the links echo the query: not a leak
        return resp.status_code, real, resp.text.replace(asked, "")
    return resp.status_code, real, resp.text


def _resolve(body: Any, values: dict[str, str]) -> Any:
    """`{name}` placeholders in a body's strings replaced by resource ids."""
    if isinstance(body, dict):
        return {k: _resolve(v, values) for k, v in body.items()}
    if isinstance(body, list):
        return [_resolve(v, values) for v in body]
    if isinstance(body, str) and body.startswith("{") and body.endswith("}") and body[1:-1] in values:
        return values[body[1:-1]]
    return body


def _personas(service: str) -> list[str]:
    """Everyone, no token included; a system-scoped token only for identity (the others take project tokens)."""
    return [p for p in [*PERSONAS, ANON] if not p.startswith("sys") or service == "identity"]


# attributes only admins see (Nova's os-extended-server-attributes, Cinder's volume_host_attribute, Neutron's
# get_port:binding:* and get_network:provider:*)
ADMIN_FIELDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("compute", "/v2.1/servers/{server_id}"): ("OS-EXT-SRV-ATTR:host", "OS-EXT-SRV-ATTR:instance_name"),
    ("compute", "/v2.1/servers/detail"): ("OS-EXT-SRV-ATTR:host", "OS-EXT-SRV-ATTR:instance_name"),
    ("volume", "/v3/{project_id}/volumes/{volume_id}"): ("os-vol-host-attr:host", "os-vol-mig-status-attr:migstat"),
    ("volume", "/v3/{project_id}/volumes/detail"): ("os-vol-host-attr:host",),
    ("network", "/v2.0/ports/{resource_id}"): ("binding:host_id", "binding:vif_details", "binding:profile"),
    ("network", "/v2.0/networks/{resource_id}"): ("provider:network_type", "provider:segmentation_id"),
}


def _leak(world: World, service: str, exp: Expectation, persona: str, status: int, text: str) -> str | None:
    """A listing that shows project B what project A keeps to itself, or another user what project A's member
    keeps to itself; an admin-only attribute in a non-admin's view."""
    if exp.method != "GET" or status != 200:
        return None
    fields = ADMIN_FIELDS.get((service, exp.path), ())
    shown_fields = [f for f in fields if f'"{f}"' in text]
    if persona not in ("admin", "sysadmin") and shown_fields:
        return f"shows the admin-only {', '.join(shown_fields)}"
    if persona == "admin" and len(shown_fields) < len(fields):  # the check above looks for what is there
        return f"the admin does not see {', '.join(set(fields) - set(shown_fields))}"
    if any(p not in exp.keep for p in exp.params()):
        return None  # a listing names no resource
    private = [*(PRIVATE[service] if persona in ("other", "other_reader") else ()),
               *(USER_PRIVATE.get(service, ()) if persona not in ("admin", "member", "sysreader", "sysadmin")
                 else ())]
    shown = [name for name in private if world.ids[service].get(name, UNKNOWN) in text]
    return f"lists project A's {', '.join(shown)}" if shown else None


@pytest.mark.parametrize("service", SERVICES)
def test_matrix(world: World, service: str) -> None:
    world.ids[service] = SETUP[service](world)
    failures = []
    count = 0
    for exp in table(service).values():
        for persona in _personas(service):
            status, real, text = _request(world, service, exp, persona)
            count += 1
            why = _verdict(exp, persona, status, real) or _leak(world, service, exp, persona, status, text)
            if why:
                failures.append(f"{exp.method} {exp.path} [{exp.category}] as {persona}: {why} ({text[:200]})")
    assert not failures, f"{len(failures)} of {count} requests:\n" + "\n".join(failures)
    assert UNKNOWN not in world.ids[service].values()
