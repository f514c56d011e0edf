"""The boot flow through the real API on a cloud of small fake hosts: capacity, heartbeats, reschedules, cleanup."""

from __future__ import annotations

import concurrent.futures
import time
import uuid

import openstack.exceptions
import pytest
import requests
from conftest import Cloud, make_settings

from pocketstack.compute.virt.driver import Capabilities
from pocketstack.compute.virt.fake import FakeDriver

# Two hosts of 2 vCPUs / 1024 MB / 10 GB with allocation ratios 1.0: each holds exactly two m1.tiny (1 vCPU,
# 512 MB, 1 GB), so the cloud holds K = 4.
HOSTS = 2
PER_HOST = 2
K = HOSTS * PER_HOST


@pytest.fixture(scope="module")
def small_cloud(tmp_path_factory):
    settings = make_settings(tmp_path_factory.mktemp("sched"), compute={
        "fake_hosts": HOSTS, "fake_vcpus": 2, "fake_memory_mb": 1024, "fake_disk_gb": 10,
        "cpu_allocation_ratio": 1.0, "ram_allocation_ratio": 1.0, "disk_allocation_ratio": 1.0,
        "report_interval": 0.5, "service_down_time": 3.0, "quota_instances": 100, "quota_cores": 100,
        "quota_ram": 1 << 20})
    cloud = Cloud(settings).start()
    conn = cloud.conn()
    image = conn.image.create_image(name="sched-image", disk_format="raw", container_format="bare",
                                    data=b"\0" * 4096, visibility="public")
    network = conn.network.create_network(name="sched-net")
    conn.network.create_subnet(network_id=network.id, cidr="10.77.0.0/24", ip_version=4)
    cloud.image_id, cloud.network_id = image.id, network.id
    try:
        yield cloud
    finally:
        cloud.stop()


def api(cloud, conn, method, path, **kwargs):
    headers = {"X-Auth-Token": conn.session.get_token(), "OpenStack-API-Version": "compute 2.79"}
    return requests.request(method, cloud.url("compute") + "/v2.1" + path, headers=headers, timeout=30, **kwargs)


def boot(cloud, conn, server_name, **extra):
    body = {"server": {"name": server_name, "imageRef": cloud.image_id, "flavorRef": "1",
                       "networks": [{"uuid": cloud.network_id}], **extra}}
    return api(cloud, conn, "POST", "/servers", json=body)


