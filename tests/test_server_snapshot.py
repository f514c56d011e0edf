"""Server snapshots and backups (`createImage`, `createBackup`) on the fake driver: the `openstack` CLI's
`server image create --wait`, the image's properties, booting from the snapshot, the response per microversion,
state, policy and input errors, a failing driver snapshot, backup rotation."""

from __future__ import annotations

import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import openstack
import pytest
import requests
from server_helpers import reader_and_outsider

from pocketstack.common.context import RequestContext
from pocketstack.compute.api.server_snapshots import image_attributes
from pocketstack.compute.virt.fake import FakeDriver


def api(cloud: Any, conn: Any, method: str, path: str, body: Any = None, version: str = "2.79") -> requests.Response:
    """A raw compute API request with the connection's token at a given microversion."""
    return requests.request(method, cloud.url("compute") + "/v2.1" + path, json=body, timeout=30,
                            headers={"X-Auth-Token": conn.auth_token, "OpenStack-API-Version": f"compute {version}"})


def wait_idle(conn: Any, server_id: str, timeout: float = 30.0) -> Any:
    """The server once it has no task (and is not building)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        server = conn.compute.get_server(server_id)
        if server.task_state is None and server.status != "BUILD":
            return server
        time.sleep(0.1)
    raise AssertionError(f"server {server_id} is still {server.status}/{server.task_state}")


def wait_image(conn: Any, image_id: str, timeout: float = 30.0) -> dict[str, Any]:
    """The image record (as the image API shows it: properties at the top) once it is active."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        image = conn.image.get(f"/images/{image_id}").json()
        if image["status"] == "active":
            return image
        time.sleep(0.1)
    raise AssertionError(f"image {image_id} is still {image['status']}")


@pytest.fixture(scope="module")
def env(cloud: Any, admin: Any) -> Iterator[dict[str, Any]]:
    """A public base image with inheritable and non-inheritable properties, a network, a demo server."""
    image = admin.image.create_image(name="snap-base", disk_format="raw", container_format="bare",
                                     visibility="public", data=b"\0" * 4096, min_ram=64,
                                     os_distro="cirros", hw_rng_model="virtio", img_signature="not-inherited")
    network = admin.network.create_network(name="snap-net", shared=True)
    admin.network.create_subnet(network_id=network.id, cidr="10.91.0.0/24", ip_version=4, name="snap-subnet")
    demo = cloud.conn("pocketstack-demo")
    server = demo.compute.create_server(name="snap-vm", flavor_id="1", image_id=image.id,
                                        networks=[{"uuid": network.id}])
    demo.compute.wait_for_server(server, wait=30)
    yield {"image": image, "network": network, "server": server, "demo": demo}
    demo.compute.delete_server(server)
    demo.compute.wait_for_delete(server, wait=30)
    admin.network.delete_network(network)
    admin.image.delete_image(image)


def images(conn: Any, **filters: str) -> list[dict[str, Any]]:
    """The images the image API lists with these filters (properties included, as Glance filters on them)."""
    return conn.image.get("/images", params=filters).json()["images"]


