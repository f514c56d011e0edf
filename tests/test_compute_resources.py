"""The compute API's resources around servers, driven by the `openstack` CLI and openstacksdk: flavors (extra
specs, access lists), key pairs, quotas and limits, hypervisors, services, availability zones, server groups,
instance actions, server metadata and tags; bad input, policy and leftovers after failed requests."""

from __future__ import annotations

import base64
import hashlib
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa


def api(cloud: Any, conn: Any, method: str, path: str, body: Any = None, version: str = "2.79",
        params: dict[str, str] | None = None) -> requests.Response:
    """A raw compute API request with the connection's token at a given microversion."""
    return requests.request(method, cloud.url("compute") + "/v2.1" + path, json=body, params=params, timeout=30,
                            headers={"X-Auth-Token": conn.auth_token, "OpenStack-API-Version": f"compute {version}"})


def ssh_public_key(kind: str = "ed25519") -> str:
    key = ed25519.Ed25519PrivateKey.generate() if kind == "ed25519" else rsa.generate_private_key(65537, 2048)
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                         serialization.PublicFormat.OpenSSH).decode() + " test@pocketstack"


def md5_fingerprint(tmp_path: Path, public_key: str) -> str:
    """The MD5 fingerprint as OpenSSH's ssh-keygen prints it (an independent check of Nova's format)."""
    path = tmp_path / "key.pub"
    path.write_text(public_key + "\n")
    out = subprocess.run(["ssh-keygen", "-l", "-E", "md5", "-f", str(path)], capture_output=True, text=True,
                         check=True).stdout
    return out.split()[1].removeprefix("MD5:")


# ----- flavors --------------------------------------------------------------------------------------------------
def test_flavor_cli_create_list_show_set_delete(cloud: Any, admin: Any, prefix: str) -> None:
    name = f"{prefix}-flavor"
    created = cloud.cli("flavor", "create", "--ram", "256", "--vcpus", "2", "--disk", "3", "--ephemeral", "1",
                        "--swap", "128", "--property", "hw:cpu_policy=shared", "--description", "small one",
                        name, "-f", "json")
    assert created["name"] == name and created["ram"] == 256 and created["vcpus"] == 2 and created["disk"] == 3
    assert created["OS-FLV-EXT-DATA:ephemeral"] == 1 and created["swap"] == 128
    assert created["properties"] == {"hw:cpu_policy": "shared"}
    assert created["description"] == "small one" and created["os-flavor-access:is_public"] is True
    listed = {f["Name"]: f for f in cloud.cli("flavor", "list", "--long", "-f", "json")}
    assert listed[name]["RAM"] == 256 and listed["m1.tiny"]["RAM"] == 512
    cloud.cli("flavor", "set", "--property", "quota:disk_read_bytes_sec=1000", name)
    shown = cloud.cli("flavor", "show", name, "-f", "json")
    assert shown["properties"] == {"hw:cpu_policy": "shared", "quota:disk_read_bytes_sec": "1000"}
    cloud.cli("flavor", "unset", "--property", "hw:cpu_policy", name)
    assert cloud.cli("flavor", "show", name, "-f", "json")["properties"] == {"quota:disk_read_bytes_sec": "1000"}
    cloud.cli("flavor", "set", "--description", "changed", name)
    assert cloud.cli("flavor", "show", created["id"], "-f", "json")["description"] == "changed"
    cloud.cli("flavor", "delete", name)
    assert cloud.cli("flavor", "show", name, check=False).returncode != 0
    assert name not in {f["Name"] for f in cloud.cli("flavor", "list", "-f", "json")}


def test_private_flavor_access_list(cloud: Any, admin: Any, demo: Any, prefix: str) -> None:
    name = f"{prefix}-private"
    flavor = cloud.cli("flavor", "create", "--ram", "128", "--vcpus", "1", "--disk", "0", "--private",
                       "--id", f"{prefix}-id", name, "-f", "json")
    assert flavor["id"] == f"{prefix}-id" and flavor["os-flavor-access:is_public"] is False
    demo_names = lambda: {f.name for f in demo.compute.flavors()}  # noqa: E731
    assert name not in demo_names()
    assert api(cloud, demo, "GET", f"/flavors/{flavor['id']}").status_code == 404
    assert name not in {f["Name"] for f in cloud.cli("flavor", "list", "-f", "json")}  # public only by default
    assert name in {f["Name"] for f in cloud.cli("flavor", "list", "--all", "-f", "json")}
    assert name in {f["Name"] for f in cloud.cli("flavor", "list", "--private", "-f", "json")}
    demo_project = demo.current_project_id
    cloud.cli("flavor", "set", "--project", demo_project, name)
    assert name in demo_names()
    access = api(cloud, admin, "GET", f"/flavors/{flavor['id']}/os-flavor-access").json()["flavor_access"]
    assert access == [{"flavor_id": flavor["id"], "tenant_id": demo_project}]
    again = api(cloud, admin, "POST", f"/flavors/{flavor['id']}/action", {"addTenantAccess": {"tenant": demo_project}})
    assert again.status_code == 409
    cloud.cli("flavor", "unset", "--project", demo_project, name)
    assert name not in demo_names()
    missing = api(cloud, admin, "POST", f"/flavors/{flavor['id']}/action",
                  {"removeTenantAccess": {"tenant": demo_project}})
    assert missing.status_code == 404 and "itemNotFound" in missing.json()
    public = api(cloud, admin, "GET", "/flavors/1/os-flavor-access")
    assert public.status_code == 404
    cloud.cli("flavor", "delete", name)