def wait_final(cloud, conn, server_id, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = api(cloud, conn, "GET", f"/servers/{server_id}").json()["server"]
        if body["status"] in ("ACTIVE", "ERROR"):
            return body
        time.sleep(0.1)
    raise AssertionError(f"server {server_id} still {body['status']} after {timeout}s")


def delete_all(cloud, conn, ids):
    for server_id in ids:
        api(cloud, conn, "DELETE", f"/servers/{server_id}")
    deadline = time.monotonic() + 30
    for server_id in ids:
        while api(cloud, conn, "GET", f"/servers/{server_id}").status_code != 404:
            assert time.monotonic() < deadline, f"{server_id} was not deleted"
            time.sleep(0.1)


def allocations(cloud) -> list[tuple]:
    from sqlalchemy import select

    from pocketstack.compute import models as m

    async def read():
        compute = next(s for s in cloud.thread.cloud.services if s.name == "compute")
        return await compute.db.run(
            lambda session: session.execute(select(m.Allocation.consumer_uuid, m.Allocation.node_id)).all(),
            write=False)

    return cloud.thread.call(read)


def test_exactly_k_fit_and_no_host_is_overbooked(small_cloud):
    conn = small_cloud.conn()
    with concurrent.futures.ThreadPoolExecutor(max_workers=2 * K) as pool:
        responses = list(pool.map(lambda i: boot(small_cloud, conn, f"fit-{i}"), range(2 * K)))
    assert all(r.status_code == 202 for r in responses), [r.text for r in responses]
    ids = [r.json()["server"]["id"] for r in responses]
    final = [wait_final(small_cloud, conn, i) for i in ids]
    active = [s for s in final if s["status"] == "ACTIVE"]
    errors = [s for s in final if s["status"] == "ERROR"]
    assert len(active) == K and len(errors) == K
    assert all("No valid host was found" in s["fault"]["message"] for s in errors)
    per_host: dict[str, int] = {}
    for s in active:
        per_host[s["OS-EXT-SRV-ATTR:host"]] = per_host.get(s["OS-EXT-SRV-ATTR:host"], 0) + 1
    assert sorted(per_host.values()) == [PER_HOST] * HOSTS
    assert len(allocations(small_cloud)) == K  # failed builds hold no claim
    delete_all(small_cloud, conn, ids)
    assert allocations(small_cloud) == []
    assert list(conn.network.ports(network_id=small_cloud.network_id, device_owner="compute:nova")) == []


def test_spawn_failure_is_rescheduled_to_another_host(small_cloud):
    conn = small_cloud.conn()
    hosts = sorted(a.host for a in next(s for s in small_cloud.thread.cloud.services if s.name == "compute").agents)
    FakeDriver.fail_spawn_on[hosts[0]] = "injected spawn failure"
    try:
        ids = []
        for i in range(2):
            resp = boot(small_cloud, conn, f"resched-{i}")
            assert resp.status_code == 202
            ids.append(resp.json()["server"]["id"])
        servers = [wait_final(small_cloud, conn, i) for i in ids]
    finally:
        FakeDriver.fail_spawn_on.clear()
    assert all(s["status"] == "ACTIVE" and s["OS-EXT-SRV-ATTR:host"] == hosts[1] for s in servers)
    # the failed attempt left no port behind: each server has exactly one
    for server in servers:
        assert len(list(conn.network.ports(device_id=server["id"]))) == 1
    delete_all(small_cloud, conn, ids)


def test_all_hosts_failing_ends_in_error_with_the_reason(small_cloud):
    conn = small_cloud.conn()
    hosts = [a.host for a in next(s for s in small_cloud.thread.cloud.services if s.name == "compute").agents]
    for host in hosts:
        FakeDriver.fail_spawn_on[host] = "disk on fire"
    try:
        resp = boot(small_cloud, conn, "doomed")
        server = wait_final(small_cloud, conn, resp.json()["server"]["id"])
    finally:
        FakeDriver.fail_spawn_on.clear()
    assert server["status"] == "ERROR"
    assert "disk on fire" in server["fault"]["message"]
    assert list(conn.network.ports(device_id=server["id"])) == []
    assert server["id"] not in [a[0] for a in allocations(small_cloud)]
    delete_all(small_cloud, conn, [server["id"]])


def test_host_without_heartbeat_gets_no_new_servers(small_cloud):
    conn = small_cloud.conn()
    compute = next(s for s in small_cloud.thread.cloud.services if s.name == "compute")
    silent = compute.agents[0]

    async def silence():
        for task in silent._tasks:
            task.cancel()

    small_cloud.thread.call(silence)
    time.sleep(small_cloud.settings.compute.service_down_time + 1)
    try:
        ids = []
        for i in range(2):
            resp = boot(small_cloud, conn, f"alive-{i}")
            ids.append(resp.json()["server"]["id"])
        servers = [wait_final(small_cloud, conn, i) for i in ids]
        assert all(s["status"] == "ACTIVE" for s in servers)
        assert all(s["OS-EXT-SRV-ATTR:host"] != silent.host for s in servers)
        delete_all(small_cloud, conn, ids)
    finally:
        async def revive():
            silent._tasks.clear()
            await silent.start()

        small_cloud.thread.call(revive)


def _set_capabilities(cloud, agents, capabilities) -> None:
    """Give these agents' drivers other capabilities (None: their class's again) and report them at once."""
    async def report():
        for agent in agents:
            if capabilities is None:
                vars(agent.driver).pop("capabilities", None)
            else:
                agent.driver.capabilities = capabilities
            await agent.report()

    cloud.thread.call(report)


def test_driver_capabilities_reach_the_scheduler_and_the_api(small_cloud):
    conn = small_cloud.conn()
    agents = sorted(next(s for s in small_cloud.thread.cloud.services if s.name == "compute").agents,
                    key=lambda a: a.host)
    no_raw = Capabilities(image_types=frozenset({"qcow2"}), attach_interface=True)
    ids = []
    try:
        _set_capabilities(small_cloud, agents[:1], no_raw)  # the image is raw: only the second host boots it
        for i in range(2):
            ids.append(boot(small_cloud, conn, f"raw-{i}").json()["server"]["id"])
        servers = [wait_final(small_cloud, conn, i) for i in ids]
        assert [s["OS-EXT-SRV-ATTR:host"] for s in servers] == [agents[1].host] * 2, servers

        _set_capabilities(small_cloud, agents[1:], Capabilities(image_types=frozenset({"raw"})))  # no hot-plug
        attach = api(small_cloud, conn, "POST", f"/servers/{ids[0]}/os-interface",
                     json={"interfaceAttachment": {"net_id": small_cloud.network_id}})
        assert attach.status_code == 400, attach.text
        assert f"Attaching interfaces is not supported for instance {ids[0]}." in attach.text
        assert len(list(conn.network.ports(device_id=ids[0]))) == 1  # nothing was allocated

        _set_capabilities(small_cloud, agents[1:], no_raw)  # now no host boots raw images
        nowhere = wait_final(small_cloud, conn, boot(small_cloud, conn, "raw-nowhere").json()["server"]["id"])
        ids.append(nowhere["id"])
        assert nowhere["status"] == "ERROR" and "No valid host was found" in nowhere["fault"]["message"]
    finally:
        _set_capabilities(small_cloud, agents, None)
        delete_all(small_cloud, conn, ids)


@pytest.mark.parametrize("change,status,needle", [
    ({"flavorRef": "no-such-flavor"}, 400, "Flavor no-such-flavor could not be found."),
    ({"imageRef": str(uuid.uuid4())}, 400, "could not be found."),
    ({"imageRef": "not-a-uuid"}, 400, "is not a 'uuid'"),
    ({"networks": [{"uuid": str(uuid.uuid4())}]}, 400, "could not be found."),
    ({"networks": [{"uuid": "bad"}]}, 400, "not in proper format"),
    ({"name": ""}, 400, "name"),
    ({"key_name": "nope"}, 400, "Invalid key_name provided."),
    ({"bogus": 1}, 400, "bogus"),
    ({"user_data": "%%%"}, 400, "base 64"),
])
def test_bad_boot_requests_are_400_and_leave_nothing(small_cloud, change, status, needle):
    conn = small_cloud.conn()
    before = api(small_cloud, conn, "GET", "/servers").json()["servers"]
    resp = boot(small_cloud, conn, "bad", **change)
    assert resp.status_code == status, resp.text
    fault = next(iter(resp.json().values()))
    assert fault["code"] == status and needle in fault["message"]
    assert api(small_cloud, conn, "GET", "/servers").json()["servers"] == before


def test_other_projects_servers_are_invisible(small_cloud):
    admin = small_cloud.conn()
    demo = small_cloud.conn("pocketstack-demo")
    resp = boot(small_cloud, admin, "admins-own")
    server_id = resp.json()["server"]["id"]
    wait_final(small_cloud, admin, server_id)
    assert api(small_cloud, demo, "GET", f"/servers/{server_id}").status_code == 404
    assert server_id not in [s["id"] for s in api(small_cloud, demo, "GET", "/servers").json()["servers"]]
    assert api(small_cloud, demo, "POST", f"/servers/{server_id}/action", json={"os-stop": None}).status_code == 404
    assert api(small_cloud, demo, "DELETE", f"/servers/{server_id}").status_code == 404
    assert api(small_cloud, demo, "GET", "/servers?all_tenants=1").status_code == 403
    assert wait_final(small_cloud, admin, server_id)["status"] == "ACTIVE"
    delete_all(small_cloud, admin, [server_id])


def test_quota_exceeded_is_403_with_novas_message(small_cloud):
    from pocketstack.compute import models as m

    conn = small_cloud.conn()
    project_id = conn.current_project_id

    async def set_quota(limit):
        compute = next(s for s in small_cloud.thread.cloud.services if s.name == "compute")

        def _write(session) -> None:
            row = session.get(m.Quota, (project_id, "instances"))
            if limit is None:
                if row is not None:
                    session.delete(row)
            elif row is None:
                session.add(m.Quota(project_id=project_id, resource="instances", hard_limit=limit))
            else:
                row.hard_limit = limit

        return await compute.db.run(_write, write=True)

    small_cloud.thread.call(lambda: set_quota(0))
    try:
        resp = boot(small_cloud, conn, "over-quota")
        assert resp.status_code == 403
        assert resp.json()["forbidden"]["message"].startswith("Quota exceeded for instances: Requested 1, but already "
                                                              "used 0 of 0 instances")
    finally:
        small_cloud.thread.call(lambda: set_quota(None))


def test_power_actions_and_state_checks(small_cloud):
    conn = small_cloud.conn()
    server_id = boot(small_cloud, conn, "powered").json()["server"]["id"]
    wait_final(small_cloud, conn, server_id)

    def action(body):
        return api(small_cloud, conn, "POST", f"/servers/{server_id}/action", json=body)

    def wait_status(status):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            body = api(small_cloud, conn, "GET", f"/servers/{server_id}").json()["server"]
            if body["status"] == status and body["OS-EXT-STS:task_state"] is None:
                return body
            time.sleep(0.05)
        raise AssertionError(f"not {status}: {body['status']}")

    assert action({"os-start": None}).status_code == 409  # already running
    assert action({"os-stop": None}).status_code == 202
    assert wait_status("SHUTOFF")["OS-EXT-STS:power_state"] == 4
    assert action({"os-stop": None}).status_code == 409
    assert action({"os-start": None}).status_code == 202
    wait_status("ACTIVE")
    assert action({"reboot": {"type": "HARD"}}).status_code == 202
    wait_status("ACTIVE")
    assert action({"reboot": {"type": "sideways"}}).status_code == 400
    assert action({"pause": None}).status_code == 202
    wait_status("PAUSED")
    assert action({"unpause": None}).status_code == 202
    wait_status("ACTIVE")
    assert action({"suspend": None}).status_code == 202
    wait_status("SUSPENDED")
    assert action({"resume": None}).status_code == 202
    wait_status("ACTIVE")
    console = action({"os-getConsoleOutput": {"length": 50}})
    assert console.status_code == 200 and "login:" in console.json()["output"]
    tail = action({"os-getConsoleOutput": {"length": 3}}).json()["output"]
    assert len(tail.split("\n")) == 3  # the last 3 pieces split at newlines, as Nova's _tail_log
    assert action({"lock": None}).status_code == 202
    demo_like = small_cloud.conn("pocketstack-demo")
    assert api(small_cloud, demo_like, "DELETE", f"/servers/{server_id}").status_code == 404
    assert action({"unlock": None}).status_code == 202
    assert action({"no-such-action": None}).status_code == 400
    delete_all(small_cloud, conn, [server_id])


def test_sdk_create_server_wait(small_cloud):
    conn = small_cloud.conn()
    server = conn.compute.create_server(name="sdk-wait", image_id=small_cloud.image_id, flavor_id="1",
                                        networks=[{"uuid": small_cloud.network_id}])
    server = conn.compute.wait_for_server(server, wait=30)
    assert server.status == "ACTIVE"
    assert server.addresses["sched-net"][0]["addr"].startswith("10.77.0.")
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=30)
    with pytest.raises(openstack.exceptions.NotFoundException):
        conn.compute.get_server(server.id)
