"""What OpenStack's default policies (policy-in-code of Nova, Neutron, Cinder, Glance and Keystone, secure RBAC)
allow each persona on each route of pocketstack's route tables: one line per (method, path), as

    METHOD PATH CATEGORY [param=resource ...] [keep=param,...] [mv=2.NN] [body=name] [query=k=v]

`param=resource` fills a path parameter from another resource than its name says; `keep` names parameters an
allowed persona's changing request keeps real (the caller's own user); `mv` is the compute microversion to ask;
`query` a query string whose own policy the row checks (`{name}` values are resource ids);
`body` the valid body (tests/policy_matrix_setup.py) a denied persona sends, so the refusal comes from policy, not
validation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache

from policy_expectations_tables import TABLES

EVERYONE = {"admin", "manager", "member", "reader", "other", "other_reader"}
# category -> the personas it allows (anon only for public; `doc`: with or without a token). A system reader
# (identity only) may do what is read-only (Keystone's ADMIN_OR_SYSTEM_READER), a system admin what an admin may
# but for what needs a project or the very user: see `allows`.
CATEGORIES: dict[str, set[str]] = {
    "public": EVERYONE,
    "doc": EVERYONE,
    "any": EVERYONE,  # any token (its own project's things)
    "scoped": EVERYONE,  # any project-scoped token (not a system-scoped one)
    "create": {"admin", "manager", "member", "other"},  # a member of any project
    "read": {"admin", "manager", "member", "reader"},  # project A's readers
    "write": {"admin", "manager", "member"},  # project A's members
    "manager": {"admin", "manager"},  # project A's managers
    "admin": {"admin"},
    "self": {"admin", "member"},  # the user in the path (project A's member) or an admin
    "selfonly": {"member"},  # the user in the path only, not even an admin
    "selfsys": {"member"},  # the user in the path, or the system (Keystone's access rules), not a project admin
    "grantee": {"admin", "other"},  # the project an image is shared with (Glance's member status)
}


def allows(exp: Expectation, persona: str) -> bool:
    """Whether OpenStack's defaults let `persona` through on `exp`'s route."""
    if persona == "sysreader":
        return exp.category in ("public", "doc") or (exp.method in ("GET", "HEAD") and exp.category != "scoped")
    if persona == "sysadmin":  # Keystone's admin_required is the admin role in any scope
        return exp.category not in ("scoped", "selfonly")
    return persona in CATEGORIES[exp.category]


@dataclass(frozen=True)
class Expectation:
    method: str
    path: str
    category: str
    overrides: dict[str, str] = field(default_factory=dict)
    keep: frozenset[str] = frozenset()
    body: str | None = None
    microversion: str | None = None
    query: str | None = None

    def params(self) -> list[str]:
        return re.findall(r"{(\w+)}", self.path)


def _parse(service: str, text: str) -> dict[tuple[str, str, str | None, str | None], Expectation]:
    out: dict[tuple[str, str, str | None, str | None], Expectation] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        method, path, category, *extra = line.split()
        assert category in CATEGORIES, line
        overrides = {"project_id": "url_project"} if service == "volume" else {}
        keep = {"project_id"} if service == "volume" else set()
        body = microversion = query = None
        for item in extra:
            key, value = item.split("=", 1)
            if key == "keep":
                keep.update(value.split(","))
            elif key == "body":
                body = value
            elif key == "query":
                query = value
            elif key == "mv":
                microversion = value
            else:
                overrides[key] = value
        assert (method, path, body, query) not in out, line
        out[(method, path, body, query)] = Expectation(method, path, category, overrides, frozenset(keep), body,
                                                 microversion, query)
    return out


@cache
def table(service: str) -> dict[tuple[str, str, str | None, str | None], Expectation]:
    """(method, path, body name, query) -> expectation: a route may have rows for several bodies (server
    actions) and queries (all_tenants)."""
    return _parse(service, TABLES[service])
