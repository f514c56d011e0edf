"""The Block Storage API v3 over HTTP: exact statuses, Cinder's error bodies, the backend's files, isolation."""

from __future__ import annotations

import os
import subprocess
from typing import Any

import pytest
import requests
from image_helpers import qcow2_image
from volume_helpers import VolumeAPI, fault, qemu_info, read_bytes, volume_file, volume_files

MiB = 1 << 20
GiB = 1 << 30


@pytest.fixture(scope="module")
def api(cloud: Any, admin: Any) -> VolumeAPI:
    return VolumeAPI(cloud, admin)


@pytest.fixture(scope="module")
def demo_api(cloud: Any, demo: Any) -> VolumeAPI:
    return VolumeAPI(cloud, demo)


@pytest.fixture(scope="module", autouse=True)
def roomy_quotas(api: VolumeAPI, demo_api: VolumeAPI) -> Any:
    """Room for this module's volumes in both projects, whatever other modules left."""
    for project in (api.project_id, demo_api.project_id):
        code, body = api("PUT", f"/os-quota-sets/{project}", {"quota_set": {"volumes": 100, "snapshots": 100}})
        assert code == 200, body
    yield
    for project in (api.project_id, demo_api.project_id):
        api("DELETE", f"/os-quota-sets/{project}")


def current_file(api: VolumeAPI, volume_id: str) -> tuple[str, str]:
    """(path, format) of the file a host would attach now (after a snapshot, an overlay on the frozen file)."""
    code, body = api("POST", f"/volumes/{volume_id}/action", {"os-initialize_connection": {"connector": {
        "host": "test"}}})
    assert code == 200, body
    return body["connection_info"]["data"]["path"], body["connection_info"]["data"]["format"]


def pattern_file(api: VolumeAPI, volume_id: str, byte: int) -> None:
    """Write 1 MiB of `byte` at the start of a volume, as a guest would."""
    path, fmt = current_file(api, volume_id)
    subprocess.run(["qemu-io", "-f", fmt, "-c", f"write -P {byte} 0 1M", path], check=True, capture_output=True)


def test_version_discovery_microversions_and_catalog(cloud: Any, admin: Any, api: VolumeAPI) -> None:
    root = requests.get(cloud.url("volume") + "/", timeout=10)
    assert root.status_code == 300
    (version,) = root.json()["versions"]
    assert (version["id"], version["min_version"], version["version"]) == ("v3.0", "3.0", "3.65")
    assert requests.get(cloud.url("volume") + "/v3/", timeout=10).json()["versions"][0]["status"] == "CURRENT"
    catalog = admin.session.auth.get_access(admin.session).service_catalog
    for service_type in ("block-storage", "volumev3"):
        urls = catalog.get_urls(service_type=service_type, interface="public")
        assert urls == (f"{cloud.url('volume')}/v3/{api.project_id}",)
    resp = requests.get(f"{cloud.url('volume')}/v3/{api.project_id}/volumes", timeout=10,
                        headers={"X-Auth-Token": api.token})
    assert resp.status_code == 200 and resp.headers["OpenStack-API-Version"] == "volume 3.0"
    resp = requests.get(f"{cloud.url('volume')}/v3/{api.project_id}/volumes", timeout=10,
                        headers={"X-Auth-Token": api.token, "OpenStack-API-Version": "volume 3.99"})
    assert resp.status_code == 406
    assert fault(api("GET", "/volumes", project_id="0" * 32))[:2] == (400, "badRequest")
    assert requests.get(f"{cloud.url('volume')}/v3/{api.project_id}/volumes", timeout=10).status_code == 401


def test_empty_volume_lifecycle(api: VolumeAPI, cloud: Any) -> None:
    vol = api.create_volume(size=1, name="life", description="d", metadata={"k": "v"})
    assert vol["status"] == "available" and vol["bootable"] == "false" and vol["volume_type"] == "__DEFAULT__"
    assert vol["os-vol-tenant-attr:tenant_id"] == api.project_id and vol["attachments"] == []
    assert vol["metadata"] == {"k": "v"} and vol["consumes_quota"] is True and vol["volume_type_id"]
    path = volume_file(cloud, vol["id"])
    assert qemu_info(path)["virtual-size"] == GiB and qemu_info(path)["format"] == "raw"

    code, body = api("PUT", f"/volumes/{vol['id']}", {"volume": {"name": "life2", "description": None}})
    assert code == 200 and body["volume"]["name"] == "life2" and body["volume"]["description"] is None
    assert fault(api("PUT", f"/volumes/{vol['id']}", {"volume": {}}))[0] == 400  # 3.53: something to update
    assert api("POST", f"/volumes/{vol['id']}/metadata", {"metadata": {"a": "1"}})[1] == {
        "metadata": {"k": "v", "a": "1"}}
    assert api("GET", f"/volumes/{vol['id']}/metadata/a")[1] == {"meta": {"a": "1"}}
    assert api("DELETE", f"/volumes/{vol['id']}/metadata/k")[0] == 200
    assert fault(api("GET", f"/volumes/{vol['id']}/metadata/k"))[:2] == (404, "itemNotFound")
    code, body = api("GET", "/volumes/detail?metadata={'a': '1'}&name=life2")
    assert [v["id"] for v in body["volumes"]] == [vol["id"]]

    status, _, message = fault(api("POST", f"/volumes/{vol['id']}/action", {"os-extend": {"new_size": 1}}))
    assert status == 400 and "must be greater than current size" in message
    assert api("POST", f"/volumes/{vol['id']}/action", {"os-extend": {"new_size": 2}})[0] == 202
    assert api.wait("volume", vol["id"], "available")["size"] == 2
    assert qemu_info(path)["virtual-size"] == 2 * GiB

    api.delete_volume(vol["id"])
    assert fault(api("GET", f"/volumes/{vol['id']}"))[:2] == (404, "itemNotFound")
    assert not path.exists()


