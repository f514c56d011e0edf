"""Volumes on servers (FLOW.md 26-28): attach and detach, boot from volume, delete_on_termination, and the
failures (other project's volume, in-use volume, an attach the hypervisor refuses, a root volume that cannot be
made) leaving nothing behind. Servers run on the fake driver, which records what it is given."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from volume_helpers import VolumeAPI, fault, volume_file, volume_files

from pocketstack.compute.virt.fake import FakeDriver

POCKETSTACK = str(Path(sys.executable).with_name("pocketstack"))
MiB = 1 << 20


@pytest.fixture(scope="module")
def env(cloud: Any, admin: Any) -> Any:
    image = admin.image.create_image(name="bfv-image", disk_format="raw", container_format="bare",
                                     data=b"\x7f" * (2 * MiB), visibility="public")
    network = admin.network.create_network(name="vol-net", shared=True)
    admin.network.create_subnet(network_id=network.id, cidr="10.77.0.0/24", ip_version=4, name="vol-subnet")
    yield {"image": image, "network": network}
    admin.image.delete_image(image)


def compute(cloud: Any, conn: Any, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    resp = requests.request(method, f"{cloud.url('compute')}/v2.1{path}", json=body, timeout=60,
                            headers={"X-Auth-Token": conn.auth_token, "OpenStack-API-Version": "compute 2.79"})
    return resp.status_code, (resp.json() if resp.content else None)


def fake_instance(cloud: Any, server_id: str) -> Any:
    """What the fake hypervisor holds for a server (its attached volumes by device)."""
    service = next(s for s in cloud.thread.cloud.services if s.name == "compute")
    for agent in service.agents:
        if server_id in agent.driver.instances:
            return agent.driver.instances[server_id]
    raise AssertionError(f"no fake hypervisor holds server {server_id}")


def wait_for(check: Any, what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def volume_status(cloud: Any, name: str, cloud_name: str = "pocketstack") -> str:
    return cloud.cli("volume", "show", name, "-f", "json", cloud=cloud_name)["status"]


def boot(cloud: Any, env: Any, name: str, *extra: str, cloud_name: str = "pocketstack") -> dict[str, Any]:
    return cloud.cli("server", "create", "--flavor", "m1.tiny", "--network", env["network"].id, *extra, "--wait",
                     name, "-f", "json", cloud=cloud_name)


def test_server_add_and_remove_volume(cloud: Any, env: Any, prefix: str) -> None:
    server = boot(cloud, env, f"{prefix}-vm", "--image", env["image"].id)
    volume = cloud.cli("volume", "create", "--size", "1", f"{prefix}-data", "-f", "json")
    wait_for(lambda: volume_status(cloud, volume["id"]) == "available", "the volume")

    added = cloud.cli("server", "add", "volume", server["id"], volume["id"], "-f", "json")
    assert added["Device"] == "/dev/vdb" and added["Volume ID"] == volume["id"]
    wait_for(lambda: volume_status(cloud, volume["id"]) == "in-use", "the attach")
    shown = cloud.cli("volume", "show", volume["id"], "-f", "json")
    (attachment,) = shown["attachments"]
    assert attachment["server_id"] == server["id"] and attachment["device"] == "/dev/vdb"
    plugged = fake_instance(cloud, server["id"]).volumes["/dev/vdb"]
    assert plugged["driver_volume_type"] == "file" and plugged["data"]["path"] == str(volume_file(cloud,
                                                                                                  volume["id"]))
    rows = cloud.cli("server", "volume", "list", server["id"], "-f", "json")
    assert [(r["Volume ID"], r["Device"]) for r in rows] == [(volume["id"], "/dev/vdb")]
    assert cloud.cli("server", "show", server["id"], "-f", "json")["volumes_attached"] == [
        {"id": volume["id"], "delete_on_termination": False}]

    failed = cloud.cli("volume", "delete", volume["id"], check=False)
    assert failed.returncode != 0 and "in-use" in failed.stderr
    failed = cloud.cli("server", "add", "volume", server["id"], volume["id"], check=False)
    assert failed.returncode != 0 and "already attached" in failed.stderr

    cloud.cli("server", "remove", "volume", server["id"], volume["id"])
    wait_for(lambda: volume_status(cloud, volume["id"]) == "available", "the detach")
    assert "/dev/vdb" not in fake_instance(cloud, server["id"]).volumes
    assert cloud.cli("server", "volume", "list", server["id"], "-f", "json") == []
    assert cloud.cli("volume", "show", volume["id"], "-f", "json")["attachments"] == []
    cloud.cli("server", "delete", "--wait", server["id"])
    cloud.cli("volume", "delete", volume["id"])


def test_extending_an_attached_volume_grows_its_file_and_tells_the_hypervisor(cloud: Any, env: Any,
                                                                            prefix: str) -> None:
    server = boot(cloud, env, f"{prefix}-grow", "--image", env["image"].id)
    volume = cloud.cli("volume", "create", "--size", "1", f"{prefix}-grown", "-f", "json")
    wait_for(lambda: volume_status(cloud, volume["id"]) == "available", "the volume")
    cloud.cli("server", "add", "volume", server["id"], volume["id"])
    wait_for(lambda: volume_status(cloud, volume["id"]) == "in-use", "the attach")
    # before 3.42 only a detached volume may be extended (Cinder's rule)
    old = cloud.cli("--os-volume-api-version", "3.41", "volume", "set", "--size", "2", volume["id"], check=False)
    assert old.returncode != 0 and "in-use" in old.stderr
    cloud.cli("--os-volume-api-version", "3.42", "volume", "set", "--size", "2", volume["id"])
    wait_for(lambda: cloud.cli("volume", "show", volume["id"], "-f", "json")["size"] == 2, "the extension")
    shown = cloud.cli("volume", "show", volume["id"], "-f", "json")
    assert shown["status"] == "in-use" and shown["attachments"][0]["server_id"] == server["id"]
    assert volume_file(cloud, volume["id"]).stat().st_size == 2 << 30
    # the volume service told compute (volume-extended), whose agent told the hypervisor the new size
    wait_for(lambda: fake_instance(cloud, server["id"]).volumes["/dev/vdb"].get("size_bytes") == 2 << 30,
             "the hypervisor hearing of it")
    cloud.cli("server", "remove", "volume", server["id"], volume["id"])
    wait_for(lambda: volume_status(cloud, volume["id"]) == "available", "the detach")
    cloud.cli("server", "delete", "--wait", server["id"])
    cloud.cli("volume", "delete", volume["id"])


def test_boot_from_volume_and_delete_on_termination(cloud: Any, env: Any, prefix: str) -> None:
    server = boot(cloud, env, f"{prefix}-bfv", "--image", env["image"].id, "--boot-from-volume", "1")
    assert server["status"] == "ACTIVE" and server["image"] == "N/A (booted from volume)"
    ((root, on_delete),) = [(v["id"], v["delete_on_termination"]) for v in server["volumes_attached"]]
    assert on_delete is False
    shown = cloud.cli("volume", "show", root, "-f", "json")
    assert shown["status"] == "in-use" and shown["bootable"] is True and shown["size"] == 1
    assert shown["volume_image_metadata"]["image_id"] == env["image"].id
    assert [(a["server_id"], a["device"]) for a in shown["attachments"]] == [(server["id"], "/dev/vda")]
    fake = fake_instance(cloud, server["id"])
    assert fake.volumes["/dev/vda"]["data"]["path"] == str(volume_file(cloud, root))
    assert f"from volume {root}" in "\n".join(fake.console)
    status, _, message = fault(compute(cloud, cloud.conn(), "DELETE",
                                       f"/servers/{server['id']}/os-volume_attachments/{root}"))
    assert status == 400 and "root device" in message

    trace = subprocess.run([POCKETSTACK, "trace", server["id"], "--json", "--data-dir",
                            str(cloud.settings.data_dir)], capture_output=True, text=True, check=True)
    hops = json.loads(trace.stdout)["hops"]
    volume_hops = [h for h in hops if h["step"] == "26, 28"]
    assert {h["kind"] for h in volume_hops} == {"REST"} and len(volume_hops) >= 3  # create, attach, complete
    assert "27" in {h["step"] for h in hops}  # the volume service validating the token

    cloud.cli("server", "delete", "--wait", server["id"])
    wait_for(lambda: volume_status(cloud, root) == "available", "the root volume to be detached")
    cloud.cli("volume", "delete", root)

    bootable = cloud.cli("volume", "create", "--size", "1", "--image", env["image"].id, f"{prefix}-boot",
                         "-f", "json")
    wait_for(lambda: volume_status(cloud, bootable["id"]) == "available", "the bootable volume")
    server = boot(cloud, env, f"{prefix}-from-vol", "--volume", bootable["id"])  # boot from an existing volume
    assert server["volumes_attached"] == [{"id": bootable["id"], "delete_on_termination": False}]
    for microversion, attached in (("2.1", {"id": bootable["id"]}),  # delete_on_termination from 2.3
                                   ("2.3", {"id": bootable["id"], "delete_on_termination": False})):
        shown = requests.get(f"{cloud.url('compute')}/v2.1/servers/{server['id']}", timeout=30, headers={
            "X-Auth-Token": cloud.conn().auth_token, "OpenStack-API-Version": f"compute {microversion}"}).json()
        assert shown["server"]["os-extended-volumes:volumes_attached"] == [attached]
    assert fake_instance(cloud, server["id"]).volumes["/dev/vda"]["data"]["path"] == str(
        volume_file(cloud, bootable["id"]))
    failed = cloud.cli("server", "create", "--flavor", "m1.tiny", "--network", env["network"].id, "--volume",
                       bootable["id"], f"{prefix}-twice", check=False)
    assert failed.returncode != 0 and "in-use" in failed.stderr  # a volume boots one server
    cloud.cli("server", "delete", "--wait", server["id"])
    wait_for(lambda: volume_status(cloud, bootable["id"]) == "available", "the volume after the server")
    cloud.cli("volume", "delete", bootable["id"])

    server = boot(cloud, env, f"{prefix}-bfv2", "--image", env["image"].id, "--boot-from-volume", "1",
                  "--delete-on-termination")
    ((root, on_delete),) = [(v["id"], v["delete_on_termination"]) for v in server["volumes_attached"]]
    assert on_delete is True and volume_status(cloud, root) == "in-use"
    cloud.cli("server", "delete", "--wait", server["id"])
    wait_for(lambda: cloud.cli("volume", "show", root, check=False).returncode != 0, "the root volume to go")
    wait_for(lambda: volume_files(cloud, root) == [], "the root volume's file to go")


def test_attach_errors(cloud: Any, env: Any, admin: Any, demo: Any, prefix: str) -> None:
    server = boot(cloud, env, f"{prefix}-demo-vm", "--image", env["image"].id, cloud_name="pocketstack-demo")
    other = boot(cloud, env, f"{prefix}-admin-vm", "--image", env["image"].id)
    admins = VolumeAPI(cloud, admin).create_volume(size=1, name=f"{prefix}-admins")
    demos = VolumeAPI(cloud, demo).create_volume(size=1, name=f"{prefix}-demos")
    body = {"volumeAttachment": {"volumeId": admins["id"]}}
    assert fault(compute(cloud, demo, "POST", f"/servers/{server['id']}/os-volume_attachments", body))[:2] == (
        404, "itemNotFound")
    assert VolumeAPI(cloud, admin)("GET", f"/volumes/{admins['id']}")[1]["volume"]["status"] == "available"
    assert fault(compute(cloud, demo, "POST", f"/servers/{server['id']}/os-volume_attachments",
                         {"volumeAttachment": {"volumeId": "not-a-uuid"}}))[0] == 400

    assert compute(cloud, admin, "POST", f"/servers/{other['id']}/os-volume_attachments", body)[0] == 200
    wait_for(lambda: volume_status(cloud, admins["id"]) == "in-use", "the attach")
    admin_server = boot(cloud, env, f"{prefix}-admin-vm2", "--image", env["image"].id)
    status, _, message = fault(compute(cloud, admin, "POST", f"/servers/{admin_server['id']}/os-volume_attachments",
                                       body))
    assert status == 400 and "in-use" in message  # not multiattach

    host = fake_host(cloud, server["id"])
    FakeDriver.fail_attach_on[host] = "the guest refused the disk"
    try:
        code, attached = compute(cloud, demo, "POST", f"/servers/{server['id']}/os-volume_attachments",
                                 {"volumeAttachment": {"volumeId": demos["id"]}})
        assert code == 200 and attached["volumeAttachment"]["device"] == "/dev/vdb"
        wait_for(lambda: compute(cloud, demo, "GET", f"/servers/{server['id']}/os-volume_attachments")[1] == {
            "volumeAttachments": []}, "the failed attach to be rolled back")
        wait_for(lambda: volume_status(cloud, demos["id"], "pocketstack-demo") == "available", "the volume back")
        assert VolumeAPI(cloud, demo)("GET", "/attachments")[1] == {"attachments": []}
        events = cloud.cli("server", "event", "show", server["id"], attached_request_id(cloud, server["id"]),
                           "-f", "json", cloud="pocketstack-demo")
        assert events["action"] == "attach_volume"
        assert [(e["event"], e["result"]) for e in events["events"]] == [("compute_attach_volume", "Error")]
    finally:
        FakeDriver.fail_attach_on.pop(host, None)
    cloud.cli("server", "delete", "--wait", server["id"], cloud="pocketstack-demo")
    for name in (other["id"], admin_server["id"]):
        cloud.cli("server", "delete", "--wait", name)
    wait_for(lambda: volume_status(cloud, admins["id"]) == "available", "the detach on delete")
    VolumeAPI(cloud, admin).delete_volume(admins["id"])
    VolumeAPI(cloud, demo).delete_volume(demos["id"])


def fake_host(cloud: Any, server_id: str) -> str:
    service = next(s for s in cloud.thread.cloud.services if s.name == "compute")
    return next(a.host for a in service.agents if server_id in a.driver.instances)


def attached_request_id(cloud: Any, server_id: str) -> str:
    events = cloud.cli("server", "event", "list", server_id, "-f", "json", cloud="pocketstack-demo")
    return next(e["Request ID"] for e in events if e["Action"] == "attach_volume")


def test_a_root_volume_that_cannot_be_made_fails_the_build_and_leaves_nothing(cloud: Any, env: Any, admin: Any,
                                                                               demo: Any, prefix: str) -> None:
    demo_volumes = VolumeAPI(cloud, demo)
    before = demo_volumes("GET", "/volumes")[1]["volumes"]
    project = demo.current_project_id
    VolumeAPI(cloud, admin)("PUT", f"/os-quota-sets/{project}", {"quota_set": {"gigabytes": 0}})
    try:
        created = cloud.cli("server", "create", "--flavor", "m1.tiny", "--network", env["network"].id, "--image",
                            env["image"].id, "--boot-from-volume", "1", f"{prefix}-nope", "-f", "json",
                            cloud="pocketstack-demo")
        server = wait_for(lambda: (s := demo.compute.get_server(created["id"])).status == "ERROR" and s,
                          "the build to fail")
        assert "gigabytes quota" in server.fault["message"]
    finally:
        VolumeAPI(cloud, admin)("DELETE", f"/os-quota-sets/{project}")
    assert demo_volumes("GET", "/volumes")[1]["volumes"] == before
    cloud.cli("server", "delete", "--wait", created["id"], cloud="pocketstack-demo")

    bad = [({"uuid": env["image"].id, "source_type": "image", "destination_type": "volume", "boot_index": 0},
            "non-zero size"),
           ({"uuid": "4f3b7c5e-0000-4000-8000-000000000000", "source_type": "volume", "destination_type": "volume",
             "boot_index": 0}, "could not be found"),
           ({"uuid": env["image"].id, "source_type": "image", "destination_type": "local", "boot_index": 0,
             "colour": "red"}, "Additional properties")]
    for mapping, expected in bad:
        body = {"server": {"name": f"{prefix}-bad", "flavorRef": "1", "networks": "none",
                           "block_device_mapping_v2": [mapping]}}
        status, _, message = fault(compute(cloud, demo, "POST", "/servers", body))
        assert status == 400 and expected in message, message
    assert not [s for s in demo.compute.servers() if s.name == f"{prefix}-bad"]
