"""Server test helpers: raw compute API calls at a microversion, and waiting for a server's settled status."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import requests


def api(cloud: Any, conn: Any, method: str, path: str, body: Any = None, version: str = "2.79") -> requests.Response:
    """A raw compute API request with the connection's token at a given microversion."""
    return requests.request(method, cloud.url("compute") + "/v2.1" + path, json=body, timeout=30,
                            headers={"X-Auth-Token": conn.auth_token, "OpenStack-API-Version": f"compute {version}"})


def wait_status(conn: Any, server_id: str, status: str, timeout: float = 30.0) -> Any:
    """The server once it shows `status` with no task."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        server = conn.compute.get_server(server_id)
        if server.status == status and server.task_state is None:
            return server
        time.sleep(0.1)
    raise AssertionError(f"server {server_id} is {server.status}/{server.task_state}, not {status}")


def image_and_network(cloud: Any, admin: Any, name: str, cidr: str) -> Iterator[dict[str, Any]]:
    """For a module's `env` fixture: a public image and a shared network named after `name`, demo's connection;
    removed afterwards."""
    image = admin.image.create_image(name=f"{name}-base", disk_format="raw", container_format="bare",
                                     visibility="public", data=b"\0" * 4096)
    network = admin.network.create_network(name=f"{name}-net", shared=True)
    admin.network.create_subnet(network_id=network.id, cidr=cidr, ip_version=4, name=f"{name}-subnet")
    yield {"image": image, "network": network, "demo": cloud.conn("pocketstack-demo")}
    admin.network.delete_network(network)
    admin.image.delete_image(image)


def demo_server(env: dict[str, Any], prefix: str) -> Iterator[Any]:
    """For a `server` fixture: demo's ACTIVE server on the env's image and network, deleted afterwards (if the
    test left it)."""
    demo = env["demo"]
    created = demo.compute.create_server(name=f"{prefix}-vm", flavor_id="1", image_id=env["image"].id,
                                         networks=[{"uuid": env["network"].id}])
    created = demo.compute.wait_for_server(created, wait=30)
    yield created
    demo.compute.delete_server(created, ignore_missing=True)
    demo.compute.wait_for_delete(created, wait=30)


@contextlib.contextmanager
def reader_and_outsider(cloud: Any, admin: Any, prefix: str) -> Iterator[tuple[Any, Any]]:
    """Connections of a reader of project demo and of a member of another project, both removed afterwards."""
    project = admin.identity.find_project("demo")
    reader = admin.identity.create_user(name=f"{prefix}-reader", password="reader-secret", domain_id="default")
    other = admin.identity.create_project(name=f"{prefix}-other", domain_id="default")
    outsider = admin.identity.create_user(name=f"{prefix}-out", password="out-secret", domain_id="default")
    try:
        admin.identity.assign_project_role_to_user(project, reader, admin.identity.find_role("reader"))
        admin.identity.assign_project_role_to_user(other, outsider, admin.identity.find_role("member"))
        yield (cloud.conn(username=f"{prefix}-reader", password="reader-secret", project_name="demo"),
               cloud.conn(username=f"{prefix}-out", password="out-secret", project_name=f"{prefix}-other"))
    finally:
        admin.identity.delete_user(reader)
        admin.identity.delete_user(outsider)
        admin.identity.delete_project(other)
