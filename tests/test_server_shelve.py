"""Shelve, shelve offload and unshelve on the fake driver: the `openstack server shelve / unshelve` CLI, the shelve
image and its cleanup, the claim released and taken again, ports kept, instance actions, the 2.77 unshelve
option, state, policy and input errors, a failing shelve snapshot."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import openstack
import pytest
from server_helpers import api, demo_server, image_and_network, wait_status

from pocketstack.compute.virt.fake import FakeDriver


def raw_server(cloud: Any, conn: Any, server_id: str) -> dict[str, Any]:
    return api(cloud, conn, "GET", f"/servers/{server_id}").json()["server"]


def agents(cloud: Any) -> list[Any]:
    return next(s for s in cloud.thread.cloud.services if s.name == "compute").agents


@pytest.fixture(scope="module")
def env(cloud: Any, admin: Any) -> Iterator[dict[str, Any]]:
    yield from image_and_network(cloud, admin, "shelve", "10.92.0.0/24")


@pytest.fixture
def server(env: dict[str, Any], prefix: str) -> Iterator[Any]:
    yield from demo_server(env, prefix)


def _allocations(cloud: Any, admin: Any, server_id: str) -> int:
    """How many hypervisors count the server's vCPU (its claim)."""
    hypervisors = api(cloud, admin, "GET", "/os-hypervisors/detail", version="2.27").json()["hypervisors"]
    return sum(h["vcpus_used"] for h in hypervisors)


def _last_event(cloud: Any, admin: Any, server_id: str, action: str) -> tuple[str, str]:
    """The compute event of the server's newest `action` and its result."""
    actions = api(cloud, admin, "GET", f"/servers/{server_id}/os-instance-actions").json()["instanceActions"]
    request_id = next(a["request_id"] for a in actions if a["action"] == action)
    events = api(cloud, admin, "GET", f"/servers/{server_id}/os-instance-actions/{request_id}",
                 version="2.51").json()["instanceAction"]["events"]
    event = next(e for e in events if e["event"].startswith("compute_"))
    return event["event"], event["result"]


def test_shelve_offload_and_unshelve_with_the_cli(cloud: Any, admin: Any, env: dict[str, Any], server: Any,
                                                  prefix: str) -> None:
    demo = env["demo"]
    before = raw_server(cloud, admin, server.id)
    used = _allocations(cloud, admin, server.id)
    ports = {p.id for p in admin.network.ports(device_id=server.id)}
    cloud.cli("server", "shelve", "--wait", server.id, cloud="pocketstack-demo")
    shelved = wait_status(demo, server.id, "SHELVED_OFFLOADED")
    raw = raw_server(cloud, admin, server.id)
    assert raw["OS-EXT-STS:vm_state"] == "shelved_offloaded" and raw["OS-EXT-SRV-ATTR:host"] is None
    assert shelved.power_state == 0 and raw["addresses"] == before["addresses"]
    assert _allocations(cloud, admin, server.id) == used - 1  # the claim went with the host
    images = [i for i in admin.image.images() if i.name == f"{prefix}-vm-shelved"]
    assert len(images) == 1 and images[0].status == "active"
    assert images[0].instance_uuid == server.id
    assert {p.id for p in admin.network.ports(device_id=server.id)} == ports  # ports stay the server's
    assert all(not p.binding_host_id for p in admin.network.ports(device_id=server.id))

    cloud.cli("server", "unshelve", "--wait", server.id, cloud="pocketstack-demo")
    back = wait_status(demo, server.id, "ACTIVE")
    raw = raw_server(cloud, admin, server.id)
    assert back.power_state == 1 and raw["OS-EXT-SRV-ATTR:host"] is not None
    assert raw["addresses"] == before["addresses"]
    assert _allocations(cloud, admin, server.id) == used
    assert {p.binding_host_id for p in admin.network.ports(device_id=server.id)} == {raw["OS-EXT-SRV-ATTR:host"]}
    with pytest.raises(openstack.exceptions.NotFoundException):  # the shelve image is gone after the unshelve
        admin.image.get_image(images[0].id)
    console = api(cloud, demo, "POST", f"/servers/{server.id}/action", {"os-getConsoleOutput": {}}).json()
    assert f"from image {prefix}-vm-shelved" in console["output"]  # spawned from the shelve image

    actions = api(cloud, demo, "GET", f"/servers/{server.id}/os-instance-actions").json()["instanceActions"]
    assert [a["action"] for a in actions][:2] == ["unshelve", "shelve"]
    detail = api(cloud, admin, "GET", f"/servers/{server.id}/os-instance-actions/{actions[1]['request_id']}").json()
    assert {e["event"] for e in detail["instanceAction"]["events"]} == {"compute_shelve_instance",
                                                                         "compute_shelve_offload_instance"}
    assert all(e["result"] == "Success" for e in detail["instanceAction"]["events"])
    detail = api(cloud, admin, "GET", f"/servers/{server.id}/os-instance-actions/{actions[0]['request_id']}").json()
    assert {e["event"] for e in detail["instanceAction"]["events"]} == {"conductor_unshelve_instance",
                                                                         "compute_unshelve_instance"}


