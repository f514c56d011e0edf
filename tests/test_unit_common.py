"""Unit tests of the shared plumbing: policy language, TTL cache, Fernet key repository and token payloads."""

from __future__ import annotations

import time

import pytest

from pocketstack.common.cache import MemoryCache
from pocketstack.common.context import RequestContext
from pocketstack.common.errors import Forbidden, Unauthorized
from pocketstack.common.policy import PolicyEngine, PolicyError, parse_rule
from pocketstack.identity.tokens import KeyRepository, TokenPayload, TokenProvider, new_audit_id


def ctx(roles: list[str], project: str = "p1", user: str = "u1") -> RequestContext:
    return RequestContext(user_id=user, project_id=project, roles=roles)


RULES = {
    "thing:get": "rule:admin_or_reader",
    "thing:update": "rule:admin_or_member",
    "thing:nested": "(role:a or role:b) and not role:c",
    "thing:user": "user_id:%(target.owner)s",
    "thing:never": "!",
    "thing:always": "@",
}


@pytest.mark.parametrize("action,roles,target,allowed", [
    ("thing:get", ["reader"], {"project_id": "p1"}, True),
    ("thing:get", ["reader"], {"project_id": "p2"}, False),
    ("thing:get", ["admin"], {"project_id": "p2"}, True),
    ("thing:update", ["reader"], {"project_id": "p1"}, False),
    ("thing:update", ["member", "reader"], {"project_id": "p1"}, True),
    ("thing:nested", ["b"], {}, True),
    ("thing:nested", ["b", "c"], {}, False),
    ("thing:nested", [], {}, False),
    ("thing:user", [], {"target": {"owner": "u1"}}, True),
    ("thing:user", [], {"target": {"owner": "u2"}}, False),
    ("thing:never", ["admin"], {}, False),
    ("thing:always", [], {}, True),
])
def test_policy_rules(action, roles, target, allowed):
    engine = PolicyEngine(RULES)
    assert engine.check(action, ctx(roles), target) is allowed


def test_policy_enforce_and_overrides(tmp_path):
    override = tmp_path / "policy.yaml"
    override.write_text('"thing:update": "role:admin"\n')
    engine = PolicyEngine(RULES, override)
    with pytest.raises(Forbidden):
        engine.enforce("thing:update", ctx(["member"]), {"project_id": "p1"})
    with pytest.raises(PolicyError):
        engine.check("thing:unknown", ctx(["admin"]))


@pytest.mark.parametrize("bad", ["role:a and", "(role:a", "role:a role:b", "nonsense"])
def test_policy_parse_errors(bad):
    with pytest.raises(PolicyError):
        parse_rule(bad)


def test_memory_cache_ttl_and_bound():
    cache = MemoryCache(max_size=2)
    cache.set_now("a", 1, ttl=0.05)
    cache.set_now("b", 2, ttl=10)
    cache.set_now("c", 3, ttl=10)
    assert len(cache) == 2 and cache.get_now("a") is None  # evicted, least recently used
    cache.set_now("d", 4, ttl=0.01)
    time.sleep(0.02)
    assert cache.get_now("d") is None and cache.get_now("c") == 3


def test_key_rotation_and_pruning(tmp_path):
    repo = KeyRepository(tmp_path / "keys", max_active_keys=3)
    repo.initialize()
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == ["0", "1"]
    provider = TokenProvider(repo)
    now = time.time()
    payload = TokenPayload(user_id="ab" * 16, methods=["password", "token"], issued_at=now, expires_at=now + 60,
                           audit_ids=[new_audit_id()], project_id="cd" * 16, domain_id=None)
    token = provider.encode(payload)
    assert "=" not in token
    decoded = provider.decode(token)
    assert decoded.user_id == payload.user_id and decoded.project_id == payload.project_id
    assert decoded.methods == ["password", "token"] and decoded.audit_ids == payload.audit_ids

    assert repo.rotate() == 2
    assert provider.decode(token).user_id == payload.user_id  # old primary is now a secondary
    repo.rotate()
    names = sorted(int(p.name) for p in (tmp_path / "keys").iterdir())
    assert names == [0, 2, 3]  # at most max_active_keys: staged + primary + one secondary
    with pytest.raises(Unauthorized):
        provider.decode(token)


def test_tampered_or_garbage_tokens_rejected(tmp_path):
    repo = KeyRepository(tmp_path / "keys")
    repo.initialize()
    provider = TokenProvider(repo)
    now = time.time()
    token = provider.encode(TokenPayload(user_id="default", methods=["password"], issued_at=now,
                                         expires_at=now + 60, audit_ids=[new_audit_id()]))
    flipped = token[:30] + ("y" if token[30] == "x" else "x") + token[31:]  # a real change, whatever token[30] is
    for bad in (token[:-2], flipped, "", "a" * 2000, "%%%%"):
        with pytest.raises(Unauthorized):
            provider.decode(bad)


@pytest.mark.asyncio
async def test_concurrent_cache_misses_share_one_token_validation() -> None:
    import asyncio

    from pocketstack.common.auth import CachedTokenValidator

    calls: list[str] = []

    class Slow:
        async def validate(self, token: str) -> dict[str, object]:
            calls.append(token)
            await asyncio.sleep(0.05)
            if token == "bad":
                raise Unauthorized("The request you have made requires authentication.")
            return {"user": {"id": "u"}}

    validator = CachedTokenValidator(Slow(), MemoryCache(), ttl=5.0)
    results = await asyncio.gather(*(validator.validate("good") for _ in range(20)))
    assert calls == ["good"] and all(r == {"user": {"id": "u"}} for r in results)
    failures = await asyncio.gather(*(validator.validate("bad") for _ in range(5)), return_exceptions=True)
    assert calls == ["good", "bad"] and all(isinstance(f, Unauthorized) for f in failures)
    assert await validator.validate("good") == {"user": {"id": "u"}} and len(calls) == 2  # cached


def test_each_service_spells_its_errors_its_own_way():
    """The error style each spec declares: Keystone's body and 401 challenge, the WSGI fault, Neutron's, webob's."""
    from pocketstack.common.app import error_response
    from pocketstack.common.errors import NotFound
    from pocketstack.services import SERVICES

    specs = {spec.name: spec for spec in SERVICES}
    denied = error_response(Unauthorized("no token"), specs["identity"].errors)
    assert denied.headers["WWW-Authenticate"] == 'Keystone uri="/v3"'
    assert b'"title":"Unauthorized"' in denied.body
    assert "WWW-Authenticate" not in error_response(Unauthorized(), specs["compute"].errors).headers
    assert error_response(NotFound("x"), specs["volume"].errors).body == b'{"itemNotFound":{"code":404,"message":"x"}}'
    assert b'"type":"HTTPNotFound"' in error_response(NotFound("x"), specs["network"].errors).body
    page = error_response(NotFound("<x>"), specs["image"].errors)
    assert page.media_type.startswith("text/html") and b"&lt;x&gt;" in page.body