def test_snapshot_with_the_cli_and_boot_from_it(cloud: Any, admin: Any, env: dict[str, Any], prefix: str) -> None:
    demo, server = env["demo"], env["server"]
    shown = cloud.cli("server", "image", "create", "--name", f"{prefix}-snap", "--property", "purpose=test",
                      "--wait", server.id, "-f", "json", cloud="pocketstack-demo")
    assert shown["name"] == f"{prefix}-snap"
    image = wait_image(demo, shown["id"])
    assert image["image_type"] == "snapshot" and image["instance_uuid"] == server.id
    assert image["base_image_ref"] == env["image"].id
    assert image["user_id"] == demo.current_user_id
    assert image["os_distro"] == "cirros" and image["hw_rng_model"] == "virtio" and image["purpose"] == "test"
    assert "img_signature" not in image
    assert image["owner"] == demo.current_project_id and image["visibility"] == "private"
    assert image["min_ram"] == 64 and image["min_disk"] == 1  # the flavor's root disk
    assert image["disk_format"] == "raw" and image["container_format"] == "bare"
    assert image["size"] == FakeDriver.SNAPSHOT_BYTES
    data = demo.image.download_image(image["id"]).content
    assert data.startswith(f"pocketstack fake disk of server {server.id}".encode())

    after = wait_idle(demo, server.id)
    assert after.status == "ACTIVE" and after.task_state is None
    actions = api(cloud, admin, "GET", f"/servers/{server.id}/os-instance-actions").json()["instanceActions"]
    action = next(a for a in actions if a["action"] == "createImage")
    events = api(cloud, admin, "GET", f"/servers/{server.id}/os-instance-actions/{action['request_id']}").json()
    assert [(e["event"], e["result"]) for e in events["instanceAction"]["events"]] == [
        ("compute_snapshot_instance", "Success")]

    booted = demo.compute.create_server(name=f"{prefix}-from-snap", flavor_id="1", image_id=image["id"],
                                        networks=[{"uuid": env["network"].id}])
    booted = demo.compute.wait_for_server(booted, wait=30)
    assert booted.status == "ACTIVE" and booted.image.id == image["id"]
    # a snapshot of a server booted from a snapshot keeps the original base image
    second = api(cloud, demo, "POST", f"/servers/{booted.id}/action", {"createImage": {"name": f"{prefix}-s2"}})
    assert second.status_code == 202
    again = wait_image(demo, second.json()["image_id"])
    assert again["base_image_ref"] == env["image"].id and again["instance_uuid"] == booted.id
    wait_idle(demo, booted.id)
    demo.compute.delete_server(booted)
    demo.compute.wait_for_delete(booted, wait=30)
    demo.image.delete_image(again["id"])
    demo.image.delete_image(image["id"])


def test_response_before_2_45_is_a_location(cloud: Any, env: dict[str, Any], prefix: str) -> None:
    demo, server = env["demo"], env["server"]
    old = api(cloud, demo, "POST", f"/servers/{server.id}/action", {"createImage": {"name": f"{prefix}-old"}},
              version="2.44")
    assert old.status_code == 202 and not old.content
    image_id = old.headers["Location"].rsplit("/", 1)[1]
    assert old.headers["Location"] == f"{cloud.url('image')}/images/{image_id}"
    wait_image(demo, image_id)
    wait_idle(demo, server.id)
    demo.image.delete_image(image_id)


@pytest.mark.parametrize(("action", "undo", "status"), [("stop", "start", "SHUTOFF"), ("pause", "unpause", "PAUSED"),
                                                         ("suspend", "resume", "SUSPENDED")])
def test_snapshot_keeps_a_stopped_paused_or_suspended_server_so(cloud: Any, env: dict[str, Any], prefix: str,
                                                                action: str, undo: str, status: str) -> None:
    demo, server = env["demo"], env["server"]
    getattr(demo.compute, f"{action}_server")(server)
    try:
        assert wait_idle(demo, server.id).status == status
        resp = api(cloud, demo, "POST", f"/servers/{server.id}/action", {"createImage": {"name": f"{prefix}-s"}})
        assert resp.status_code == 202
        image = wait_image(demo, resp.json()["image_id"])
        assert wait_idle(demo, server.id).status == status
        demo.image.delete_image(image["id"])
    finally:
        getattr(demo.compute, f"{undo}_server")(server)
        assert wait_idle(demo, server.id).status == "ACTIVE"