def test_flavor_bad_input_conflicts_and_policy(cloud: Any, admin: Any, demo: Any, prefix: str) -> None:
    before = len(api(cloud, admin, "GET", "/flavors", params={"is_public": "None"}).json()["flavors"])
    good = {"name": f"{prefix}-f", "ram": 64, "vcpus": 1, "disk": 0}
    for bad in ({**good, "ram": 0}, {**good, "vcpus": "x"}, {**good, "name": " lead"}, {**good, "bogus": 1},
                {**good, "id": "a/b"}, {**good, "disk": -1}, {**good, "rxtx_factor": 0},
                {k: v for k, v in good.items() if k != "ram"}):
        resp = api(cloud, admin, "POST", "/flavors", {"flavor": bad})
        assert resp.status_code == 400, (bad, resp.text)
        assert "badRequest" in resp.json()
    assert api(cloud, admin, "POST", "/flavors", {"flavor": {**good, "description": "x"}}, "2.54").status_code == 400
    assert api(cloud, admin, "POST", "/flavors", {"flavour": good}).status_code == 400
    assert api(cloud, admin, "POST", "/flavors", "not an object").status_code == 400
    assert api(cloud, demo, "POST", "/flavors", {"flavor": good}).status_code == 403
    refused = cloud.cli("flavor", "create", "--ram", "64", "--vcpus", "1", "--disk", "0", f"{prefix}-f",
                        cloud="pocketstack-demo", check=False)
    assert refused.returncode != 0 and "403" in refused.stderr
    assert len(api(cloud, admin, "GET", "/flavors", params={"is_public": "None"}).json()["flavors"]) == before
    created = api(cloud, admin, "POST", "/flavors", {"flavor": {**good, "id": f"{prefix}-x"}})
    assert created.status_code == 200, created.text
    dup_name = api(cloud, admin, "POST", "/flavors", {"flavor": good})
    assert dup_name.status_code == 409 and "already exists" in dup_name.json()["conflictingRequest"]["message"]
    dup_id = api(cloud, admin, "POST", "/flavors", {"flavor": {**good, "name": f"{prefix}-g", "id": f"{prefix}-x"}})
    assert dup_id.status_code == 409
    specs = f"/flavors/{prefix}-x/os-extra_specs"
    assert api(cloud, demo, "POST", specs, {"extra_specs": {"a": "b"}}).status_code == 403
    assert api(cloud, admin, "POST", specs, {"extra_specs": {"bad/key": "b"}}).status_code == 400
    assert api(cloud, admin, "POST", specs, {"extra_specs": {"a": "b", "n": 2}}).json() == {
        "extra_specs": {"a": "b", "n": "2"}}
    assert api(cloud, admin, "PUT", f"{specs}/a", {"b": "c"}).status_code == 400  # body and URI mismatch
    assert api(cloud, admin, "PUT", f"{specs}/a", {"a": "c"}).json() == {"a": "c"}
    assert api(cloud, demo, "GET", f"{specs}/a").json() == {"a": "c"}
    assert api(cloud, admin, "DELETE", f"{specs}/a").status_code == 200  # as Nova
    assert api(cloud, admin, "GET", f"{specs}/a").status_code == 404
    assert api(cloud, demo, "DELETE", f"/flavors/{prefix}-x").status_code == 403
    assert api(cloud, admin, "DELETE", f"/flavors/{prefix}-x").status_code == 202
    assert api(cloud, admin, "GET", f"/flavors/{prefix}-x").status_code == 404


def test_flavor_bodies_by_microversion_filters_and_pages(cloud: Any, admin: Any) -> None:
    old = api(cloud, admin, "GET", "/flavors/1", version="2.1").json()["flavor"]
    assert old["swap"] == "" and "description" not in old and "extra_specs" not in old
    assert old["OS-FLV-DISABLED:disabled"] is False and old["rxtx_factor"] == 1.0
    new = api(cloud, admin, "GET", "/flavors/1", version="2.75").json()["flavor"]
    assert new["swap"] == 0 and new["description"] is None and new["extra_specs"] == {}
    big = api(cloud, admin, "GET", "/flavors/detail", params={"minRam": "8192"}).json()["flavors"]
    assert {f["name"] for f in big} >= {"m1.large", "m1.xlarge"} and all(f["ram"] >= 8192 for f in big)
    assert api(cloud, admin, "GET", "/flavors", params={"minDisk": "x"}).status_code == 400
    assert api(cloud, admin, "GET", "/flavors", params={"sort_key": "nope"}).status_code == 400
    by_ram = api(cloud, admin, "GET", "/flavors/detail", params={"sort_key": "memory_mb", "sort_dir": "desc"})
    rams = [f["ram"] for f in by_ram.json()["flavors"]]
    assert rams == sorted(rams, reverse=True)
    seen: list[str] = []
    params = {"limit": "2"}
    while True:
        page = api(cloud, admin, "GET", "/flavors", params=params).json()
        seen += [f["id"] for f in page["flavors"]]
        if "flavors_links" not in page:
            break
        params = {"limit": "2", "marker": seen[-1]}
    assert seen == [f["id"] for f in api(cloud, admin, "GET", "/flavors").json()["flavors"]]
    assert len(seen) == len(set(seen)) >= 7
    assert api(cloud, admin, "GET", "/flavors", params={"marker": "nope"}).status_code == 400
    sdk = admin.compute.find_flavor("m1.small")
    assert sdk.ram == 2048 and sdk.is_public is True and sdk.extra_specs == {}