def test_a_volume_that_does_not_fit_ends_in_error_with_a_message_and_no_file(api: VolumeAPI, cloud: Any) -> None:
    too_big = cloud.settings.volume.capacity_gb + 1
    code, body = api("POST", "/volumes", {"volume": {"size": too_big, "name": "huge"}})
    assert code == 202 and body["volume"]["status"] == "error"
    volume_id = body["volume"]["id"]
    code, body = api("GET", f"/messages?resource_uuid={volume_id}")
    (message,) = body["messages"]
    assert message["message_level"] == "ERROR" and message["resource_type"] == "VOLUME"
    assert "insufficient free capacity" in message["user_message"]
    assert volume_files(cloud, volume_id) == []
    api.delete_volume(volume_id)
    assert api("GET", f"/messages/{message['id']}")[0] == 200  # the message outlives the volume, as in Cinder


def test_bad_input_is_a_clear_400_and_leaves_nothing(api: VolumeAPI, cloud: Any) -> None:
    before = api("GET", "/volumes")[1]["volumes"]
    files = sorted((cloud.settings.data_dir / "volumes").iterdir())
    cases = [
        ({"volume": {"size": 0}}, "greater than or equal to 1"),
        ({"volume": {"size": "big"}}, "size"),
        ({"volume": {"size": 1, "colour": "red"}}, "Additional properties are not allowed"),
        ({"volume": {}}, "Size must be an integer"),
        ({"volum": {"size": 1}}, "'volume'"),
        ({"volume": {"size": 1, "imageRef": "4f3b7c5e-0000-4000-8000-000000000000"}}, "image"),
        ({"volume": {"size": 1, "availability_zone": "nowhere"}}, "Availability zone 'nowhere' is invalid"),
        ({"volume": {"size": 1, "multiattach": True}}, "multiattach volume type"),
        ({"volume": {"size": 1, "backup_id": "4f3b7c5e-0000-4000-8000-000000000000"}}, "backup"),
    ]
    for body, expected in cases:
        status, name, message = fault(api("POST", "/volumes", body))
        assert (status, name) == (400, "badRequest") and expected in message, (body, message)
    assert fault(api("POST", "/volumes", raw=b"{not json"))[0] == 400
    assert fault(api("POST", "/volumes", {"volume": {"size": 1, "volume_type": "nope"}}))[:2] == (404, "itemNotFound")
    assert fault(api("POST", "/volumes", {"volume": {"snapshot_id": "4f3b7c5e-0000-4000-8000-000000000000"}}))[0] \
        == 404
    code, body = api("POST", "/volumes", {"volume": {"size": 1, "colour": "red"}}, version="3.0")
    assert code == 202  # before 3.53 Cinder ignored attributes it did not know
    api.wait("volume", body["volume"]["id"], "available")
    api.delete_volume(body["volume"]["id"])
    assert fault(api("GET", "/volumes/4f3b7c5e-0000-4000-8000-000000000000"))[:2] == (404, "itemNotFound")
    assert fault(api("POST", "/volumes/4f3b7c5e-0000-4000-8000-000000000000/action", {"os-extend": {
        "new_size": 2}}))[0] == 404
    assert fault(api("GET", "/volumes?sort=colour:asc"))[0] == 400
    assert fault(api("GET", "/volumes?flavour=x"))[0] == 400
    assert fault(api("GET", "/volumes?marker=4f3b7c5e-0000-4000-8000-000000000000"))[0] == 404  # Cinder: MarkerNotFound
    assert api("GET", "/volumes")[1]["volumes"] == before
    assert sorted((cloud.settings.data_dir / "volumes").iterdir()) == files


def test_quotas_limit_volumes_and_gigabytes(api: VolumeAPI, demo_api: VolumeAPI) -> None:
    demo = demo_api.project_id
    assert fault(demo_api("PUT", f"/os-quota-sets/{demo}", {"quota_set": {"gigabytes": 3}}))[:2] == (
        403, "forbidden")
    assert api("PUT", f"/os-quota-sets/{demo}", {"quota_set": {"gigabytes": 3}})[0] == 200
    try:
        first = demo_api.create_volume(size=2)
        status, name, message = fault(demo_api("POST", "/volumes", {"volume": {"size": 2}}))
        assert (status, name) == (413, "overLimit") and "gigabytes quota" in message
        usage = demo_api("GET", f"/os-quota-sets/{demo}?usage=true")[1]["quota_set"]
        assert usage["gigabytes"] == {"limit": 3, "in_use": 2, "reserved": 0, "allocated": 0}
        limits = demo_api("GET", "/limits")[1]["limits"]["absolute"]
        assert limits["maxTotalVolumeGigabytes"] == 3 and limits["totalGigabytesUsed"] == 2
        status, _, message = fault(api("PUT", f"/os-quota-sets/{demo}", {"quota_set": {"gigabytes": 1}}))
        assert status == 400 and "Current usage is 2" in message
        demo_api.delete_volume(first["id"])
    finally:
        api("PUT", f"/os-quota-sets/{demo}", {"quota_set": {"gigabytes": 1000}})


def test_projects_are_isolated(api: VolumeAPI, demo_api: VolumeAPI) -> None:
    mine = api.create_volume(size=1, name="admins")
    theirs = demo_api.create_volume(size=1, name="demos")
    try:
        for method, path, body in [("GET", f"/volumes/{mine['id']}", None),
                                   ("DELETE", f"/volumes/{mine['id']}", None),
                                   ("POST", f"/volumes/{mine['id']}/action", {"os-extend": {"new_size": 2}}),
                                   ("POST", "/attachments", {"attachment": {"volume_uuid": mine["id"],
                                                                            "instance_uuid": mine["id"]}}),
                                   ("POST", "/snapshots", {"snapshot": {"volume_id": mine["id"]}}),
                                   ("POST", "/volumes", {"volume": {"source_volid": mine["id"]}})]:
            assert fault(demo_api(method, path, body))[:2] == (404, "itemNotFound"), path
        assert [v["id"] for v in demo_api("GET", "/volumes?all_tenants=1")[1]["volumes"]] == [theirs["id"]]
        everyone = {v["id"] for v in api("GET", "/volumes?all_tenants=1")[1]["volumes"]}
        assert {mine["id"], theirs["id"]} <= everyone
        assert theirs["id"] not in {v["id"] for v in api("GET", "/volumes")[1]["volumes"]}
        assert api.wait("volume", mine["id"], "available")["status"] == "available"  # untouched
    finally:
        api.delete_volume(mine["id"])
        demo_api.delete_volume(theirs["id"])