def test_errors(cloud: Any, admin: Any, env: dict[str, Any], prefix: str) -> None:
    demo, server = env["demo"], env["server"]
    path = f"/servers/{server.id}/action"
    missing = api(cloud, demo, "POST", "/servers/00000000-0000-4000-8000-000000000000/action",
                  {"createImage": {"name": "x"}})
    assert missing.status_code == 404 and "itemNotFound" in missing.json()
    for body in ({"createImage": {}}, {"createImage": {"name": " padded"}}, {"createImage": {"name": ""}},
                 {"createImage": {"name": "x", "metadata": ["a"]}}, {"createImage": {"name": "x", "bogus": 1}},
                 {"createImage": "x"}):
        resp = api(cloud, demo, "POST", path, body)
        assert resp.status_code == 400 and "badRequest" in resp.json(), body

    # a reader of the project may look, not snapshot; another project does not see the server (Nova: 404)
    with reader_and_outsider(cloud, admin, prefix) as (as_reader, as_outsider):
        denied = api(cloud, as_reader, "POST", path, {"createImage": {"name": f"{prefix}-no"}})
        assert denied.status_code == 403 and "forbidden" in denied.json()
        hidden = api(cloud, as_outsider, "POST", path, {"createImage": {"name": f"{prefix}-no"}})
        assert hidden.status_code == 404
    assert images(demo, instance_uuid=server.id) == []

    # an admin snapshots the project's server: the image is the project's
    resp = api(cloud, admin, "POST", path, {"createImage": {"name": f"{prefix}-by-admin"}})
    assert resp.status_code == 202
    image = wait_image(admin, resp.json()["image_id"])
    assert image["owner"] == demo.current_project_id and image["user_id"] == admin.current_user_id
    wait_idle(demo, server.id)
    admin.image.delete_image(image["id"])

    # a server in ERROR cannot be snapshot: 409, no image made
    hosts = [a.host for a in next(s for s in cloud.thread.cloud.services if s.name == "compute").agents]
    FakeDriver.fail_spawn_on.update({host: "no room" for host in hosts})
    try:
        broken = demo.compute.create_server(name=f"{prefix}-broken", flavor_id="1", image_id=env["image"].id,
                                            networks="none")
        assert wait_idle(demo, broken.id).status == "ERROR"
    finally:
        FakeDriver.fail_spawn_on.clear()
    conflict = api(cloud, demo, "POST", f"/servers/{broken.id}/action", {"createImage": {"name": f"{prefix}-err"}})
    assert conflict.status_code == 409 and "conflictingRequest" in conflict.json()
    assert "vm_state error" in conflict.json()["conflictingRequest"]["message"]
    assert images(demo, instance_uuid=broken.id) == []
    demo.compute.delete_server(broken)
    demo.compute.wait_for_delete(broken, wait=30)


def test_failing_driver_snapshot_leaves_the_server_as_it_was(cloud: Any, admin: Any, env: dict[str, Any],
                                                             prefix: str) -> None:
    demo, server = env["demo"], env["server"]
    hosts = [a.host for a in next(s for s in cloud.thread.cloud.services if s.name == "compute").agents]
    FakeDriver.fail_snapshot_on.update({host: "disk on fire" for host in hosts})
    try:
        resp = api(cloud, demo, "POST", f"/servers/{server.id}/action", {"createImage": {"name": f"{prefix}-bad"}})
        assert resp.status_code == 202
        image_id = resp.json()["image_id"]
        after = wait_idle(demo, server.id)
    finally:
        FakeDriver.fail_snapshot_on.clear()
    assert after.status == "ACTIVE" and after.task_state is None and after.power_state == 1
    with pytest.raises(openstack.exceptions.NotFoundException):
        demo.image.get_image(image_id)
    assert images(demo, instance_uuid=server.id) == []
    actions = api(cloud, admin, "GET", f"/servers/{server.id}/os-instance-actions").json()["instanceActions"]
    action = next(a for a in actions if a["action"] == "createImage" and a["request_id"] == resp.headers[
        "X-OpenStack-Request-ID"])
    shown = api(cloud, admin, "GET", f"/servers/{server.id}/os-instance-actions/{action['request_id']}").json()
    (event,) = shown["instanceAction"]["events"]
    assert event["event"] == "compute_snapshot_instance" and event["result"] == "Error"
    assert shown["instanceAction"]["message"] == "Error"


