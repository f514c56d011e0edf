"""The image API through openstacksdk and plain HTTP: discovery, list filters and pagination, JSON patch,
tags, protection, members and visibility rules."""

from __future__ import annotations

import uuid

import pytest
import requests
from openstack import exceptions as sdk_exc

PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}



def test_version_discovery_and_catalog(cloud, admin) -> None:
    root = requests.get(cloud.url("image") + "/", timeout=10)
    assert root.status_code == 300
    versions = root.json()["versions"]
    assert versions[0]["status"] == "CURRENT" and versions[0]["id"].startswith("v2.")
    assert requests.get(cloud.url("image") + "/v2", timeout=10).json()["versions"] == versions
    assert admin.image.get_endpoint().rstrip("/").endswith("/v2")
    assert admin.image.get_api_major_version()[0] == 2
    catalog = cloud.cli("catalog", "show", "image", "-f", "json")
    assert catalog["name"] == "glance"


def test_requests_need_a_token(cloud) -> None:
    resp = requests.get(cloud.url("image") + "/v2/images", timeout=10)
    assert resp.status_code == 401
    assert "X-Openstack-Request-Id" in resp.headers


def test_list_filters_sort_and_pagination(admin, prefix) -> None:
    made = []
    for i, (disk, size_data) in enumerate([("raw", b"a" * 10), ("qcow2", None), ("raw", b"b" * 300),
                                           ("iso", None), ("raw", b"c" * 50)]):
        image = admin.image.create_image(f"{prefix}-{i}", disk_format=disk, container_format="bare",
                                         tags=[prefix, f"n{i}"], meta={"flavor_hint": f"h{i % 2}"},
                                         allow_duplicates=True)
        if size_data is not None:
            image.upload(admin.image, data=size_data)
        made.append(image.id)

    def ids(**query):
        return [i.id for i in admin.image.images(tag=prefix, **query)]

    assert sorted(ids()) == sorted(made)
    assert sorted(ids(disk_format="raw")) == sorted([made[0], made[2], made[4]])
    assert ids(name=f"{prefix}-3") == [made[3]]
    assert sorted(ids(status="queued")) == sorted([made[1], made[3]])
    assert sorted(ids(size_min=40)) == sorted([made[2], made[4]])
    assert ids(size_min=40, size_max=100) == [made[4]]
    assert ids(sort_key="name", sort_dir="asc") == made
    assert ids(sort="name:desc") == made[::-1]
    assert ids(sort_key="size", sort_dir="desc")[:3] == [made[2], made[4], made[0]]
    assert sorted(i.id for i in admin.image.images(tag=[prefix, "n2"])) == [made[2]]
    by_property = admin.image.get(f"/images?tag={prefix}&flavor_hint=h1").json()["images"]  # SDK drops it
    assert sorted(i["id"] for i in by_property) == sorted([made[1], made[3]])
    # pagination: the SDK follows `next` links; every image once, in order
    assert ids(sort_key="name", sort_dir="asc", limit=2) == made
    page = admin.image.get(f"/images?tag={prefix}&limit=2&sort_key=name&sort_dir=asc").json()
    assert [i["id"] for i in page["images"]] == made[:2]
    assert "marker=" in page["next"] and page["next"].startswith("/v2/images?")
    last = admin.image.get(f"/images?tag={prefix}&limit=2&sort_key=name&sort_dir=asc&marker={made[3]}").json()
    assert [i["id"] for i in last["images"]] == [made[4]] and "next" not in last
    created = admin.image.get_image(made[0]).created_at
    assert set(made) <= set(ids(created_at=f"gte:{created}"))
    assert ids(created_at="lt:2000-01-01T00:00:00Z") == []
    assert admin.image.get("/images?created_at=gte:yesterday").status_code == 400
    bad = admin.image.get(f"/images?marker={uuid.uuid4()}")  # an image that does not exist
    assert bad.status_code == 400
    assert admin.image.get("/images?sort_key=bogus").status_code == 400
    assert admin.image.get("/images?limit=-1").status_code == 400


def test_json_patch_core_and_custom_properties(raw, prefix) -> None:
    image = raw.create(name=f"{prefix}-p", disk_format="raw", container_format="bare", os_distro="debian")
    url = f"/v2/images/{image['id']}"

    def patch(ops):
        return raw("PATCH", url, json=ops, headers=PATCH)

    resp = patch([{"op": "replace", "path": "/name", "value": f"{prefix}-renamed"},
                  {"op": "add", "path": "/hw_rng_model", "value": "virtio"},
                  {"op": "replace", "path": "/os_distro", "value": "ubuntu"},
                  {"op": "replace", "path": "/min_disk", "value": 2},
                  {"op": "replace", "path": "/tags", "value": ["x", "y", "x"]}])
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["name"] == f"{prefix}-renamed" and body["hw_rng_model"] == "virtio"
    assert body["os_distro"] == "ubuntu" and body["min_disk"] == 2 and body["tags"] == ["x", "y"]
    body = patch([{"op": "remove", "path": "/hw_rng_model"}]).json()
    assert "hw_rng_model" not in body

    assert patch([{"op": "remove", "path": "/hw_rng_model"}]).status_code == 409
    assert patch([{"op": "replace", "path": "/nope", "value": "x"}]).status_code == 409
    assert patch([{"op": "replace", "path": "/status", "value": "active"}]).status_code == 403
    assert patch([{"op": "replace", "path": "/checksum", "value": "0" * 32}]).status_code == 403
    assert patch([{"op": "replace", "path": "/min_ram", "value": "lots"}]).status_code == 400
    assert patch([{"op": "add", "path": "/custom", "value": 5}]).status_code == 400
    assert patch([{"op": "move", "path": "/name", "from": "/x"}]).status_code == 400
    assert patch({"op": "add"}).status_code == 400
    # a failed patch changes nothing (all operations or none)
    resp = patch([{"op": "replace", "path": "/name", "value": "half"},
                   {"op": "replace", "path": "/visibility", "value": "sideways"}])
    assert resp.status_code == 400
    assert raw("GET", url).json()["name"] == f"{prefix}-renamed"


