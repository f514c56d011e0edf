"""Server test helpers: raw compute API calls at a microversion, and waiting for a server's settled status."""

from __future__ import annotations

import time
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