def test_backup_rotation(cloud: Any, admin: Any, env: dict[str, Any], prefix: str) -> None:
    demo, server = env["demo"], env["server"]
    path = f"/servers/{server.id}/action"
    backup = cloud.cli("server", "backup", "create", "--name", f"{prefix}-cli", "--type", "cli", "--rotate", "1",
                       "--wait", server.id, "-f", "json", cloud="pocketstack-demo")
    shown = wait_image(demo, backup["id"])
    assert shown["image_type"] == "backup" and shown["backup_type"] == "cli" and shown["instance_uuid"] == server.id
    wait_idle(demo, server.id)
    demo.image.delete_image(backup["id"])
    made = []
    for i in range(3):
        resp = api(cloud, demo, "POST", path, {"createBackup": {"name": f"{prefix}-b{i}", "backup_type": "daily",
                                                                "rotation": 2}})
        assert resp.status_code == 202
        made.append(resp.json()["image_id"])
        wait_idle(demo, server.id)
    weekly = api(cloud, demo, "POST", path, {"createBackup": {"name": f"{prefix}-w", "backup_type": "weekly",
                                                              "rotation": "1"}})
    assert weekly.status_code == 202
    wait_idle(demo, server.id)
    backups = {i["id"] for i in images(demo, instance_uuid=server.id, image_type="backup")}
    assert backups == {made[1], made[2], weekly.json()["image_id"]}
    newest = wait_image(demo, made[2])
    assert newest["backup_type"] == "daily" and newest["image_type"] == "backup"
    actions = api(cloud, demo, "GET", f"/servers/{server.id}/os-instance-actions").json()["instanceActions"]
    assert sum(1 for a in actions if a["action"] == "createBackup") == 5
    for body in ({"createBackup": {"name": "x", "backup_type": "daily"}},
                 {"createBackup": {"name": "x", "backup_type": "daily", "rotation": -1}},
                 {"createBackup": {"name": "x", "rotation": 1}}):
        assert api(cloud, demo, "POST", path, body).status_code == 400, body
    old = api(cloud, demo, "POST", path, {"createBackup": {"name": f"{prefix}-z", "backup_type": "daily",
                                                           "rotation": 0}}, version="2.44")
    assert old.status_code == 202 and "Location" not in old.headers
    wait_idle(demo, server.id)
    assert images(demo, instance_uuid=server.id, backup_type="daily") == []  # rotation 0 keeps none
    demo.image.delete_image(weekly.json()["image_id"])
    assert images(demo, instance_uuid=server.id) == []


def test_what_a_snapshot_inherits_from_its_base_image() -> None:
    """Glance's own attributes, signatures, mappings and os_glance_* stay behind; the caller's metadata wins."""
    base = {"id": "b1", "name": "base", "status": "active", "size": 4096, "checksum": "c", "owner": "p0",
            "visibility": "public", "disk_format": "qcow2", "container_format": "bare", "min_ram": 128,
            "min_disk": 5, "os_distro": "debian", "hw_disk_bus": "virtio", "img_signature": "s",
            "os_glance_importing_to_stores": "", "block_device_mapping": "[]", "purpose": "base"}
    inst = SimpleNamespace(uuid="i1", project_id="p1", user_id="u1", image_ref="b1", root_gb=1,
                           request_spec={"image_properties": base})
    ctx = RequestContext(user_id="u2", project_id="p1", roles=["member"])
    attrs = image_attributes(inst, ctx, "snap", "snapshot", {"purpose": "mine"})
    assert attrs == {"name": "snap", "visibility": "private", "owner": "p1", "min_ram": 128, "min_disk": 5,
                     "os_distro": "debian", "hw_disk_bus": "virtio", "purpose": "mine", "base_image_ref": "b1",
                     "instance_uuid": "i1", "user_id": "u2", "image_type": "snapshot"}
    bigger = SimpleNamespace(**{**vars(inst), "root_gb": 20})
    assert image_attributes(bigger, ctx, "snap", "backup", {})["min_disk"] == 20  # the flavor's disk when larger


