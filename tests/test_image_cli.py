"""The image service driven by the real `openstack` CLI (python-openstackclient)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from image_helpers import Raw, qcow2_image


def _show(cloud, image: str, who: str = "pocketstack") -> dict:
    return cloud.cli("image", "show", image, "-f", "json", cloud=who)


def test_cli_create_qcow2_list_show_set_unset_delete(cloud, prefix, tmp_path: Path) -> None:
    path = tmp_path / "disk.qcow2"
    path.write_bytes(qcow2_image(virtual_size=2 << 30) + os.urandom(256 * 1024))
    created = cloud.cli("image", "create", "--file", str(path), "--disk-format", "qcow2",
                        "--container-format", "bare", f"{prefix}-img", "-f", "json")
    assert created["status"] == "active"
    assert created["disk_format"] == "qcow2" and created["container_format"] == "bare"
    assert created["size"] == path.stat().st_size
    assert created["virtual_size"] == 2 << 30
    assert created["checksum"] == hashlib.md5(path.read_bytes()).hexdigest()

    listed = cloud.cli("image", "list", "--name", f"{prefix}-img", "-f", "json")
    assert [i["ID"] for i in listed] == [created["id"]]

    cloud.cli("image", "set", "--property", "os_distro=cirros", "--property", "hw_disk_bus=virtio",
              "--min-ram", "64", "--tag", "blue", f"{prefix}-img")
    shown = _show(cloud, f"{prefix}-img")
    assert shown["properties"]["hw_disk_bus"] == "virtio"
    assert shown["properties"]["os_distro"] == "cirros"
    assert shown["min_ram"] == 64
    assert shown["tags"] == ["blue"]

    cloud.cli("image", "unset", "--property", "hw_disk_bus", "--tag", "blue", f"{prefix}-img")
    shown = _show(cloud, f"{prefix}-img")
    assert "hw_disk_bus" not in shown["properties"]
    assert shown["tags"] == []

    cloud.cli("image", "delete", created["id"])
    proc = cloud.cli("image", "show", created["id"], check=False)
    assert proc.returncode != 0
    assert not list((cloud.settings.data_dir / "images").glob(created["id"] + "*"))


def test_cli_save_gives_back_the_same_bytes(cloud, prefix, tmp_path: Path) -> None:
    """`image save` returns the uploaded bytes; their sha512 is the image's os_hash_value."""
    source = tmp_path / "disk.raw"
    source.write_bytes(os.urandom(5 * 1024 * 1024 + 123))
    created = cloud.cli("image", "create", "--file", str(source), "--disk-format", "raw",
                        "--container-format", "bare", f"{prefix}-raw", "-f", "json")
    out = tmp_path / "saved.raw"
    cloud.cli("image", "save", "--file", str(out), created["id"])
    data = out.read_bytes()
    assert data == source.read_bytes()
    image = cloud.conn().image.get_image(created["id"])  # the CLI's `show` leaves the os_hash_* fields out
    assert image.hash_algo == "sha512"
    assert hashlib.sha512(data).hexdigest() == image.hash_value


def test_cli_share_with_project_and_accept(cloud, prefix, tmp_path: Path) -> None:
    path = tmp_path / "shared.raw"
    path.write_bytes(b"shared image data" * 1000)
    image = cloud.cli("image", "create", "--file", str(path), "--disk-format", "raw", "--container-format",
                      "bare", "--shared", f"{prefix}-shared", "-f", "json")
    demo_ids = lambda: [i["ID"] for i in cloud.cli("image", "list", "-f", "json", cloud="pocketstack-demo")]  # noqa: E731
    assert image["id"] not in demo_ids()

    member = cloud.cli("image", "add", "project", image["id"], "demo", "-f", "json")
    assert member["status"] == "pending"
    # a pending member can look at the image, but it is not in its list until accepted
    assert _show(cloud, image["id"], "pocketstack-demo")["id"] == image["id"]
    assert image["id"] not in demo_ids()

    cloud.cli("image", "set", "--accept", image["id"], cloud="pocketstack-demo")
    assert image["id"] in demo_ids()
    members = cloud.cli("image", "member", "list", image["id"], "-f", "json")
    assert [m["Status"] for m in members] == ["accepted"]

    out = tmp_path / "member-copy.raw"
    cloud.cli("image", "save", "--file", str(out), image["id"], cloud="pocketstack-demo")
    assert out.read_bytes() == path.read_bytes()

    # the member may not change the image, nor delete it
    proc = cloud.cli("image", "set", "--property", "x=y", image["id"], cloud="pocketstack-demo", check=False)
    assert proc.returncode != 0
    proc = cloud.cli("image", "delete", image["id"], cloud="pocketstack-demo", check=False)
    assert proc.returncode != 0

    cloud.cli("image", "set", "--reject", image["id"], cloud="pocketstack-demo")
    assert image["id"] not in demo_ids()
    cloud.cli("image", "remove", "project", image["id"], "demo")
    assert cloud.cli("image", "show", image["id"], cloud="pocketstack-demo", check=False).returncode != 0