def test_admin_only_actions_and_views(api: VolumeAPI, demo_api: VolumeAPI, cloud: Any) -> None:
    vol = demo_api.create_volume(size=1)
    try:
        assert "os-vol-host-attr:host" not in vol
        assert fault(demo_api("POST", f"/volumes/{vol['id']}/action", {"os-reset_status": {
            "status": "error"}}))[:2] == (403, "forbidden")
        assert fault(demo_api("GET", "/os-services"))[0] == 403
        assert fault(demo_api("GET", "/scheduler-stats/get_pools"))[0] == 403
        assert api("POST", f"/volumes/{vol['id']}/action", {"os-reset_status": {"status": "error"}})[0] == 202
        assert demo_api("GET", f"/volumes/{vol['id']}")[1]["volume"]["status"] == "error"
        assert fault(api("POST", f"/volumes/{vol['id']}/action", {"os-reset_status": {"status": "happy"}}))[0] \
            == 400
        api("POST", f"/volumes/{vol['id']}/action", {"os-reset_status": {"status": "available"}})
        services = api("GET", "/os-services", version="3.49")[1]["services"]
        backend = next(s for s in services if s["binary"] == "cinder-volume")
        assert backend["state"] == "up" and backend["status"] == "enabled" and backend["backend_state"] == "up"
        (pool,) = api("GET", "/scheduler-stats/get_pools?detail=true")[1]["pools"]
        caps = pool["capabilities"]
        assert caps["total_capacity_gb"] == cloud.settings.volume.capacity_gb
        assert caps["free_capacity_gb"] == caps["total_capacity_gb"] - caps["allocated_capacity_gb"]
        assert caps["allocated_capacity_gb"] >= 1 and caps["storage_protocol"] == "file"
        shown = api("GET", f"/capabilities/{backend['host']}")[1]
        assert shown["volume_backend_name"] == "file" and shown["storage_protocol"] == "file"
        assert fault(demo_api("GET", f"/capabilities/{backend['host']}"))[0] == 403
    finally:
        demo_api.delete_volume(vol["id"])


def test_snapshots_freeze_data_and_volumes_come_from_them(api: VolumeAPI, cloud: Any) -> None:
    vol = api.create_volume(size=1, name="origin")
    pattern_file(api, vol["id"], 0x11)
    code, body = api("POST", "/snapshots", {"snapshot": {"volume_id": vol["id"], "name": "snap",
                                                         "metadata": {"s": "1"}}})
    assert code == 202 and body["snapshot"]["status"] == "creating"
    snap = api.wait("snapshot", body["snapshot"]["id"], "available")
    assert snap["size"] == 1 and snap["metadata"] == {"s": "1"} and snap["volume_id"] == vol["id"]
    assert snap["os-extended-snapshot-attributes:progress"] == "100%"
    pattern_file(api, vol["id"], 0x22)  # the volume's file is now an overlay on the frozen one

    copy = api.create_volume(snapshot_id=snap["id"], name="copy")  # size comes from the snapshot
    assert copy["status"] == "available" and copy["size"] == 1 and copy["snapshot_id"] == snap["id"]
    assert read_bytes(volume_file(cloud, copy["id"]), "raw", MiB) == b"\x11" * MiB
    assert read_bytes(*current_file(api, vol["id"]), MiB) == b"\x22" * MiB

    status, _, message = fault(api("DELETE", f"/volumes/{vol['id']}"))
    assert status == 400 and "1 snapshot(s)" in message
    status, _, message = fault(api("POST", "/volumes", {"volume": {"snapshot_id": snap["id"], "size": 0}}))
    assert status == 400
    assert api("DELETE", f"/snapshots/{snap['id']}")[0] == 202
    api.wait("snapshot", snap["id"], "deleted")
    (left,) = volume_files(cloud, vol["id"])  # the frozen file went, its data merged into the volume's file
    assert str(left) == current_file(api, vol["id"])[0] and read_bytes(left, "qcow2", MiB) == b"\x22" * MiB

    older = api("POST", "/snapshots", {"snapshot": {"volume_id": vol["id"]}})[1]["snapshot"]
    api.wait("snapshot", older["id"], "available")
    code, body = api("POST", "/snapshots", {"snapshot": {"volume_id": vol["id"]}})
    api.wait("snapshot", body["snapshot"]["id"], "available")
    pattern_file(api, vol["id"], 0x33)
    revert = {"revert": {"snapshot_id": body["snapshot"]["id"]}}
    assert fault(api("POST", f"/volumes/{vol['id']}/action", revert, version="3.39"))[0] == 400
    status, _, message = fault(api("POST", f"/volumes/{vol['id']}/action", {"revert": {"snapshot_id": older["id"]}}))
    assert status == 400 and "not the latest snapshot" in message
    assert api("POST", f"/volumes/{vol['id']}/action", revert)[0] == 202
    api.wait("volume", vol["id"], "available")
    assert api.wait("snapshot", body["snapshot"]["id"], "available")
    assert read_bytes(*current_file(api, vol["id"]), MiB) == b"\x22" * MiB  # the write after it is gone
    assert api("DELETE", f"/volumes/{vol['id']}?cascade=true")[0] == 202
    api.wait("volume", vol["id"], "deleted")
    assert api("GET", f"/snapshots/{body['snapshot']['id']}")[0] == 404 and volume_files(cloud, vol["id"]) == []
    api.delete_volume(copy["id"])