# ----- key pairs -----------------------------------------------------------------------------------------------
def test_keypair_import_generate_list_show_delete(cloud: Any, admin: Any, tmp_path: Path, prefix: str) -> None:
    public_key = ssh_public_key("rsa")
    key_file = tmp_path / "id.pub"
    key_file.write_text(public_key)
    created = cloud.cli("keypair", "create", "--public-key", str(key_file), f"{prefix}-imp", "-f", "json")
    assert created["fingerprint"] == md5_fingerprint(tmp_path, public_key)
    assert created["type"] == "ssh" and created["user_id"] == admin.current_user_id
    ed_key = ssh_public_key("ed25519")
    key_file.write_text(ed_key)
    ed = cloud.cli("keypair", "create", "--public-key", str(key_file), f"{prefix}-ed", "-f", "json")
    assert ed["fingerprint"] == md5_fingerprint(tmp_path, ed_key)
    generated = admin.compute.create_keypair(name=f"{prefix}-gen")
    assert generated.private_key.startswith("-----BEGIN RSA PRIVATE KEY-----")
    private = serialization.load_pem_private_key(generated.private_key.encode(), None)
    derived = private.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    assert generated.public_key.startswith(derived.decode())
    assert generated.fingerprint == md5_fingerprint(tmp_path, generated.public_key)
    names = {k["Name"] for k in cloud.cli("keypair", "list", "-f", "json")}
    assert {f"{prefix}-imp", f"{prefix}-ed", f"{prefix}-gen"} <= names
    shown = cloud.cli("keypair", "show", f"{prefix}-imp", "-f", "json")
    assert shown["fingerprint"] == created["fingerprint"] and shown["name"] == f"{prefix}-imp"
    assert cloud.cli("keypair", "show", "--public-key", f"{prefix}-imp").strip() == public_key.strip()
    page = api(cloud, admin, "GET", "/os-keypairs", params={"limit": "1"}, version="2.35").json()
    assert len(page["keypairs"]) == 1 and page["keypairs_links"]
    for name in (f"{prefix}-imp", f"{prefix}-ed", f"{prefix}-gen"):
        cloud.cli("keypair", "delete", name)
    assert cloud.cli("keypair", "show", f"{prefix}-imp", check=False).returncode != 0


def test_keypair_bad_input_duplicates_privacy_and_quota(cloud: Any, admin: Any, demo: Any, prefix: str) -> None:
    key = ssh_public_key()
    good = {"name": f"{prefix}-k", "public_key": key}
    for bad in ({**good, "public_key": "ssh-rsa not-base64!"}, {**good, "public_key": "hello"},
                {**good, "public_key": "ssh-dss AAAAB3NzaC1kc3MAAACBAP"}, {**good, "name": "bad/name"},
                {**good, "name": ""}, {**good, "name": " x"}, {**good, "type": "rsa"}, {**good, "extra": 1}):
        resp = api(cloud, admin, "POST", "/os-keypairs", {"keypair": bad})
        assert resp.status_code == 400, (bad, resp.text)
    assert api(cloud, admin, "POST", "/os-keypairs", {"keypair": {**good, "type": "ssh"}}, "2.1").status_code == 400
    assert api(cloud, admin, "GET", f"/os-keypairs/{prefix}-k").status_code == 404  # nothing left behind
    assert api(cloud, admin, "POST", "/os-keypairs", {"keypair": good}).status_code == 201
    dup = api(cloud, admin, "POST", "/os-keypairs", {"keypair": good})
    assert dup.status_code == 409 and "already exists" in dup.json()["conflictingRequest"]["message"]
    # the demo user neither sees nor can reach the admin's key pair; the same name is free for them
    assert api(cloud, demo, "GET", f"/os-keypairs/{prefix}-k").status_code == 404
    assert f"{prefix}-k" not in {k.name for k in demo.compute.keypairs()}
    demo_keys = cloud.cli("keypair", "list", "-f", "json", cloud="pocketstack-demo")
    assert f"{prefix}-k" not in {k["Name"] for k in demo_keys}
    other = api(cloud, demo, "GET", "/os-keypairs", params={"user_id": admin.current_user_id})
    assert other.status_code == 403
    assert api(cloud, demo, "POST", "/os-keypairs", {"keypair": good}).status_code == 201
    # an admin reaches another user's key pairs with user_id (2.10)
    demo_user = demo.current_user_id
    seen = api(cloud, admin, "GET", f"/os-keypairs/{prefix}-k", params={"user_id": demo_user}).json()["keypair"]
    assert seen["user_id"] == demo_user
    # quota key_pairs
    demo_project = demo.current_project_id
    owned = len(api(cloud, demo, "GET", "/os-keypairs").json()["keypairs"])
    cloud.cli("quota", "set", "--key-pairs", str(owned), demo_project)
    try:
        over = api(cloud, demo, "POST", "/os-keypairs", {"keypair": {**good, "name": f"{prefix}-k2"}})
        assert over.status_code == 403 and over.json()["forbidden"]["message"] == "Quota exceeded, too many key pairs."
        assert api(cloud, demo, "GET", f"/os-keypairs/{prefix}-k2").status_code == 404
    finally:
        api(cloud, admin, "DELETE", f"/os-quota-sets/{demo_project}")
    assert api(cloud, admin, "DELETE", f"/os-keypairs/{prefix}-k", params={"user_id": demo_user}).status_code == 204
    assert api(cloud, admin, "DELETE", f"/os-keypairs/{prefix}-k").status_code == 204
    assert api(cloud, admin, "DELETE", f"/os-keypairs/{prefix}-k").status_code == 404


