"""Issue 16's compute API additions, driven by openstacksdk and the `openstack` CLI: the generated adminPass (and how
it reaches the guest's metadata), `os-server-password`, `/servers/{id}/ips`, the proxy APIs of microversions <= 2.35
(images, security groups and rules, floating IPs and pools, networks, volumes and snapshots) and the server
actions that use them, version discovery and `/extensions`; bad input and leftovers."""

from __future__ import annotations

import time
from typing import Any

import openstack
import pytest
import requests

from pocketstack.common.service import shared_secret
from pocketstack.compute.metadata.service_app import sign_instance_id
from pocketstack.compute.passwords import PASSWORD_LENGTH
from pocketstack.compute.spec import METADATA_SECRET_KEY


def api(cloud: Any, conn: Any, method: str, path: str, body: Any = None, version: str = "2.1",
        **params: str) -> requests.Response:
    return requests.request(method, cloud.url("compute") + "/v2.1" + path, json=body, params=params or None,
                            timeout=30, headers={"X-Auth-Token": conn.auth_token,
                                                 "OpenStack-API-Version": f"compute {version}"})


def metadata(cloud: Any, method: str, path: str, server: Any, data: bytes | None = None) -> requests.Response:
    secret = shared_secret(cloud.settings, "metadata", METADATA_SECRET_KEY)
    headers = {"X-Instance-ID": server.id, "X-Tenant-ID": server.project_id,
               "X-Instance-ID-Signature": sign_instance_id(secret, server.id)}
    return requests.request(method, cloud.url("metadata") + path, headers=headers, data=data, timeout=10)


@pytest.fixture(scope="module")
def env(cloud: Any, demo: Any) -> Any:
    """An image, a network with a subnet and a router to an external network with a subnet of floating IPs."""
    admin = cloud.conn()
    image = demo.image.create_image(name="px-image", disk_format="raw", container_format="bare",
                                    data=b"\0" * 512)
    network = demo.network.create_network(name="px-net")
    subnet = demo.network.create_subnet(network_id=network.id, cidr="10.91.0.0/24", ip_version=4)
    external = admin.network.create_network(name="px-public", is_router_external=True)
    admin.network.create_subnet(network_id=external.id, cidr="100.99.0.0/24", ip_version=4)
    router = demo.network.create_router(name="px-router", external_gateway_info={"network_id": external.id})
    demo.network.add_interface_to_router(router, subnet=subnet.id)
    yield {"image": image, "network": network, "external": external}
    demo.network.remove_interface_from_router(router, subnet=subnet.id)
    demo.network.delete_router(router)
    admin.network.delete_network(external)


@pytest.fixture(scope="module")
def server(cloud: Any, demo: Any, env: Any) -> Any:
    created = demo.compute.create_server(name="px-server", image_id=env["image"].id, flavor_id="1",
                                         networks=[{"uuid": env["network"].id}])
    found = demo.compute.wait_for_server(created, wait=30)
    found.admin_password = created.admin_password
    yield found
    demo.compute.delete_server(found)
    demo.compute.wait_for_delete(found, wait=30)


# ----- adminPass ---------------------------------------------------------------------------------------------
def test_create_returns_a_generated_admin_password_the_guest_reads(cloud: Any, demo: Any, server: Any) -> None:
    password = server.admin_password
    assert isinstance(password, str) and len(password) == PASSWORD_LENGTH
    meta = metadata(cloud, "GET", "/openstack/latest/meta_data.json", server).json()
    assert meta["admin_pass"] == password
    assert password not in str(demo.compute.get_server(server.id).to_dict())  # returned once, never shown again


def test_cloud_layer_create_server_returns_the_sent_password(cloud: Any, demo: Any, env: Any) -> None:
    created = demo.create_server("px-sent", image=env["image"].id, flavor="m1.tiny",
                                 network=env["network"].id, admin_pass="Sent-Pass-1", auto_ip=False, wait=True,
                                 timeout=30)
    try:
        assert created.admin_password == "Sent-Pass-1"
        shown = metadata(cloud, "GET", "/openstack/latest/meta_data.json", created).json()
        assert shown["admin_pass"] == "Sent-Pass-1"
    finally:
        demo.delete_server(created.id, wait=True, timeout=30)