def test_volume_from_image_is_a_clone_of_the_cached_base(api: VolumeAPI, admin: Any, cloud: Any) -> None:
    data = os.urandom(3 * MiB)
    image = admin.image.create_image(name="vol-image", disk_format="raw", container_format="bare", data=data)
    first = api.create_volume(size=1, imageRef=image.id, name="from-image")
    assert first["status"] == "available" and first["bootable"] == "true"
    assert first["volume_image_metadata"]["image_id"] == image.id
    assert first["volume_image_metadata"]["disk_format"] == "raw"
    base = cloud.settings.data_dir / "volumes" / "image-cache" / f"{image.id}.raw"
    cached = base.stat()
    info = qemu_info(volume_file(cloud, first["id"]))
    assert info["format"] == "qcow2" and info["full-backing-filename"] == str(base)
    assert read_bytes(volume_file(cloud, first["id"]), "qcow2", 3 * MiB) == data

    second = api.create_volume(size=2, imageRef=image.id)
    assert base.stat().st_ino == cached.st_ino and base.stat().st_mtime == cached.st_mtime  # fetched once
    assert read_bytes(volume_file(cloud, second["id"]), "qcow2", 3 * MiB) == data
    clone = api.create_volume(source_volid=second["id"])
    assert clone["size"] == 2 and clone["bootable"] == "true"
    assert qemu_info(volume_file(cloud, clone["id"]))["full-backing-filename"] == str(base)  # only the delta
    assert read_bytes(volume_file(cloud, clone["id"]), "qcow2", 3 * MiB) == data
    for vol in (first, second, clone):
        api.delete_volume(vol["id"])
    assert base.exists()  # the cache stays for the next volume of that image

    kernel = admin.image.create_image(name="kernel", disk_format="aki", container_format="aki", data=b"k" * 512)
    status, _, message = fault(api("POST", "/volumes", {"volume": {"size": 1, "imageRef": kernel.id}}))
    assert status == 400 and "disk format aki" in message
    big = admin.image.create_image(name="big", disk_format="qcow2", container_format="bare",
                                   data=qcow2_image(2 * GiB, length=64 * 1024))  # 2 GiB virtual, 64 KiB data
    status, _, message = fault(api("POST", "/volumes", {"volume": {"size": 1, "imageRef": big.id}}))
    assert status == 400 and "Size of specified image 2GB is larger than volume size 1GB" in message
    for img in (image, kernel, big):
        admin.image.delete_image(img)


def test_an_image_that_cannot_be_read_leaves_an_error_and_no_file(api: VolumeAPI, admin: Any, cloud: Any) -> None:
    broken = admin.image.create_image(name="broken", disk_format="qcow2", container_format="bare",
                                      data=qcow2_image(GiB, length=64 * 1024))
    vol = api.create_volume(size=1, imageRef=broken.id)
    assert vol["status"] == "error"
    (message,) = api("GET", f"/messages?resource_uuid={vol['id']}")[1]["messages"]
    assert message["user_message"].startswith("copy image to volume: qemu-img info failed")
    cache = cloud.settings.data_dir / "volumes" / "image-cache"
    assert volume_files(cloud, vol["id"]) == [] and not list(cache.glob(f"*{broken.id}*"))
    api.delete_volume(vol["id"])
    admin.image.delete_image(broken)


def test_attachments_api_and_the_legacy_actions(api: VolumeAPI, cloud: Any) -> None:
    vol = api.create_volume(size=1)
    server = "0bd0b5bd-07b8-4fd6-8e05-5d5e9f1c1a61"
    assert fault(api("POST", "/attachments", {"attachment": {"volume_uuid": vol["id"]}}, version="3.26"))[0] \
        == 404
    code, body = api("POST", "/attachments", {"attachment": {"volume_uuid": vol["id"], "instance_uuid": server}})
    assert code == 200 and body["attachment"]["status"] == "reserved" and body["attachment"]["connection_info"] == {}
    attachment_id = body["attachment"]["id"]
    assert api("GET", f"/volumes/{vol['id']}")[1]["volume"]["status"] == "reserved"
    status, _, message = fault(api("POST", "/attachments", {"attachment": {
        "volume_uuid": vol["id"], "instance_uuid": "1bd0b5bd-07b8-4fd6-8e05-5d5e9f1c1a61"}}))
    assert status == 400 and "status must be available to reserve" in message
    assert fault(api("POST", f"/attachments/{attachment_id}/action", {"os-complete": None}))[0] == 400

    code, body = api("PUT", f"/attachments/{attachment_id}", {"attachment": {"connector": {
        "host": "host1", "mountpoint": "/dev/vdb"}}})
    assert code == 200 and body["attachment"]["status"] == "attaching"
    info = body["attachment"]["connection_info"]
    assert info["driver_volume_type"] == "file"
    assert info["data"]["path"] == str(volume_file(cloud, vol["id"])) and info["data"]["format"] == "raw"
    assert api("POST", f"/attachments/{attachment_id}/action", {"os-complete": None})[0] == 204
    shown = api("GET", f"/volumes/{vol['id']}")[1]["volume"]
    assert shown["status"] == "in-use"
    (attached,) = shown["attachments"]
    assert attached["server_id"] == server and attached["device"] == "/dev/vdb"
    assert attached["attachment_id"] == attachment_id and attached["host_name"] == "host1"

    assert fault(api("DELETE", f"/volumes/{vol['id']}"))[0] == 400
    status, _, message = fault(api("POST", f"/volumes/{vol['id']}/action", {"os-extend": {"new_size": 2}},
                                   version="3.41"))  # attached volumes are extended from 3.42 on
    assert status == 400 and "in-use" in message
    assert fault(api("POST", "/snapshots", {"snapshot": {"volume_id": vol["id"], "force": True}}))[0] == 400
    code, body = api("DELETE", f"/attachments/{attachment_id}")
    assert code == 200 and body == {"attachments": []}
    assert api("GET", f"/volumes/{vol['id']}")[1]["volume"]["status"] == "available"

    def action(name: str, args: Any = None) -> int:
        return api("POST", f"/volumes/{vol['id']}/action", {name: args or {}})[0]

    def status_now() -> str:
        return api("GET", f"/volumes/{vol['id']}")[1]["volume"]["status"]

    assert action("os-reserve") == 202 and status_now() == "attaching"
    assert action("os-unreserve") == 202 and status_now() == "available"
    assert action("os-reserve") == 202
    assert action("os-attach", {"instance_uuid": server, "mountpoint": "/dev/vdc"}) == 202
    assert status_now() == "in-use"
    assert action("os-begin_detaching") == 202 and status_now() == "detaching"
    assert action("os-roll_detaching") == 202 and status_now() == "in-use"
    assert action("os-detach") == 202 and status_now() == "available"
    code, body = api("POST", f"/volumes/{vol['id']}/action", {"os-initialize_connection": {"connector": {
        "host": "host1"}}})
    assert code == 200 and body["connection_info"]["data"]["path"] == str(volume_file(cloud, vol["id"]))
    assert fault(api("POST", f"/volumes/{vol['id']}/action", {"os-frobnicate": {}}))[0] == 400
    api.delete_volume(vol["id"])