def test_cli_deactivated_image_cannot_be_downloaded(cloud, prefix, tmp_path: Path) -> None:
    path = tmp_path / "d.raw"
    path.write_bytes(os.urandom(64 * 1024))
    demo = "pocketstack-demo"
    image = cloud.cli("image", "create", "--file", str(path), "--disk-format", "raw", "--container-format",
                      "bare", f"{prefix}-deact", "-f", "json", cloud=demo)
    cloud.cli("image", "set", "--deactivate", image["id"], cloud=demo)
    assert _show(cloud, image["id"], demo)["status"] == "deactivated"

    proc = cloud.cli("image", "save", "--file", str(tmp_path / "out"), image["id"], cloud=demo, check=False)
    assert proc.returncode != 0  # openstacksdk hashes the error page and reports a checksum mismatch
    raw = Raw(cloud.url("image"), cloud.conn(demo).auth_token)
    resp = raw("GET", f"/v2/images/{image['id']}/file")
    assert resp.status_code == 403
    assert "deactivated" in resp.text

    # an admin still can (to inspect it), and reactivating gives the owner its data back
    cloud.cli("image", "save", "--file", str(tmp_path / "admin-copy"), image["id"])
    assert (tmp_path / "admin-copy").read_bytes() == path.read_bytes()
    cloud.cli("image", "set", "--activate", image["id"], cloud=demo)
    cloud.cli("image", "save", "--file", str(tmp_path / "out"), image["id"], cloud=demo)
    assert (tmp_path / "out").read_bytes() == path.read_bytes()


def test_cli_demo_cannot_see_private_image_of_another_project(cloud, prefix) -> None:
    image = cloud.cli("image", "create", "--private", "--disk-format", "raw", "--container-format", "bare",
                      f"{prefix}-private", "-f", "json")
    listed = cloud.cli("image", "list", "-f", "json", cloud="pocketstack-demo")
    assert image["id"] not in [i["ID"] for i in listed]
    proc = cloud.cli("image", "show", image["id"], cloud="pocketstack-demo", check=False)
    assert proc.returncode != 0
    assert "No Image found" in proc.stderr or "404" in proc.stderr
    assert image["id"] in [i["ID"] for i in cloud.cli("image", "list", "-f", "json")]


def test_cli_demo_cannot_make_an_image_public(cloud, prefix) -> None:
    demo = "pocketstack-demo"
    proc = cloud.cli("image", "create", "--public", "--disk-format", "raw", "--container-format", "bare",
                     f"{prefix}-pub", cloud=demo, check=False)
    assert proc.returncode != 0
    assert "403" in proc.stderr or "publicize_image" in proc.stderr
    image = cloud.cli("image", "create", "--disk-format", "raw", "--container-format", "bare",
                      f"{prefix}-priv", "-f", "json", cloud=demo)
    proc = cloud.cli("image", "set", "--public", image["id"], cloud=demo, check=False)
    assert proc.returncode != 0
    assert _show(cloud, image["id"], demo)["visibility"] == "shared"
    # community is allowed for members; public only for admins
    cloud.cli("image", "set", "--community", image["id"], cloud=demo)
    cloud.cli("image", "set", "--public", image["id"])
    assert _show(cloud, image["id"], demo)["visibility"] == "public"