def test_server_password_posted_by_the_guest_read_and_cleared(cloud: Any, demo: Any, server: Any) -> None:
    assert demo.compute.get_server_password(server) == ""
    assert "password" in metadata(cloud, "GET", "/openstack/latest/", server).text.splitlines()
    assert metadata(cloud, "POST", "/openstack/latest/password", server, b"x" * 257).status_code == 400
    assert metadata(cloud, "POST", "/openstack/latest/password", server, b"c2VhbGVk").status_code == 200
    assert metadata(cloud, "POST", "/openstack/latest/password", server, b"again").status_code == 409
    assert metadata(cloud, "POST", "/openstack/latest/meta_data.json", server, b"x").status_code == 404
    assert metadata(cloud, "GET", "/openstack/latest/password", server).text == "c2VhbGVk"
    assert demo.compute.get_server_password(server) == "c2VhbGVk"
    demo.compute.clear_server_password(server)
    assert demo.compute.get_server_password(server) == ""
    assert api(cloud, demo, "GET", "/servers/00000000-0000-0000-0000-000000000000/os-server-password"
               ).status_code == 404


# ----- ips, security groups and diagnostics of a server ------------------------------------------------------
def test_server_ips_by_network(cloud: Any, demo: Any, server: Any) -> None:
    body = api(cloud, demo, "GET", f"/servers/{server.id}/ips").json()
    (address,) = body["addresses"]["px-net"]
    assert address["version"] == 4 and address["addr"].startswith("10.91.0.")
    assert api(cloud, demo, "GET", f"/servers/{server.id}/ips/px-net").json() == {"px-net": [address]}
    missing = api(cloud, demo, "GET", f"/servers/{server.id}/ips/nowhere")
    assert missing.status_code == 404 and "itemNotFound" in missing.json()


def test_server_security_groups_and_diagnostics(cloud: Any, admin: Any, demo: Any, server: Any) -> None:
    groups = api(cloud, demo, "GET", f"/servers/{server.id}/os-security-groups").json()["security_groups"]
    assert [g["name"] for g in groups] == ["default"]
    assert api(cloud, demo, "GET", f"/servers/{server.id}/diagnostics").status_code == 403
    diag = admin.compute.get_server_diagnostics(server.id)
    assert diag.num_cpus == 1 and diag.memory_details["maximum"] == 512 and diag.num_nics == 1


# ----- the proxies at 2.1 ------------------------------------------------------------------------------------
def test_image_proxy_list_show_and_metadata(cloud: Any, demo: Any, env: Any) -> None:
    image_id = env["image"].id
    images = {i["id"]: i for i in api(cloud, demo, "GET", "/images/detail").json()["images"]}
    assert images[image_id]["status"] == "ACTIVE" and images[image_id]["minRam"] == 0
    listed = cloud.cli("--os-compute-api-version", "2.1", "image", "show", image_id, "-f", "json",
                       cloud="pocketstack-demo")
    assert listed["id"] == image_id
    merged = api(cloud, demo, "POST", f"/images/{image_id}/metadata", {"metadata": {"os_distro": "debian"}})
    assert merged.status_code == 200 and merged.json()["metadata"]["os_distro"] == "debian"
    assert api(cloud, demo, "GET", f"/images/{image_id}/metadata/os_distro").json() == {
        "meta": {"os_distro": "debian"}}
    assert api(cloud, demo, "PUT", f"/images/{image_id}/metadata/other", {"meta": {"x": "1"}}).status_code == 400
    assert api(cloud, demo, "DELETE", f"/images/{image_id}/metadata/os_distro").status_code == 204
    assert "os_distro" not in demo.image.get_image(image_id).properties
    assert api(cloud, demo, "GET", f"/images/{image_id}", version="2.36").status_code == 404
    assert api(cloud, demo, "GET", f"/images/{image_id}/metadata", version="2.38").status_code == 200
    assert api(cloud, demo, "GET", "/images/00000000-0000-0000-0000-000000000000").status_code == 404


def nova_sourced(cloud: Any) -> openstack.connection.Connection:
    """openstacksdk's cloud layer taking security groups and floating IPs from the compute API (nova-network's
    way), at microversion 2.1."""
    config = openstack.config.OpenStackConfig(config_files=[str(cloud.clouds_yaml)])
    region = config.get_one(cloud="pocketstack-demo", secgroup_source="nova", floating_ip_source="nova",
                            compute_api_version="2.1")
    return openstack.connection.Connection(config=region)


