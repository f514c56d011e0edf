"""Identity through the real `openstack` CLI, as a user of the cloud drives it."""

from __future__ import annotations

import requests


def test_token_issue_and_revoke(cloud):
    token = cloud.cli("token", "issue", "-f", "json")
    assert token["id"] and token["project_id"] and token["user_id"]
    headers = {"X-Auth-Token": token["id"], "X-Subject-Token": token["id"]}
    assert requests.get(cloud.auth_url + "/auth/tokens", headers=headers).status_code == 200

    cloud.cli("token", "revoke", token["id"])
    resp = requests.get(cloud.auth_url + "/auth/tokens", headers=headers)
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == 401


def test_project_lifecycle(cloud, prefix):
    name = f"{prefix}-proj"
    created = cloud.cli("project", "create", "--description", "first", name, "-f", "json")
    assert created["name"] == name and created["domain_id"] == "default" and created["enabled"] is True
    assert name in [p["Name"] for p in cloud.cli("project", "list", "-f", "json")]
    cloud.cli("project", "set", "--description", "second", "--disable", name)
    shown = cloud.cli("project", "show", name, "-f", "json")
    assert shown["description"] == "second" and shown["enabled"] is False
    cloud.cli("project", "delete", name)
    assert name not in [p["Name"] for p in cloud.cli("project", "list", "-f", "json")]


def test_user_lifecycle_and_password(cloud, prefix):
    name = f"{prefix}-user"
    cloud.cli("project", "create", f"{prefix}-p")
    user = cloud.cli("user", "create", "--password", "pw-1", "--project", f"{prefix}-p", "--email", "a@b.c",
                     name, "-f", "json")
    assert user["name"] == name and user["enabled"] is True
    assert "password" not in user
    cloud.cli("role", "add", "--project", f"{prefix}-p", "--user", name, "member")
    listed = cloud.cli("user", "list", "-f", "json")
    assert name in [u["Name"] for u in listed]

    def issue(password):
        return cloud.cli("token", "issue", "-f", "json", cloud="", check=False,
                         env={"OS_AUTH_URL": cloud.auth_url, "OS_USERNAME": name, "OS_PASSWORD": password,
                              "OS_PROJECT_NAME": f"{prefix}-p", "OS_USER_DOMAIN_NAME": "Default",
                              "OS_PROJECT_DOMAIN_NAME": "Default", "OS_IDENTITY_API_VERSION": "3"})

    assert issue("pw-1").returncode == 0
    cloud.cli("user", "set", "--password", "pw-2", name)
    assert issue("pw-1").returncode != 0
    assert issue("pw-2").returncode == 0
    cloud.cli("user", "set", "--disable", name)
    assert cloud.cli("user", "show", name, "-f", "json")["enabled"] is False
    assert issue("pw-2").returncode != 0
    cloud.cli("user", "delete", name)
    assert name not in [u["Name"] for u in cloud.cli("user", "list", "-f", "json")]
    cloud.cli("project", "delete", f"{prefix}-p")


def test_group_and_roles(cloud, prefix):
    group, user, role, project = f"{prefix}-g", f"{prefix}-u", f"{prefix}-r", f"{prefix}-p"
    cloud.cli("project", "create", project)
    cloud.cli("user", "create", "--password", "x", user)
    created = cloud.cli("group", "create", "--description", "ops", group, "-f", "json")
    assert created["name"] == group
    cloud.cli("group", "add", "user", group, user)
    assert user in [u["Name"] for u in cloud.cli("group", "list", "--user", user, "-f", "json") and
                    cloud.cli("user", "list", "--group", group, "-f", "json")]
    cloud.cli("group", "set", "--description", "operators", group)
    assert cloud.cli("group", "show", group, "-f", "json")["description"] == "operators"

    assert cloud.cli("role", "create", role, "-f", "json")["name"] == role
    assert role in [r["Name"] for r in cloud.cli("role", "list", "-f", "json")]
    cloud.cli("role", "set", "--description", "custom", role)
    assert cloud.cli("role", "show", role, "-f", "json")["description"] == "custom"

    cloud.cli("role", "add", "--project", project, "--user", user, role)
    cloud.cli("role", "add", "--project", project, "--group", group, "member")
    rows = cloud.cli("role", "assignment", "list", "--project", project, "--names", "-f", "json")
    pairs = {(r["Role"], r["User"] or r["Group"]) for r in rows}
    assert (role, f"{user}@Default") in pairs
    assert ("member", f"{group}@Default") in pairs
    effective = cloud.cli("role", "assignment", "list", "--project", project, "--user", user, "--effective",
                          "--names", "-f", "json")
    assert {r["Role"] for r in effective} >= {role, "member", "reader"}

    cloud.cli("role", "remove", "--project", project, "--user", user, role)
    rows = cloud.cli("role", "assignment", "list", "--project", project, "--names", "-f", "json")
    assert (role, f"{user}@Default") not in {(r["Role"], r["User"]) for r in rows}
    cloud.cli("group", "remove", "user", group, user)
    assert cloud.cli("user", "list", "--group", group, "-f", "json") == []
    cloud.cli("group", "delete", group)
    cloud.cli("role", "delete", role)
    cloud.cli("user", "delete", user)
    cloud.cli("project", "delete", project)


def test_catalog_and_endpoints(cloud):
    catalog = cloud.cli("catalog", "list", "-f", "json")
    identity = next(c for c in catalog if c["Type"] == "identity")
    assert identity["Name"] == "keystone"
    endpoints = cloud.cli("endpoint", "list", "-f", "json")
    urls = {(e["Service Type"], e["Interface"]): e["URL"] for e in endpoints}
    assert urls[("identity", "public")] == cloud.auth_url
    assert {("identity", i) for i in ("public", "internal", "admin")} <= set(urls)


def test_application_credential_authenticates(cloud, prefix):
    created = cloud.cli("application", "credential", "create", f"{prefix}-ac", "-f", "json")
    created = {k.lower().replace(" ", "_"): v for k, v in created.items()}
    assert created["secret"] and created["id"] and created["roles"]
    env = {"OS_AUTH_TYPE": "v3applicationcredential", "OS_AUTH_URL": cloud.auth_url,
           "OS_APPLICATION_CREDENTIAL_ID": created["id"], "OS_APPLICATION_CREDENTIAL_SECRET": created["secret"],
           "OS_IDENTITY_API_VERSION": "3"}
    token = cloud.cli("token", "issue", "-f", "json", cloud="", env=env)
    assert token["project_id"] == created["project_id"]
    listed = cloud.cli("application", "credential", "list", "-f", "json")
    assert f"{prefix}-ac" in [c["Name"] for c in listed]

    bad = cloud.cli("token", "issue", cloud="", check=False,
                    env={**env, "OS_APPLICATION_CREDENTIAL_SECRET": "wrong"})
    assert bad.returncode != 0

    cloud.cli("application", "credential", "delete", f"{prefix}-ac")
    assert cloud.cli("token", "issue", cloud="", check=False, env=env).returncode != 0