def test_shelve_without_offload_then_offload_and_unshelve_to_a_zone(cloud: Any, admin: Any, env: dict[str, Any],
                                                                    server: Any, monkeypatch: Any) -> None:
    demo = env["demo"]
    settings = next(s for s in cloud.thread.cloud.services if s.name == "compute").state.settings
    monkeypatch.setattr(settings.compute, "shelved_offload_time", -1)
    cloud.cli("server", "stop", server.id, cloud="pocketstack-demo")
    wait_status(demo, server.id, "SHUTOFF")
    assert api(cloud, demo, "POST", f"/servers/{server.id}/action", {"shelve": None}).status_code == 202
    wait_status(demo, server.id, "SHELVED")
    raw = raw_server(cloud, admin, server.id)
    host = raw["OS-EXT-SRV-ATTR:host"]
    assert host is not None and raw["OS-EXT-STS:power_state"] == 4
    # a shelved (not offloaded) server cannot go to another zone; the member may not offload
    resp = api(cloud, demo, "POST", f"/servers/{server.id}/action", {"unshelve": {"availability_zone": "nova"}},
               version="2.77")
    assert resp.status_code == 409
    assert api(cloud, demo, "POST", f"/servers/{server.id}/action", {"shelveOffload": None}).status_code == 403
    assert api(cloud, admin, "POST", f"/servers/{server.id}/action", {"shelveOffload": None}).status_code == 202
    wait_status(demo, server.id, "SHELVED_OFFLOADED")
    # 2.77: to a zone (the API stops at 2.79, so 2.91's host is refused as an unknown property)
    zone = raw["OS-EXT-AZ:availability_zone"]
    resp = api(cloud, admin, "POST", f"/servers/{server.id}/action", {"unshelve": {"host": host}}, version="2.79")
    assert resp.status_code == 400
    resp = api(cloud, demo, "POST", f"/servers/{server.id}/action", {"unshelve": {"availability_zone": zone}},
               version="2.77")
    assert resp.status_code == 202
    wait_status(demo, server.id, "ACTIVE")
    assert raw_server(cloud, admin, server.id)["OS-EXT-AZ:availability_zone"] == zone


