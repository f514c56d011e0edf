"""Resize and cold migration on the fake driver (two hosts): `openstack server resize / migrate` and their confirm
through the real CLI, revert, the claims on both hosts while VERIFY_RESIZE and after (never double), a failure on
the destination rolled back, no valid host, the auto-confirm window, os-migrations and its filters, policy, state
and input errors."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from server_helpers import api, demo_server, image_and_network, wait_status

from pocketstack.compute.virt.fake import FakeDriver
from pocketstack.trace.render import collect_request


def raw_server(cloud: Any, conn: Any, server_id: str) -> dict[str, Any]:
    return api(cloud, conn, "GET", f"/servers/{server_id}", version="2.47").json()["server"]


def usage(cloud: Any, admin: Any) -> dict[str, tuple[int, int]]:
    """host -> (vCPUs, RAM MiB) claimed."""
    hypervisors = api(cloud, admin, "GET", "/os-hypervisors/detail", version="2.27").json()["hypervisors"]
    return {h["service"]["host"]: (h["vcpus_used"], h["memory_mb_used"]) for h in hypervisors}


def migrations(cloud: Any, admin: Any, query: str = "", version: str = "2.59") -> list[dict[str, Any]]:
    return api(cloud, admin, "GET", f"/os-migrations{query}", version=version).json()["migrations"]


def events(cloud: Any, admin: Any, server_id: str, action: str) -> dict[str, str]:
    """event name -> result of the server's newest `action`."""
    actions = api(cloud, admin, "GET", f"/servers/{server_id}/os-instance-actions").json()["instanceActions"]
    request_id = next(a["request_id"] for a in actions if a["action"] == action)
    detail = api(cloud, admin, "GET", f"/servers/{server_id}/os-instance-actions/{request_id}", version="2.51")
    return {e["event"]: e["result"] for e in detail.json()["instanceAction"]["events"]}


