"""Policy: a rule per API action, in oslo.policy's rule language, overridable from a policy file.

Rules: `role:NAME`, `rule:NAME`, `is_admin:True`, `@` (always), `!` (never), `ATTR:%(target.path)s` (a credential
attribute equals a target value), `ATTR:literal`, combined with `and`, `or`, `not` and parentheses. Defaults give
`admin` every action, `member` its own project's resources and `reader` read-only access to them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from pocketstack.common.context import RequestContext
from pocketstack.common.errors import Forbidden

Check = Callable[[dict[str, Any], dict[str, Any], "PolicyEngine"], bool]

# Rules every service may refer to; a service's own defaults can override them.
BASE_RULES: dict[str, str] = {
    "admin_required": "role:admin",
    "service_role": "role:service",
    "admin_or_service": "rule:admin_required or rule:service_role",
    "project_member": "role:member and project_id:%(project_id)s",
    "project_reader": "role:reader and project_id:%(project_id)s",
    "admin_or_member": "rule:admin_required or rule:project_member",
    "admin_or_reader": "rule:admin_required or rule:project_reader",
    "owner": "user_id:%(user_id)s",
}



def _tokenize(text: str) -> list[str]:
    """Split on white space, then peel leading '(' and trailing ')' (as oslo.policy does, so `%(x)s` stays)."""
    tokens: list[str] = []
    for chunk in text.split():
        lead = len(chunk) - len(chunk.lstrip("("))
        chunk = chunk[lead:]
        trail = len(chunk) - len(chunk.rstrip(")"))
        chunk = chunk[:len(chunk) - trail]
        tokens.extend(["("] * lead + ([chunk] if chunk else []) + [")"] * trail)
    return tokens


class PolicyError(ValueError):
    pass


def _lookup(target: Mapping[str, Any], path: str) -> Any:
    if path in target:
        return target[path]
    value: Any = target
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _leaf(token: str) -> Check:
    if token == "@":
        return lambda creds, target, engine: True
    if token == "!":
        return lambda creds, target, engine: False
    if ":" not in token:
        raise PolicyError(f"cannot parse policy check {token!r}")
    kind, match = token.split(":", 1)
    if kind == "rule":
        return lambda creds, target, engine: engine.check_rule(match, creds, target)
    if kind == "role":
        wanted = match.lower()
        return lambda creds, target, engine: wanted in (r.lower() for r in creds.get("roles", ()))
    if kind == "is_admin":
        expected = match.lower() == "true"
        return lambda creds, target, engine: bool(creds.get("is_admin")) == expected

    def generic(creds: dict[str, Any], target: dict[str, Any], engine: PolicyEngine) -> bool:
        if match.startswith("%(") and match.endswith(")s"):
            expected = _lookup(target, match[2:-2])
        else:
            expected = match.strip("'")
        if kind.startswith("'"):
            actual: Any = kind.strip("'")
        else:
            actual = creds.get(kind)
        return actual is not None and expected is not None and str(actual) == str(expected)

    return generic


def parse_rule(text: str) -> Check:
    """Parse a rule string into a check function (recursive descent: or > and > not > atom)."""
    tokens = _tokenize(text)
    if not tokens:
        return lambda creds, target, engine: True
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> str:
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def parse_or() -> Check:
        left = parse_and()
        while peek() == "or":
            take()
            right = parse_and()
            left = (lambda a, b: lambda c, t, e: a(c, t, e) or b(c, t, e))(left, right)
        return left

    def parse_and() -> Check:
        left = parse_not()
        while peek() == "and":
            take()
            right = parse_not()
            left = (lambda a, b: lambda c, t, e: a(c, t, e) and b(c, t, e))(left, right)
        return left

    def parse_not() -> Check:
        if peek() == "not":
            take()
            inner = parse_not()
            return lambda c, t, e: not inner(c, t, e)
        return parse_atom()

    def parse_atom() -> Check:
        token = peek()
        if token is None:
            raise PolicyError(f"unexpected end of policy rule {text!r}")
        take()
        if token == "(":
            inner = parse_or()
            if peek() != ")":
                raise PolicyError(f"missing ')' in policy rule {text!r}")
            take()
            return inner
        return _leaf(token)

    check = parse_or()
    if pos != len(tokens):
        raise PolicyError(f"unexpected {tokens[pos]!r} in policy rule {text!r}")
    return check


class PolicyEngine:
    def __init__(self, defaults: Mapping[str, str], policy_file: Path | None = None) -> None:
        rules = {**BASE_RULES, **defaults}
        if policy_file is not None and policy_file.exists():
            overrides = yaml.safe_load(policy_file.read_text()) or {}
            rules.update({str(k): str(v) for k, v in overrides.items()})
        self.rules: dict[str, Check] = {name: parse_rule(text) for name, text in rules.items()}

    def check_rule(self, name: str, creds: dict[str, Any], target: dict[str, Any]) -> bool:
        rule = self.rules.get(name)
        if rule is None:
            return False
        return rule(creds, target, self)

    def check(self, action: str, ctx: RequestContext, target: Mapping[str, Any] | None = None) -> bool:
        if action not in self.rules:
            raise PolicyError(f"no policy rule for action {action!r}")
        target_dict = dict(target or {})
        target_dict.setdefault("project_id", ctx.project_id)
        target_dict.setdefault("user_id", ctx.user_id)
        return self.check_rule(action, ctx.policy_credentials(), target_dict)

    def enforce(self, action: str, ctx: RequestContext, target: Mapping[str, Any] | None = None) -> None:
        if not self.check(action, ctx, target):
            raise Forbidden(f"Policy doesn't allow {action} to be performed.")
