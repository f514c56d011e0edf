"""Probes as an attacker and an unlucky operator would make them: a reader changes nothing, bad input is a 4xx in
the service's own error body and stores nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from network_helpers import call, error


@pytest.fixture(scope="module")
def reader(cloud: Any, admin: Any) -> Iterator[Any]:
    """A user with only the reader role on project demo."""
    user = admin.identity.create_user(name="hardening-reader", password="reader-secret", domain_id="default")
    admin.identity.assign_project_role_to_user(admin.identity.find_project("demo"), user,
                                               admin.identity.find_role("reader"))
    try:
        yield cloud.conn(username="hardening-reader", password="reader-secret", project_name="demo")
    finally:
        admin.identity.delete_user(user)


def test_a_project_reader_changes_no_port_or_subnet(cloud: Any, demo: Any, reader: Any, prefix: str) -> None:
    net = demo.network.create_network(name=f"{prefix}-net")
    subnet = demo.network.create_subnet(network_id=net.id, cidr="10.81.0.0/24", ip_version=4)
    port = demo.network.create_port(network_id=net.id, name=f"{prefix}-port")
    try:
        assert call(cloud, reader, "GET", f"/v2.0/ports/{port.id}")[0] == 200  # reading is allowed
        for method, path, body in (("PUT", f"/v2.0/ports/{port.id}", {"port": {"admin_state_up": False}}),
                                   ("DELETE", f"/v2.0/ports/{port.id}", None),
                                   ("PUT", f"/v2.0/subnets/{subnet.id}", {"subnet": {"name": "x"}}),
                                   ("DELETE", f"/v2.0/subnets/{subnet.id}", None),
                                   ("PUT", f"/v2.0/networks/{net.id}", {"network": {"name": "x"}}),
                                   ("DELETE", f"/v2.0/networks/{net.id}", None)):
            status, kind = error(call(cloud, reader, method, path, body))
            assert status == 403, (method, path, kind)
        assert demo.network.get_port(port.id).is_admin_state_up is True
        # the member itself still can
        assert call(cloud, demo, "PUT", f"/v2.0/ports/{port.id}", {"port": {"name": "renamed"}})[0] == 200
    finally:
        demo.network.delete_port(port)
        demo.network.delete_network(net)


def test_bad_input_is_a_4xx_and_stores_nothing(cloud: Any, admin: Any) -> None:
    token = {"X-Auth-Token": admin.auth_token}
    compute = cloud.url("compute") + "/v2.1"
    resp = requests.get(compute + "/os-server-groups?limit=99999999999999999999", headers=token, timeout=30)
    assert resp.status_code in (200, 400), resp.text
    identity = cloud.auth_url
    service = requests.post(identity + "/services", json={"service": {"type": "hardening"}}, headers=token,
                            timeout=30).json()["service"]
    try:
        resp = requests.post(identity + "/endpoints", headers=token, timeout=30, json={"endpoint": {
            "service_id": service["id"], "interface": "public", "url": "http://x", "enabled": "True"}})
        assert resp.status_code == 400 and "error" in resp.json(), resp.text
        resp = requests.post(identity + "/services", headers=token, timeout=30,
                             json={"service": {"type": "x", "name": "n" * 1_000_000}})
        assert resp.status_code in (400, 413), resp.status_code
        resp = requests.get(identity + "/users/4f3b7c5e00004000800000000000dead/application_credentials",
                            headers=token, timeout=30)
        assert resp.status_code == 404, resp.text
    finally:
        requests.delete(identity + f"/services/{service['id']}", headers=token, timeout=30)
    # control characters in names: Nova refuses them
    resp = requests.post(compute + "/os-keypairs", headers=token, timeout=30,
                         json={"keypair": {"name": "bad\x00name"}})
    assert resp.status_code == 400, resp.text
    # a huge JSON body is refused with 413 in Glance's body, and nothing is stored
    before = len(requests.get(cloud.url("image") + "/v2/images", headers=token, timeout=30).json()["images"])
    resp = requests.post(cloud.url("image") + "/v2/images", headers={**token, "Content-Type": "application/json"},
                         data=b'{"name": "big", "x_pad": "' + b"a" * (50 << 20) + b'"}', timeout=120)
    assert resp.status_code == 413, resp.status_code
    after = requests.get(cloud.url("image") + "/v2/images", headers=token, timeout=30).json()["images"]
    assert len(after) == before
