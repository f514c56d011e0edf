"""The compute service as its users drive it: the `openstack` CLI, openstacksdk's cloud layer, `pocketstack trace`."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

POCKETSTACK = str(Path(sys.executable).with_name("pocketstack"))


@pytest.fixture(scope="module")
def boot_env(cloud, tmp_path_factory):
    """An image, a network with a subnet and a key pair for the module's servers."""
    conn = cloud.conn()
    image = conn.image.create_image(name="cli-image", disk_format="raw", container_format="bare",
                                    data=b"\0" * 4096)
    network = conn.network.create_network(name="cli-net")
    conn.network.create_subnet(network_id=network.id, cidr="10.88.0.0/24", ip_version=4, name="cli-subnet")
    key = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    key_file = tmp_path_factory.mktemp("keys") / "id.pub"
    key_file.write_text(key + " test@pocketstack\n")
    cloud.cli("keypair", "create", "--public-key", str(key_file), "cli-key")
    yield {"image": image, "network": network}
    cloud.cli("keypair", "delete", "cli-key")


def wait_status(cloud, name: str, status: str, timeout: float = 30.0) -> None:
    conn = cloud.conn()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        server = conn.compute.find_server(name)
        if server.status == status and server.task_state is None:
            return
        time.sleep(0.1)
    raise AssertionError(f"{name} is {server.status}, not {status}")


def test_server_lifecycle_with_the_cli(cloud, boot_env, prefix):
    name = f"{prefix}-vm1"
    server = cloud.cli("server", "create", "--flavor", "m1.tiny", "--image", boot_env["image"].id, "--network",
                       boot_env["network"].id, "--key-name", "cli-key", "--wait", name, "-f", "json")
    assert server["status"] == "ACTIVE" and server["key_name"] == "cli-key"
    addresses = server["addresses"]
    assert "cli-net" in addresses and str(addresses["cli-net"][0]).startswith("10.88.0.")
    assert name in [s["Name"] for s in cloud.cli("server", "list", "-f", "json")]

    cloud.cli("server", "stop", name)
    wait_status(cloud, name, "SHUTOFF")
    cloud.cli("server", "start", name)
    wait_status(cloud, name, "ACTIVE")
    cloud.cli("server", "reboot", "--wait", name)
    assert cloud.cli("server", "show", name, "-f", "json")["status"] == "ACTIVE"

    events = cloud.cli("server", "event", "list", name, "-f", "json")
    assert {e["Action"] for e in events} >= {"create", "stop", "start", "reboot"}
    console = cloud.cli("console", "log", "show", name)
    assert "login:" in console

    trace = subprocess.run([POCKETSTACK, "trace", name, "--json", "--data-dir", str(cloud.settings.data_dir)],
                           capture_output=True, text=True, check=True)
    hops = json.loads(trace.stdout)["hops"]
    steps = {h["step"] for h in hops}
    for expected in ("3", "6", "7", "8", "9", "10", "11", "12", "13", "14, 18", "15-17", "19", "20, 22",
                     "23, 25", "29"):
        assert expected in steps, f"step {expected} missing from the trace"
    kinds = {h["kind"] for h in hops}
    assert kinds == {"REST", "CALL", "CAST", "DB", "WORK"}
    table = subprocess.run([POCKETSTACK, "trace", name, "--data-dir", str(cloud.settings.data_dir)],
                           capture_output=True, text=True, check=True).stdout
    assert "select_destinations" in table and "total:" in table

    cloud.cli("server", "delete", "--wait", name)
    assert name not in [s["Name"] for s in cloud.cli("server", "list", "-f", "json")]


def test_boot_with_a_security_group_puts_it_on_the_port(cloud, boot_env, prefix):
    group = cloud.cli("security", "group", "create", f"{prefix}-sg", "-f", "json")
    server = cloud.cli("server", "create", "--flavor", "m1.tiny", "--image", boot_env["image"].id, "--network",
                       boot_env["network"].id, "--security-group", f"{prefix}-sg", "--wait", f"{prefix}-vm", "-f",
                       "json")
    assert server["status"] == "ACTIVE"
    assert [g["name"] for g in server["security_groups"]] == [f"{prefix}-sg"]
    (port,) = cloud.cli("port", "list", "--server", server["id"], "--long", "-f", "json")
    assert port["Security Groups"] == [group["id"]]
    unknown = cloud.cli("server", "create", "--flavor", "m1.tiny", "--image", boot_env["image"].id, "--network",
                        boot_env["network"].id, "--security-group", f"{prefix}-nope", f"{prefix}-vm2", check=False)
    assert unknown.returncode != 0 and f"{prefix}-nope" in unknown.stderr
    cloud.cli("server", "delete", "--wait", server["id"])
    cloud.cli("security", "group", "delete", f"{prefix}-sg")


