"""os-resetState, injectNetworkInfo, restore and forceDelete over HTTP: admin only where Nova says so, exact
statuses."""

from __future__ import annotations

from typing import Any

import requests


def action(cloud: Any, conn: Any, server_id: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(f"{cloud.url('compute')}/v2.1/servers/{server_id}/action", json=body, timeout=30,
                         headers={"X-Auth-Token": conn.auth_token})


def test_reset_state_restore_and_force_delete(cloud: Any, admin: Any, demo: Any, prefix: str) -> None:
    image = admin.image.create_image(name=f"{prefix}-img", data=b"\0" * 1024, disk_format="raw",
                                     container_format="bare", visibility="public")
    try:
        server = demo.compute.create_server(name=f"{prefix}-vm", image_id=image.id, flavor_id="1", networks="none")
        demo.compute.wait_for_server(server, status="ACTIVE", wait=60)
        # only admins reset a state; the body is checked
        assert action(cloud, demo, server.id, {"os-resetState": {"state": "error"}}).status_code == 403
        assert action(cloud, admin, server.id, {"os-resetState": {"state": "paused"}}).status_code == 400
        assert action(cloud, admin, server.id, {"os-resetState": {"state": "error"}}).status_code == 202
        assert demo.compute.get_server(server.id).status == "ERROR"
        assert action(cloud, admin, server.id, {"os-resetState": {"state": "active"}}).status_code == 202
        shown = admin.compute.get_server(server.id)
        assert (shown.status, shown.task_state) == ("ACTIVE", None)
        actions = [a.action for a in admin.compute.server_actions(server.id)]
        assert actions.count("resetState") == 2
        # nothing is soft-deleted (reclaim_instance_interval 0): restore has nothing to restore
        resp = action(cloud, demo, server.id, {"restore": None})
        assert resp.status_code == 409 and "conflictingRequest" in resp.json()
        assert action(cloud, demo, "4f3b7c5e-0000-4000-8000-000000000000", {"restore": None}).status_code == 404
        # injectNetworkInfo: admin only, nothing to inject (as Nova's libvirt driver)
        assert action(cloud, demo, server.id, {"injectNetworkInfo": None}).status_code == 403
        assert action(cloud, admin, server.id, {"injectNetworkInfo": None}).status_code == 202
        assert action(cloud, demo, server.id, {"forceDelete": None}).status_code == 202
        demo.compute.wait_for_delete(server, wait=60)
    finally:
        admin.image.delete_image(image)