def test_sdk_update_and_formats_only_while_queued(admin, prefix) -> None:
    image = admin.image.create_image(f"{prefix}-u", disk_format="raw", container_format="bare",
                                     allow_duplicates=True)
    updated = admin.image.update_image(image, min_ram=512, x_note="yes", disk_format="qcow2")
    assert updated.min_ram == 512 and updated.disk_format == "qcow2"
    assert admin.image.get_image(image).properties["x_note"] == "yes"
    image = admin.image.create_image(f"{prefix}-u2", data=b"raw bytes", disk_format="raw",
                                     container_format="bare", allow_duplicates=True)
    with pytest.raises(sdk_exc.ForbiddenException):
        admin.image.update_image(image, disk_format="qcow2")


def test_tags(raw, prefix) -> None:
    image = raw.create(name=f"{prefix}-t", tags=["a"])
    url = f"/v2/images/{image['id']}/tags"
    assert raw("PUT", f"{url}/b").status_code == 204
    assert raw("PUT", f"{url}/b").status_code == 204  # idempotent
    assert raw("GET", f"/v2/images/{image['id']}").json()["tags"] == ["a", "b"]
    assert raw("DELETE", f"{url}/a").status_code == 204
    assert raw("DELETE", f"{url}/a").status_code == 404
    assert raw("GET", f"/v2/images/{image['id']}").json()["tags"] == ["b"]


def test_protected_image_cannot_be_deleted(admin, prefix) -> None:
    image = admin.image.create_image(f"{prefix}-prot", disk_format="raw", container_format="bare",
                                     is_protected=True, allow_duplicates=True)
    with pytest.raises(sdk_exc.ForbiddenException):
        admin.image.delete_image(image)
    admin.image.update_image(image, is_protected=False)
    admin.image.delete_image(image)
    assert admin.image.find_image(image.id) is None


def test_read_only_and_reserved_attributes_on_create(raw, prefix) -> None:
    for attrs in ({"status": "active"}, {"size": 5}, {"os_hash_value": "x"}, {"location": "file:///etc"},
                  {"deleted": True}):
        resp = raw("POST", "/v2/images", json={"name": prefix, **attrs})
        assert resp.status_code == 403, attrs
    assert raw("POST", "/v2/images", json={"name": prefix, "id": "not-a-uuid"}).status_code == 400
    assert raw("POST", "/v2/images", json={"name": prefix, "min_disk": -1}).status_code == 400
    assert raw("POST", "/v2/images", json=["not", "an", "object"]).status_code == 400
    resp = raw("POST", "/v2/images", data="{bad json", headers={"Content-Type": "application/json"})
    assert resp.status_code == 400


def test_visibility_rules_for_lists(admin, demo, demo_raw, prefix) -> None:
    public = admin.image.create_image(f"{prefix}-pub", disk_format="raw", container_format="bare",
                                      visibility="public", allow_duplicates=True)
    community = admin.image.create_image(f"{prefix}-com", disk_format="raw", container_format="bare",
                                         visibility="community", allow_duplicates=True)
    private = admin.image.create_image(f"{prefix}-priv", disk_format="raw", container_format="bare",
                                       visibility="private", allow_duplicates=True)
    own = demo.image.create_image(f"{prefix}-own", disk_format="raw", container_format="bare",
                                  allow_duplicates=True)
    assert own.visibility == "shared" and own.owner == demo.current_project_id

    def demo_list(**query):
        return {i.id for i in demo.image.images(**query)}

    listed = demo_list()
    assert public.id in listed and own.id in listed
    assert community.id not in listed and private.id not in listed
    assert community.id in demo_list(visibility="community")
    assert community.id in demo_list(visibility="all") and private.id not in demo_list(visibility="all")
    # community images are visible to anyone who knows the id, private ones are not
    assert demo.image.get_image(community.id).id == community.id
    assert demo_raw("GET", f"/v2/images/{private.id}").status_code == 404
    # others may not change what they can see
    resp = demo_raw("PATCH", f"/v2/images/{public.id}", json=[{"op": "replace", "path": "/name", "value": "x"}],
                    headers=PATCH)
    assert resp.status_code == 403
    assert demo_raw("DELETE", f"/v2/images/{community.id}").status_code == 403
    # hidden images are left out of lists unless asked for
    admin.image.update_image(public, is_hidden=True)
    assert public.id not in demo_list()
    assert public.id in demo_list(is_hidden=True)
    # a member of demo may not create an image for another project
    resp = demo_raw("POST", "/v2/images", json={"name": prefix, "owner": admin.current_project_id})
    assert resp.status_code == 403


