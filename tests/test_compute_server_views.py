"""The server body as Nova renders it, driven by raw HTTP: `OS-DCF:diskConfig` (AUTO/MANUAL on create and update),
accessIPv4/accessIPv6 validated and kept in canonical form, and the update's body without the extension attributes
before microversion 2.75."""

from __future__ import annotations

from typing import Any

import pytest
import requests


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