def test_multiattach_needs_a_multiattach_type(api: VolumeAPI, prefix: str) -> None:
    code, body = api("POST", "/types", {"volume_type": {"name": f"{prefix}-multi",
                                                        "extra_specs": {"multiattach": "<is> True"}}})
    assert code == 200
    type_id = body["volume_type"]["id"]
    vol = api.create_volume(size=1, volume_type=f"{prefix}-multi")
    assert vol["multiattach"] is True and vol["volume_type"] == f"{prefix}-multi"
    attachments = []
    for server in ("0bd0b5bd-07b8-4fd6-8e05-5d5e9f1c1a61", "1bd0b5bd-07b8-4fd6-8e05-5d5e9f1c1a61"):
        code, body = api("POST", "/attachments", {"attachment": {"volume_uuid": vol["id"], "instance_uuid": server,
                                                                 "connector": {"host": "h"}}})
        assert code == 200, body
        attachments.append(body["attachment"]["id"])
        assert api("POST", f"/attachments/{attachments[-1]}/action", {"os-complete": None})[0] == 204
    shown = api("GET", f"/volumes/{vol['id']}")[1]["volume"]
    assert shown["status"] == "in-use" and len(shown["attachments"]) == 2
    assert fault(api("DELETE", f"/types/{type_id}"))[0] == 400  # in use
    api("DELETE", f"/attachments/{attachments[0]}")
    assert api("GET", f"/volumes/{vol['id']}")[1]["volume"]["status"] == "in-use"
    api("DELETE", f"/attachments/{attachments[1]}")
    assert api("GET", f"/volumes/{vol['id']}")[1]["volume"]["status"] == "available"
    api.delete_volume(vol["id"])
    assert api("DELETE", f"/types/{type_id}")[0] == 202


def test_types_extra_specs_and_private_access(api: VolumeAPI, demo_api: VolumeAPI, prefix: str) -> None:
    name = f"{prefix}-private"
    assert fault(demo_api("POST", "/types", {"volume_type": {"name": name}}))[:2] == (403, "forbidden")
    code, body = api("POST", "/types", {"volume_type": {"name": name, "os-volume-type-access:is_public": False,
                                                        "extra_specs": {"secret": "x", "multiattach": "False"}}})
    assert code == 200 and body["volume_type"]["is_public"] is False
    type_id = body["volume_type"]["id"]
    assert fault(api("POST", "/types", {"volume_type": {"name": name}}))[:2] == (409, "conflictingRequest")
    assert fault(demo_api("GET", f"/types/{type_id}"))[0] == 404
    assert name not in {t["name"] for t in demo_api("GET", "/types")[1]["volume_types"]}
    assert fault(demo_api("POST", "/volumes", {"volume": {"size": 1, "volume_type": name}}))[0] == 404
    assert api("POST", f"/types/{type_id}/action", {"addProjectAccess": {"project": demo_api.project_id}})[0] == 202
    assert api("GET", f"/types/{type_id}/os-volume-type-access")[1]["volume_type_access"] == [
        {"volume_type_id": type_id, "project_id": demo_api.project_id}]
    shown = demo_api("GET", f"/types/{type_id}")[1]["volume_type"]
    assert shown["extra_specs"] == {"multiattach": "False"}  # users see only the user-visible specs
    assert api("GET", f"/types/{type_id}")[1]["volume_type"]["extra_specs"] == {"secret": "x",
                                                                                "multiattach": "False"}
    assert api("PUT", f"/types/{type_id}/extra_specs/secret", {"secret": "y"})[1] == {"secret": "y"}
    assert api("DELETE", f"/types/{type_id}/extra_specs/secret")[0] == 202
    assert api("GET", f"/types/{type_id}/extra_specs")[1] == {"extra_specs": {"multiattach": "False"}}
    default = api("GET", "/types/default")[1]["volume_type"]
    assert default["name"] == "__DEFAULT__"
    assert fault(api("DELETE", f"/types/{default['id']}"))[0] == 400
    assert api("DELETE", f"/types/{type_id}")[0] == 202


def test_lists_filter_sort_and_page(api: VolumeAPI, prefix: str) -> None:
    vols = [api.create_volume(size=1, name=f"{prefix}-{i}") for i in range(3)]
    try:
        code, body = api("GET", f"/volumes/detail?name~={prefix}&sort=name:asc&limit=2&with_count=true")
        assert code == 200 and [v["name"] for v in body["volumes"]] == [f"{prefix}-0", f"{prefix}-1"]
        assert body["count"] == 3
        (link,) = body["volumes_links"]
        assert link["rel"] == "next" and f"marker={vols[1]['id']}" in link["href"]
        code, body = api("GET", f"/volumes?name~={prefix}&sort=name:asc&limit=2&marker={vols[1]['id']}")
        assert [v["name"] for v in body["volumes"]] == [f"{prefix}-2"] and "volumes_links" not in body
        summary = api("GET", "/volumes/summary")[1]["volume-summary"]
        assert summary["total_count"] >= 3 and summary["total_size"] >= 3
        assert fault(api("GET", f"/volumes?name~={prefix}", version="3.33"))[0] == 400  # like filters: 3.34
    finally:
        for vol in vols:
            api.delete_volume(vol["id"])