def test_security_group_proxy_and_server_actions(cloud: Any, demo: Any, server: Any) -> None:
    nova = nova_sourced(cloud)
    group = nova.create_security_group("px-web", "web servers")
    try:
        rule = nova.create_security_group_rule(group["id"], port_range_min=80, port_range_max=80,
                                               protocol="tcp", remote_ip_prefix="10.0.0.0/8")
        assert rule["port_range_min"] == 80 and rule["remote_ip_prefix"] == "10.0.0.0/8"
        shown = api(cloud, demo, "GET", f"/os-security-groups/{group['id']}").json()["security_group"]
        assert shown["rules"][0]["ip_range"] == {"cidr": "10.0.0.0/8"} and shown["rules"][0]["from_port"] == 80
        assert [r.id for r in demo.network.security_group_rules(security_group_id=group["id"],
                                                                direction="ingress")] == [rule["id"]]
        bad = api(cloud, demo, "POST", "/os-security-group-rules", {"security_group_rule": {
            "parent_group_id": group["id"], "ip_protocol": "tcp", "from_port": 70000, "to_port": 22}})
        assert bad.status_code == 400 and "badRequest" in bad.json()
        dup = api(cloud, demo, "POST", "/os-security-group-rules", {"security_group_rule": {
            "parent_group_id": group["id"], "ip_protocol": "tcp", "from_port": 80, "to_port": 80,
            "cidr": "10.0.0.0/8"}})
        assert dup.status_code == 400
        assert api(cloud, demo, "POST", "/os-security-groups", {"security_group": {"name": " "}}).status_code == 400

        demo.compute.add_security_group_to_server(server, group["id"])
        ports = list(demo.network.ports(device_id=server.id))
        assert all(group["id"] in p.security_group_ids for p in ports)
        assert "px-web" in {g["name"] for g in demo.compute.get_server(server.id).security_groups}
        demo.compute.remove_security_group_from_server(server, group["id"])
        assert not any(group["id"] in p.security_group_ids for p in demo.network.ports(device_id=server.id))
        again = api(cloud, demo, "POST", f"/servers/{server.id}/action", {"removeSecurityGroup": {"name": "px-web"}})
        assert again.status_code == 400
    finally:
        nova.delete_security_group(group["id"])
    default = next(g for g in nova.list_security_groups() if g["name"] == "default")
    assert api(cloud, demo, "DELETE", f"/os-security-groups/{default['id']}").status_code == 400
    assert api(cloud, demo, "GET", "/os-security-groups", version="2.36").status_code == 404


def test_floating_ip_proxy_pools_and_server_actions(cloud: Any, demo: Any, env: Any, server: Any) -> None:
    pools = api(cloud, demo, "GET", "/os-floating-ip-pools").json()["floating_ip_pools"]
    assert {"name": "px-public"} in pools
    created = api(cloud, demo, "POST", "/os-floating-ips", {"pool": "px-public"})
    assert created.status_code == 200
    fip = created.json()["floating_ip"]
    assert fip["pool"] == "px-public" and fip["instance_id"] is None and fip["fixed_ip"] is None
    nova = nova_sourced(cloud)  # addFloatingIp is gone at 2.44: the SDK's newest microversion would get a 404
    try:
        nova.compute.add_floating_ip_to_server(server, fip["ip"])
        shown = api(cloud, demo, "GET", f"/os-floating-ips/{fip['id']}").json()["floating_ip"]
        assert shown["instance_id"] == server.id and shown["fixed_ip"].startswith("10.91.0.")
        kinds = {a["OS-EXT-IPS:type"] for a in demo.compute.get_server(server.id).addresses["px-net"]}
        assert kinds == {"fixed", "floating"}
        nova.compute.remove_floating_ip_from_server(server, fip["ip"])
        assert demo.network.get_ip(fip["id"]).port_id is None
        gone = api(cloud, demo, "POST", f"/servers/{server.id}/action", {"removeFloatingIp": {"address": fip["ip"]}})
        assert gone.status_code == 409
        newer = api(cloud, demo, "POST", f"/servers/{server.id}/action", {"addFloatingIp": {"address": fip["ip"]}},
                    version="2.44")
        assert newer.status_code == 404
    finally:
        assert api(cloud, demo, "DELETE", f"/os-floating-ips/{fip['id']}").status_code == 202
    assert api(cloud, demo, "POST", "/os-floating-ips", {"pool": "nowhere"}).status_code == 404
    assert api(cloud, demo, "GET", f"/os-floating-ips/{fip['id']}").status_code == 404


def test_network_and_tenant_network_proxies(cloud: Any, demo: Any, env: Any) -> None:
    net_id = env["network"].id
    tenant = api(cloud, demo, "GET", "/os-tenant-networks").json()["networks"]
    assert {"id": net_id, "label": "px-net", "cidr": None} in tenant
    assert api(cloud, demo, "GET", f"/os-tenant-networks/{net_id}").json()["network"]["label"] == "px-net"
    legacy = api(cloud, demo, "GET", f"/os-networks/{net_id}").json()["network"]
    assert legacy["id"] == net_id and legacy["label"] == "px-net"
    assert api(cloud, demo, "GET", "/os-networks/00000000-0000-0000-0000-000000000000").status_code == 404
    assert api(cloud, demo, "GET", "/os-tenant-networks", version="2.36").status_code == 404