# ----- quotas and limits ----------------------------------------------------------------------------------------
def test_quota_show_set_and_limits(cloud: Any, admin: Any, demo: Any) -> None:
    demo_project = demo.current_project_id
    defaults = api(cloud, admin, "GET", f"/os-quota-sets/{demo_project}/defaults").json()["quota_set"]
    assert defaults["instances"] == cloud.settings.compute.quota_instances
    shown = cloud.cli("quota", "show", demo_project, "-f", "json")
    rows = {r["Resource"]: r["Limit"] for r in shown} if isinstance(shown, list) else shown
    assert rows["instances"] == cloud.settings.compute.quota_instances
    cloud.cli("quota", "set", "--instances", "7", "--cores", "9", demo_project)
    try:
        shown = cloud.cli("quota", "show", demo_project, "-f", "json")
        rows = {r["Resource"]: r["Limit"] for r in shown} if isinstance(shown, list) else shown
        assert rows["instances"] == 7 and rows["cores"] == 9
        limits = cloud.cli("limits", "show", "--absolute", "-f", "json", cloud="pocketstack-demo")
        values = {r["Name"]: r["Value"] for r in limits}
        assert values["instances"] == 7 and values["total_cores"] == 9  # the CLI shows the SDK's names
        assert values["total_ram"] == cloud.settings.compute.quota_ram and values["instances_used"] >= 0
        sdk = demo.compute.get_limits()
        assert sdk.absolute.instances == 7 and sdk.absolute.server_groups == cloud.settings.compute.quota_server_groups
        detail = api(cloud, demo, "GET", f"/os-quota-sets/{demo_project}/detail").json()["quota_set"]
        assert detail["instances"]["limit"] == 7 and detail["instances"]["reserved"] == 0
        # admins read other projects' limits; others may not
        assert api(cloud, admin, "GET", "/limits", params={"tenant_id": demo_project}).json()[
            "limits"]["absolute"]["maxTotalInstances"] == 7
        assert api(cloud, demo, "GET", "/limits", params={"tenant_id": admin.current_project_id}).status_code == 403
        assert api(cloud, demo, "PUT", f"/os-quota-sets/{demo_project}",
                   {"quota_set": {"instances": 100}}).status_code == 403
        assert api(cloud, demo, "GET", f"/os-quota-sets/{admin.current_project_id}").status_code == 403
        for bad in ({"instances": -2}, {"instances": "x"}, {"bogus": 1}, {"instances": True}):
            resp = api(cloud, admin, "PUT", f"/os-quota-sets/{demo_project}", {"quota_set": bad})
            assert resp.status_code == 400, (bad, resp.text)
        assert api(cloud, admin, "GET", f"/os-quota-sets/{demo_project}").json()["quota_set"]["instances"] == 7
    finally:
        assert api(cloud, admin, "DELETE", f"/os-quota-sets/{demo_project}").status_code == 202
    assert api(cloud, admin, "GET", f"/os-quota-sets/{demo_project}").json()["quota_set"]["instances"] == \
        cloud.settings.compute.quota_instances


# ----- hypervisors, services, zones -----------------------------------------------------------------------------
def test_hypervisors_services_and_zones(cloud: Any, admin: Any, demo: Any) -> None:
    hypervisors = cloud.cli("hypervisor", "list", "--long", "-f", "json")
    assert len(hypervisors) == cloud.settings.compute.fake_hosts
    hyp = hypervisors[0]
    assert hyp["State"] == "up" and hyp["Hypervisor Type"] == "fake"
    shown = cloud.cli("hypervisor", "show", hyp["Hypervisor Hostname"], "-f", "json")
    assert shown["vcpus"] == cloud.settings.compute.fake_vcpus and shown["memory_mb"] == \
        cloud.settings.compute.fake_memory_mb
    stats = cloud.cli("hypervisor", "stats", "show", "-f", "json")
    assert (stats["count"] == len(hypervisors) and stats["vcpus"] == sum(
        h["vCPUs"] for h in hypervisors if h.get("vCPUs") is not None)) or stats["vcpus"] > 0
    old = api(cloud, admin, "GET", "/os-hypervisors/detail", version="2.1").json()["hypervisors"][0]
    assert isinstance(old["id"], int) and isinstance(old["cpu_info"], str)
    new = api(cloud, admin, "GET", "/os-hypervisors/detail").json()["hypervisors"][0]
    assert len(new["id"]) == 36 and isinstance(new["cpu_info"], dict)
    assert api(cloud, admin, "GET", "/os-hypervisors/not-a-uuid").status_code == 400
    assert api(cloud, demo, "GET", "/os-hypervisors").status_code == 403

    services = cloud.cli("compute", "service", "list", "-f", "json")
    computes = [s for s in services if s["Binary"] == "nova-compute"]
    assert len(computes) == cloud.settings.compute.fake_hosts and all(s["State"] == "up" for s in computes)
    assert {"nova-conductor", "nova-scheduler"} <= {s["Binary"] for s in services}
    host = computes[0]["Host"]
    filtered = cloud.cli("compute", "service", "list", "--host", host, "--service", "nova-compute", "-f", "json")
    assert [s["Host"] for s in filtered] == [host]
    cloud.cli("compute", "service", "set", "--disable", "--disable-reason", "maintenance", host, "nova-compute")
    try:
        row = cloud.cli("compute", "service", "list", "--host", host, "--long", "-f", "json")[0]
        assert row["Status"] == "disabled" and row["Disabled Reason"] == "maintenance"
        assert api(cloud, admin, "GET", "/os-hypervisors").json()["hypervisors"][0]["status"] == "disabled"
    finally:
        cloud.cli("compute", "service", "set", "--enable", host, "nova-compute")
    row = cloud.cli("compute", "service", "list", "--host", host, "--long", "-f", "json")[0]
    assert row["Status"] == "enabled" and row["Disabled Reason"] is None
    service_id = row["ID"]
    assert api(cloud, admin, "PUT", f"/os-services/{service_id}", {"status": "enabled",
                                                                     "disabled_reason": "x"}).status_code == 400
    assert api(cloud, admin, "PUT", f"/os-services/{service_id}", {"status": "off"}).status_code == 400
    assert api(cloud, demo, "PUT", f"/os-services/{service_id}", {"status": "disabled"}).status_code == 403
    forced = api(cloud, admin, "PUT", f"/os-services/{service_id}", {"forced_down": True}).json()["service"]
    assert forced["forced_down"] is True and forced["state"] == "down"
    back = api(cloud, admin, "PUT", f"/os-services/{service_id}", {"forced_down": False}).json()["service"]
    assert back["state"] == "up"

    zones = cloud.cli("availability", "zone", "list", "--compute", "-f", "json")
    assert {(z["Zone Name"], z["Zone Status"]) for z in zones} == {("nova", "available"), ("internal", "available")}
    long = cloud.cli("availability", "zone", "list", "--compute", "--long", "-f", "json")
    assert {(z["Zone Name"], z["Host Name"], z["Service Name"]) for z in long} >= {
        ("nova", s["Host"], "nova-compute") for s in computes}
    detail = api(cloud, admin, "GET", "/os-availability-zone/detail").json()["availabilityZoneInfo"]
    assert {z["zoneName"] for z in detail} == {"nova", "internal"}
    assert api(cloud, demo, "GET", "/os-availability-zone").status_code == 200
    assert api(cloud, demo, "GET", "/os-availability-zone/detail").status_code == 403


