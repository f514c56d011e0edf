"""Rebuild on the fake driver: the `openstack server rebuild` CLI to another image with a new name, metadata and
password, the ports and addresses kept, a stopped server staying stopped, 2.54 key_name and 2.57 user_data, the
task states, and the 409/400 errors."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from server_helpers import api, wait_status


@pytest.fixture(scope="module")
def env(cloud: Any, admin: Any) -> Iterator[dict[str, Any]]:
    """Two public images and a shared network."""
    first = admin.image.create_image(name="rebuild-a", disk_format="raw", container_format="bare",
                                     visibility="public", data=b"\0" * 4096)
    second = admin.image.create_image(name="rebuild-b", disk_format="raw", container_format="bare",
                                      visibility="public", data=b"\1" * 4096)
    network = admin.network.create_network(name="rebuild-net", shared=True)
    admin.network.create_subnet(network_id=network.id, cidr="10.93.0.0/24", ip_version=4, name="rebuild-subnet")
    yield {"first": first, "second": second, "network": network, "demo": cloud.conn("pocketstack-demo")}
    admin.network.delete_network(network)
    admin.image.delete_image(first)
    admin.image.delete_image(second)


@pytest.fixture
def server(env: dict[str, Any], prefix: str) -> Iterator[Any]:
    demo = env["demo"]
    created = demo.compute.create_server(name=f"{prefix}-vm", flavor_id="1", image_id=env["first"].id,
                                         networks=[{"uuid": env["network"].id}], metadata={"old": "1"})
    created = demo.compute.wait_for_server(created, wait=30)
    yield created
    demo.compute.delete_server(created)
    demo.compute.wait_for_delete(created, wait=30)


def test_rebuild_with_the_cli(cloud: Any, admin: Any, env: dict[str, Any], server: Any, prefix: str) -> None:
    demo = env["demo"]
    before = api(cloud, demo, "GET", f"/servers/{server.id}").json()["server"]
    ports = {p.id for p in admin.network.ports(device_id=server.id)}
    out = cloud.cli("server", "rebuild", "--image", env["second"].id, "--name", f"{prefix}-new",
                    "--property", "new=2", "--password", "s3cret-Pass", "--wait", server.id,
                    cloud="pocketstack-demo")
    assert "Complete" in out and server.id in out
    after = wait_status(demo, server.id, "ACTIVE")
    raw = api(cloud, demo, "GET", f"/servers/{server.id}").json()["server"]
    assert after.name == f"{prefix}-new" and raw["image"]["id"] == env["second"].id
    assert raw["metadata"] == {"new": "2"}  # replaced, as Nova's
    assert raw["addresses"] == before["addresses"] and after.power_state == 1
    assert {p.id for p in admin.network.ports(device_id=server.id)} == ports
    console = api(cloud, demo, "POST", f"/servers/{server.id}/action", {"os-getConsoleOutput": {}}).json()["output"]
    assert "from image rebuild-b" in console
    actions = api(cloud, demo, "GET", f"/servers/{server.id}/os-instance-actions").json()["instanceActions"]
    assert actions[0]["action"] == "rebuild"
    detail = api(cloud, admin, "GET", f"/servers/{server.id}/os-instance-actions/{actions[0]['request_id']}").json()
    assert [(e["event"], e["result"]) for e in detail["instanceAction"]["events"]] == [
        ("compute_rebuild_instance", "Success")]


def test_rebuild_a_stopped_server_with_key_and_user_data(cloud: Any, admin: Any, env: dict[str, Any],
                                                         server: Any, prefix: str) -> None:
    demo = env["demo"]
    key = demo.compute.create_keypair(name=f"{prefix}-key")
    try:
        cloud.cli("server", "stop", server.id, cloud="pocketstack-demo")
        wait_status(demo, server.id, "SHUTOFF")
        user_data = base64.b64encode(b"#!/bin/sh\necho hi\n").decode()
        body = {"rebuild": {"imageRef": env["first"].id, "key_name": key.name, "user_data": user_data}}
        resp = api(cloud, demo, "POST", f"/servers/{server.id}/action", body, version="2.57")
        assert resp.status_code == 202, resp.text
        shown = resp.json()["server"]
        assert shown["adminPass"] and shown["status"] == "REBUILD" and shown["key_name"] == key.name
        after = wait_status(demo, server.id, "SHUTOFF")
        assert after.power_state == 4
        raw = api(cloud, admin, "GET", f"/servers/{server.id}").json()["server"]
        assert raw["key_name"] == key.name and raw["OS-EXT-SRV-ATTR:user_data"] == user_data
        # key_name null removes the key (2.54)
        body = {"rebuild": {"imageRef": env["first"].id, "key_name": None}}
        assert api(cloud, demo, "POST", f"/servers/{server.id}/action", body, version="2.54").status_code == 202
        wait_status(demo, server.id, "SHUTOFF")
        assert api(cloud, demo, "GET", f"/servers/{server.id}").json()["server"]["key_name"] is None
    finally:
        demo.compute.delete_keypair(key)


def test_errors(cloud: Any, env: dict[str, Any], server: Any) -> None:
    demo = env["demo"]
    path = f"/servers/{server.id}/action"
    bad = [{"rebuild": {}}, {"rebuild": {"imageRef": "not-a-uuid"}},
           {"rebuild": {"imageRef": "00000000-0000-0000-0000-000000000000"}},
           {"rebuild": {"imageRef": env["first"].id, "bogus": 1}},
           {"rebuild": {"imageRef": env["first"].id, "key_name": "no-such-key"}},
           {"rebuild": {"imageRef": env["first"].id, "user_data": "***"}},
           {"rebuild": {"imageRef": env["first"].id, "preserve_ephemeral": "yes"}},
           {"rebuild": {"imageRef": env["first"].id, "OS-DCF:diskConfig": "SOMETIMES"}}]
    for body in bad:
        assert api(cloud, demo, "POST", path, body).status_code == 400, body
    # key_name before 2.54 is not a property
    body = {"rebuild": {"imageRef": env["first"].id, "key_name": None}}
    assert api(cloud, demo, "POST", path, body, version="2.53").status_code == 400
    assert api(cloud, demo, "POST", path, {"pause": None}).status_code == 202
    wait_status(demo, server.id, "PAUSED")
    assert api(cloud, demo, "POST", path, {"rebuild": {"imageRef": env["first"].id}}).status_code == 409
    missing = "/servers/00000000-0000-0000-0000-000000000000/action"
    assert api(cloud, demo, "POST", missing, {"rebuild": {"imageRef": env["first"].id}}).status_code == 404


def test_rebuild_sets_the_disk_config(cloud: Any, env: dict[str, Any], server: Any) -> None:
    demo = env["demo"]
    path = f"/servers/{server.id}/action"
    for wanted in ("AUTO", "MANUAL"):
        resp = api(cloud, demo, "POST", path, {"rebuild": {"imageRef": env["first"].id, "OS-DCF:diskConfig": wanted}})
        assert resp.status_code == 202 and resp.json()["server"]["OS-DCF:diskConfig"] == wanted
        wait_status(demo, server.id, "ACTIVE")
        assert api(cloud, demo, "GET", f"/servers/{server.id}").json()["server"]["OS-DCF:diskConfig"] == wanted
