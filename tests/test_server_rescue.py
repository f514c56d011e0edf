"""Rescue and unrescue on the fake driver: `openstack server rescue / unrescue`, the adminPass answer, the
rescue image option, instance actions, and the 409/400 errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from server_helpers import api, wait_status


@pytest.fixture(scope="module")
def env(cloud: Any, admin: Any) -> Iterator[dict[str, Any]]:
    image = admin.image.create_image(name="rescue-base", disk_format="raw", container_format="bare",
                                     visibility="public", data=b"\0" * 4096)
    rescue = admin.image.create_image(name="rescue-tools", disk_format="raw", container_format="bare",
                                      visibility="public", data=b"\2" * 4096)
    yield {"image": image, "rescue": rescue, "demo": cloud.conn("pocketstack-demo")}
    admin.image.delete_image(image)
    admin.image.delete_image(rescue)


@pytest.fixture
def server(env: dict[str, Any], prefix: str) -> Iterator[Any]:
    demo = env["demo"]
    created = demo.compute.create_server(name=f"{prefix}-vm", flavor_id="1", image_id=env["image"].id,
                                         networks="none")
    created = demo.compute.wait_for_server(created, wait=30)
    yield created
    demo.compute.delete_server(created)
    demo.compute.wait_for_delete(created, wait=30)


def console(cloud: Any, conn: Any, server_id: str) -> str:
    return api(cloud, conn, "POST", f"/servers/{server_id}/action", {"os-getConsoleOutput": {}}).json()["output"]


def test_rescue_and_unrescue_with_the_cli(cloud: Any, env: dict[str, Any], server: Any) -> None:
    demo = env["demo"]
    cloud.cli("server", "rescue", "--image", env["rescue"].id, server.id, cloud="pocketstack-demo")
    rescued = wait_status(demo, server.id, "RESCUE")
    assert rescued.power_state == 1
    assert "rescue boot from image rescue-tools" in console(cloud, demo, server.id)
    cloud.cli("server", "unrescue", server.id, cloud="pocketstack-demo")
    wait_status(demo, server.id, "ACTIVE")
    assert console(cloud, demo, server.id).rstrip().endswith("fake: unrescued, booting its own disk")
    actions = api(cloud, demo, "GET", f"/servers/{server.id}/os-instance-actions").json()["instanceActions"]
    assert [a["action"] for a in actions][:2] == ["unrescue", "rescue"]


def test_rescue_answers_a_password_and_errors(cloud: Any, env: dict[str, Any], server: Any) -> None:
    demo = env["demo"]
    path = f"/servers/{server.id}/action"
    assert api(cloud, demo, "POST", path, {"unrescue": None}).status_code == 409
    for body in ({"rescue": {"bogus": 1}}, {"rescue": {"rescue_image_ref": "nope"}},
                 {"rescue": {"rescue_image_ref": "00000000-0000-0000-0000-000000000000"}}, {"rescue": "x"}):
        assert api(cloud, demo, "POST", path, body).status_code == 400, body
    resp = api(cloud, demo, "POST", path, {"rescue": {"adminPass": "given-Pass1"}})
    assert resp.status_code == 200 and resp.json() == {"adminPass": "given-Pass1"}
    wait_status(demo, server.id, "RESCUE")
    assert api(cloud, demo, "POST", path, {"rescue": None}).status_code == 409
    assert api(cloud, demo, "POST", path, {"unrescue": None}).status_code == 202
    wait_status(demo, server.id, "ACTIVE")
