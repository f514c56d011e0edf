"""The scheduler filters that read host aggregates' metadata: `AggregateInstanceExtraSpecsFilter` (a flavor's
extra specs must match the metadata of the host's aggregates, with Nova's extra-spec operators) and
`AggregateMultiTenancyIsolation` (a host in an aggregate with `filter_tenant_id*` keys takes only those projects'
servers)."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pocketstack.compute.scheduler.filters import HostState, RequestView

SCOPE = "aggregate_instance_extra_specs"
TENANT_KEY = "filter_tenant_id"


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def _numeric(compare: Callable[[float, float], bool]) -> Callable[[str, str], bool]:
    def check(value: str, wanted: str) -> bool:
        have, want = _number(value), _number(wanted)
        return have is not None and want is not None and compare(have, want)

    return check


_STRING_OPS: dict[str, Callable[[str, str], bool]] = {
    "s==": operator.eq, "s!=": operator.ne, "s<": operator.lt, "s<=": operator.le, "s>": operator.gt,
    "s>=": operator.ge,
}
_NUMERIC_OPS: dict[str, Callable[[str, str], bool]] = {
    "=": _numeric(operator.ge),  # Nova's "=": at least the requested amount
    "==": _numeric(operator.eq), "!=": _numeric(operator.ne), ">=": _numeric(operator.ge),
    "<=": _numeric(operator.le),
}


def spec_matches(value: str, requirement: str) -> bool:
    """Whether a metadata `value` meets an extra-spec `requirement` (`<in> x`, `<all-in> a b`, `<or> a <or> b`,
    `s== x`, `>= 4`, ..., or a plain string that must be equal)."""
    words = requirement.split()
    if not words:
        return value == requirement
    op, args = words[0], words[1:]
    if op == "<or>":
        return value in [w for w in words if w != "<or>"]
    if op == "<in>":
        return bool(args) and " ".join(args) in value
    if op == "<all-in>":
        return all(arg in value.split() or arg in value for arg in args)
    if op in _STRING_OPS and args:
        return _STRING_OPS[op](value, " ".join(args))
    if op in _NUMERIC_OPS and args:
        return _NUMERIC_OPS[op](value, args[0])
    return value == requirement


def aggregate_instance_extra_specs_filter(host: HostState, req: RequestView) -> bool:
    """Every unscoped or `aggregate_instance_extra_specs:`-scoped extra spec of the flavor must be met by a value
    of that key in one of the host's aggregates."""
    for key, requirement in (req.flavor.get("extra_specs") or {}).items():
        scope, _, name = key.partition(":")
        if name and scope != SCOPE:
            continue  # a spec of another scope (hw:, quota:, ...): not this filter's business
        values = host.aggregate_metadata.get(name or scope)
        if not values or not any(spec_matches(v, str(requirement)) for v in values):
            return False
    return True


def aggregate_multi_tenancy_isolation(host: HostState, req: RequestView) -> bool:
    """A host whose aggregates name projects (`filter_tenant_id`, `filter_tenant_id2`, ...; comma-separated)
    takes only servers of those projects."""
    allowed: set[str] = set()
    for key, values in host.aggregate_metadata.items():
        if key.startswith(TENANT_KEY):
            for value in values:
                allowed.update(p.strip() for p in value.split(",") if p.strip())
    return not allowed or req.spec.get("project_id") in allowed