def test_members_rules(admin, demo, raw, demo_raw, prefix) -> None:
    private = admin.image.create_image(f"{prefix}-m1", disk_format="raw", container_format="bare",
                                       visibility="private", allow_duplicates=True)
    with pytest.raises(sdk_exc.ForbiddenException):  # only shared images have members
        admin.image.add_member(private, member=demo.current_project_id)
    shared = admin.image.create_image(f"{prefix}-m2", disk_format="raw", container_format="bare",
                                      allow_duplicates=True)
    member = admin.image.add_member(shared, member=demo.current_project_id)
    assert member.status == "pending"
    with pytest.raises(sdk_exc.ConflictException):
        admin.image.add_member(shared, member=demo.current_project_id)
    # the owner cannot accept on the member's behalf; the member can
    resp = raw("PUT", f"/v2/images/{shared.id}/members/{demo.current_project_id}", json={"status": "accepted"})
    assert resp.status_code == 403
    resp = demo_raw("PUT", f"/v2/images/{shared.id}/members/{demo.current_project_id}",
                    json={"status": "maybe"})
    assert resp.status_code == 400
    demo.image.update_member(demo.current_project_id, shared, status="accepted")
    assert [m.status for m in demo.image.members(shared)] == ["accepted"]
    assert shared.id in {i.id for i in demo.image.images(member_status="accepted")}
    # the member cannot add further members
    resp = demo_raw("POST", f"/v2/images/{shared.id}/members", json={"member": "someone"})
    assert resp.status_code == 403
    admin.image.remove_member(demo.current_project_id, shared)
    assert demo_raw("GET", f"/v2/images/{shared.id}").status_code == 404


def test_schemas_and_usage(raw, demo_raw) -> None:
    schema = raw("GET", "/v2/schemas/image").json()
    assert schema["name"] == "image" and "disk_format" in schema["properties"]
    assert raw("GET", "/v2/schemas/images").json()["name"] == "images"
    assert raw("GET", "/v2/schemas/nothing").status_code == 404
    usage = demo_raw("GET", "/v2/info/usage").json()["usage"]
    assert usage["image_count_total"]["usage"] >= 0 and usage["image_size_total"]["limit"] > 0


def test_unknown_image_is_404_in_glance_style(raw) -> None:
    resp = raw("GET", "/v2/images/00000000-0000-0000-0000-000000000000")
    assert resp.status_code == 404
    assert resp.headers["Content-Type"].startswith("text/html")
    assert "No image found" in resp.text
    assert raw("GET", "/v2/images/not-a-uuid").status_code == 404


def test_json_patch_draft4_media_type(raw, prefix) -> None:
    """`application/openstack-images-v2.0-json-patch`: the operation's name is the key holding the path."""
    image = raw.create(name=f"{prefix}-d4", disk_format="raw", container_format="bare", os_distro="debian")
    url = f"/v2/images/{image['id']}"

    def patch(ops):
        return raw("PATCH", url, json=ops, headers={"Content-Type": "application/openstack-images-v2.0-json-patch"})

    resp = patch([{"replace": "/name", "value": f"{prefix}-d4b"}, {"add": "/hw_rng_model", "value": "virtio"},
                  {"replace": "/protected", "value": True}])
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["name"] == f"{prefix}-d4b" and body["hw_rng_model"] == "virtio" and body["protected"] is True
    assert patch([{"add": "/hw_rng_model", "value": "other"}]).status_code == 409  # draft 4 add only adds
    assert patch([{"replace": "/nope", "value": "x"}]).status_code == 409
    assert patch([{"op": "replace", "path": "/name", "value": "x"}]).status_code == 400
    assert patch([{"add": "/a", "remove": "/b", "value": "x"}]).status_code == 400
    body = patch([{"remove": "/hw_rng_model"}, {"replace": "/protected", "value": False}]).json()
    assert "hw_rng_model" not in body and body["protected"] is False
    assert raw("PATCH", url, json=[], headers={"Content-Type": "application/json"}).status_code == 415


def test_reserved_os_glance_properties_and_empty_ids(raw, prefix) -> None:
    resp = raw("POST", "/v2/images", json={"name": f"{prefix}-r", "os_glance_foo": "bar"})
    assert resp.status_code == 403
    image = raw.create(name=f"{prefix}-r")
    resp = raw("PATCH", f"/v2/images/{image['id']}", json=[{"op": "add", "path": "/os_glance_foo", "value": "x"}],
               headers=PATCH)
    assert resp.status_code == 403
    assert raw("GET", "/v2/images/").status_code == 404
    assert raw("DELETE", "/v2/images/").status_code == 404
