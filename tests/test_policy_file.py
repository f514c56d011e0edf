"""`policy_file` overrides the defaults in every service, as oslo.policy's policy.yaml does: a rule made looser lets
a member through, one made stricter stops even the admin."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
import requests
import yaml
from conftest import Cloud, make_settings

OVERRIDES = {
    "os_compute_api:os-hypervisors:list": "@",
    "os_compute_api:os-keypairs:index": "!",
    "create_network": "role:admin",
    "get_images": "!",
    "volume:get_all": "!",
    "identity:list_regions": "role:admin",
}


@pytest.fixture(scope="module")
def overridden(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    data_dir = tmp_path_factory.mktemp("policy-cloud")
    policy = data_dir / "policy.yaml"
    policy.write_text(yaml.safe_dump(OVERRIDES))
    cloud = Cloud(make_settings(data_dir, policy_file=policy)).start()
    try:
        yield cloud
    finally:
        cloud.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def test_policy_file_overrides_every_service(overridden: Cloud) -> None:
    admin = {"X-Auth-Token": overridden.conn().auth_token}
    demo_conn = overridden.conn("pocketstack-demo")
    demo = {"X-Auth-Token": demo_conn.auth_token}
    project = demo_conn.current_project_id

    def status(service: str, method: str, path: str, headers: dict[str, str], body: object = None) -> int:
        return requests.request(method, overridden.url(service) + path, json=body, headers=headers,
                                timeout=30).status_code

    assert status("compute", "GET", "/v2.1/os-hypervisors", demo) == 200  # admin-only by default
    assert status("compute", "GET", "/v2.1/os-keypairs", admin) == 403
    assert status("network", "POST", "/v2.0/networks", demo, {"network": {"name": "x"}}) == 403
    assert status("image", "GET", "/v2/images", admin) == 403
    assert status("volume", "GET", f"/v3/{project}/volumes", demo) == 403
    assert status("identity", "GET", "/v3/regions", demo) == 403
    # the rules not overridden keep their defaults
    assert status("compute", "GET", "/v2.1/flavors", demo) == 200
    assert status("network", "GET", "/v2.0/networks", demo) == 200
    assert status("identity", "GET", "/v3/regions", admin) == 200