def test_a_private_image_of_the_project_becomes_its_volume(demo_api: VolumeAPI, demo: Any, cloud: Any) -> None:
    data = os.urandom(MiB)
    image = demo.image.create_image(name="demo-private", disk_format="raw", container_format="bare", data=data,
                                    visibility="private")
    vol = demo_api.create_volume(size=1, imageRef=image.id)  # the volume service fetches it as its own user
    assert vol["status"] == "available" and read_bytes(volume_file(cloud, vol["id"]), "qcow2", MiB) == data
    demo_api.delete_volume(vol["id"])
    demo.image.delete_image(image)


def test_a_project_default_type(api: VolumeAPI, demo_api: VolumeAPI, prefix: str) -> None:
    demo = demo_api.project_id
    code, body = api("POST", "/types", {"volume_type": {"name": f"{prefix}-gold"}})
    type_id = body["volume_type"]["id"]
    setting = {"default_type": {"volume_type": f"{prefix}-gold"}}
    assert fault(api("PUT", f"/default-types/{demo}", setting, version="3.61"))[0] == 404
    assert fault(demo_api("PUT", f"/default-types/{demo}", setting))[:2] == (403, "forbidden")
    code, body = api("PUT", f"/default-types/{demo}", setting)
    assert code == 200 and body["default_type"] == {"project_id": demo, "volume_type_id": type_id}
    assert demo_api("GET", "/types/default")[1]["volume_type"]["name"] == f"{prefix}-gold"
    assert api("GET", "/types/default")[1]["volume_type"]["name"] == "__DEFAULT__"  # other projects keep theirs
    vol = demo_api.create_volume(size=1)
    assert vol["volume_type"] == f"{prefix}-gold"
    demo_api.delete_volume(vol["id"])
    assert fault(api("DELETE", f"/types/{type_id}"))[0] == 400
    assert {"project_id": demo, "volume_type_id": type_id} in api("GET", "/default-types")[1]["default_types"]
    assert api("DELETE", f"/default-types/{demo}")[0] == 204
    assert fault(api("GET", f"/default-types/{demo}"))[:2] == (404, "itemNotFound")
    assert api("DELETE", f"/types/{type_id}")[0] == 202


def test_transfer_a_volume_with_its_snapshot_to_another_project(api: VolumeAPI, demo_api: VolumeAPI,
                                                                 cloud: Any) -> None:
    vol = api.create_volume(size=1, name="gift")
    code, body = api("POST", "/snapshots", {"snapshot": {"volume_id": vol["id"]}})
    snap = api.wait("snapshot", body["snapshot"]["id"], "available")
    assert fault(api("POST", "/os-volume-transfer", {"transfer": {"volume_id": vol["id"]}}, version="3.54"))[0] \
        == 400  # snapshots travel from 3.55
    code, body = api("POST", "/volume-transfers", {"transfer": {"volume_id": vol["id"], "name": "t"}})
    assert code == 202 and body["transfer"]["auth_key"] and body["transfer"]["source_project_id"] == api.project_id
    transfer, key = body["transfer"]["id"], body["transfer"]["auth_key"]
    assert api("GET", f"/volumes/{vol['id']}")[1]["volume"]["status"] == "awaiting-transfer"
    assert "auth_key" not in api("GET", f"/volume-transfers/{transfer}")[1]["transfer"]
    assert fault(api("DELETE", f"/volumes/{vol['id']}"))[0] == 400
    assert fault(demo_api("GET", f"/volume-transfers/{transfer}"))[0] == 404  # not theirs to list
    status, _, message = fault(demo_api("POST", f"/volume-transfers/{transfer}/accept",
                                        {"accept": {"auth_key": "guess"}}))
    assert status == 400 and "invalid auth key" in message
    code, body = demo_api("POST", f"/volume-transfers/{transfer}/accept", {"accept": {"auth_key": key}})
    assert code == 202 and body["transfer"]["volume_id"] == vol["id"]
    assert vol["id"] not in {v["id"] for v in api("GET", "/volumes")[1]["volumes"]}
    mine = demo_api("GET", f"/volumes/{vol['id']}")[1]["volume"]
    assert mine["status"] == "available" and mine["os-vol-tenant-attr:tenant_id"] == demo_api.project_id
    assert demo_api("GET", f"/snapshots/{snap['id']}")[0] == 200
    assert api("GET", "/volume-transfers")[1] == {"transfers": []}
    assert demo_api("DELETE", f"/volumes/{vol['id']}?cascade=true")[0] == 202
    demo_api.wait("volume", vol["id"], "deleted")
    assert volume_files(cloud, vol["id"]) == []


def test_a_cancelled_transfer_gives_the_volume_back(api: VolumeAPI) -> None:
    vol = api.create_volume(size=1)
    code, body = api("POST", "/os-volume-transfer", {"transfer": {"volume_id": vol["id"]}}, version="3.0")
    assert code == 202 and "no_snapshots" not in body["transfer"]  # the 3.0 view
    assert [t["id"] for t in api("GET", "/os-volume-transfer/detail")[1]["transfers"]] == [body["transfer"]["id"]]
    assert api("DELETE", f"/os-volume-transfer/{body['transfer']['id']}")[0] == 202
    assert api("GET", f"/volumes/{vol['id']}")[1]["volume"]["status"] == "available"
    api.delete_volume(vol["id"])


def test_upload_a_volume_to_a_new_image(api: VolumeAPI, admin: Any, cloud: Any) -> None:
    data = os.urandom(MiB)
    source = admin.image.create_image(name="upload-source", disk_format="raw", container_format="bare", data=data,
                                      hw_disk_bus="virtio")
    vol = api.create_volume(size=1, imageRef=source.id)
    pattern_file(api, vol["id"], 0x44)  # the guest changed the first MiB
    code, body = api("POST", f"/volumes/{vol['id']}/action", {"os-volume_upload_image": {
        "image_name": "from-volume", "disk_format": "qcow2", "visibility": "private"}})
    assert code == 202, body
    uploaded = body["os-volume_upload_image"]
    assert uploaded["status"] == "uploading" and uploaded["disk_format"] == "qcow2" and uploaded["size"] == 1
    assert uploaded["volume_type"]["name"] == "__DEFAULT__" and uploaded["visibility"] == "private"
    api.wait("volume", vol["id"], "available")
    image = admin.image.get_image(uploaded["image_id"])
    assert image.status == "active" and image.disk_format == "qcow2" and image.hw_disk_bus == "virtio"
    copy = api.create_volume(size=1, imageRef=image.id)  # the image makes volumes like any other
    assert read_bytes(volume_file(cloud, copy["id"]), "qcow2", MiB) == b"\x44" * MiB

    for args, expected in [({"image_name": "x", "disk_format": "iso"}, "disk-format"),
                           ({"image_name": "x", "container_format": "ovf"}, "container-format"),
                           ({"disk_format": "raw"}, "image_name")]:
        status, _, message = fault(api("POST", f"/volumes/{vol['id']}/action", {"os-volume_upload_image": args}))
        assert status == 400 and expected in message
    assert api("GET", f"/volumes/{vol['id']}")[1]["volume"]["status"] == "available"
    for volume_id in (vol["id"], copy["id"]):
        api.delete_volume(volume_id)
    admin.image.delete_image(image)
    admin.image.delete_image(source)