def test_volume_and_snapshot_proxies(cloud: Any, demo: Any) -> None:
    created = api(cloud, demo, "POST", "/os-volumes", {"volume": {"size": 1, "display_name": "px-vol"}})
    assert created.status_code == 200
    volume = created.json()["volume"]
    assert volume["displayName"] == "px-vol" and volume["size"] == 1 and volume["attachments"] == [{}]
    deadline = time.monotonic() + 30
    while demo.block_storage.get_volume(volume["id"]).status != "available" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert volume["id"] in {v["id"] for v in api(cloud, demo, "GET", "/os-volumes/detail").json()["volumes"]}
    snap = api(cloud, demo, "POST", "/os-snapshots", {"snapshot": {"volume_id": volume["id"],
                                                                   "display_name": "px-snap"}})
    assert snap.status_code == 200 and snap.json()["snapshot"]["volumeId"] == volume["id"]
    snap_id = snap.json()["snapshot"]["id"]
    assert api(cloud, demo, "GET", f"/os-snapshots/{snap_id}").json()["snapshot"]["displayName"] == "px-snap"
    while demo.block_storage.get_snapshot(snap_id).status != "available" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert api(cloud, demo, "DELETE", f"/os-snapshots/{snap_id}").status_code == 202
    demo.block_storage.wait_for_delete(demo.block_storage.get_snapshot(snap_id), wait=30)
    for bad in ({"size": 0}, {"size": "#$%"}, {}):
        answer = api(cloud, demo, "POST", "/os-volumes", {"volume": bad})
        assert answer.status_code == 400 and "badRequest" in answer.json()
    assert api(cloud, demo, "DELETE", f"/os-volumes/{volume['id']}").status_code == 202
    assert api(cloud, demo, "GET", "/os-volumes/00000000-0000-0000-0000-000000000000").status_code == 404
    assert api(cloud, demo, "GET", "/os-volumes", version="2.36").status_code == 404


# ----- discovery ---------------------------------------------------------------------------------------------
def test_versions_and_extensions(cloud: Any, demo: Any) -> None:
    root = requests.get(cloud.url("compute") + "/", timeout=10).json()["versions"]
    assert [v["id"] for v in root] == ["v2.0", "v2.1"]
    for version in root:
        href = version["links"][0]["href"]
        assert requests.get(href, timeout=10).json()["version"]["links"] == version["links"]
    extensions = api(cloud, demo, "GET", "/extensions").json()["extensions"]
    assert "Hosts" in {e["name"] for e in extensions}
    assert api(cloud, demo, "GET", "/extensions/os-consoles").json()["extension"]["alias"] == "os-consoles"
    assert api(cloud, demo, "GET", "/extensions/nothing").status_code == 404


def test_floating_ip_set_through_the_network_api_shows_in_the_servers_addresses(cloud: Any, demo: Any, env: Any,
                                                                                 server: Any) -> None:
    """`openstack server add floating ip` associates through Neutron; the network service tells compute
    `network-changed` and the server's addresses show the floating IP (OS-EXT-IPS:type floating), then lose it."""
    fip = cloud.cli("floating", "ip", "create", "px-public", "-f", "json", cloud="pocketstack-demo")

    def kinds() -> dict[str, str]:
        shown = cloud.cli("server", "show", server.id, "-f", "json", cloud="pocketstack-demo")
        addresses = demo.compute.get_server(shown["id"]).addresses["px-net"]
        return {a["addr"]: a["OS-EXT-IPS:type"] for a in addresses}

    def wait_for(check: Any) -> dict[str, str]:
        deadline = time.monotonic() + 15
        while not check(found := kinds()):
            assert time.monotonic() < deadline, found
            time.sleep(0.3)
        return found

    try:
        cloud.cli("server", "add", "floating", "ip", server.id, fip["floating_ip_address"], cloud="pocketstack-demo")
        found = wait_for(lambda k: fip["floating_ip_address"] in k)
        assert found[fip["floating_ip_address"]] == "floating" and "fixed" in found.values()
        listed = cloud.cli("server", "list", "--name", "px-server", "-f", "json", cloud="pocketstack-demo")
        assert fip["floating_ip_address"] in str(listed[0]["Networks"])
        cloud.cli("server", "remove", "floating", "ip", server.id, fip["floating_ip_address"],
                  cloud="pocketstack-demo")
        wait_for(lambda k: fip["floating_ip_address"] not in k)
        # deleting an associated floating IP takes it off the server's addresses too
        cloud.cli("server", "add", "floating", "ip", server.id, fip["floating_ip_address"], cloud="pocketstack-demo")
        wait_for(lambda k: fip["floating_ip_address"] in k)
    finally:
        cloud.cli("floating", "ip", "delete", fip["id"], cloud="pocketstack-demo")
    wait_for(lambda k: fip["floating_ip_address"] not in k)