# ----- server groups --------------------------------------------------------------------------------------------
def test_server_group_cli_and_versions(cloud: Any, admin: Any, demo: Any, prefix: str) -> None:
    group = cloud.cli("server", "group", "create", "--policy", "anti-affinity", f"{prefix}-g", "-f", "json")
    assert (group["policy"] == "anti-affinity" and group["members"] == "")  or group["members"] == []
    listed = {g["Name"]: g for g in cloud.cli("server", "group", "list", "-f", "json")}
    assert listed[f"{prefix}-g"]["ID"] == group["id"]
    shown = cloud.cli("server", "group", "show", group["id"], "-f", "json")
    assert shown["name"] == f"{prefix}-g"
    old = api(cloud, admin, "GET", f"/os-server-groups/{group['id']}", version="2.1").json()["server_group"]
    assert old["policies"] == ["anti-affinity"] and "project_id" not in old
    made = api(cloud, admin, "POST", "/os-server-groups", {"server_group": {
        "name": f"{prefix}-r", "policy": "anti-affinity", "rules": {"max_server_per_host": 2}}}).json()
    assert made["server_group"]["rules"] == {"max_server_per_host": 2}
    for body, ver in (({"name": "x", "policy": "best-effort"}, "2.64"), ({"name": "x", "policies": ["affinity"]},
                      "2.64"), ({"name": "x", "policy": "affinity", "rules": {"max_server_per_host": 2}}, "2.64"),
                      ({"name": "x", "policies": ["soft-affinity"]}, "2.14"), ({"name": "", "policy": "affinity"},
                      "2.64"), ({"name": "x", "policies": ["affinity", "anti-affinity"]}, "2.1")):
        resp = api(cloud, admin, "POST", "/os-server-groups", {"server_group": body}, ver)
        assert resp.status_code == 400, (body, resp.text)
    # demo sees only its own groups; all_projects is for admins (Nova gives others their own, no error)
    assert group["id"] not in {g.id for g in demo.compute.server_groups()}
    assert api(cloud, demo, "GET", f"/os-server-groups/{group['id']}").status_code == 404
    mine = api(cloud, demo, "GET", "/os-server-groups", params={"all_projects": "true"})
    assert mine.status_code == 200 and group["id"] not in {g["id"] for g in mine.json()["server_groups"]}
    soft = demo.compute.create_server_group(name=f"{prefix}-s", policy="soft-affinity")
    everything = api(cloud, admin, "GET", "/os-server-groups", params={"all_projects": "1"}).json()["server_groups"]
    assert {group["id"], soft.id} <= {g["id"] for g in everything}
    # quota server_groups
    demo_project = demo.current_project_id
    api(cloud, admin, "PUT", f"/os-quota-sets/{demo_project}", {"quota_set": {"server_groups": 1}})
    try:
        over = api(cloud, demo, "POST", "/os-server-groups", {"server_group": {"name": "x", "policy": "affinity"}})
        assert over.status_code == 403 and "server groups" in over.json()["forbidden"]["message"]
    finally:
        api(cloud, admin, "DELETE", f"/os-quota-sets/{demo_project}")
    assert [g.id for g in demo.compute.server_groups()] == [soft.id]  # the refused one left nothing behind
    demo.compute.delete_server_group(soft)
    cloud.cli("server", "group", "delete", group["id"], made["server_group"]["id"])
    assert api(cloud, admin, "GET", f"/os-server-groups/{group['id']}").status_code == 404