def test_hosts_services_quotas_with_the_cli(cloud):
    hypervisors = cloud.cli("hypervisor", "list", "-f", "json")
    assert len(hypervisors) == cloud.settings.compute.fake_hosts
    services = cloud.cli("compute", "service", "list", "-f", "json")
    assert {s["Binary"] for s in services} >= {"nova-compute", "nova-conductor", "nova-scheduler"}
    assert all(s["State"] == "up" for s in services)
    quota = cloud.cli("quota", "show", "--compute", "-f", "json")
    assert quota
    flavors = [f["Name"] for f in cloud.cli("flavor", "list", "-f", "json")]
    assert {"m1.tiny", "m1.small", "m1.medium", "m1.large", "m1.xlarge"} <= set(flavors)


def test_anti_affinity_group_spreads_servers(cloud, boot_env, prefix):
    group = cloud.cli("server", "group", "create", "--policy", "anti-affinity", f"{prefix}-group", "-f", "json")
    names = [f"{prefix}-aa{i}" for i in range(cloud.settings.compute.fake_hosts)]
    for name in names:
        cloud.cli("server", "create", "--flavor", "m1.tiny", "--image", boot_env["image"].id, "--network",
                  boot_env["network"].id, "--hint", f"group={group['id']}", "--wait", name)
    conn = cloud.conn()
    hosts = [conn.compute.find_server(n).compute_host for n in names]
    assert len(set(hosts)) == len(names)
    # one more than there are hosts cannot be placed
    extra = cloud.cli("server", "create", "--flavor", "m1.tiny", "--image", boot_env["image"].id, "--network",
                      boot_env["network"].id, "--hint", f"group={group['id']}", "--wait", f"{prefix}-aa-extra",
                      check=False)
    assert extra.returncode != 0
    shown = cloud.cli("server", "show", f"{prefix}-aa-extra", "-f", "json")
    assert shown["status"] == "ERROR" and "No valid host" in json.dumps(shown.get("fault", ""))
    for name in [*names, f"{prefix}-aa-extra"]:
        cloud.cli("server", "delete", "--wait", name)
    cloud.cli("server", "group", "delete", group["id"])


def test_sdk_cloud_layer_create_server_wait(cloud, boot_env, prefix):
    conn = cloud.conn()
    server = conn.create_server(f"{prefix}-sdk", image=boot_env["image"].id, flavor="m1.tiny",
                                network=boot_env["network"].id, wait=True, timeout=60)
    assert server.status == "ACTIVE"
    assert conn.delete_server(server.id, wait=True, timeout=60)


def test_interface_attach_and_detach(cloud, boot_env, prefix):
    conn = cloud.conn()
    second = conn.network.create_network(name=f"{prefix}-second")
    conn.network.create_subnet(network_id=second.id, cidr="10.89.0.0/24", ip_version=4)
    server = conn.compute.create_server(name=f"{prefix}-nics", image_id=boot_env["image"].id, flavor_id="1",
                                        networks=[{"uuid": boot_env["network"].id}])
    server = conn.compute.wait_for_server(server, wait=30)
    attached = conn.compute.create_server_interface(server, net_id=second.id)
    assert attached.net_id == second.id and attached.fixed_ips[0]["ip_address"].startswith("10.89.0.")
    interfaces = list(conn.compute.server_interfaces(server))
    assert {i.net_id for i in interfaces} == {boot_env["network"].id, second.id}
    port = conn.network.get_port(attached.port_id)
    assert port.device_id == server.id and port.binding_host_id == server.compute_host
    conn.compute.delete_server_interface(attached, server=server)
    assert [i.net_id for i in conn.compute.server_interfaces(server)] == [boot_env["network"].id]
    assert conn.network.find_port(attached.port_id) is None  # the port compute made is gone
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=30)
    assert list(conn.network.ports(network_id=second.id, device_owner="compute:nova")) == []
    conn.network.delete_network(second)
