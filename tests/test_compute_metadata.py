"""The compute metadata API (what guests read at 169.254.169.254 through the network agent's proxy): documents
of a real server booted through openstacksdk, the signature check, project isolation, and the config drive files."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from pocketstack.common.service import shared_secret
from pocketstack.compute.metadata.content import InstanceMetadata
from pocketstack.compute.metadata.service_app import sign_instance_id
from pocketstack.compute.spec import METADATA_SECRET_KEY


@pytest.fixture(scope="module")
def server(cloud: Any, demo: Any) -> Any:
    """A demo server with a key pair, user data and metadata items, ACTIVE on a fake host."""
    image = demo.image.create_image(name="md-image", disk_format="raw", container_format="bare", data=b"\0" * 512)
    network = demo.network.create_network(name="md-net")
    demo.network.create_subnet(network_id=network.id, cidr="10.77.0.0/24", ip_version=4)
    public_key = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    demo.compute.create_keypair(name="md-key", public_key=public_key)
    user_data = base64.b64encode(b"#!/bin/sh\necho hello from user data\n").decode()
    created = demo.compute.create_server(name="md-server", image_id=image.id, flavor_id="1",
                                         networks=[{"uuid": network.id}], key_name="md-key", user_data=user_data,
                                         metadata={"role": "web", "tier": "1"})
    found = demo.compute.wait_for_server(created, wait=30)
    found.public_key = public_key
    yield found
    demo.compute.delete_server(found)
    demo.compute.wait_for_delete(found, wait=30)
    demo.compute.delete_keypair("md-key")


def fetch(cloud: Any, path: str, instance_id: str, project_id: str, signature: str | None = None) -> requests.Response:
    secret = shared_secret(cloud.settings, "metadata", METADATA_SECRET_KEY)
    headers = {"X-Instance-ID": instance_id, "X-Tenant-ID": project_id, "X-Forwarded-For": "10.77.0.5",
               "X-Instance-ID-Signature": signature or sign_instance_id(secret, instance_id)}
    return requests.get(cloud.url("metadata") + path, headers=headers, timeout=10)


def test_openstack_documents(cloud: Any, server: Any) -> None:
    project = server.project_id
    versions = fetch(cloud, "/openstack", server.id, project).text.splitlines()
    assert versions[0] == "2012-08-10" and versions[-1] == "latest"
    listing = fetch(cloud, "/openstack/latest/", server.id, project).text.splitlines()
    assert {"meta_data.json", "network_data.json", "user_data", "vendor_data.json"} <= set(listing)

    meta = fetch(cloud, "/openstack/latest/meta_data.json", server.id, project).json()
    assert meta["uuid"] == server.id and meta["name"] == "md-server" and meta["hostname"] == "md-server"
    assert meta["public_keys"] == {"md-key": server.public_key}
    assert meta["keys"] == [{"name": "md-key", "type": "ssh", "data": server.public_key}]
    assert meta["meta"] == {"role": "web", "tier": "1"} and meta["project_id"] == project
    assert meta["availability_zone"] == "nova"
    assert fetch(cloud, "/openstack/2013-04-04/meta_data.json", server.id, project).json() == meta

    user_data = fetch(cloud, "/openstack/latest/user_data", server.id, project)
    assert user_data.content == b"#!/bin/sh\necho hello from user data\n"

    network = fetch(cloud, "/openstack/latest/network_data.json", server.id, project).json()
    port = next(iter(server.addresses.values()))[0]
    assert network["links"][0]["ethernet_mac_address"] == port["OS-EXT-IPS-MAC:mac_addr"]
    assert network["networks"][0]["type"] == "ipv4_dhcp"
    assert network["networks"][0]["link"] == network["links"][0]["id"]


def test_ec2_documents(cloud: Any, server: Any) -> None:
    project = server.project_id
    assert fetch(cloud, "/", server.id, project).text.splitlines()[-1] == "latest"
    tree = fetch(cloud, "/latest/meta-data/", server.id, project).text.splitlines()
    assert {"instance-id", "hostname", "local-ipv4", "public-keys/", "placement/"} <= set(tree)
    assert fetch(cloud, "/latest/meta-data/instance-id", server.id, project).text == server.id
    ip = next(iter(server.addresses.values()))[0]["addr"]
    assert fetch(cloud, "/latest/meta-data/local-ipv4", server.id, project).text == ip
    assert fetch(cloud, "/latest/meta-data/public-keys/", server.id, project).text == "0=md-key"
    key = fetch(cloud, "/latest/meta-data/public-keys/0/openssh-key", server.id, project).text
    assert key == server.public_key
    assert fetch(cloud, "/latest/meta-data/placement/availability-zone", server.id, project).text == "nova"
    assert fetch(cloud, "/latest/user-data", server.id, project).content.startswith(b"#!/bin/sh")


def test_requests_without_a_valid_signature_are_refused(cloud: Any, server: Any, admin: Any) -> None:
    project = server.project_id
    assert requests.get(cloud.url("metadata") + "/openstack/latest/meta_data.json", timeout=10).status_code == 400
    forged = fetch(cloud, "/openstack/latest/meta_data.json", server.id, project, signature="0" * 64)
    assert forged.status_code == 403 and server.public_key not in forged.text
    # a correctly signed id with another project's id (a port of project B claiming A's server) finds nothing
    other = fetch(cloud, "/openstack/latest/meta_data.json", server.id, admin.current_project_id)
    assert other.status_code == 404
    assert fetch(cloud, "/openstack/latest/meta_data.json", "0" * 32, project).status_code == 404
    assert fetch(cloud, "/openstack/latest/nothing.json", server.id, project).status_code == 404
    assert fetch(cloud, "/openstack/1999-01-01/meta_data.json", server.id, project).status_code == 404
    assert fetch(cloud, "/latest/meta-data/nothing", server.id, project).status_code == 404


def test_config_drive_files_hold_the_same_documents() -> None:
    instance = {"uuid": "u-1", "hostname": "vm-1", "display_name": "vm 1", "project_id": "p", "key_name": "k",
                "key_data": "ssh-ed25519 AAAA test", "user_data": base64.b64encode(b"data").decode(),
                "availability_zone": None, "network_info": [], "image_ref": "img", "flavor": {"name": "m1.tiny"}}
    files = InstanceMetadata(instance, {"a": "b"}).config_drive_files()
    meta = json.loads(files["openstack/latest/meta_data.json"])
    assert meta["public_keys"] == {"k": "ssh-ed25519 AAAA test"} and meta["meta"] == {"a": "b"}
    assert files["openstack/2012-08-10/user_data"] == b"data"
    assert json.loads(files["ec2/latest/meta-data.json"])["instance-id"] == "u-1"
    no_user_data = InstanceMetadata({**instance, "user_data": None}).config_drive_files()
    assert "openstack/latest/user_data" not in no_user_data
