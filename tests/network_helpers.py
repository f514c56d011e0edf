"""Network test helpers: raw calls to the networking API where a test needs the exact status and error type."""

from __future__ import annotations

from typing import Any

import requests


def call(cloud: Any, conn: Any, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
    """(status, parsed body) of one request with `conn`'s token."""
    resp = requests.request(method, cloud.url("network") + path, json=body, timeout=30,
                            headers={"X-Auth-Token": conn.auth_token})
    return resp.status_code, (resp.json() if resp.content else {})


def error(result: tuple[int, dict[str, Any]]) -> tuple[int, str]:
    """(status, Neutron error type) of a failed call; asserts the body is Neutron's error body."""
    status, body = result
    assert set(body["NeutronError"]) == {"type", "message", "detail"}, body
    return status, body["NeutronError"]["type"]