def test_errors(cloud: Any, admin: Any, env: dict[str, Any], server: Any) -> None:
    demo = env["demo"]
    path = f"/servers/{server.id}/action"
    for action in ("unshelve", "shelveOffload"):  # not shelved
        assert api(cloud, admin, "POST", path, {action: None}).status_code == 409
    missing = "/servers/00000000-0000-0000-0000-000000000000/action"
    assert api(cloud, demo, "POST", missing, {"shelve": None}).status_code == 404
    bad_bodies = [({"unshelve": {"availability_zone": "nova", "x": 1}}, "2.77"), ({"unshelve": {}}, "2.77"),
                  ({"unshelve": {"host": "h"}}, "2.77"), ({"unshelve": {"availability_zone": 5}}, "2.77"),
                  ({"unshelve": "nova"}, "2.77")]
    for body, version in bad_bodies:
        assert api(cloud, demo, "POST", path, body, version=version).status_code == 400, body
    cloud.cli("server", "lock", server.id, cloud="pocketstack-demo")
    try:
        assert api(cloud, demo, "POST", path, {"shelve": None}).status_code == 409
    finally:
        cloud.cli("server", "unlock", server.id, cloud="pocketstack-demo")
    assert api(cloud, demo, "POST", path, {"shelve": None}).status_code == 202
    wait_status(demo, server.id, "SHELVED_OFFLOADED")
    assert api(cloud, demo, "POST", path, {"shelve": None}).status_code == 409
    assert api(cloud, demo, "POST", path, {"unshelve": {"availability_zone": "nowhere"}},
               version="2.77").status_code == 400
    assert api(cloud, demo, "POST", path, {"unshelve": None}).status_code == 202
    wait_status(demo, server.id, "ACTIVE")


def test_a_failing_shelve_snapshot_leaves_the_server_running(cloud: Any, admin: Any, env: dict[str, Any],
                                                             server: Any, prefix: str) -> None:
    demo = env["demo"]
    FakeDriver.fail_snapshot_on.update({a.host: "disk on fire" for a in agents(cloud)})
    try:
        assert api(cloud, demo, "POST", f"/servers/{server.id}/action", {"shelve": None}).status_code == 202
        after = wait_status(demo, server.id, "ACTIVE")
    finally:
        FakeDriver.fail_snapshot_on.clear()
    assert after.power_state == 1
    assert _last_event(cloud, admin, server.id, "shelve") == ("compute_shelve_instance", "Error")
    assert not [i for i in admin.image.images() if i.name == f"{prefix}-vm-shelved"]  # the image went


def test_a_failing_unshelve_leaves_it_offloaded(cloud: Any, admin: Any, env: dict[str, Any], server: Any) -> None:
    demo = env["demo"]
    used = _allocations(cloud, admin, server.id)
    cloud.cli("server", "shelve", "--wait", server.id, cloud="pocketstack-demo")
    wait_status(demo, server.id, "SHELVED_OFFLOADED")
    FakeDriver.fail_spawn_on.update({a.host: "no room for you" for a in agents(cloud)})
    try:
        assert api(cloud, demo, "POST", f"/servers/{server.id}/action", {"unshelve": None}).status_code == 202
        time.sleep(0.3)
        wait_status(demo, server.id, "SHELVED_OFFLOADED")
    finally:
        FakeDriver.fail_spawn_on.clear()
    assert raw_server(cloud, admin, server.id)["OS-EXT-SRV-ATTR:host"] is None
    assert _last_event(cloud, admin, server.id, "unshelve") == ("compute_unshelve_instance", "Error")
    assert _allocations(cloud, admin, server.id) == used - 1
    assert api(cloud, demo, "POST", f"/servers/{server.id}/action", {"unshelve": None}).status_code == 202
    wait_status(demo, server.id, "ACTIVE")


def test_a_restarted_agent_ends_the_shelve_it_had_begun(cloud: Any, admin: Any, env: dict[str, Any], server: Any,
                                                        prefix: str) -> None:
    """The start-up check of an agent: a server left in a shelve's task gets it ended, its queued image goes."""
    demo = env["demo"]
    host = admin.compute.get_server(server.id).compute_host
    agent = next(a for a in agents(cloud) if a.host == host)
    queued = demo.image.post("/images", json={"name": f"{prefix}-vm-shelved", "instance_uuid": server.id,
                                              "image_type": "snapshot"}).json()
    cloud.thread.call(lambda: agent.conductor.instance_update(server.id, {"task_state": "shelving_image_uploading"}))
    cloud.thread.call(agent._end_interrupted_snapshots)
    after = demo.compute.get_server(server.id)
    assert after.task_state is None and after.status == "ACTIVE"
    with pytest.raises(openstack.exceptions.NotFoundException):
        demo.image.get_image(queued["id"])
