"""Image data through the API: upload checks, cut connections, format refusals, Range downloads, the import
flow and the ImageClient the compute service uses."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import time
from pathlib import Path

import pytest
from image_helpers import qcow2_image, vmdk_descriptor

from pocketstack.common.clients.image import ImageClient
from pocketstack.common.errors import Conflict


def _store_files(cloud, image_id: str) -> list[Path]:
    root = cloud.settings.data_dir / "images"
    return [p for p in root.rglob("*") if p.is_file() and (image_id in p.name or p.name.startswith(".partial-"))]


def test_upload_to_active_image_is_409(raw, prefix) -> None:
    image = raw.create(name=f"{prefix}-a", disk_format="raw", container_format="bare")
    assert raw.upload(image["id"], b"first").status_code == 204
    resp = raw.upload(image["id"], b"second")
    assert resp.status_code == 409
    assert "active" in resp.text
    assert raw("GET", f"/v2/images/{image['id']}/file").content == b"first"


def test_upload_with_wrong_content_type_is_415(raw, prefix) -> None:
    image = raw.create(name=f"{prefix}-ct", disk_format="raw", container_format="bare")
    resp = raw.upload(image["id"], b"data", content_type="application/json")
    assert resp.status_code == 415
    assert raw("GET", f"/v2/images/{image['id']}").json()["status"] == "queued"
    resp = raw("PATCH", f"/v2/images/{image['id']}", json=[{"op": "add", "path": "/x", "value": "y"}])
    assert resp.status_code == 415  # a patch must say it is a json-patch


def test_invalid_formats_are_400(raw, cloud, prefix) -> None:
    resp = raw("POST", "/v2/images", json={"name": f"{prefix}-bad", "disk_format": "floppy"})
    assert resp.status_code == 400
    assert "disk_format" in resp.text
    resp = raw("POST", "/v2/images", json={"name": f"{prefix}-bad", "container_format": "zip"})
    assert resp.status_code == 400
    proc = cloud.cli("image", "create", "--disk-format", "floppy", f"{prefix}-bad", check=False)
    assert proc.returncode != 0


def test_upload_needs_formats_set(raw, prefix) -> None:
    image = raw.create(name=f"{prefix}-nofmt")
    resp = raw.upload(image["id"], b"data")
    assert resp.status_code == 400
    assert "disk_format" in resp.text


def test_content_not_matching_disk_format_is_refused(raw, cloud, prefix) -> None:
    image = raw.create(name=f"{prefix}-fake", disk_format="qcow2", container_format="bare")
    resp = raw.upload(image["id"], os.urandom(200_000))
    assert resp.status_code == 400
    assert "not a qcow2 image" in resp.text
    assert raw("GET", f"/v2/images/{image['id']}").json()["status"] == "queued"
    assert _store_files(cloud, image["id"]) == []
    # the image stays usable: the right data can be uploaded afterwards
    assert raw.upload(image["id"], qcow2_image()).status_code == 204

    image = raw.create(name=f"{prefix}-disguised", disk_format="raw", container_format="bare")
    resp = raw.upload(image["id"], qcow2_image())
    assert resp.status_code == 400
    assert "declared raw" in resp.text


def test_qcow2_with_backing_file_is_refused(raw, cloud, prefix, tmp_path: Path) -> None:
    data = qcow2_image(backing="base.raw")
    image = raw.create(name=f"{prefix}-backing", disk_format="qcow2", container_format="bare")
    resp = raw.upload(image["id"], data)
    assert resp.status_code == 400
    assert "backing file" in resp.text
    assert raw("GET", f"/v2/images/{image['id']}").json()["status"] == "queued"
    assert _store_files(cloud, image["id"]) == []

    # the same through the CLI: the SDK deletes the image whose upload failed
    path = tmp_path / "overlay.qcow2"
    path.write_bytes(qcow2_image(backing="/etc/passwd", version=2))
    proc = cloud.cli("image", "create", "--file", str(path), "--disk-format", "qcow2", "--container-format",
                     "bare", f"{prefix}-cli-backing", check=False)
    assert proc.returncode != 0
    assert "backing file" in proc.stderr
    assert cloud.cli("image", "list", "--name", f"{prefix}-cli-backing", "-f", "json") == []

    image = raw.create(name=f"{prefix}-datafile", disk_format="qcow2", container_format="bare")
    resp = raw.upload(image["id"], qcow2_image(data_file=True))
    assert resp.status_code == 400
    assert "external data file" in resp.text


def test_vmdk_with_external_extent_is_refused(raw, prefix) -> None:
    image = raw.create(name=f"{prefix}-vmdk", disk_format="vmdk", container_format="bare")
    resp = raw.upload(image["id"], vmdk_descriptor("monolithicFlat"))
    assert resp.status_code == 400
    assert "monolithicFlat" in resp.text


def test_cut_connection_leaves_no_data_and_image_not_active(raw, cloud, prefix) -> None:
    image = raw.create(name=f"{prefix}-cut", disk_format="raw", container_format="bare")
    total, sent = 20 * 1024 * 1024, 6 * 1024 * 1024
    head = (f"PUT /v2/images/{image['id']}/file HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"X-Auth-Token: {raw.token}\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {total}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", cloud.settings.port("image"))) as sock:
        sock.sendall(head)
        chunk = os.urandom(1024 * 1024)
        for _ in range(sent // len(chunk)):
            sock.sendall(chunk)
        deadline = time.monotonic() + 10
        while raw("GET", f"/v2/images/{image['id']}").json()["status"] != "saving":
            assert time.monotonic() < deadline, "the upload never started"
            time.sleep(0.02)
    body = raw.wait_status(image["id"], "queued")
    assert body["status"] == "queued"
    assert body["size"] is None and body["checksum"] is None
    assert _store_files(cloud, image["id"]) == []
    assert raw("GET", f"/v2/images/{image['id']}/file").status_code == 204
    # a complete upload afterwards works
    assert raw.upload(image["id"], b"complete").status_code == 204


def test_declared_size_and_checksum_must_match(raw, cloud, prefix) -> None:
    image = raw.create(name=f"{prefix}-size", disk_format="raw", container_format="bare")
    resp = raw.upload(image["id"], b"x" * 1000, **{"X-OpenStack-Image-Size": "999"})
    assert resp.status_code == 400
    resp = raw.upload(image["id"], b"x" * 1000, **{"X-OpenStack-Image-Size": "2000"})
    assert resp.status_code == 400
    assert raw("GET", f"/v2/images/{image['id']}").json()["status"] == "queued"

    image = raw.create(name=f"{prefix}-md5", disk_format="raw", container_format="bare",
                       **{"owner_specified.openstack.md5": hashlib.md5(b"expected").hexdigest()})
    resp = raw.upload(image["id"], b"different")
    assert resp.status_code == 400
    assert "MD5" in resp.text
    assert _store_files(cloud, image["id"]) == []
    assert raw.upload(image["id"], b"expected").status_code == 204


def test_download_full_and_ranges(raw, prefix) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    image = raw.create(name=f"{prefix}-range", disk_format="raw", container_format="bare")
    assert raw.upload(image["id"], data).status_code == 204
    body = raw("GET", f"/v2/images/{image['id']}").json()
    assert body["status"] == "active" and body["size"] == len(data) and body["virtual_size"] == len(data)
    assert body["checksum"] == hashlib.md5(data).hexdigest()
    assert body["os_hash_algo"] == "sha512" and body["os_hash_value"] == hashlib.sha512(data).hexdigest()

    full = raw("GET", f"/v2/images/{image['id']}/file")
    assert full.status_code == 200 and full.content == data
    assert full.headers["Content-MD5"] == body["checksum"]
    assert full.headers["Content-Type"] == "application/octet-stream"

    part = raw("GET", f"/v2/images/{image['id']}/file", headers={"Range": "bytes=100-1123"})
    assert part.status_code == 206 and part.content == data[100:1124]
    assert part.headers["Content-Range"] == f"bytes 100-1123/{len(data)}"
    suffix = raw("GET", f"/v2/images/{image['id']}/file", headers={"Range": "bytes=-10"})
    assert suffix.status_code == 206 and suffix.content == data[-10:]
    tail = raw("GET", f"/v2/images/{image['id']}/file", headers={"Range": f"bytes={len(data) - 5}-"})
    assert tail.content == data[-5:]
    bad = raw("GET", f"/v2/images/{image['id']}/file", headers={"Range": f"bytes={len(data)}-"})
    assert bad.status_code == 416
    assert bad.headers["Content-Range"] == f"bytes */{len(data)}"


def test_download_of_image_without_data_is_204(raw, prefix) -> None:
    image = raw.create(name=f"{prefix}-empty", disk_format="raw", container_format="bare")
    assert raw("GET", f"/v2/images/{image['id']}/file").status_code == 204


def test_glance_direct_import(cloud, raw, prefix, tmp_path: Path) -> None:
    info = raw("GET", "/v2/info/import").json()
    assert info["import-methods"]["value"] == ["glance-direct"]
    stores = raw("GET", "/v2/info/stores").json()["stores"]
    assert [s["id"] for s in stores] == ["file"]

    conn = cloud.conn()
    path = tmp_path / "import.qcow2"
    path.write_bytes(qcow2_image(virtual_size=1 << 20) + os.urandom(100_000))
    image = conn.image.create_image(f"{prefix}-import", filename=str(path), disk_format="qcow2",
                                    container_format="bare", use_import=True)
    body = raw.wait_status(image.id, "active")
    assert body["status"] == "active" and body["stores"] == "file"
    assert body["os_hash_value"] == hashlib.sha512(path.read_bytes()).hexdigest()
    assert raw("GET", f"/v2/images/{image.id}/file").content == path.read_bytes()
    assert not list((cloud.settings.data_dir / "images" / "staging").iterdir())
    for _ in range(50):  # the task ends just after the image becomes active
        tasks = raw("GET", f"/v2/images/{image.id}/tasks").json()["tasks"]
        if tasks and tasks[0]["status"] != "processing":
            break
        time.sleep(0.1)
    assert len(tasks) == 1 and tasks[0]["type"] == "api_image_import"
    assert tasks[0]["status"] == "success" and tasks[0]["image_id"] == image.id
    assert tasks[0]["input"]["import_req"]["method"]["name"] == "glance-direct" and tasks[0]["request_id"]

    # importing without staged data is refused; other methods are not offered
    other = raw.create(name=f"{prefix}-nostage", disk_format="raw", container_format="bare")
    assert "stores" not in other  # no data, in no store
    assert raw("GET", f"/v2/images/{other['id']}/tasks").json()["tasks"] == []
    resp = raw("POST", f"/v2/images/{other['id']}/import", json={"method": {"name": "glance-direct"}})
    assert resp.status_code == 409
    resp = raw("POST", f"/v2/images/{other['id']}/import",
               json={"method": {"name": "web-download", "uri": "http://example.com/x"}})
    assert resp.status_code == 400


def test_delete_removes_data(cloud, raw, prefix) -> None:
    image = raw.create(name=f"{prefix}-del", disk_format="raw", container_format="bare")
    assert raw.upload(image["id"], b"bytes to delete").status_code == 204
    assert len(_store_files(cloud, image["id"])) == 1
    assert raw("DELETE", f"/v2/images/{image['id']}").status_code == 204
    assert _store_files(cloud, image["id"]) == []
    assert raw("GET", f"/v2/images/{image['id']}").status_code == 404
    # a deleted image's id is never reused
    resp = raw("POST", "/v2/images", json={"id": image["id"], "name": "again"})
    assert resp.status_code == 409


def test_image_client_streams_to_a_path(cloud, raw, prefix, tmp_path: Path) -> None:
    data = os.urandom(2 * 1024 * 1024 + 5)
    image = raw.create(name=f"{prefix}-client", disk_format="raw", container_format="bare")
    assert raw.upload(image["id"], data).status_code == 204
    client = ImageClient(cloud.url("image"))
    dest = tmp_path / "cache" / "img"
    dest.parent.mkdir()
    record = cloud.thread.call(lambda: client.download(image["id"], dest, token=raw.token))
    assert record["id"] == image["id"]
    assert dest.read_bytes() == data
    assert cloud.thread.call(lambda: client.get_image(image["id"], token=raw.token))["size"] == len(data)

    queued = raw.create(name=f"{prefix}-client-q", disk_format="raw", container_format="bare")
    with pytest.raises(Conflict):
        cloud.thread.call(lambda: client.download(queued["id"], tmp_path / "nothing", token=raw.token))
    assert not (tmp_path / "nothing").exists()
    assert [p.name for p in dest.parent.iterdir()] == ["img"]  # no temp file left behind


def test_concurrent_uploads_of_one_image_one_wins(cloud, raw, prefix) -> None:
    image = raw.create(name=f"{prefix}-race", disk_format="raw", container_format="bare")

    async def both() -> list[int]:
        import aiohttp

        async with aiohttp.ClientSession() as session:
            async def put(payload: bytes) -> int:
                async with session.put(f"{raw.base}/v2/images/{image['id']}/file", data=payload, headers={
                        "X-Auth-Token": raw.token, "Content-Type": "application/octet-stream"}) as resp:
                    return resp.status
            return list(await asyncio.gather(put(b"a" * 8_000_000), put(b"b" * 8_000_000)))

    statuses = sorted(asyncio.run(both()))
    assert statuses == [204, 409]
    data = raw("GET", f"/v2/images/{image['id']}/file").content
    assert data in (b"a" * 8_000_000, b"b" * 8_000_000)


def test_restart_recovers_interrupted_uploads(cloud, raw, prefix) -> None:
    """After a crash mid-upload the image goes back to queued (its partial file is gone with the crash)."""
    service = next(s for s in cloud.thread.cloud.services if s.name == "image")
    image = raw.create(name=f"{prefix}-crash", disk_format="raw", container_format="bare")

    async def mark_saving() -> None:
        def saving(row) -> None:
            row.status = "saving"

        await service.manager.images.transition(image["id"], saving)

    cloud.thread.call(mark_saving)
    assert raw("GET", f"/v2/images/{image['id']}").json()["status"] == "saving"
    cloud.thread.call(service.manager.recover)
    assert raw("GET", f"/v2/images/{image['id']}").json()["status"] == "queued"
    assert raw.upload(image["id"], b"after the crash").status_code == 204