# ----- a server: metadata, tags, actions ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def booted(cloud: Any, admin: Any) -> Any:
    """An ACTIVE server (fake driver) in an anti-affinity group, deleted at the end."""
    image = admin.image.create_image(name="resources-img", disk_format="raw", container_format="bare",
                                     data=b"\0" * 1024, visibility="public")
    net = admin.network.create_network(name="resources-net")
    admin.network.create_subnet(network_id=net.id, cidr="10.77.0.0/24", ip_version=4)
    group = admin.compute.create_server_group(name="resources-group", policy="anti-affinity")
    server = admin.compute.create_server(name="resources-vm", image_id=image.id, flavor_id="1",
                                         networks=[{"uuid": net.id}], scheduler_hints={"group": group.id})
    server = admin.compute.wait_for_server(server, wait=60)
    yield server, group
    try:
        admin.compute.delete_server(server, ignore_missing=True)
        admin.compute.wait_for_delete(server, wait=60)
    finally:
        admin.compute.delete_server_group(group, ignore_missing=True)
        admin.network.delete_network(net)
        admin.image.delete_image(image)


def test_server_group_members(cloud: Any, admin: Any, booted: Any) -> None:
    server, group = booted
    shown = cloud.cli("server", "group", "show", group.id, "-f", "json")
    assert server.id in shown["members"]
    assert admin.compute.get_server_group(group.id).member_ids == [server.id]


def test_hypervisor_usage_servers_and_service_delete(cloud: Any, admin: Any, booted: Any) -> None:
    server, _ = booted
    node_name = admin.compute.get_server(server.id).hypervisor_hostname
    found = api(cloud, admin, "GET", "/os-hypervisors", params={"hypervisor_hostname_pattern": node_name,
                                                                 "with_servers": "true"}).json()["hypervisors"]
    assert [h["hypervisor_hostname"] for h in found] == [node_name]
    assert server.id in {s["uuid"] for s in found[0]["servers"]}
    detail = api(cloud, admin, "GET", f"/os-hypervisors/{found[0]['id']}").json()["hypervisor"]
    assert detail["running_vms"] >= 1 and detail["vcpus_used"] >= 1 and detail["memory_mb_used"] >= 512
    assert detail["free_ram_mb"] == detail["memory_mb"] - detail["memory_mb_used"]
    legacy = api(cloud, admin, "GET", f"/os-hypervisors/{node_name}/servers", version="2.52").json()["hypervisors"]
    assert server.id in {s["uuid"] for s in legacy[0]["servers"]}
    assert api(cloud, admin, "GET", "/os-hypervisors", params={"hypervisor_hostname_pattern": "nomatch"}
               ).status_code == 404
    stats = api(cloud, admin, "GET", "/os-hypervisors/statistics").json()["hypervisor_statistics"]
    assert stats["running_vms"] >= 1 and stats["count"] == cloud.settings.compute.fake_hosts
    host = admin.compute.get_server(server.id).compute_host
    service = next(s for s in admin.compute.services() if s.host == host and s.binary == "nova-compute")
    refused = api(cloud, admin, "DELETE", f"/os-services/{service.id}")
    assert refused.status_code == 409 and "hosting instances" in refused.json()["conflictingRequest"]["message"]
    assert api(cloud, admin, "DELETE", "/os-services/not-a-uuid").status_code == 400
    assert api(cloud, admin, "DELETE", "/os-services/00000000-0000-0000-0000-000000000000").status_code == 404
    assert host in {s.host for s in admin.compute.services()}


def test_server_metadata_cli_and_api(cloud: Any, admin: Any, demo: Any, booted: Any) -> None:
    server, _ = booted
    cloud.cli("server", "set", "--property", "role=web", "--property", "tier=1", server.id)
    assert cloud.cli("server", "show", server.id, "-f", "json")["properties"] == {"role": "web", "tier": "1"}
    cloud.cli("server", "unset", "--property", "tier", server.id)
    assert admin.compute.get_server_metadata(server.id).metadata == {"role": "web"}
    path = f"/servers/{server.id}/metadata"
    assert api(cloud, admin, "POST", path, {"metadata": {"a": "1"}}).json() == {"metadata": {"a": "1", "role": "web"}}
    assert api(cloud, admin, "PUT", path, {"metadata": {"b": "2"}}).json() == {"metadata": {"b": "2"}}
    assert api(cloud, admin, "GET", f"{path}/b").json() == {"meta": {"b": "2"}}
    assert api(cloud, admin, "PUT", f"{path}/c", {"meta": {"c": "3"}}).json() == {"meta": {"c": "3"}}
    assert api(cloud, admin, "PUT", f"{path}/c", {"meta": {"d": "3"}}).status_code == 400
    assert api(cloud, admin, "PUT", f"{path}/c", {"meta": {"c": "3", "d": "4"}}).status_code == 400
    assert api(cloud, admin, "POST", path, {"metadata": {"k": 1}}).status_code == 400
    assert api(cloud, admin, "POST", path, {"metadata": {"": "x"}}).status_code == 400
    assert api(cloud, admin, "POST", path, {"metadata": {"k": "v" * 256}}).status_code == 400
    assert api(cloud, admin, "DELETE", f"{path}/c").status_code == 204
    assert api(cloud, admin, "DELETE", f"{path}/c").status_code == 404
    assert api(cloud, demo, "GET", path).status_code == 404
    assert api(cloud, demo, "POST", path, {"metadata": {"x": "y"}}).status_code == 404
    # the metadata_items quota refuses the whole request and keeps what was there
    project = admin.current_project_id
    api(cloud, admin, "PUT", f"/os-quota-sets/{project}", {"quota_set": {"metadata_items": 2}})
    try:
        over = api(cloud, admin, "POST", path, {"metadata": {"x": "1", "y": "2"}})
        assert over.status_code == 403 and "metadata items" in over.json()["forbidden"]["message"]
    finally:
        api(cloud, admin, "DELETE", f"/os-quota-sets/{project}")
    assert api(cloud, admin, "GET", path).json() == {"metadata": {"b": "2"}}
    assert api(cloud, admin, "GET", f"/servers/{server.id}").json()["server"]["metadata"] == {"b": "2"}


