"""The personas and the resources of the authorization matrix (tests/test_policy_matrix.py): projects A and B, a
user per persona, one resource of each kind owned by project A, and the request each (route, persona) sends."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import requests

PASSWORD = "matrix-secret"
UNKNOWN = "4f3b7c5e-0000-4000-8000-00000000dead"
# persona -> (role, scope): the admin, manager, member and reader of project A, a member and a reader of project
# B, and (identity only: the other services take project tokens) a reader and an admin of the whole system
PERSONAS: dict[str, tuple[str, str]] = {"admin": ("admin", "A"), "manager": ("manager", "A"),
                                        "member": ("member", "A"), "reader": ("reader", "A"),
                                        "other": ("member", "B"), "other_reader": ("reader", "B"),
                                        "sysreader": ("reader", "system"), "sysadmin": ("admin", "system")}
ANON = "anon"


@dataclass
class World:
    """Who calls (tokens, user and project ids) and what exists (ids by name) in the matrix cloud."""

    urls: dict[str, str]
    tokens: dict[str, str] = field(default_factory=dict)
    users: dict[str, str] = field(default_factory=dict)
    projects: dict[str, str] = field(default_factory=dict)
    ids: dict[str, dict[str, str]] = field(default_factory=dict)  # service -> resource name -> id

    def call(self, service: str, persona: str | None, method: str, path: str, body: Any = None,
             headers: dict[str, str] | None = None) -> requests.Response:
        hdrs = dict(headers or {})
        if persona and persona != ANON:
            hdrs["X-Auth-Token"] = self.tokens[persona]
        if isinstance(body, bytes):
            hdrs.setdefault("Content-Type", "application/octet-stream")
            return requests.request(method, self.urls[service] + path, data=body, headers=hdrs, timeout=60)
        if service == "image" and method == "PATCH":
            hdrs.setdefault("Content-Type", "application/openstack-images-v2.1-json-patch")
            return requests.request(method, self.urls[service] + path, data=json.dumps(body), headers=hdrs,
                                    timeout=60)
        return requests.request(method, self.urls[service] + path, json=body, headers=hdrs, timeout=60)

    def ok(self, service: str, persona: str, method: str, path: str, body: Any = None,
           headers: dict[str, str] | None = None) -> dict[str, Any]:
        resp = self.call(service, persona, method, path, body, headers)
        assert resp.status_code < 300, (method, path, resp.status_code, resp.text)
        return resp.json() if resp.content else {}

    def token_of(self, persona: str) -> str:
        """A fresh token of `persona` (for the token routes' X-Subject-Token)."""
        return _token(self.urls["identity"], f"mx-{persona}", self.projects[PERSONAS[persona][1]])


def _token(identity: str, user: str, project_id: str | None) -> str:
    """A password token of `user`, scoped to `project_id` (None: the system)."""
    scope = {"project": {"id": project_id}} if project_id else {"system": {"all": True}}
    resp = requests.post(identity + "/v3/auth/tokens", timeout=30, json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": "default"}, "password": PASSWORD}}},
        "scope": scope}})
    assert resp.status_code == 201, resp.text
    return resp.headers["X-Subject-Token"]


def build_world(urls: dict[str, str], admin_token: str) -> World:
    """Projects A and B and the users of the personas; the resources come per service (`setup_*`)."""
    world = World(urls=urls, tokens={"root": admin_token})
    roles = {r["name"]: r["id"] for r in world.ok("identity", "root", "GET", "/v3/roles")["roles"]}
    for label in ("A", "B"):
        project = world.ok("identity", "root", "POST", "/v3/projects",
                           {"project": {"name": f"mx-project-{label}", "domain_id": "default"}})["project"]
        world.projects[label] = project["id"]
    for persona, (role, label) in PERSONAS.items():
        user = world.ok("identity", "root", "POST", "/v3/users", {"user": {
            "name": f"mx-{persona}", "password": PASSWORD, "domain_id": "default"}})["user"]
        world.users[persona] = user["id"]
        target = "/v3/system" if label == "system" else f"/v3/projects/{world.projects[label]}"
        world.ok("identity", "root", "PUT", f"{target}/users/{user['id']}/roles/{roles[role]}")
        world.tokens[persona] = _token(urls["identity"], f"mx-{persona}", world.projects.get(label))
    return world


PARAM = re.compile(r"{(\w+)}")


def fill(path: str, values: dict[str, str], overrides: dict[str, str], unknown: set[str]) -> tuple[str, bool]:
    """`path` with its parameters replaced: `overrides` (param -> resource name) first, then the param's own
    name; the params in `unknown` (or without a resource) get an id nobody has. Also: whether every param was
    a real resource."""
    real = True

    def one(match: re.Match[str]) -> str:
        nonlocal real
        param = match.group(1)
        name = overrides.get(param, param)
        if param in unknown or name not in values:
            real = False
            return UNKNOWN
        return values[name]

    return PARAM.sub(one, path), real