def test_task_states_and_a_delete_during_the_snapshot(cloud: Any, env: dict[str, Any], prefix: str) -> None:
    """While the host copies: the server shows the snapshot's task, a second snapshot is refused (409); deleting
    the server then ends the snapshot and its image goes with it."""
    demo = env["demo"]
    server = demo.compute.create_server(name=f"{prefix}-doomed", flavor_id="1", image_id=env["image"].id,
                                        networks="none")
    demo.compute.wait_for_server(server, wait=30)
    hosts = [a.host for a in next(s for s in cloud.thread.cloud.services if s.name == "compute").agents]
    FakeDriver.slow_snapshot_on.update({host: 3.0 for host in hosts})
    try:
        resp = api(cloud, demo, "POST", f"/servers/{server.id}/action", {"createImage": {"name": f"{prefix}-s"}})
        assert resp.status_code == 202
        image_id = resp.json()["image_id"]
        deadline = time.monotonic() + 10
        while demo.compute.get_server(server.id).task_state != "image_pending_upload":
            assert time.monotonic() < deadline, "the snapshot never reached image_pending_upload"
            time.sleep(0.05)
        assert demo.compute.get_server(server.id).status == "ACTIVE"
        busy = api(cloud, demo, "POST", f"/servers/{server.id}/action", {"createImage": {"name": f"{prefix}-2"}})
        assert busy.status_code == 409
        assert "task_state image_pending_upload" in busy.json()["conflictingRequest"]["message"]
        demo.compute.delete_server(server)
        demo.compute.wait_for_delete(server, wait=30)
    finally:
        FakeDriver.slow_snapshot_on.clear()
    deadline = time.monotonic() + 10
    while images(demo, instance_uuid=server.id):
        assert time.monotonic() < deadline, "the image of the interrupted snapshot stayed"
        time.sleep(0.1)
    with pytest.raises(openstack.exceptions.NotFoundException):
        demo.image.get_image(image_id)


def test_a_restarted_agent_ends_the_snapshots_it_had_begun(cloud: Any, admin: Any, env: dict[str, Any],
                                                           prefix: str) -> None:
    """The start-up check of an agent: a server left in a snapshot's task gets it ended, its queued image goes."""
    demo, server = env["demo"], env["server"]
    host = admin.compute.get_server(server.id).compute_host
    agent = next(a for s in cloud.thread.cloud.services if s.name == "compute" for a in s.agents if a.host == host)
    queued = demo.image.post("/images", json={"name": f"{prefix}-left", "instance_uuid": server.id,
                                              "image_type": "snapshot"}).json()
    assert queued["status"] == "queued"
    cloud.thread.call(lambda: agent.conductor.instance_update(server.id, {"task_state": "image_uploading"}))
    assert demo.compute.get_server(server.id).task_state == "image_uploading"
    cloud.thread.call(agent._end_interrupted_snapshots)
    after = demo.compute.get_server(server.id)
    assert after.task_state is None and after.status == "ACTIVE"
    with pytest.raises(openstack.exceptions.NotFoundException):
        demo.image.get_image(queued["id"])


def test_a_locked_server_can_be_snapshot(cloud: Any, env: dict[str, Any], prefix: str) -> None:
    """Nova checks no lock for createImage: a lock guards a server against changes, a snapshot changes nothing."""
    demo, server = env["demo"], env["server"]
    cloud.cli("server", "lock", server.id, cloud="pocketstack-demo")
    try:
        resp = api(cloud, demo, "POST", f"/servers/{server.id}/action", {"createImage": {"name": f"{prefix}-lk"}})
        assert resp.status_code == 202
        wait_image(demo, resp.json()["image_id"])
        wait_idle(demo, server.id)
        demo.image.delete_image(resp.json()["image_id"])
    finally:
        cloud.cli("server", "unlock", server.id, cloud="pocketstack-demo")