def test_server_tags_cli_and_api(cloud: Any, admin: Any, demo: Any, booted: Any) -> None:
    server, _ = booted
    cloud.cli("server", "set", "--tag", "blue", "--tag", "green", server.id)
    assert sorted(cloud.cli("server", "show", server.id, "-f", "json")["tags"]) == ["blue", "green"]
    tagged = [s["ID"] for s in cloud.cli("server", "list", "--tags", "blue", "-f", "json")]
    assert tagged == [server.id]
    cloud.cli("server", "unset", "--tag", "green", server.id)
    path = f"/servers/{server.id}/tags"
    assert api(cloud, admin, "GET", path).json() == {"tags": ["blue"]}
    assert api(cloud, admin, "GET", f"{path}/blue").status_code == 204
    assert api(cloud, admin, "GET", f"{path}/green").status_code == 404
    added = api(cloud, admin, "PUT", f"{path}/red")
    assert added.status_code == 201 and added.headers["Location"].endswith(f"/servers/{server.id}/tags/red")
    assert api(cloud, admin, "PUT", f"{path}/red").status_code == 204
    assert api(cloud, admin, "PUT", path, {"tags": ["x", "y", "x"]}).json() == {"tags": ["x", "y"]}
    assert api(cloud, admin, "PUT", path, {"tags": ["a,b"]}).status_code == 400
    assert api(cloud, admin, "PUT", path, {"tags": [str(i) for i in range(51)]}).status_code == 400
    assert api(cloud, admin, "PUT", path, {"tags": "x"}).status_code == 400
    assert api(cloud, admin, "GET", path).json() == {"tags": ["x", "y"]}
    assert api(cloud, admin, "GET", path, version="2.25").status_code == 404
    assert api(cloud, demo, "GET", path).status_code == 404
    assert api(cloud, admin, "DELETE", f"{path}/x").status_code == 204
    assert api(cloud, admin, "DELETE", f"{path}/x").status_code == 404
    assert api(cloud, admin, "DELETE", path).status_code == 204
    assert admin.compute.get_server(server.id).tags == []


def test_server_events_and_deleted_server_actions(cloud: Any, admin: Any, demo: Any, prefix: str) -> None:
    image = admin.image.create_image(name=f"{prefix}-img", disk_format="raw", container_format="bare",
                                     data=b"\0" * 512, visibility="public")
    net = admin.network.create_network(name=f"{prefix}-net")
    admin.network.create_subnet(network_id=net.id, cidr="10.78.0.0/24", ip_version=4)
    try:
        server = admin.compute.create_server(name=f"{prefix}-vm", image_id=image.id, flavor_id="1",
                                             networks=[{"uuid": net.id}])
        server = admin.compute.wait_for_server(server, wait=60)
        admin.compute.stop_server(server)
        admin.compute.wait_for_server(server, status="SHUTOFF", wait=60)
        events = cloud.cli("server", "event", "list", server.id, "-f", "json")
        assert [e["Action"] for e in events] == ["stop", "create"]
        create = next(e for e in events if e["Action"] == "create")
        shown = cloud.cli("server", "event", "show", server.id, create["Request ID"], "-f", "json")
        names = {e["event"] for e in shown["events"]}
        assert "compute__do_build_and_run_instance" in names
        assert all(e["result"] == "Success" for e in shown["events"])
        assert all(e["host"] for e in shown["events"])  # admins see the host (2.62)
        assert api(cloud, admin, "GET", f"/servers/{server.id}/os-instance-actions/req-nope").status_code == 404
        assert api(cloud, demo, "GET", f"/servers/{server.id}/os-instance-actions").status_code == 404
        page = api(cloud, admin, "GET", f"/servers/{server.id}/os-instance-actions", params={"limit": "1"}).json()
        assert [a["action"] for a in page["instanceActions"]] == ["stop"] and page["links"]
        admin.compute.delete_server(server)
        admin.compute.wait_for_delete(server, wait=60)
        after = cloud.cli("server", "event", "list", server.id, "-f", "json")  # by ID once deleted (2.21)
        assert [a["Action"] for a in after] == ["delete", "stop", "create"]
        delete = cloud.cli("server", "event", "show", server.id, after[0]["Request ID"], "-f", "json")
        assert delete["action"] == "delete" and delete["request_id"] == after[0]["Request ID"]
        assert api(cloud, admin, "GET", f"/servers/{server.id}/os-instance-actions", version="2.20").status_code \
            == 404
    finally:
        admin.network.delete_network(net)
        admin.image.delete_image(image)


def test_fingerprint_matches_nova_algorithm() -> None:
    """Nova's fingerprint is MD5 over the base64-decoded key blob (checked against ssh-keygen elsewhere)."""
    from pocketstack.compute.api.keypairs import fingerprint

    key = ssh_public_key()
    digest = hashlib.md5(base64.b64decode(key.split()[1])).hexdigest()
    assert fingerprint(key) == ":".join(digest[i:i + 2] for i in range(0, 32, 2))


