"""NUL and control characters in names, descriptions and tags: 400 in the service's own error body, nothing stored,
for every service (one check of every JSON body, pocketstack/common/validation.py, and of the tag path segments)."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from pocketstack.common.validation import check_body

BAD = ["bad\x00name", "bad\x07name", "bad\nname", "bad\x1bname", "bad\x7fname"]
# service's error body: the key its 400 answer is under
ERROR_KEY = {"compute": "badRequest", "volume": "badRequest", "network": "NeutronError", "identity": "error",
             "image": None}


def _creates(project: str) -> list[tuple[str, str, str, Any]]:
    """(service, path, collection key, body with NAME) of create routes, one per kind."""
    return [
        ("compute", "/v2.1/os-keypairs", "keypairs", {"keypair": {"name": "NAME"}}),
        ("compute", "/v2.1/flavors", "flavors", {"flavor": {"name": "NAME", "ram": 64, "vcpus": 1, "disk": 1}}),
        ("compute", "/v2.1/os-server-groups", "server_groups",
         {"server_group": {"name": "NAME", "policies": ["affinity"]}}),
        ("compute", "/v2.1/os-aggregates", "aggregates", {"aggregate": {"name": "NAME"}}),
        ("compute", "/v2.1/servers", "servers", {"server": {"name": "NAME", "flavorRef": "1",
                                                            "imageRef": "4f3b7c5e-0000-4000-8000-00000000dead"}}),
        ("identity", "/v3/projects", "projects", {"project": {"name": "NAME"}}),
        ("identity", "/v3/users", "users", {"user": {"name": "NAME"}}),
        ("identity", "/v3/groups", "groups", {"group": {"name": "NAME", "description": "NAME"}}),
        ("identity", "/v3/roles", "roles", {"role": {"name": "NAME"}}),
        ("network", "/v2.0/networks", "networks", {"network": {"name": "NAME"}}),
        ("network", "/v2.0/security-groups", "security_groups", {"security_group": {"name": "NAME"}}),
        ("network", "/v2.0/routers", "routers", {"router": {"name": "NAME"}}),
        ("volume", f"/v3/{project}/volumes", "volumes", {"volume": {"size": 1, "name": "NAME"}}),
        ("volume", f"/v3/{project}/types", "volume_types", {"volume_type": {"name": "NAME"}}),
        ("image", "/v2/images", "images", {"name": "NAME"}),
        ("image", "/v2/images", "images", {"name": "fine", "tags": ["NAME"]}),
    ]


def _fill(body: Any, name: str) -> Any:
    if isinstance(body, dict):
        return {k: _fill(v, name) for k, v in body.items()}
    if isinstance(body, list):
        return [_fill(v, name) for v in body]
    return name if body == "NAME" else body


def _refused(service: str, resp: requests.Response) -> None:
    assert resp.status_code == 400, (service, resp.status_code, resp.text)
    key = ERROR_KEY[service]
    if key:
        assert key in resp.json(), resp.text
    assert "characters are not allowed" in resp.text, resp.text


@pytest.fixture(scope="module")
def token(admin: Any) -> dict[str, str]:
    return {"X-Auth-Token": admin.auth_token}


def test_control_characters_in_names_are_refused_and_nothing_is_stored(cloud: Any, admin: Any,
                                                                        token: dict[str, str]) -> None:
    project = admin.current_project_id
    for service, path, key, body in _creates(project):
        url = cloud.url(service) + path
        for name in BAD:
            _refused(service, requests.post(url, json=_fill(body, name), headers=token, timeout=30))
        listed = requests.get(url, headers=token, timeout=30).json()[key]
        assert not [item for item in listed if "bad" in str(item.get("name", item.get("keypair", {})))], listed


def test_control_characters_in_updates_and_tags_are_refused(cloud: Any, admin: Any, demo: Any, prefix: str,
                                                             token: dict[str, str]) -> None:
    net = demo.network.create_network(name=f"{prefix}-net")
    image = admin.image.create_image(name=f"{prefix}-img", disk_format="raw", container_format="bare")
    project = admin.identity.create_project(name=f"{prefix}-project", domain_id="default")
    try:
        calls = [
            ("network", "PUT", f"/v2.0/networks/{net.id}", {"network": {"name": "a\x01"}}),
            ("network", "PUT", f"/v2.0/networks/{net.id}", {"network": {"description": "a\x00"}}),
            ("network", "PUT", f"/v2.0/networks/{net.id}/tags/bad%07tag", None),
            ("network", "PUT", f"/v2.0/networks/{net.id}/tags", {"tags": ["a\x02"]}),
            ("identity", "PATCH", f"/v3/projects/{project.id}", {"project": {"description": "a\x1b"}}),
            ("identity", "PUT", f"/v3/projects/{project.id}/tags/bad%07tag", None),
            ("identity", "PUT", f"/v3/projects/{project.id}/tags", {"tags": ["a\x02"]}),
            ("image", "PUT", f"/v2/images/{image.id}/tags/bad%07tag", None),
        ]
        for service, method, path, body in calls:
            resp = requests.request(method, cloud.url(service) + path, json=body, headers=token, timeout=30)
            _refused(service, resp)
        resp = requests.patch(cloud.url("image") + f"/v2/images/{image.id}", timeout=30, headers={
            **token, "Content-Type": "application/openstack-images-v2.1-json-patch"},
            json=[{"op": "replace", "path": "/name", "value": "a\x00b"}])
        _refused("image", resp)
        assert demo.network.get_network(net.id).name == f"{prefix}-net"
        assert demo.network.get_network(net.id).tags == []
        assert admin.image.get_image(image.id).name == f"{prefix}-img" and admin.image.get_image(image.id).tags == []
        assert admin.identity.get_project(project.id).tags == []
    finally:
        demo.network.delete_network(net)
        admin.image.delete_image(image)
        admin.identity.delete_project(project)


def test_the_check_spares_opaque_maps_and_printable_text() -> None:
    check_body({"server": {"name": "ünïcode, fine", "metadata": {"k": "line\nbreak"}}})
    check_body({"credential": {"blob": "{\"a\":\n1}"}})
    check_body({"volume": {"name": "v", "description": "two\nlines\tand a tab"}})
    refused = ({"x": {"name": "a\x07"}}, {"x": {"name": "a\nb"}}, {"x": {"description": "a\x1bb"}},
               {"metadata": {"k": "nul\x00"}}, [{"op": "add", "path": "/tags", "value": ["a\x1f"]}])
    for body in refused:
        with pytest.raises(Exception, match="not allowed"):
            check_body(body)