def test_a_failed_upload_deletes_the_image_and_frees_the_volume(api: VolumeAPI, admin: Any, cloud: Any) -> None:
    vol = api.create_volume(size=1)
    pattern_file(api, vol["id"], 0x55)
    settings = cloud.settings.image  # the image service's own settings object (same process)
    largest = settings.max_image_size
    settings.max_image_size = 4096  # the image service refuses the data: the upload fails after the image exists
    try:
        code, body = api("POST", f"/volumes/{vol['id']}/action", {"os-volume_upload_image": {
            "image_name": "too-big", "disk_format": "raw"}})
        assert code == 202
        api.wait("volume", vol["id"], "available")
    finally:
        settings.max_image_size = largest
    image_id = body["os-volume_upload_image"]["image_id"]
    assert admin.image.find_image(image_id) is None
    (message,) = api("GET", f"/messages?resource_uuid={vol['id']}")[1]["messages"]
    assert message["user_message"].startswith("copy volume to image:") and "largest allowed image" in \
        message["user_message"], message
    assert not list((cloud.settings.data_dir / "volumes").glob(".export-*"))
    api.delete_volume(vol["id"])


def test_hosts_extensions_snapshot_status_readonly_and_missing_ids(api: VolumeAPI, demo_api: VolumeAPI,
                                                                   prefix: str) -> None:
    vol = api.create_volume(size=1, name=f"{prefix}-h")
    snap_id = None
    try:
        hosts = api("GET", "/os-hosts")[1]["hosts"]
        backends = [h["host_name"] for h in hosts if h["service"] == "cinder-volume"]
        assert backends and {h["service"] for h in hosts} >= {"cinder-scheduler", "cinder-volume"}
        rows = [r["resource"] for r in api("GET", f"/os-hosts/{backends[0]}")[1]["host"]]
        assert rows[0]["project"] == "(total)" and int(rows[0]["volume_count"]) >= 1
        assert any(r["project"] == api.project_id for r in rows[1:])
        assert fault(api("GET", "/os-hosts/nowhere@none"))[0] == 404
        machine = backends[0].split("@")[0]  # os-services: a host filter names the host's backends too
        assert {s["binary"] for s in api("GET", f"/os-services?host={machine}")[1]["services"]} >= {"cinder-volume"}
        assert fault(demo_api("GET", "/os-hosts"))[0] == 403
        names = {e["name"] for e in demo_api("GET", "/extensions")[1]["extensions"]}
        assert {"Hosts", "Services", "VolumeActions"} <= names

        # the readonly flag shows among the metadata, as Cinder's visible admin metadata
        assert api("POST", f"/volumes/{vol['id']}/action", {"os-update_readonly_flag": {"readonly": True}})[0] == 202
        assert api("GET", f"/volumes/{vol['id']}")[1]["volume"]["metadata"] == {"readonly": "True"}

        # os-update_snapshot_status: creating -> error with its progress; other transitions are 400
        code, body = api("POST", "/snapshots", {"snapshot": {"volume_id": vol["id"], "name": f"{prefix}-s"}})
        assert code == 202, body
        snap_id = body["snapshot"]["id"]
        api.wait("snapshot", snap_id, "available")
        update = {"os-update_snapshot_status": {"status": "error", "progress": "80%"}}
        assert fault(api("POST", f"/snapshots/{snap_id}/action", update))[0] == 400  # available -> error
        assert api("POST", f"/snapshots/{snap_id}/action", {"os-reset_status": {"status": "creating"}})[0] == 202
        assert fault(demo_api("POST", f"/snapshots/{snap_id}/action", update))[0] == 404  # not demo's
        assert api("POST", f"/snapshots/{snap_id}/action", update)[0] == 202
        shown = api("GET", f"/snapshots/{snap_id}")[1]["snapshot"]
        assert (shown["status"], shown["os-extended-snapshot-attributes:progress"]) == ("error", "80%")

        assert fault(api("POST", "/snapshots", {"snapshot": {"volume_id": None, "display_name": "x"}}))[0] == 404
        # a path that leaves the id out names nothing (Cinder: 404), never the list
        for method in ("GET", "PUT", "DELETE"):
            assert fault(api(method, "/volumes/", {"volume": {}} if method == "PUT" else None))[0] == 404
        # a full page links to the next one, even when that one is empty
        page = api("GET", f"/volumes?name={prefix}-h&limit=1")[1]
        assert [v["id"] for v in page["volumes"]] == [vol["id"]] and page["volumes_links"][0]["rel"] == "next"
        assert api("GET", f"/volumes?name={prefix}-h&limit=2")[1].get("volumes_links") is None
        # a detach of a volume with nothing attached makes it available (Cinder's manager)
        assert api("POST", f"/volumes/{vol['id']}/action", {"os-reset_status": {"status": "error"}})[0] == 202
        assert api("POST", f"/volumes/{vol['id']}/action", {"os-detach": {}})[0] == 202
        assert api("GET", f"/volumes/{vol['id']}")[1]["volume"]["status"] == "available"
    finally:
        if snap_id:
            api("POST", f"/snapshots/{snap_id}/action", {"os-force_delete": {}})
            api.wait("snapshot", snap_id, "deleted")
        api("POST", f"/volumes/{vol['id']}/action", {"os-update_readonly_flag": {"readonly": False}})
        api.delete_volume(vol["id"])


