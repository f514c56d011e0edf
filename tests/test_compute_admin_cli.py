"""The compute admin APIs as the `openstack` CLI drives them: host aggregates and the zones they make, os-hosts,
quota classes and per-user quotas, absolute limits, tenant usage, hypervisor uptime; and the aggregate filters."""

from __future__ import annotations

import pytest
import requests

from pocketstack.compute.scheduler.aggregate_filters import (
    aggregate_instance_extra_specs_filter,
    aggregate_multi_tenancy_isolation,
    spec_matches,
)
from pocketstack.compute.scheduler.filters import HostState, RequestView


def _compute(cloud, method: str, path: str, version: str = "2.1", **kwargs) -> requests.Response:
    token = cloud.conn().auth_token
    headers = {"X-Auth-Token": token, "OpenStack-API-Version": f"compute {version}"}
    return requests.request(method, cloud.url("compute") + "/v2.1" + path, headers=headers, timeout=30, **kwargs)


def test_aggregate_lifecycle_and_zone_with_the_cli(cloud, prefix):
    name = f"{prefix}-agg"
    created = cloud.cli("aggregate", "create", "--zone", f"{prefix}-az", name, "-f", "json")
    assert created["name"] == name and created["availability_zone"] == f"{prefix}-az"
    host = cloud.cli("compute", "service", "list", "--service", "nova-compute", "-f", "json")[0]["Host"]
    try:
        cloud.cli("aggregate", "add", "host", name, host)
        cloud.cli("aggregate", "set", "--property", "ssd=true", name)
        shown = cloud.cli("aggregate", "show", name, "-f", "json")
        assert host in shown["hosts"]
        assert shown["properties"] == {"ssd": "true"} or shown["properties"].get("ssd") == "true"
        zones = {z["Zone Name"] for z in cloud.cli("availability", "zone", "list", "--compute", "-f", "json")}
        assert f"{prefix}-az" in zones
        services = cloud.cli("compute", "service", "list", "--host", host, "--service", "nova-compute",
                             "-f", "json")
        assert services[0]["Zone"] == f"{prefix}-az"
        again = cloud.cli("aggregate", "add", "host", name, host, check=False)
        assert again.returncode != 0 and "409" in again.stderr
        # an aggregate with hosts cannot go; without them it can
        assert cloud.cli("aggregate", "delete", name, check=False).returncode != 0
        cloud.cli("aggregate", "remove", "host", name, host)
    finally:
        cloud.cli("aggregate", "remove", "host", name, host, check=False)
        cloud.cli("aggregate", "delete", name)
    assert name not in {a["Name"] for a in cloud.cli("aggregate", "list", "-f", "json")}


def test_aggregate_bad_input_is_4xx(cloud, prefix):
    assert _compute(cloud, "POST", "/os-aggregates", json={"aggregate": {"name": ""}}).status_code == 400
    assert _compute(cloud, "POST", "/os-aggregates", json={"aggregate": {"name": "x" * 256}}).status_code == 400
    assert _compute(cloud, "GET", "/os-aggregates/99999").status_code == 404
    assert _compute(cloud, "GET", "/os-aggregates/abc").status_code == 400
    made = _compute(cloud, "POST", "/os-aggregates", version="2.41", json={"aggregate": {"name": f"{prefix}-a"}})
    assert made.status_code == 200 and "uuid" in made.json()["aggregate"]
    ident = made.json()["aggregate"]["id"]
    try:
        dup = _compute(cloud, "POST", "/os-aggregates", json={"aggregate": {"name": f"{prefix}-a"}})
        assert dup.status_code == 409 and "conflictingRequest" in dup.json()
        missing = _compute(cloud, "POST", f"/os-aggregates/{ident}/action", json={"add_host": {"host": "nope"}})
        assert missing.status_code == 404
        assert _compute(cloud, "POST", f"/os-aggregates/{ident}/action",
                        json={"remove_host": {"host": "nope"}}).status_code == 404
    finally:
        assert _compute(cloud, "DELETE", f"/os-aggregates/{ident}").status_code == 200


def test_hosts_with_the_cli(cloud):
    hosts = cloud.cli("host", "list", "-f", "json")
    compute = [h for h in hosts if h["Service"] == "compute"]
    assert len(compute) == cloud.settings.compute.fake_hosts
    assert {h["Service"] for h in hosts} >= {"compute", "conductor", "scheduler"}
    resources = cloud.cli("host", "show", compute[0]["Host Name"], "-f", "json")
    assert {r["Project"] for r in resources} >= {"(total)", "(used_now)", "(used_max)"}
    assert _compute(cloud, "GET", "/os-hosts/nonexistent").status_code == 404
    assert _compute(cloud, "GET", "/os-hosts", version="2.43").status_code == 404
    bad = _compute(cloud, "PUT", f"/os-hosts/{compute[0]['Host Name']}", json={"status": "sleep"})
    assert bad.status_code == 400


