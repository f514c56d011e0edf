"""The server body as Nova renders it, driven by raw HTTP: `OS-DCF:diskConfig` (AUTO/MANUAL on create and update),
accessIPv4/accessIPv6 validated and kept in canonical form, and the update's body without the extension attributes
before microversion 2.75."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from pocketstack.common.service import shared_secret
from pocketstack.compute.metadata.service_app import sign_instance_id
from pocketstack.compute.spec import METADATA_SECRET_KEY


def api(cloud: Any, conn: Any, method: str, path: str, body: Any = None, version: str = "2.1") -> requests.Response:
    return requests.request(method, cloud.url("compute") + "/v2.1" + path, json=body, timeout=30,
                            headers={"X-Auth-Token": conn.auth_token, "OpenStack-API-Version": f"compute {version}"})


@pytest.fixture(scope="module")
def env(demo: Any) -> Any:
    image = demo.image.create_image(name="sv-image", disk_format="raw", container_format="bare", data=b"\0" * 512)
    network = demo.network.create_network(name="sv-net")
    demo.network.create_subnet(network_id=network.id, cidr="10.93.0.0/24", ip_version=4)
    yield {"image": image.id, "network": network.id}
    demo.network.delete_network(network)
    demo.image.delete_image(image)


def _create(cloud: Any, demo: Any, env: Any, **extra: Any) -> requests.Response:
    server = {"name": "sv-server", "imageRef": env["image"], "flavorRef": "1",
              "networks": [{"uuid": env["network"]}], **extra}
    return api(cloud, demo, "POST", "/servers", {"server": server})


@pytest.fixture(scope="module")
def server(cloud: Any, demo: Any, env: Any) -> Any:
    created = _create(cloud, demo, env, accessIPv4="1.1.1.1",
                      accessIPv6="0000:0000:0000:0000:0000:babe:220.12.22.2", **{"OS-DCF:diskConfig": "AUTO"})
    assert created.status_code == 202, created.text
    found = demo.compute.wait_for_server(demo.compute.get_server(created.json()["server"]["id"]), wait=30)
    yield {"id": found.id, "created": created.json()["server"]}
    demo.compute.delete_server(found)
    demo.compute.wait_for_delete(found, wait=30)


def test_access_ips_are_shown_in_canonical_form(cloud: Any, demo: Any, server: Any) -> None:
    shown = api(cloud, demo, "GET", f"/servers/{server['id']}").json()["server"]
    assert shown["accessIPv4"] == "1.1.1.1"
    assert shown["accessIPv6"] == "::babe:dc0c:1602"


@pytest.mark.parametrize("field,value", [("accessIPv4", "1.1.1.1.1"), ("accessIPv4", "::1"),
                                         ("accessIPv6", "notanipv6"), ("accessIPv6", "1.1.1.1")])
def test_an_invalid_access_ip_is_400_on_create_and_update(cloud: Any, demo: Any, env: Any, server: Any,
                                                          field: str, value: str) -> None:
    created = _create(cloud, demo, env, **{field: value})
    assert created.status_code == 400 and value in created.json()["badRequest"]["message"]
    updated = api(cloud, demo, "PUT", f"/servers/{server['id']}", {"server": {field: value}})
    assert updated.status_code == 400 and "badRequest" in updated.json()


def test_disk_config_is_kept_from_create_and_changed_by_update(cloud: Any, demo: Any, server: Any) -> None:
    assert server["created"]["OS-DCF:diskConfig"] == "AUTO"
    path = f"/servers/{server['id']}"
    assert api(cloud, demo, "GET", path).json()["server"]["OS-DCF:diskConfig"] == "AUTO"
    updated = api(cloud, demo, "PUT", path, {"server": {"OS-DCF:diskConfig": "MANUAL"}})
    assert updated.status_code == 200 and updated.json()["server"]["OS-DCF:diskConfig"] == "MANUAL"
    assert api(cloud, demo, "GET", path).json()["server"]["OS-DCF:diskConfig"] == "MANUAL"
    assert demo.compute.get_server(server["id"]).disk_config == "MANUAL"


def test_disk_config_defaults_to_manual_and_refuses_other_values(cloud: Any, demo: Any, env: Any,
                                                                 server: Any) -> None:
    bad = _create(cloud, demo, env, **{"OS-DCF:diskConfig": "SOMETIMES"})
    assert bad.status_code == 400 and "OS-DCF:diskConfig" in bad.json()["badRequest"]["message"]
    bad = api(cloud, demo, "PUT", f"/servers/{server['id']}", {"server": {"OS-DCF:diskConfig": "auto"}})
    assert bad.status_code == 400
    created = _create(cloud, demo, env)
    assert created.status_code == 202 and created.json()["server"]["OS-DCF:diskConfig"] == "MANUAL"
    demo.compute.delete_server(created.json()["server"]["id"])


EXTENDED = {"OS-EXT-AZ:availability_zone", "OS-EXT-STS:vm_state", "OS-EXT-STS:task_state", "OS-EXT-STS:power_state",
            "OS-SRV-USG:launched_at", "OS-SRV-USG:terminated_at", "os-extended-volumes:volumes_attached",
            "security_groups", "key_name", "config_drive"}


def test_update_body_leaves_out_extension_attributes_before_2_75(cloud: Any, demo: Any, admin: Any,
                                                                  server: Any) -> None:
    path = f"/servers/{server['id']}"
    for conn in (demo, admin):
        body = api(cloud, conn, "PUT", path, {"server": {"name": "sv-renamed"}}).json()["server"]
        assert body["name"] == "sv-renamed" and not EXTENDED & set(body)
        assert not [k for k in body if k.startswith("OS-EXT-SRV-ATTR")] and "host_status" not in body
        assert all(set(a) == {"version", "addr"} for ips in body["addresses"].values() for a in ips)
        assert body["addresses"] and "OS-DCF:diskConfig" in body
    body = api(cloud, demo, "PUT", path, {"server": {"name": "sv-server"}}, version="2.19").json()["server"]
    assert "description" in body and "locked" in body and not EXTENDED & set(body)
    body = api(cloud, demo, "PUT", path, {"server": {"name": "sv-server"}}, version="2.75").json()["server"]
    assert EXTENDED <= set(body)
    shown = api(cloud, demo, "GET", path).json()["server"]
    assert EXTENDED <= set(shown)
    assert all("OS-EXT-IPS:type" in a for ips in shown["addresses"].values() for a in ips)


@pytest.mark.parametrize("method,path", [("GET", "/os-volumes/"), ("DELETE", "/os-volumes/"),
                                         ("DELETE", "/os-security-groups/"), ("DELETE", "/images/"),
                                         ("GET", "/servers/")])
def test_a_blank_id_is_404_not_the_collection(cloud: Any, demo: Any, method: str, path: str) -> None:
    answer = requests.request(method, cloud.url("compute") + "/v2.1" + path, timeout=30, allow_redirects=False,
                              headers={"X-Auth-Token": demo.auth_token})
    assert answer.status_code == 404 and "itemNotFound" in answer.json()


def test_security_group_rule_keeps_the_cidr_as_sent(cloud: Any, demo: Any) -> None:
    group = api(cloud, demo, "POST", "/os-security-groups",
                {"security_group": {"name": "sv-sg", "description": "cidr"}}).json()["security_group"]
    try:
        body = {"security_group_rule": {"parent_group_id": group["id"], "ip_protocol": "tcp", "from_port": 22,
                                        "to_port": 22, "cidr": "10.2.3.124/24"}}
        created = api(cloud, demo, "POST", "/os-security-group-rules", body)
        assert created.status_code == 200, created.text
        assert created.json()["security_group_rule"]["ip_range"] == {"cidr": "10.2.3.124/24"}
        body["security_group_rule"]["cidr"] = "10.2.3.124/33"
        assert api(cloud, demo, "POST", "/os-security-group-rules", body).status_code == 400
    finally:
        api(cloud, demo, "DELETE", f"/os-security-groups/{group['id']}")


def test_create_with_more_metadata_than_the_quota_is_403(cloud: Any, demo: Any, env: Any) -> None:
    limit = api(cloud, demo, "GET", "/limits").json()["limits"]["absolute"]["maxServerMeta"]
    created = _create(cloud, demo, env, metadata={str(n): str(n) for n in range(limit + 1)})
    assert created.status_code == 403 and "metadata_items" in created.json()["forbidden"]["message"]
    assert not [s for s in demo.compute.servers() if s.name == "sv-server" and len(s.metadata) > limit]


def test_deleting_a_flavor_extra_spec_is_200(cloud: Any, admin: Any) -> None:
    flavor = admin.compute.create_flavor(name="sv-flavor", ram=64, vcpus=1, disk=1)
    try:
        path = f"/flavors/{flavor.id}/os-extra_specs"
        assert api(cloud, admin, "POST", path, {"extra_specs": {"hw:numa_nodes": "1"}}).status_code == 200
        assert api(cloud, admin, "DELETE", f"{path}/hw:numa_nodes").status_code == 200
        assert api(cloud, admin, "GET", path).json() == {"extra_specs": {}}
        assert api(cloud, admin, "DELETE", f"{path}/hw:numa_nodes").status_code == 404
    finally:
        admin.compute.delete_flavor(flavor)


def test_list_filters_by_ip_and_ip6_regex(cloud: Any, demo: Any, server: Any) -> None:
    shown = api(cloud, demo, "GET", f"/servers/{server['id']}").json()["server"]
    addr = shown["addresses"]["sv-net"][0]["addr"]

    def listed(path: str) -> set[str]:
        answer = api(cloud, demo, "GET", path)
        assert answer.status_code == 200, answer.text
        return {s["id"] for s in answer.json()["servers"]}

    assert server["id"] in listed(f"/servers?ip={addr}") and server["id"] in listed("/servers/detail?ip=10.93.")
    assert server["id"] not in listed("/servers?ip=^10\\.93\\.1\\.") and not listed("/servers?ip6=.")
    assert api(cloud, demo, "GET", "/servers?ip=[").status_code == 400


def test_volume_swap_is_checked_then_refused(cloud: Any, demo: Any, admin: Any, server: Any) -> None:
    path = f"/servers/{server['id']}/os-volume_attachments/"
    missing, other = "9d0f1bd2-3c57-4a5b-9cd1-1f2a8d8a0c11", "5b4e3c2a-1d0f-4e9b-8a7c-6b5a4d3c2b1a"
    body = {"volumeAttachment": {"volumeId": other}}
    assert api(cloud, demo, "PUT", path + missing, body).status_code == 403
    answer = api(cloud, admin, "PUT", path + missing, body)
    assert answer.status_code == 404 and "itemNotFound" in answer.json()
    assert api(cloud, admin, "PUT", path + missing, {"volumeAttachment": {"volumeId": "x"}}).status_code == 400
    assert api(cloud, admin, "PUT", path + missing, {"volumeAttachment": {}}).status_code == 400
    volume = admin.block_storage.create_volume(size=1, name="sv-volume")
    try:
        admin.block_storage.wait_for_status(volume, "available", wait=30)
        answer = api(cloud, admin, "PUT", path + volume.id, {"volumeAttachment": {"volumeId": volume.id}})
        assert answer.status_code == 404 and "not attached" in answer.json()["itemNotFound"]["message"]
    finally:
        admin.block_storage.delete_volume(volume)


def test_default_group_is_recorded_and_the_key_goes_with_the_last_group(cloud: Any, demo: Any, env: Any) -> None:
    created = _create(cloud, demo, env)
    assert created.json()["server"]["security_groups"] == [{"name": "default"}]
    server_id = created.json()["server"]["id"]
    try:
        demo.compute.wait_for_server(demo.compute.get_server(server_id), wait=30)
        path = f"/servers/{server_id}"
        assert api(cloud, demo, "GET", path).json()["server"]["security_groups"] == [{"name": "default"}]
        default = next(g for g in demo.network.security_groups(project_id=demo.current_project_id)
                       if g.name == "default")
        assert [p.security_group_ids for p in demo.network.ports(device_id=server_id)] == [[default.id]]
        secret = shared_secret(cloud.settings, "metadata", METADATA_SECRET_KEY)
        ec2 = requests.get(cloud.url("metadata") + "/latest/meta-data/security-groups", timeout=10, headers={
            "X-Instance-ID": server_id, "X-Tenant-ID": demo.current_project_id,
            "X-Instance-ID-Signature": sign_instance_id(secret, server_id)})
        assert ec2.status_code == 200 and ec2.text == "default"
        removed = api(cloud, demo, "POST", f"{path}/action", {"removeSecurityGroup": {"name": "default"}})
        assert removed.status_code == 202, removed.text
        assert "security_groups" not in api(cloud, demo, "GET", path).json()["server"]
        assert api(cloud, demo, "GET", f"{path}/os-security-groups").json() == {"security_groups": []}
    finally:
        demo.compute.delete_server(server_id)
        demo.compute.wait_for_delete(demo.compute.get_server(server_id), wait=30)


def test_booting_from_a_volume_that_is_not_bootable_is_400(cloud: Any, demo: Any, env: Any) -> None:
    volume = demo.block_storage.create_volume(size=1, name="sv-plain")
    try:
        demo.block_storage.wait_for_status(volume, "available", wait=30)
        bdm = [{"uuid": volume.id, "source_type": "volume", "destination_type": "volume", "boot_index": 0}]
        created = _create(cloud, demo, env, imageRef="", block_device_mapping_v2=bdm)
        assert created.status_code == 400 and "not bootable" in created.json()["badRequest"]["message"]
    finally:
        demo.block_storage.delete_volume(volume)