def wait_for(check: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def settings_of(cloud: Any) -> Any:
    return next(s for s in cloud.thread.cloud.services if s.name == "compute").state.settings


@pytest.fixture(scope="module")
def env(cloud: Any, admin: Any) -> Iterator[dict[str, Any]]:
    yield from image_and_network(cloud, admin, "resize", "10.93.0.0/24")


@pytest.fixture
def server(env: dict[str, Any], prefix: str) -> Iterator[Any]:
    yield from demo_server(env, prefix)


def test_resize_and_confirm_with_the_cli(cloud: Any, admin: Any, env: dict[str, Any], server: Any) -> None:
    demo = env["demo"]
    before = raw_server(cloud, admin, server.id)
    source = before["OS-EXT-SRV-ATTR:host"]
    used = usage(cloud, admin)
    ports = {p.id for p in admin.network.ports(device_id=server.id)}

    cloud.cli("server", "resize", "--flavor", "3", "--wait", server.id, cloud="pocketstack-demo")
    wait_status(demo, server.id, "VERIFY_RESIZE")
    raw = raw_server(cloud, admin, server.id)
    dest = raw["OS-EXT-SRV-ATTR:host"]
    assert dest != source and raw["OS-EXT-STS:vm_state"] == "resized" and raw["OS-EXT-STS:power_state"] == 1
    assert raw["flavor"]["vcpus"] == 2 and raw["flavor"]["ram"] == 4096 and raw["flavor"]["original_name"] == \
        "m1.medium"
    assert raw["addresses"] == before["addresses"]
    assert {p.binding_host_id for p in admin.network.ports(device_id=server.id)} == {dest}
    # both claims while it waits: the old flavor on the source, the new one on the destination
    now = usage(cloud, admin)
    assert now[source] == used[source] and now[dest] == (used[dest][0] + 2, used[dest][1] + 4096)
    mig = migrations(cloud, admin, f"?instance_uuid={server.id}")
    assert len(mig) == 1 and mig[0]["status"] == "finished" and mig[0]["migration_type"] == "resize"
    assert mig[0]["source_compute"] == source and mig[0]["dest_compute"] == dest and mig[0]["uuid"]
    assert mig[0]["dest_host"]  # the destination's IP, as Nova
    assert mig[0]["old_instance_type_id"] != mig[0]["new_instance_type_id"]
    assert events(cloud, admin, server.id, "resize") == {
        "conductor_migrate_server": "Success", "compute_prep_resize": "Success",
        "compute_resize_instance": "Success", "compute_finish_resize": "Success"}
    console = api(cloud, demo, "POST", f"/servers/{server.id}/action", {"os-getConsoleOutput": {}}).json()
    assert f"started on {dest} with 2 vCPUs, 4096 MiB" in console["output"]
    # the trace of the resize request: API -> conductor -> scheduler -> destination -> source -> destination
    actions = api(cloud, admin, "GET", f"/servers/{server.id}/os-instance-actions").json()["instanceActions"]
    request_id = next(a["request_id"] for a in actions if a["action"] == "resize")
    trace = asyncio.run(collect_request(cloud.settings, request_id))
    assert trace is not None
    hops = {(h["kind"], h["operation"]): h["to"] for h in trace["hops"]}
    assert hops[("CAST", "migrate_server")] == "conductor"
    assert ("CALL", "select_destinations") in hops
    assert hops[("CAST", "prep_resize")] == f"compute.{dest}"
    assert hops[("CAST", "resize_instance")] == f"compute.{source}"
    assert hops[("CAST", "finish_resize")] == f"compute.{dest}"
    assert {"fake driver: migrate disk and power off", "fake driver: finish migration"} <= {
        h["operation"] for h in trace["hops"] if h["kind"] == "WORK"}

    cloud.cli("server", "resize", "confirm", server.id, cloud="pocketstack-demo")
    wait_status(demo, server.id, "ACTIVE")
    after = usage(cloud, admin)
    assert after[source] == (used[source][0] - 1, used[source][1] - 512)  # the source is free of it
    assert after[dest] == now[dest]
    assert migrations(cloud, admin, f"?instance_uuid={server.id}")[0]["status"] == "confirmed"
    assert events(cloud, admin, server.id, "confirmResize") == {"compute_confirm_resize": "Success"}
    assert {p.id for p in admin.network.ports(device_id=server.id)} == ports
    assert raw_server(cloud, admin, server.id)["flavor"]["vcpus"] == 2


def test_resize_and_revert(cloud: Any, admin: Any, env: dict[str, Any], server: Any) -> None:
    demo = env["demo"]
    source = raw_server(cloud, admin, server.id)["OS-EXT-SRV-ATTR:host"]
    used = usage(cloud, admin)
    path = f"/servers/{server.id}/action"
    assert api(cloud, demo, "POST", path, {"resize": {"flavorRef": "3"}}).status_code == 202
    wait_status(demo, server.id, "VERIFY_RESIZE")
    assert api(cloud, demo, "POST", path, {"revertResize": None}).status_code == 202
    wait_status(demo, server.id, "ACTIVE")
    raw = raw_server(cloud, admin, server.id)
    assert raw["OS-EXT-SRV-ATTR:host"] == source and raw["flavor"]["vcpus"] == 1 and raw["flavor"]["ram"] == 512
    assert raw["OS-EXT-STS:power_state"] == 1
    assert usage(cloud, admin) == used  # only the source's claim, as before
    assert {p.binding_host_id for p in admin.network.ports(device_id=server.id)} == {source}
    assert migrations(cloud, admin, f"?instance_uuid={server.id}")[0]["status"] == "reverted"
    assert events(cloud, admin, server.id, "revertResize") == {"compute_revert_resize": "Success",
                                                               "compute_finish_revert_resize": "Success"}
    # not resized any more: neither confirm nor revert
    assert api(cloud, demo, "POST", path, {"confirmResize": None}).status_code == 409
    assert api(cloud, demo, "POST", path, {"revertResize": None}).status_code == 409


def test_migrate_and_confirm_with_the_cli(cloud: Any, admin: Any, env: dict[str, Any], server: Any) -> None:
    demo = env["demo"]
    source = raw_server(cloud, admin, server.id)["OS-EXT-SRV-ATTR:host"]
    used = usage(cloud, admin)
    path = f"/servers/{server.id}/action"
    assert api(cloud, demo, "POST", path, {"migrate": None}).status_code == 403  # admin only
    resp = api(cloud, admin, "POST", path, {"migrate": {"host": source}}, version="2.56")
    assert resp.status_code == 400 and "host where the server exists" in resp.json()["badRequest"]["message"]
    resp = api(cloud, admin, "POST", path, {"migrate": {"host": "no-such-host"}}, version="2.56")
    assert resp.status_code == 400 and "no-such-host could not be found" in resp.json()["badRequest"]["message"]
    assert api(cloud, admin, "POST", path, {"migrate": {"host": 1}}, version="2.56").status_code == 400
    assert api(cloud, admin, "POST", path, {"migrate": {"bogus": 1}}, version="2.56").status_code == 400

    cloud.cli("server", "migrate", "--wait", server.id)
    wait_status(demo, server.id, "VERIFY_RESIZE")
    raw = raw_server(cloud, admin, server.id)
    dest = raw["OS-EXT-SRV-ATTR:host"]
    assert dest != source and raw["flavor"]["vcpus"] == 1
    now = usage(cloud, admin)
    assert now[source] == used[source] and now[dest] == (used[dest][0] + 1, used[dest][1] + 512)
    mig = migrations(cloud, admin, f"?instance_uuid={server.id}&migration_type=migration")
    assert len(mig) == 1 and mig[0]["old_instance_type_id"] == mig[0]["new_instance_type_id"]
    assert migrations(cloud, admin, f"?instance_uuid={server.id}&migration_type=resize") == []
    cloud.cli("server", "migrate", "confirm", server.id)
    wait_status(demo, server.id, "ACTIVE")
    after = usage(cloud, admin)
    assert after[source] == (used[source][0] - 1, used[source][1] - 512) and after[dest] == now[dest]
    assert events(cloud, admin, server.id, "migrate")["compute_finish_resize"] == "Success"


def test_failure_on_the_destination_rolls_back(cloud: Any, admin: Any, env: dict[str, Any], server: Any,
                                               monkeypatch: Any) -> None:
    demo = env["demo"]
    source = raw_server(cloud, admin, server.id)["OS-EXT-SRV-ATTR:host"]
    used = usage(cloud, admin)
    monkeypatch.setattr(FakeDriver, "fail_finish_migration_on", {h: "disk lost in transit" for h in used})
    path = f"/servers/{server.id}/action"
    assert api(cloud, demo, "POST", path, {"resize": {"flavorRef": "3"}}).status_code == 202
    wait_for(lambda: migrations(cloud, admin, f"?instance_uuid={server.id}&status=error"))
    back = wait_status(demo, server.id, "ACTIVE")
    raw = raw_server(cloud, admin, server.id)
    assert raw["OS-EXT-SRV-ATTR:host"] == source and raw["flavor"]["vcpus"] == 1 and back.power_state == 1
    assert "fault" not in raw  # shown only for ERROR, as Nova; the event has failed
    assert usage(cloud, admin) == used  # no claim left on the destination, the source's as before
    result = events(cloud, admin, server.id, "resize")
    assert result["compute_finish_resize"] == "Error" and result["compute_resize_instance"] == "Success"
    assert {p.binding_host_id for p in admin.network.ports(device_id=server.id)} == {source}
    monkeypatch.setattr(FakeDriver, "fail_finish_migration_on", {})
    # and it can be resized again
    assert api(cloud, demo, "POST", path, {"resize": {"flavorRef": "3"}}).status_code == 202
    wait_status(demo, server.id, "VERIFY_RESIZE")
    assert api(cloud, demo, "POST", path, {"confirmResize": None}).status_code == 204
    wait_status(demo, server.id, "ACTIVE")


def test_no_valid_host_leaves_the_server_where_it_was(cloud: Any, admin: Any, env: dict[str, Any], server: Any,
                                                      prefix: str) -> None:
    demo = env["demo"]
    flavor = admin.compute.create_flavor(name=f"{prefix}-huge", ram=512, vcpus=1, disk=100_000)
    try:
        used = usage(cloud, admin)
        assert api(cloud, admin, "POST", f"/servers/{server.id}/action",
                   {"resize": {"flavorRef": flavor.id}}).status_code == 202
        wait_for(lambda: migrations(cloud, admin, f"?instance_uuid={server.id}&status=error"))
        wait_status(demo, server.id, "ACTIVE")
        raw = raw_server(cloud, admin, server.id)
        assert raw["flavor"]["disk"] == 1 and raw["OS-EXT-STS:vm_state"] == "active"
        assert usage(cloud, admin) == used
        assert events(cloud, admin, server.id, "resize") == {"conductor_migrate_server": "Error"}
    finally:
        admin.compute.delete_flavor(flavor)


def test_resize_confirm_window(cloud: Any, admin: Any, env: dict[str, Any], server: Any,
                               monkeypatch: Any) -> None:
    demo = env["demo"]
    settings = settings_of(cloud)
    assert settings.compute.resize_confirm_window == 0  # off by default, as Nova
    assert api(cloud, demo, "POST", f"/servers/{server.id}/action",
               {"resize": {"flavorRef": "3"}}).status_code == 202
    wait_status(demo, server.id, "VERIFY_RESIZE")
    monkeypatch.setattr(settings.compute, "resize_confirm_window", 1.0)
    monkeypatch.setattr(settings.compute, "build_check_interval", 0.5)
    wait_status(demo, server.id, "ACTIVE", timeout=30)
    assert migrations(cloud, admin, f"?instance_uuid={server.id}")[0]["status"] == "confirmed"
    assert events(cloud, admin, server.id, "confirmResize") == {"compute_confirm_resize": "Success"}


def test_errors_and_quota(cloud: Any, admin: Any, env: dict[str, Any], server: Any) -> None:
    demo = env["demo"]
    path = f"/servers/{server.id}/action"

    def message(resp: Any) -> str:
        return next(iter(resp.json().values()))["message"]

    resp = api(cloud, demo, "POST", path, {"resize": {"flavorRef": "1"}})
    assert resp.status_code == 400 and message(resp) == "When resizing, instances must change flavor!"
    resp = api(cloud, demo, "POST", path, {"resize": {"flavorRef": "no-such-flavor"}})
    assert resp.status_code == 400 and message(resp) == "Unable to locate requested flavor."
    assert api(cloud, demo, "POST", path, {"resize": {}}).status_code == 400
    assert api(cloud, demo, "POST", path, {"resize": {"flavorRef": "3", "bogus": 1}}).status_code == 400
    assert api(cloud, demo, "POST", path, {"confirmResize": None}).status_code == 409
    # a smaller root disk: 20 GB (m1.small) down to 1 GB (m1.tiny)
    assert api(cloud, demo, "POST", path, {"resize": {"flavorRef": "2"}}).status_code == 202
    wait_status(demo, server.id, "VERIFY_RESIZE")
    resp = api(cloud, demo, "POST", path, {"resize": {"flavorRef": "3"}})
    assert resp.status_code == 409 and "vm_state resized" in message(resp)
    assert api(cloud, demo, "POST", path, {"confirmResize": None}).status_code == 204
    wait_status(demo, server.id, "ACTIVE")
    resp = api(cloud, demo, "POST", path, {"resize": {"flavorRef": "1"}})
    assert resp.status_code == 400 and "Resize of a disk to a smaller size is not possible" in message(resp)
    # the quota of the delta of cores
    project = demo.current_project_id
    cores = api(cloud, admin, "GET", f"/os-quota-sets/{project}/detail").json()["quota_set"]["cores"]
    try:
        api(cloud, admin, "PUT", f"/os-quota-sets/{project}", {"quota_set": {"cores": cores["in_use"]}})
        resp = api(cloud, demo, "POST", path, {"resize": {"flavorRef": "3"}})
        assert resp.status_code == 403 and message(resp).startswith("Quota exceeded for cores: Requested 1, but "
                                                                    "already used")
    finally:
        api(cloud, admin, "PUT", f"/os-quota-sets/{project}", {"quota_set": {"cores": cores["limit"]}})
    assert raw_server(cloud, admin, server.id)["OS-EXT-STS:task_state"] is None


def test_os_migrations_listing(cloud: Any, admin: Any, env: dict[str, Any], server: Any) -> None:
    demo = env["demo"]
    path = f"/servers/{server.id}/action"
    source = raw_server(cloud, admin, server.id)["OS-EXT-SRV-ATTR:host"]
    for body in (None, {"host": source}):  # before 2.56 the body is not read (the host too), as Nova
        assert api(cloud, admin, "POST", path, {"migrate": body}, version="2.55").status_code == 202
        wait_status(demo, server.id, "VERIFY_RESIZE")
        assert api(cloud, admin, "POST", path, {"confirmResize": None}).status_code == 204
        wait_status(demo, server.id, "ACTIVE")
    mine = migrations(cloud, admin, f"?instance_uuid={server.id}")
    assert len(mine) == 2 and mine[0]["id"] > mine[1]["id"]  # newest first
    listed = cloud.cli("server", "migration", "list", "--server", server.id, "-f", "json")
    assert [m["Id"] for m in listed] == [m["id"] for m in mine], listed
    assert {m["Status"] for m in listed} == {"confirmed"} and {m["Type"] for m in listed} == {"migration"}
    assert mine[1]["source_compute"] == source and mine[0]["dest_compute"] == source
    assert {m["id"] for m in migrations(cloud, admin, f"?instance_uuid={server.id}&host={source}")} == \
        {m["id"] for m in mine}
    assert [m["id"] for m in migrations(cloud, admin, f"?instance_uuid={server.id}&source_compute={source}")] == \
        [mine[1]["id"]]
    assert migrations(cloud, admin, f"?instance_uuid={server.id}&status=finished") == []
    # 2.59 paging by uuid
    page = api(cloud, admin, "GET", f"/os-migrations?instance_uuid={server.id}&limit=1", version="2.59").json()
    assert [m["id"] for m in page["migrations"]] == [mine[0]["id"]] and page["migrations_links"]
    rest = migrations(cloud, admin, f"?instance_uuid={server.id}&marker={mine[0]['uuid']}")
    assert [m["id"] for m in rest] == [mine[1]["id"]]
    assert api(cloud, admin, "GET", "/os-migrations?marker=nope", version="2.59").status_code == 400
    assert migrations(cloud, admin, f"?instance_uuid={server.id}&changes-since=2999-01-01T00:00:00Z") == []
    assert len(migrations(cloud, admin, f"?instance_uuid={server.id}&changes-before=2999-01-01T00:00:00Z",
                          version="2.66")) == 2
    assert api(cloud, admin, "GET", "/os-migrations?changes-since=yesterday", version="2.59").status_code == 400
    assert migrations(cloud, admin, f"?instance_uuid={server.id}&hidden=true") == []  # none is hidden
    old = migrations(cloud, admin, f"?instance_uuid={server.id}", version="2.1")
    assert "uuid" not in old[0] and "migration_type" not in old[0] and len(old) == 2
    assert api(cloud, admin, "GET", "/os-migrations?migration_type=bogus").status_code == 400
    assert api(cloud, demo, "GET", "/os-migrations").status_code == 403
    # servers/{id}/migrations lists live migrations in progress only (as Nova): none
    resp = api(cloud, admin, "GET", f"/servers/{server.id}/migrations", version="2.23")
    assert resp.status_code == 200 and resp.json() == {"migrations": []}
    resp = api(cloud, admin, "GET", f"/servers/{server.id}/migrations/{mine[0]['id']}", version="2.23")
    assert resp.status_code == 404
    assert api(cloud, demo, "GET", f"/servers/{server.id}/migrations", version="2.23").status_code == 403


def test_delete_while_verify_resize_frees_both_hosts(cloud: Any, admin: Any, env: dict[str, Any],
                                                     prefix: str) -> None:
    demo = env["demo"]
    used = usage(cloud, admin)
    created = demo.compute.create_server(name=f"{prefix}-gone", flavor_id="1", image_id=env["image"].id,
                                         networks=[{"uuid": env["network"].id}])
    demo.compute.wait_for_server(created, wait=30)
    assert api(cloud, demo, "POST", f"/servers/{created.id}/action",
               {"resize": {"flavorRef": "3"}}).status_code == 202
    wait_status(demo, created.id, "VERIFY_RESIZE")
    demo.compute.delete_server(created)
    demo.compute.wait_for_delete(created, wait=30)
    assert wait_for(lambda: usage(cloud, admin) == used)
    agents = next(s for s in cloud.thread.cloud.services if s.name == "compute").agents
    assert all(created.id not in a.driver.resize_sources and created.id not in a.driver.instances
               for a in agents)


def test_a_stopped_server_stays_stopped_through_resize_and_revert(cloud: Any, admin: Any, env: dict[str, Any],
                                                                  server: Any) -> None:
    demo = env["demo"]
    path = f"/servers/{server.id}/action"
    assert api(cloud, demo, "POST", path, {"os-stop": None}).status_code == 202
    wait_status(demo, server.id, "SHUTOFF")
    for finish, after in (("revertResize", 1), ("confirmResize", 2)):
        assert api(cloud, demo, "POST", path, {"resize": {"flavorRef": "3"}}).status_code == 202
        resized = wait_status(demo, server.id, "VERIFY_RESIZE")
        assert resized.power_state == 4  # not started on the destination
        assert api(cloud, demo, "POST", path, {finish: None}).status_code in (202, 204)
        back = wait_status(demo, server.id, "SHUTOFF")
        assert back.power_state == 4 and raw_server(cloud, admin, server.id)["flavor"]["vcpus"] == after


def test_a_move_no_host_advances_is_ended(cloud: Any, admin: Any, env: dict[str, Any], server: Any,
                                          monkeypatch: Any) -> None:
    """A move stuck past build_timeout (a lost message, a hung host) ends in ERROR with a fault and its claims
    back on the source; the source, once it answers, finds the move over and runs the guest again."""
    demo = env["demo"]
    conductor = next(s for s in cloud.thread.cloud.services if s.name == "compute").conductor
    settings = settings_of(cloud)
    used = usage(cloud, admin)
    monkeypatch.setattr(FakeDriver, "slow_migration_on", {h: 3.0 for h in used})
    assert api(cloud, demo, "POST", f"/servers/{server.id}/action",
               {"resize": {"flavorRef": "3"}}).status_code == 202
    wait_for(lambda: raw_server(cloud, admin, server.id)["OS-EXT-STS:task_state"] == "resize_migrating")
    assert cloud.thread.call(conductor.reap_moves) == []  # not stuck yet
    monkeypatch.setattr(settings.compute, "build_timeout", 0.2)
    time.sleep(0.3)
    try:
        assert cloud.thread.call(conductor.reap_moves) == [server.id]
    finally:
        monkeypatch.setattr(settings.compute, "build_timeout", 600.0)
    raw = raw_server(cloud, admin, server.id)
    assert raw["status"] == "ERROR" and "timed out" in raw["fault"]["message"]
    assert raw["flavor"]["vcpus"] == 1 and usage(cloud, admin) == used
    wait_for(lambda: events(cloud, admin, server.id, "resize").get("compute_resize_instance") == "Error")
    back = wait_status(demo, server.id, "ACTIVE")
    assert back.power_state == 1 and usage(cloud, admin) == used


def test_delete_during_a_move_leaves_nothing(cloud: Any, admin: Any, env: dict[str, Any], prefix: str,
                                             monkeypatch: Any) -> None:
    demo = env["demo"]
    used = usage(cloud, admin)
    agents = next(s for s in cloud.thread.cloud.services if s.name == "compute").agents
    monkeypatch.setattr(FakeDriver, "slow_migration_on", {h: 1.5 for h in used})
    created = demo.compute.create_server(name=f"{prefix}-mid", flavor_id="1", image_id=env["image"].id,
                                         networks=[{"uuid": env["network"].id}])
    demo.compute.wait_for_server(created, wait=30)
    assert api(cloud, demo, "POST", f"/servers/{created.id}/action",
               {"resize": {"flavorRef": "3"}}).status_code == 202
    wait_for(lambda: raw_server(cloud, admin, created.id)["OS-EXT-STS:task_state"] == "resize_migrating")
    demo.compute.delete_server(created)
    demo.compute.wait_for_delete(created, wait=30)
    assert wait_for(lambda: usage(cloud, admin) == used)
    assert wait_for(lambda: all(created.id not in a.driver.resize_sources and created.id not in a.driver.instances
                                for a in agents))
    assert migrations(cloud, admin, f"?instance_uuid={created.id}")[0]["status"] == "error"