def test_malformed_bodies_and_old_microversions_never_500(cloud: Any, admin: Any, booted: Any) -> None:
    server, group = booted
    project = admin.current_project_id
    writes = [("POST", "/flavors"), ("PUT", "/flavors/1"), ("POST", "/flavors/1/os-extra_specs"),
              ("PUT", "/flavors/1/os-extra_specs/k"), ("POST", "/flavors/1/action"), ("POST", "/os-keypairs"),
              ("PUT", f"/os-quota-sets/{project}"), ("POST", "/os-server-groups"),
              ("PUT", "/os-services/00000000-0000-0000-0000-000000000000"),
              ("POST", f"/servers/{server.id}/metadata"), ("PUT", f"/servers/{server.id}/metadata"),
              ("PUT", f"/servers/{server.id}/metadata/k"), ("PUT", f"/servers/{server.id}/tags")]
    bodies = [None, [], "x", 1, {}, {"flavor": None}, {"keypair": []}, {"quota_set": "x"}, {"metadata": [1]},
              {"meta": None}, {"tags": {"a": 1}}, {"server_group": {"name": 1}}, {"extra_specs": None},
              {"addTenantAccess": None}, {"status": None}]
    for method, path in writes:
        for body in bodies:
            for ver in ("2.1", "2.79"):
                resp = requests.request(method, cloud.url("compute") + "/v2.1" + path, timeout=30,
                                        data=b"" if body is None else None, json=body,
                                        headers={"X-Auth-Token": admin.auth_token,
                                                 "OpenStack-API-Version": f"compute {ver}"})
                assert 400 <= resp.status_code < 500, (method, path, body, ver, resp.status_code, resp.text)
    assert api(cloud, admin, "GET", "/flavors/1").json()["flavor"]["name"] == "m1.tiny"
    assert api(cloud, admin, "GET", f"/servers/{server.id}/metadata").status_code == 200
    reads = ["/flavors", "/flavors/detail", "/os-keypairs", "/limits", f"/os-quota-sets/{project}",
             f"/os-quota-sets/{project}/detail", "/os-availability-zone/detail", "/os-hypervisors/detail",
             "/os-hypervisors/statistics", "/os-services", "/os-server-groups", f"/os-server-groups/{group.id}",
             f"/servers/{server.id}/os-instance-actions", f"/servers/{server.id}/metadata"]
    for path in reads:
        for ver in ("2.1", "2.11", "2.28", "2.52", "2.53", "2.79"):
            assert api(cloud, admin, "GET", path, version=ver).status_code == 200, (path, ver)
    legacy = api(cloud, admin, "GET", "/os-services", version="2.52").json()["services"]
    compute = next(s for s in legacy if s["binary"] == "nova-compute")
    assert isinstance(compute["id"], int)
    who = {"host": compute["host"], "binary": "nova-compute"}
    off = api(cloud, admin, "PUT", "/os-services/disable-log-reason", {**who, "disabled_reason": "r"}, "2.52")
    assert off.json()["service"] == {**who, "status": "disabled", "disabled_reason": "r"}
    on = api(cloud, admin, "PUT", "/os-services/enable", who, "2.52")
    assert on.json()["service"] == {**who, "status": "enabled"}
    assert api(cloud, admin, "PUT", "/os-services/enable", {**who, "host": "nohost"}, "2.52").status_code == 404
    old_key = api(cloud, admin, "POST", "/os-keypairs", {"keypair": {"name": "old-mv", "public_key":
                                                                     ssh_public_key()}}, "2.1")
    assert old_key.status_code == 200 and "type" not in old_key.json()["keypair"]
    assert api(cloud, admin, "DELETE", "/os-keypairs/old-mv", version="2.1").status_code == 202


def test_member_sees_events_without_tracebacks_and_usage_in_limits(cloud: Any, admin: Any, demo: Any,
                                                                   booted: Any, prefix: str) -> None:
    server, _ = booted
    net = demo.network.create_network(name=f"{prefix}-demo-net")
    demo.network.create_subnet(network_id=net.id, cidr="10.79.0.0/24", ip_version=4)
    try:
        mine = demo.compute.create_server(name=f"{prefix}-demo-vm", image_id=server.image.id, flavor_id="1",
                                          networks=[{"uuid": net.id}])
        mine = demo.compute.wait_for_server(mine, wait=60)
        limits = demo.compute.get_limits().absolute
        assert limits.instances_used >= 1 and limits.total_cores_used >= 1 and limits.total_ram_used >= 512
        detail = api(cloud, demo, "GET", f"/os-quota-sets/{demo.current_project_id}/detail").json()["quota_set"]
        assert detail["instances"]["in_use"] == limits.instances_used
        actions = cloud.cli("server", "event", "list", mine.id, "-f", "json", cloud="pocketstack-demo")
        request_id = actions[0]["Request ID"]
        path = f"/servers/{mine.id}/os-instance-actions/{request_id}"
        events = api(cloud, demo, "GET", path).json()["instanceAction"]["events"]
        assert events and all("traceback" not in e and "host" not in e and e["hostId"] for e in events)
        assert "events" not in api(cloud, demo, "GET", path, version="2.50").json()["instanceAction"]
        assert "traceback" in api(cloud, admin, "GET", path, version="2.50").json()["instanceAction"]["events"][0]
        demo.compute.set_server_metadata(mine, owner="demo")
        assert demo.compute.get_server(mine.id).metadata == {"owner": "demo"}
        demo.compute.delete_server(mine)
        demo.compute.wait_for_delete(mine, wait=60)
        assert api(cloud, demo, "GET", f"/servers/{mine.id}/os-instance-actions").status_code == 200
    finally:
        demo.network.delete_network(net)
