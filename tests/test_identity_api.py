"""Identity API v3 through openstacksdk and raw HTTP: errors, policy, isolation, revocation, token formats."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import keystoneauth1.exceptions.http
import openstack.exceptions
import pytest
import requests

from pocketstack.identity.tokens import KeyRepository, TokenPayload, TokenProvider, new_audit_id

REQUEST_ID_PREFIX = "req-"


def password_auth(user: str, password: str, project: str | None = None, domain: str = "Default") -> dict:
    body: dict = {"auth": {"identity": {"methods": ["password"], "password": {
        "user": {"name": user, "domain": {"name": domain}, "password": password}}}}}
    if project:
        body["auth"]["scope"] = {"project": {"name": project, "domain": {"name": domain}}}
    return body


def issue(cloud, user: str, password: str, project: str | None = None) -> str:
    resp = requests.post(cloud.auth_url + "/auth/tokens", json=password_auth(user, password, project))
    assert resp.status_code == 201, resp.text
    return resp.headers["X-Subject-Token"]


def validate(cloud, token: str, subject: str | None = None) -> requests.Response:
    return requests.get(cloud.auth_url + "/auth/tokens",
                        headers={"X-Auth-Token": token, "X-Subject-Token": subject or token})


@pytest.fixture
def member(cloud, prefix):
    """A fresh project with a member user; removed afterwards."""
    admin = cloud.conn()
    project = admin.identity.create_project(name=f"{prefix}-p", domain_id="default")
    user = admin.identity.create_user(name=f"{prefix}-u", password="pw", domain_id="default")
    member_role = admin.identity.find_role("member")
    admin.identity.assign_project_role_to_user(project, user, member_role)
    yield {"project": project, "user": user, "name": user.name, "project_name": project.name}
    admin.identity.delete_user(user, ignore_missing=True)
    admin.identity.delete_project(project, ignore_missing=True)


def test_version_discovery(cloud):
    root = requests.get(cloud.url("identity") + "/")
    assert root.status_code == 300
    assert root.json()["versions"]["values"][0]["id"].startswith("v3")
    v3 = requests.get(cloud.auth_url)
    assert v3.status_code == 200 and v3.json()["version"]["status"] == "stable"
    assert v3.headers["X-OpenStack-Request-ID"].startswith(REQUEST_ID_PREFIX)


def test_token_body_shape(cloud):
    resp = requests.post(cloud.auth_url + "/auth/tokens", json=password_auth("admin", "admin-secret", "admin"))
    assert resp.status_code == 201
    token = resp.json()["token"]
    assert token["methods"] == ["password"]
    assert token["user"]["name"] == "admin" and token["user"]["domain"] == {"id": "default", "name": "Default"}
    assert token["project"]["name"] == "admin"
    assert {r["name"] for r in token["roles"]} == {"admin", "manager", "member", "reader"}  # implied roles expanded
    assert token["expires_at"].endswith("Z") and token["audit_ids"]
    assert any(s["type"] == "identity" for s in token["catalog"])
    nocatalog = requests.post(cloud.auth_url + "/auth/tokens?nocatalog",
                              json=password_auth("admin", "admin-secret", "admin"))
    assert "catalog" not in nocatalog.json()["token"]


def test_unscoped_domain_scoped_and_rescoped_tokens(cloud):
    unscoped = requests.post(cloud.auth_url + "/auth/tokens", json={"auth": {"identity": {
        "methods": ["password"], "password": {"user": {"name": "demo", "domain": {"id": "default"},
                                                       "password": "demo-secret"}}}, "scope": "unscoped"}})
    assert unscoped.status_code == 201
    assert "project" not in unscoped.json()["token"] and "roles" not in unscoped.json()["token"]
    rescoped = requests.post(cloud.auth_url + "/auth/tokens", json={"auth": {
        "identity": {"methods": ["token"], "token": {"id": unscoped.headers["X-Subject-Token"]}},
        "scope": {"project": {"name": "demo", "domain": {"id": "default"}}}}})
    assert rescoped.status_code == 201, rescoped.text
    body = rescoped.json()["token"]
    assert body["project"]["name"] == "demo" and "token" in body["methods"]
    assert body["audit_ids"][1] == unscoped.json()["token"]["audit_ids"][0]

    admin = cloud.conn()
    admin_user = admin.identity.find_user("admin")
    admin_role = admin.identity.find_role("admin")
    admin.identity.assign_domain_role_to_user("default", admin_user, admin_role)
    domain_scoped = requests.post(cloud.auth_url + "/auth/tokens", json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"id": "default"},
                                                                    "password": "admin-secret"}}},
        "scope": {"domain": {"id": "default"}}}})
    assert domain_scoped.status_code == 201, domain_scoped.text
    assert domain_scoped.json()["token"]["domain"]["name"] == "Default"


def test_wrong_password_is_401_with_keystone_body(cloud):
    resp = requests.post(cloud.auth_url + "/auth/tokens", json=password_auth("admin", "wrong", "admin"))
    assert resp.status_code == 401
    assert resp.json() == {"error": {"code": 401, "title": "Unauthorized",
                                     "message": "The request you have made requires authentication."}}
    unknown = requests.post(cloud.auth_url + "/auth/tokens", json=password_auth("nobody", "x", "admin"))
    assert unknown.status_code == 401 and unknown.json() == resp.json()  # no user enumeration
    with pytest.raises(keystoneauth1.exceptions.http.Unauthorized):
        cloud.conn(username="admin", password="wrong", project_name="admin").identity.get_token()


@pytest.mark.parametrize("body,needle", [
    (b"{not json", "not valid JSON"),
    (b'{"auth": {}}', "auth.identity"),
    (b'{"auth": {"identity": {"methods": ["password"]}}}', "auth.identity.password"),
    (b'{"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin"}}}}}', "domain"),
    (b'{"nothing": 1}', "auth"),
])
def test_malformed_auth_requests_are_400(cloud, body, needle):
    resp = requests.post(cloud.auth_url + "/auth/tokens", data=body, headers={"Content-Type": "application/json"})
    assert resp.status_code == 400, resp.text
    assert needle in resp.json()["error"]["message"]


def test_bad_entity_bodies_are_400_and_create_nothing(cloud, prefix):
    token = cloud.conn().session.get_token()
    headers = {"X-Auth-Token": token}
    cases = [
        ("/projects", {"project": {}}),
        ("/projects", {"project": {"name": ""}}),
        ("/projects", {"project": {"name": f"{prefix}-x", "enabled": "maybe"}}),
        ("/projects", {"project": {"name": f"{prefix}-x", "domain_id": "no-such-domain"}}),
        ("/projects", {"project": {"name": f"{prefix}-x", "enabled": "True"}}),
        ("/users", {"name": f"{prefix}-x"}),
        ("/users", {"user": {"name": f"{prefix}-x", "enabled": "False"}}),
        ("/groups", {"group": {"name": ""}}),
        ("/endpoints", {"endpoint": {"service_id": "x", "interface": "sideways", "url": "http://a"}}),
        ("/endpoints", {"endpoint": {"service_id": "x", "interface": "public", "url": "http://a", "enabled": "True"}}),
    ]
    for path, body in cases:
        resp = requests.post(cloud.auth_url + path, json=body, headers=headers)
        assert resp.status_code == 400, (path, body, resp.text)
        assert resp.json()["error"]["message"]
    resp = requests.post(cloud.auth_url + "/users", headers=headers,
                         json={"user": {"name": f"{prefix}-x", "domain_id": "no-such-domain", "password": "p"}})
    assert resp.status_code == 404, resp.text  # as Keystone: the domain is not found
    assert not [p for p in cloud.conn().identity.projects() if p.name.startswith(prefix)]
    assert not [u for u in cloud.conn().identity.users() if u.name.startswith(prefix)]


def test_duplicate_names_conflict(cloud, prefix):
    admin = cloud.conn()
    admin.identity.create_project(name=f"{prefix}-dup", domain_id="default")
    with pytest.raises(openstack.exceptions.ConflictException):
        admin.identity.create_project(name=f"{prefix}-dup", domain_id="default")
    assert len(list(admin.identity.projects(name=f"{prefix}-dup"))) == 1


def test_member_cannot_administer(cloud, member):
    token = issue(cloud, member["name"], "pw", member["project_name"])
    headers = {"X-Auth-Token": token}
    resp = requests.post(cloud.auth_url + "/users", json={"user": {"name": "evil", "password": "x"}},
                         headers=headers)
    assert resp.status_code == 403
    assert resp.json()["error"]["title"] == "Forbidden"
    assert requests.get(cloud.auth_url + "/users", headers=headers).status_code == 403
    demo = cloud.conn("pocketstack-demo")
    with pytest.raises(openstack.exceptions.ForbiddenException):
        demo.identity.create_project(name="nope")


def test_project_isolation(cloud, member):
    token = issue(cloud, member["name"], "pw", member["project_name"])
    headers = {"X-Auth-Token": token}
    own = requests.get(f"{cloud.auth_url}/projects/{member['project'].id}", headers=headers)
    assert own.status_code == 200
    admin_project = cloud.conn().identity.find_project("admin")
    other = requests.get(f"{cloud.auth_url}/projects/{admin_project.id}", headers=headers)
    assert other.status_code == 403
    admin_user = cloud.conn().identity.find_user("admin")
    assert requests.get(f"{cloud.auth_url}/users/{admin_user.id}", headers=headers).status_code == 403
    mine = requests.get(f"{cloud.auth_url}/auth/projects", headers=headers).json()["projects"]
    assert [p["id"] for p in mine] == [member["project"].id]
    # validating another user's token is not allowed for a member
    admin_token = cloud.conn().session.get_token()
    assert validate(cloud, token, admin_token).status_code == 403


def test_user_changes_own_password(cloud, member):
    token = issue(cloud, member["name"], "pw", member["project_name"])
    url = f"{cloud.auth_url}/users/{member['user'].id}/password"
    wrong = requests.post(url, json={"user": {"password": "pw2", "original_password": "nope"}},
                          headers={"X-Auth-Token": token})
    assert wrong.status_code == 401
    ok = requests.post(url, json={"user": {"password": "pw2", "original_password": "pw"}},
                       headers={"X-Auth-Token": token})
    assert ok.status_code == 204
    assert validate(cloud, token).status_code == 401  # a password change revokes the user's tokens
    assert issue(cloud, member["name"], "pw2", member["project_name"])


@pytest.mark.parametrize("change", ["disable_user", "delete_user", "remove_role", "disable_project"])
def test_implied_revocation(cloud, member, change):
    token = issue(cloud, member["name"], "pw", member["project_name"])
    assert validate(cloud, token).status_code == 200
    admin = cloud.conn()
    if change == "disable_user":
        admin.identity.update_user(member["user"], is_enabled=False)
    elif change == "delete_user":
        admin.identity.delete_user(member["user"])
    elif change == "remove_role":
        admin.identity.unassign_project_role_from_user(member["project"], member["user"],
                                                       admin.identity.find_role("member"))
    else:
        admin.identity.update_project(member["project"], is_enabled=False)
    assert validate(cloud, token).status_code == 401
    admin_token = admin.session.get_token()
    assert validate(cloud, admin_token, token).status_code == 404


def test_explicit_revocation_keeps_other_tokens(cloud, member):
    first = issue(cloud, member["name"], "pw", member["project_name"])
    second = issue(cloud, member["name"], "pw", member["project_name"])
    resp = requests.delete(cloud.auth_url + "/auth/tokens", headers={"X-Auth-Token": second, "X-Subject-Token": first})
    assert resp.status_code == 204
    assert validate(cloud, first).status_code == 401
    assert validate(cloud, second).status_code == 200
    head = requests.head(cloud.auth_url + "/auth/tokens", headers={"X-Auth-Token": second, "X-Subject-Token": second})
    assert head.status_code == 200


def _signed(cloud, key_dir: Path, **overrides) -> str:
    """A token with chosen payload fields, signed with the keys in key_dir."""
    now = time.time()
    values = {"user_id": cloud.conn().identity.find_user("admin").id, "methods": ["password"],
              "issued_at": now, "expires_at": now + 600, "audit_ids": [new_audit_id()]}
    values.update(overrides)
    return TokenProvider(KeyRepository(key_dir)).encode(TokenPayload(**values))


def test_expired_tampered_and_foreign_tokens_are_401(cloud, tmp_path):
    keys = Path(cloud.settings.data_dir) / "fernet-keys"
    assert validate(cloud, _signed(cloud, keys)).status_code == 200  # the forging helper makes valid tokens
    now = time.time()
    expired = _signed(cloud, keys, issued_at=now - 7200, expires_at=now - 3600)
    resp = validate(cloud, expired)
    assert resp.status_code == 401 and resp.json()["error"]["code"] == 401
    good = cloud.conn().session.get_token()
    tampered = good[:40] + ("A" if good[40] != "A" else "B") + good[41:]
    assert validate(cloud, tampered).status_code == 401
    assert validate(cloud, "not-a-token").status_code == 401
    assert requests.get(cloud.auth_url + "/auth/catalog").status_code == 401  # no token at all
    other_keys = KeyRepository(tmp_path / "keys")
    other_keys.initialize()
    assert validate(cloud, _signed(cloud, tmp_path / "keys")).status_code == 401


# Authenticated paths of each service; every registered service must have one so revocation is checked on all.
PROBES = {
    "identity": "/v3/auth/catalog",
    "image": "/v2/images",
    "network": "/v2.0/networks",
    "compute": "/v2.1/servers",
    "volume": "/v3/{project_id}/volumes",  # the token's project is in the path
}


def test_revoked_token_rejected_by_every_service(cloud, member):
    from pocketstack.services import SERVICES as ALL_SERVICES

    # token-authenticated APIs; the metadata API takes signed proxy requests instead (test_compute_metadata.py)
    SERVICES = [s for s in ALL_SERVICES if s.catalog_type is not None]
    assert {s.name for s in SERVICES} <= set(PROBES), "add an authenticated probe path for each new service"
    token = issue(cloud, member["name"], "pw", member["project_name"])
    probes = {name: path.format(project_id=member["project"].id) for name, path in PROBES.items()}
    for spec in SERVICES:
        resp = requests.get(cloud.url(spec.name) + probes[spec.name], headers={"X-Auth-Token": token})
        assert resp.status_code == 200, (spec.name, resp.text)
        bad = requests.get(cloud.url(spec.name) + probes[spec.name], headers={"X-Auth-Token": token + "x"})
        assert bad.status_code == 401, spec.name
        assert bad.headers["X-OpenStack-Request-ID"].startswith(REQUEST_ID_PREFIX)
    admin_token = cloud.conn().session.get_token()
    requests.delete(cloud.auth_url + "/auth/tokens", headers={"X-Auth-Token": admin_token, "X-Subject-Token": token})
    deadline = time.monotonic() + cloud.settings.auth.cache_ttl + 2
    pending = {s.name for s in SERVICES}
    while pending and time.monotonic() < deadline:
        for name in list(pending):
            if requests.get(cloud.url(name) + probes[name], headers={"X-Auth-Token": token}).status_code == 401:
                pending.discard(name)
        time.sleep(0.2)
    assert not pending, f"still accepting a revoked token after the cache TTL: {pending}"


def test_request_id_is_propagated_when_given(cloud):
    rid = f"req-{uuid.uuid4()}"
    resp = requests.get(cloud.auth_url, headers={"X-OpenStack-Request-ID": rid})
    assert resp.headers["X-OpenStack-Request-ID"] == rid
    junk = requests.get(cloud.auth_url, headers={"X-OpenStack-Request-ID": "evil injected"})
    assert junk.headers["X-OpenStack-Request-ID"].startswith(REQUEST_ID_PREFIX)


def test_unknown_path_and_method(cloud):
    token = cloud.conn().session.get_token()
    missing = requests.get(cloud.auth_url + "/nowhere", headers={"X-Auth-Token": token})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == 404
    wrong = requests.put(cloud.auth_url + "/projects", headers={"X-Auth-Token": token})
    assert wrong.status_code == 405


def test_sdk_crud_regions_services_endpoints(cloud, prefix):
    admin = cloud.conn()
    region = admin.identity.create_region(id=f"{prefix}-region", description="lab")
    service = admin.identity.create_service(type=f"{prefix}-type", name=f"{prefix}-svc")
    endpoint = admin.identity.create_endpoint(service_id=service.id, interface="public",
                                              url="http://example.test:1234/v1", region_id=region.id)
    assert admin.identity.get_endpoint(endpoint.id).url == "http://example.test:1234/v1"
    # an update naming a region that does not exist yet makes it, as Keystone does
    moved = admin.identity.update_endpoint(endpoint, region_id=f"{prefix}-region2")
    assert moved.region_id == f"{prefix}-region2"
    assert admin.identity.get_region(f"{prefix}-region2").id == f"{prefix}-region2"
    admin.identity.update_endpoint(endpoint, region_id=region.id)
    admin.identity.delete_region(f"{prefix}-region2")
    catalog = requests.get(cloud.auth_url + "/auth/catalog",
                           headers={"X-Auth-Token": admin.session.get_token()}).json()["catalog"]
    assert any(s["type"] == f"{prefix}-type" for s in catalog)
    admin.identity.delete_endpoint(endpoint)
    admin.identity.delete_service(service)
    admin.identity.delete_region(region)
    assert admin.identity.find_region(f"{prefix}-region") is None