def test_qos_specs_and_their_volume_types(api: VolumeAPI, demo_api: VolumeAPI, prefix: str) -> None:
    code, body = api("POST", "/qos-specs", {"qos_specs": {"name": f"{prefix}-gold", "consumer": "front-end",
                                                          "read_iops_sec": "2000"}})
    assert code == 200, body
    qos = body["qos_specs"]
    assert (qos["consumer"], qos["specs"]) == ("front-end", {"read_iops_sec": "2000"}) and body["links"]
    assert fault(api("POST", "/qos-specs", {"qos_specs": {"name": f"{prefix}-gold"}}))[0] == 409
    assert fault(api("POST", "/qos-specs", {"qos_specs": {"name": "x", "consumer": "sideways"}}))[0] == 400
    assert fault(demo_api("GET", "/qos-specs"))[0] == 403
    vtype = api("POST", "/types", {"volume_type": {"name": f"{prefix}-qtype"}})[1]["volume_type"]
    try:
        assert api("PUT", f"/qos-specs/{qos['id']}", {"qos_specs": {"write_iops_sec": 500}})[1] == {
            "qos_specs": {"write_iops_sec": "500"}}
        assert api("PUT", f"/qos-specs/{qos['id']}/delete_keys", {"keys": ["read_iops_sec"]})[0] == 202
        assert fault(api("PUT", f"/qos-specs/{qos['id']}/delete_keys", {"keys": ["nothing"]}))[0] == 404
        assert api("GET", f"/qos-specs/{qos['id']}")[1]["qos_specs"]["specs"] == {"write_iops_sec": "500"}
        assert api("GET", f"/qos-specs/{qos['id']}/associate?vol_type_id={vtype['id']}")[0] == 202
        assert api("GET", f"/qos-specs/{qos['id']}/associations")[1]["qos_associations"] == [
            {"association_type": "volume_type", "name": vtype["name"], "id": vtype["id"]}]
        assert api("GET", f"/types/{vtype['id']}")[1]["volume_type"]["qos_specs_id"] == qos["id"]
        assert fault(api("DELETE", f"/qos-specs/{qos['id']}"))[0] == 400  # still associated
        assert api("GET", f"/qos-specs/{qos['id']}/disassociate_all")[0] == 202
        assert api("GET", f"/types/{vtype['id']}")[1]["volume_type"]["qos_specs_id"] is None

        # encryption of a type: kept and shown; no key manager, so no volume of the type can be made
        spec = {"provider": "luks", "cipher": "aes-xts-plain64", "key_size": 256, "control_location": "front-end"}
        enc = api("POST", f"/types/{vtype['id']}/encryption", {"encryption": spec})[1]["encryption"]
        assert {k: enc[k] for k in spec} == spec
        assert fault(api("POST", f"/types/{vtype['id']}/encryption", {"encryption": spec}))[0] == 400
        assert api("GET", f"/types/{vtype['id']}/encryption/cipher")[1] == {"cipher": "aes-xts-plain64"}
        assert api("PUT", f"/types/{vtype['id']}/encryption/{enc['encryption_id']}",
                   {"encryption": {"key_size": 128}})[0] == 200
        assert api("GET", f"/types/{vtype['id']}/encryption")[1]["key_size"] == 128
        status, _, message = fault(api("POST", "/volumes", {"volume": {"size": 1, "volume_type": vtype["id"]}}))
        assert status == 400 and "key manager" in message
        assert api("DELETE", f"/types/{vtype['id']}/encryption/{enc['encryption_id']}")[0] == 202
        assert api("GET", f"/types/{vtype['id']}/encryption")[1] == {}
    finally:
        api("DELETE", f"/qos-specs/{qos['id']}?force=true")
        api("DELETE", f"/types/{vtype['id']}")
    assert fault(api("GET", f"/qos-specs/{qos['id']}"))[0] == 404


def test_default_quota_class_and_per_type_quotas(api: VolumeAPI, demo_api: VolumeAPI, prefix: str) -> None:
    demo = demo_api.project_id
    vtype = api("POST", "/types", {"volume_type": {"name": f"{prefix}-t"}})[1]["volume_type"]
    before = api("GET", "/os-quota-class-sets/default")[1]["quota_class_set"]
    try:
        assert before["id"] == "default" and before[f"volumes_{prefix}-t"] == -1 and "backups" in before
        assert fault(demo_api("GET", "/os-quota-class-sets/default"))[0] == 403
        code, body = api("PUT", "/os-quota-class-sets/default",
                         {"quota_class_set": {"snapshots": before["snapshots"] + 1, f"volumes_{prefix}-t": 1}})
        assert code == 200 and body["quota_class_set"][f"volumes_{prefix}-t"] == 1
        assert fault(api("PUT", "/os-quota-class-sets/default", {"quota_class_set": {"colour": 1}}))[0] == 400
        # a project without its own limits gets the default class's
        defaults = api("GET", f"/os-quota-sets/{demo}/defaults")[1]["quota_set"]
        assert defaults["snapshots"] == before["snapshots"] + 1 and defaults[f"volumes_{prefix}-t"] == 1
        first = demo_api.create_volume(size=1, volume_type=vtype["name"])
        status, name, message = fault(demo_api("POST", "/volumes", {"volume": {"size": 1,
                                                                              "volume_type": vtype["name"]}}))
        assert (status, name) == (413, "overLimit") and f"volumes_{prefix}-t" in message
        usage = demo_api("GET", f"/os-quota-sets/{demo}?usage=true")[1]["quota_set"]
        assert usage[f"volumes_{prefix}-t"]["in_use"] == 1 and usage[f"gigabytes_{prefix}-t"]["in_use"] == 1
        demo_api.delete_volume(first["id"])
    finally:
        api("PUT", "/os-quota-class-sets/default", {"quota_class_set": {"snapshots": before["snapshots"],
                                                                        f"volumes_{prefix}-t": -1}})
        api("DELETE", f"/types/{vtype['id']}")
