"""Volumes as users drive them: the `openstack` CLI and openstacksdk's block storage proxy."""

from __future__ import annotations

import time
from typing import Any

import pytest
from volume_helpers import qemu_info, volume_file, volume_files

MiB = 1 << 20


def wait_volume(cloud: Any, name: str, *statuses: str, kind: str = "volume", timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        shown = cloud.cli(kind, "show", name, "-f", "json")
        if shown["status"] in statuses:
            return shown
        if time.monotonic() > deadline:
            raise AssertionError(f"{kind} {name} is {shown['status']}, not {' or '.join(statuses)}")
        time.sleep(0.1)


def gone(cloud: Any, *args: str, timeout: float = 60.0) -> None:
    """Wait until `openstack ... show` no longer finds the resource."""
    deadline = time.monotonic() + timeout
    while cloud.cli(*args, "-f", "json", check=False).returncode == 0:
        if time.monotonic() > deadline:
            raise AssertionError(f"{' '.join(args)} still exists")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def image(admin: Any) -> Any:
    img = admin.image.create_image(name="cli-volume-image", disk_format="raw", container_format="bare",
                                   data=b"\x5a" * (2 * MiB))
    yield img
    admin.image.delete_image(img)


def test_volume_create_show_set_list_delete(cloud: Any, prefix: str) -> None:
    name = f"{prefix}-vol"
    created = cloud.cli("volume", "create", "--size", "1", "--description", "first", "--property", "tier=gold",
                        name, "-f", "json")
    assert created["size"] == 1 and created["name"] == name
    shown = wait_volume(cloud, name, "available")
    assert shown["type"] == "__DEFAULT__" and shown["properties"] == {"tier": "gold"} and shown["bootable"] is False
    assert volume_file(cloud, shown["id"]).exists()

    cloud.cli("volume", "set", "--name", f"{name}-2", "--description", "renamed", "--property", "owner=me",
              "--bootable", name)
    shown = cloud.cli("volume", "show", f"{name}-2", "-f", "json")
    assert shown["description"] == "renamed" and shown["properties"] == {"tier": "gold", "owner": "me"}
    assert shown["bootable"] is True
    cloud.cli("volume", "set", "--size", "2", f"{name}-2")
    assert wait_volume(cloud, f"{name}-2", "available")["size"] == 2
    assert qemu_info(volume_file(cloud, shown["id"]))["virtual-size"] == 2 << 30
    listed = cloud.cli("volume", "list", "--long", "-f", "json")
    row = next(v for v in listed if v["ID"] == shown["id"])
    assert row["Status"] == "available" and row["Size"] == 2 and row["Bootable"] is True

    cloud.cli("volume", "set", "--state", "error", f"{name}-2")  # admin: os-reset_status
    assert cloud.cli("volume", "show", f"{name}-2", "-f", "json")["status"] == "error"
    cloud.cli("volume", "delete", f"{name}-2")
    gone(cloud, "volume", "show", shown["id"])
    assert volume_files(cloud, shown["id"]) == []


def test_volume_from_image_and_from_snapshot(cloud: Any, image: Any, prefix: str) -> None:
    cloud.cli("volume", "create", "--size", "1", "--image", image.name, f"{prefix}-img")
    from_image = wait_volume(cloud, f"{prefix}-img", "available")
    assert from_image["bootable"] is True and from_image["volume_image_metadata"]["image_name"] == image.name

    snap = cloud.cli("volume", "snapshot", "create", "--volume", f"{prefix}-img", f"{prefix}-snap", "-f", "json")
    assert snap["volume_id"] == from_image["id"]
    assert wait_volume(cloud, f"{prefix}-snap", "available", kind="volume snapshot")["size"] == 1
    listed = cloud.cli("volume", "snapshot", "list", "-f", "json")
    assert f"{prefix}-snap" in {s["Name"] for s in listed}

    cloud.cli("volume", "create", "--snapshot", f"{prefix}-snap", f"{prefix}-from-snap")
    from_snap = wait_volume(cloud, f"{prefix}-from-snap", "available")
    assert from_snap["snapshot_id"] == snap["id"] and from_snap["size"] == 1 and from_snap["bootable"] is True

    failed = cloud.cli("volume", "delete", f"{prefix}-img", check=False)
    assert failed.returncode != 0 and "snapshot" in failed.stderr
    cloud.cli("volume", "snapshot", "delete", f"{prefix}-snap")
    gone(cloud, "volume", "snapshot", "show", snap["id"])
    cloud.cli("volume", "delete", f"{prefix}-img", f"{prefix}-from-snap")
    gone(cloud, "volume", "show", from_image["id"])
    gone(cloud, "volume", "show", from_snap["id"])


def test_volume_type_create_and_use(cloud: Any, prefix: str) -> None:
    vtype = cloud.cli("volume", "type", "create", "--description", "fast disks", "--property", "tier=fast",
                      f"{prefix}-fast", "-f", "json")
    assert vtype["properties"] == {"tier": "fast"} and vtype["is_public"] is True
    cloud.cli("volume", "create", "--size", "1", "--type", f"{prefix}-fast", f"{prefix}-typed")
    assert wait_volume(cloud, f"{prefix}-typed", "available")["type"] == f"{prefix}-fast"
    failed = cloud.cli("volume", "type", "delete", f"{prefix}-fast", check=False)
    assert failed.returncode != 0 and "in use" in failed.stderr
    cloud.cli("volume", "delete", f"{prefix}-typed")
    gone(cloud, "volume", "show", f"{prefix}-typed")
    cloud.cli("volume", "type", "delete", f"{prefix}-fast")
    assert f"{prefix}-fast" not in {t["Name"] for t in cloud.cli("volume", "type", "list", "-f", "json")}


def test_a_volume_bigger_than_the_backend_ends_in_error(cloud: Any, prefix: str) -> None:
    size = str(cloud.settings.volume.capacity_gb + 1)
    created = cloud.cli("volume", "create", "--size", size, f"{prefix}-huge", "-f", "json")
    assert created["status"] == "error"
    messages = cloud.cli("--os-volume-api-version", "3.3", "volume", "message", "list", "-f", "json")
    mine = [m for m in messages if m["Resource UUID"] == created["id"]]
    assert mine and "insufficient free capacity" in mine[0]["User Message"]
    assert volume_files(cloud, created["id"]) == []
    cloud.cli("volume", "delete", f"{prefix}-huge")
    gone(cloud, "volume", "show", created["id"])


def test_sdk_block_storage_proxy(admin: Any, prefix: str) -> None:
    vol = admin.block_storage.create_volume(size=1, name=f"{prefix}-sdk")
    vol = admin.block_storage.wait_for_status(vol, "available", failures=["error"], wait=60)
    assert admin.block_storage.find_volume(f"{prefix}-sdk").id == vol.id
    admin.block_storage.extend_volume(vol, 2)
    assert admin.block_storage.get_volume(vol).status in ("extending", "available")
    vol = admin.block_storage.wait_for_status(admin.block_storage.get_volume(vol), "available",
                                              failures=["error", "error_extending"], wait=60)
    assert admin.block_storage.get_volume(vol).size == 2
    snap = admin.block_storage.create_snapshot(volume_id=vol.id, name=f"{prefix}-sdk-snap")
    snap = admin.block_storage.wait_for_status(snap, "available", failures=["error"], wait=60)
    admin.block_storage.delete_snapshot(snap)
    admin.block_storage.wait_for_delete(snap, wait=60)
    admin.block_storage.delete_volume(vol)
    admin.block_storage.wait_for_delete(vol, wait=60)
    assert admin.block_storage.find_volume(f"{prefix}-sdk") is None


def test_volume_transfer_between_projects(cloud: Any, prefix: str) -> None:
    cloud.cli("volume", "create", "--size", "1", f"{prefix}-gift")
    volume = wait_volume(cloud, f"{prefix}-gift", "available")
    request = cloud.cli("volume", "transfer", "request", "create", "--name", f"{prefix}-t", volume["id"], "-f",
                        "json")
    assert request["volume_id"] == volume["id"] and request["auth_key"]
    assert cloud.cli("volume", "show", volume["id"], "-f", "json")["status"] == "awaiting-transfer"
    accepted = cloud.cli("volume", "transfer", "request", "accept", "--auth-key", request["auth_key"],
                         request["id"], "-f", "json", cloud="pocketstack-demo")
    assert accepted["volume_id"] == volume["id"]
    shown = cloud.cli("volume", "show", volume["id"], "-f", "json", cloud="pocketstack-demo")
    assert shown["status"] == "available"
    cloud.cli("volume", "delete", volume["id"], cloud="pocketstack-demo")
    gone(cloud, "volume", "show", volume["id"])


def test_image_create_from_a_volume(cloud: Any, image: Any, prefix: str) -> None:
    cloud.cli("volume", "create", "--size", "1", "--image", image.name, f"{prefix}-src")
    wait_volume(cloud, f"{prefix}-src", "available")
    made = cloud.cli("image", "create", "--volume", f"{prefix}-src", "--disk-format", "qcow2", f"{prefix}-img",
                     "-f", "json")
    assert made["image_name"] == f"{prefix}-img" and made["status"] == "uploading"
    wait_volume(cloud, f"{prefix}-src", "available")
    shown = cloud.cli("image", "show", made["image_id"], "-f", "json")
    assert shown["status"] == "active" and shown["disk_format"] == "qcow2"
    cloud.cli("image", "delete", made["image_id"])
    cloud.cli("volume", "delete", f"{prefix}-src")
    gone(cloud, "volume", "show", f"{prefix}-src")


def test_qos_specs_through_the_cli(cloud: Any, prefix: str) -> None:
    qos = cloud.cli("volume", "qos", "create", "--consumer", "front-end", "--property", "read_iops_sec=500",
                    f"{prefix}-qos", "-f", "json")
    assert qos["consumer"] == "front-end"
    cloud.cli("volume", "type", "create", f"{prefix}-qtype")
    try:
        cloud.cli("volume", "qos", "associate", f"{prefix}-qos", f"{prefix}-qtype")
        shown = cloud.cli("volume", "qos", "show", f"{prefix}-qos", "-f", "json")
        assert f"{prefix}-qtype" in str(shown["associations"])  # the CLI shows the type names
        assert shown["properties"] == {"read_iops_sec": "500"}
        cloud.cli("volume", "qos", "set", "--property", "write_iops_sec=100", f"{prefix}-qos")
        cloud.cli("volume", "qos", "unset", "--property", "read_iops_sec", f"{prefix}-qos")
        assert cloud.cli("volume", "qos", "show", f"{prefix}-qos", "-f", "json")["properties"] == {
            "write_iops_sec": "100"}
        assert cloud.cli("volume", "qos", "delete", f"{prefix}-qos", check=False).returncode != 0  # associated
        cloud.cli("volume", "qos", "disassociate", "--volume-type", f"{prefix}-qtype", f"{prefix}-qos")
        cloud.cli("volume", "qos", "delete", f"{prefix}-qos")
    finally:
        cloud.cli("volume", "qos", "delete", "--force", f"{prefix}-qos", check=False)
        cloud.cli("volume", "type", "delete", f"{prefix}-qtype")
