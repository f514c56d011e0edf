"""Per-project image quotas (count and bytes), enforced before data is written, on a cloud of its own."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from conftest import Cloud, make_settings
from image_helpers import Raw

from pocketstack.launcher import CloudThread
from pocketstack.services import SERVICES


@pytest.fixture(scope="module")
def small_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    data_dir = tmp_path_factory.mktemp("quota-cloud")
    settings = make_settings(data_dir, image={"quota_image_count": 3, "quota_image_bytes": 1_000_000,
                                              "max_image_size": 600_000})
    running = Cloud(settings)
    running.thread = CloudThread(settings, [s for s in SERVICES if s.name in ("identity", "image")])
    running.start()
    try:
        yield running
    finally:
        running.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def _partials(cloud: Cloud) -> list:
    return [p for p in (cloud.settings.data_dir / "images").iterdir() if p.is_file()]


def test_byte_and_count_quotas(small_cloud: Cloud) -> None:
    raw = Raw(small_cloud.url("image"), small_cloud.conn("pocketstack-demo").auth_token)
    first = raw.create(name="q1", disk_format="raw", container_format="bare")
    assert raw.upload(first["id"], b"x" * 500_000).status_code == 204

    # declared too big for the room left: refused before a byte is stored
    second = raw.create(name="q2", disk_format="raw", container_format="bare")
    resp = raw.upload(second["id"], b"y" * 500_001)
    assert resp.status_code == 413
    assert "quota" in resp.text
    # undeclared size (chunked): cut off once it goes over, nothing kept
    resp = raw("PUT", f"/v2/images/{second['id']}/file", data=iter([b"z" * 300_000] * 2),
               headers={"Content-Type": "application/octet-stream"})
    assert resp.status_code == 413
    assert raw("GET", f"/v2/images/{second['id']}").json()["status"] == "queued"
    assert len(_partials(small_cloud)) == 1
    # larger than the largest image allowed, whatever the quota
    admin = Raw(small_cloud.url("image"), small_cloud.conn().auth_token)
    big = admin.create(name="big", disk_format="raw", container_format="bare")
    resp = admin.upload(big["id"], b"b" * 600_001)
    assert resp.status_code == 413 and "largest" in resp.text

    assert raw.upload(second["id"], b"y" * 400_000).status_code == 204
    usage = raw("GET", "/v2/info/usage").json()["usage"]
    assert usage["image_size_total"] == {"limit": 1_000_000, "usage": 900_000}
    assert usage["image_count_total"] == {"limit": 3, "usage": 2}

    raw.create(name="q3")
    resp = raw("POST", "/v2/images", json={"name": "q4"})
    assert resp.status_code == 413
    # deleting frees both count and bytes
    assert raw("DELETE", f"/v2/images/{first['id']}").status_code == 204
    fourth = raw.create(name="q4", disk_format="raw", container_format="bare")
    assert raw.upload(fourth["id"], b"w" * 500_000).status_code == 204