def test_quota_class_user_quotas_and_limits_with_the_cli(cloud):
    # this openstackclient has no `quota show --class` any more; `quota set --class` writes os-quota-class-sets
    before = _compute(cloud, "GET", "/os-quota-class-sets/default").json()["quota_class_set"]
    assert before["id"] == "default" and "floating_ips" in before and "server_groups" not in before
    newer = _compute(cloud, "GET", "/os-quota-class-sets/default", version="2.57").json()["quota_class_set"]
    assert "injected_files" not in newer and "server_groups" in newer
    project = cloud.conn().current_project_id
    try:
        cloud.cli("quota", "set", "--class", "--properties", "200", "default")
        after = _compute(cloud, "GET", "/os-quota-class-sets/default").json()["quota_class_set"]
        assert after["metadata_items"] == 200
        defaults = {row["Resource"]: row["Limit"]
                    for row in cloud.cli("quota", "show", "--default", "--compute", "-f", "json")}
        assert defaults["properties"] == 200
    finally:
        _compute(cloud, "PUT", "/os-quota-class-sets/default",
                 json={"quota_class_set": {"metadata_items": before["metadata_items"]}})
    user = cloud.conn().current_user_id
    assert _compute(cloud, "PUT", f"/os-quota-sets/{project}?user_id={user}",
                    json={"quota_set": {"ram": 2048}}).status_code == 200
    try:
        shown = _compute(cloud, "GET", f"/os-quota-sets/{project}?user_id={user}").json()["quota_set"]
        assert shown["ram"] == 2048 and "fixed_ips" in shown
        assert "fixed_ips" not in _compute(cloud, "GET", f"/os-quota-sets/{project}",
                                           version="2.36").json()["quota_set"]
        too_big = _compute(cloud, "PUT", f"/os-quota-sets/{project}?user_id={user}",
                           json={"quota_set": {"ram": 10**9}})
        assert too_big.status_code == 400
    finally:
        _compute(cloud, "DELETE", f"/os-quota-sets/{project}?user_id={user}")
    absolute = {row["Name"]: row["Value"] for row in cloud.cli("limits", "show", "--absolute", "-f", "json")}
    assert {"instances", "image_meta", "personality", "security_groups"} <= set(absolute)
    old = _compute(cloud, "GET", "/limits").json()["limits"]["absolute"]
    assert {"maxImageMeta", "maxPersonality", "maxSecurityGroups", "maxTotalFloatingIps"} <= set(old)
    new = _compute(cloud, "GET", "/limits", version="2.57").json()["limits"]["absolute"]
    assert not {"maxImageMeta", "maxPersonality", "maxSecurityGroups"} & set(new)


def test_usage_and_uptime(cloud):
    usage = cloud.cli("usage", "list", "-f", "json")
    assert isinstance(usage, list)
    bad = _compute(cloud, "GET", "/os-simple-tenant-usage?start=yesterday")
    assert bad.status_code == 400
    hypervisor = _compute(cloud, "GET", "/os-hypervisors").json()["hypervisors"][0]
    uptime = _compute(cloud, "GET", f"/os-hypervisors/{hypervisor['id']}/uptime").json()["hypervisor"]
    assert " up " in uptime["uptime"] and "load average" in uptime["uptime"]
    assert _compute(cloud, "GET", "/os-hypervisors/nonexistent/uptime").status_code == 404
    shown = cloud.cli("hypervisor", "show", hypervisor["hypervisor_hostname"], "-f", "json")
    assert shown["uptime"] and "load_average" in shown
    log = _compute(cloud, "GET", "/os-instance_usage_audit_log").json()["instance_usage_audit_logs"]
    assert log["num_hosts"] == cloud.settings.compute.fake_hosts
    assert _compute(cloud, "GET", "/os-instance_usage_audit_log/notatime").status_code == 400
    assert isinstance(_compute(cloud, "GET", "/os-migrations").json()["migrations"], list)


def _host(metadata: dict[str, set[str]]) -> HostState:
    return HostState(host="h1", node_id=1, up=True, disabled=False, availability_zone="nova",
                     hypervisor_type="fake", cpu_arch="x86_64", vcpus_total=8, memory_total=1024, disk_total=10,
                     aggregate_metadata=metadata)


@pytest.mark.parametrize(("value", "requirement", "expected"), [
    ("true", "true", True), ("true", "false", False), ("8", ">= 4", True), ("2", ">= 4", False),
    ("4", "= 4", True), ("ssd", "<or> hdd <or> ssd", True), ("a b c", "<all-in> a c", True),
    ("abc", "<in> b", True), ("abc", "s== abc", True), ("abc", "s!= abc", False),
])
def test_extra_spec_operators(value, requirement, expected):
    assert spec_matches(value, requirement) is expected


def test_aggregate_filters():
    spec = {"flavor": {"extra_specs": {"aggregate_instance_extra_specs:ssd": "true", "hw:cpu_policy": "x"}},
            "project_id": "p1"}
    req = RequestView(spec, set())
    assert aggregate_instance_extra_specs_filter(_host({"ssd": {"true"}}), req)
    assert not aggregate_instance_extra_specs_filter(_host({}), req)
    assert aggregate_multi_tenancy_isolation(_host({}), req)
    assert aggregate_multi_tenancy_isolation(_host({"filter_tenant_id": {"p2,p1"}}), req)
    assert not aggregate_multi_tenancy_isolation(_host({"filter_tenant_id": {"p2"}}), req)
