"""What a guest learns about itself: Nova's metadata documents, for the metadata API and the config drive.

One `InstanceMetadata` answers every path of the OpenStack tree (`/openstack/<version>/meta_data.json`,
`user_data`, `network_data.json`, `vendor_data*.json`) and of the EC2-style tree (`/<version>/meta-data/...`,
`user-data`), and lays the same documents out as the files of a `config-2` drive.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

# The versions Nova lists; every one is answered with the same (latest) documents.
OPENSTACK_VERSIONS = ("2012-08-10", "2013-04-04", "2013-10-17", "2015-10-15", "2016-06-30", "2016-10-06",
                      "2017-02-22", "2018-08-27", "2020-10-14")
EC2_VERSIONS = ("1.0", "2007-01-19", "2007-03-01", "2007-08-29", "2007-10-10", "2007-12-15", "2008-02-01",
                "2008-09-01", "2009-04-04")

JSON_TYPE = "application/json"
TEXT_TYPE = "text/plain"


PASSWORD_DOCUMENT = "password"  # /openstack/<version>/password: the guest's posted password (GET and POST)


def is_password_path(path: str) -> bool:
    """Whether a metadata path is a version's `password` document (the one a guest may POST to)."""
    parts = [p for p in path.split("/") if p]
    return (len(parts) == 3 and parts[0] == "openstack" and parts[1] in (*OPENSTACK_VERSIONS, "latest")
            and parts[2] == PASSWORD_DOCUMENT)


class MetadataNotFound(LookupError):
    """No document at that path."""


@dataclass
class InstanceMetadata:
    """The metadata of one server, built from its compute record (the conductor's instance dict)."""

    instance: dict[str, Any]
    meta: dict[str, str] = field(default_factory=dict)  # the server's metadata items
    key_type: str = "ssh"
    password: str = ""  # what the guest posted to `password` (os-server-password), encrypted with its key

    # ----- the OpenStack documents -------------------------------------------------------------------------
    def meta_data(self) -> dict[str, Any]:
        inst = self.instance
        data: dict[str, Any] = {
            "uuid": inst["uuid"], "meta": dict(self.meta), "hostname": inst["hostname"],
            "name": inst["display_name"], "launch_index": inst.get("launch_index", 0),
            "availability_zone": inst.get("availability_zone") or "nova", "project_id": inst["project_id"],
            "devices": [], "dedicated_cpus": [],
        }
        if inst.get("key_name") and inst.get("key_data"):
            data["public_keys"] = {inst["key_name"]: inst["key_data"]}
            data["keys"] = [{"name": inst["key_name"], "type": self.key_type, "data": inst["key_data"]}]
        if inst.get("admin_pass"):  # unsealed by the metadata service or the conductor (compute/passwords.py)
            data["admin_pass"] = inst["admin_pass"]
        return data

    def user_data(self) -> bytes | None:
        raw = self.instance.get("user_data")
        return base64.b64decode(raw) if raw else None

    def network_data(self) -> dict[str, Any]:
        links, networks = [], []
        for vif in self.instance.get("network_info") or []:
            link_id = "tap" + vif["id"][:11]
            links.append({"id": link_id, "vif_id": vif["id"], "type": vif.get("vif_type") or "bridge",
                          "mtu": vif.get("mtu"), "ethernet_mac_address": vif.get("mac_address")})
            for ip in vif.get("fixed_ips", []):
                kind = "ipv6_dhcp" if ":" in ip["ip_address"] else "ipv4_dhcp"
                networks.append({"id": f"network{len(networks)}", "type": kind, "link": link_id,
                                 "network_id": vif["network_id"]})
        return {"links": links, "networks": networks, "services": []}

    def _openstack_files(self) -> dict[str, tuple[bytes, str]]:
        files = {
            "meta_data.json": (json.dumps(self.meta_data()).encode(), JSON_TYPE),
            "network_data.json": (json.dumps(self.network_data()).encode(), JSON_TYPE),
            "vendor_data.json": (b"{}", JSON_TYPE),
            "vendor_data2.json": (b"{}", JSON_TYPE),
        }
        user_data = self.user_data()
        if user_data is not None:
            files["user_data"] = (user_data, TEXT_TYPE)
        return files

    # ----- the EC2-style documents -------------------------------------------------------------------------
    def _fixed_ip(self) -> str:
        for vif in self.instance.get("network_info") or []:
            for ip in vif.get("fixed_ips", []):
                if ":" not in ip["ip_address"]:
                    return ip["ip_address"]
        return ""

    def ec2_meta_data(self) -> dict[str, Any]:
        inst = self.instance
        data: dict[str, Any] = {
            "ami-id": inst.get("image_ref") or "", "ami-launch-index": inst.get("launch_index", 0),
            "hostname": inst["hostname"], "local-hostname": inst["hostname"], "public-hostname": inst["hostname"],
            "instance-id": inst["uuid"], "instance-type": (inst.get("flavor") or {}).get("name", ""),
            "local-ipv4": self._fixed_ip(), "public-ipv4": "", "reservation-id": inst.get("reservation_id", ""),
            "security-groups": "\n".join(sg["name"] for sg in inst.get("security_groups") or [])
            or "default",
            "placement": {"availability-zone": inst.get("availability_zone") or "nova"},
        }
        if inst.get("key_name") and inst.get("key_data"):
            data["public-keys"] = {"0": {"openssh-key": inst["key_data"]}}
        return data

    # ----- lookup by path ----------------------------------------------------------------------------------
    def lookup(self, path: str) -> tuple[bytes, str]:
        """The document (body, content type) at a metadata URL path; MetadataNotFound when there is none."""
        parts = [p for p in path.split("/") if p]
        if not parts:
            return "\n".join((*EC2_VERSIONS, "latest")).encode(), TEXT_TYPE
        if parts[0] == "openstack":
            if len(parts) == 1:
                return "\n".join((*OPENSTACK_VERSIONS, "latest")).encode(), TEXT_TYPE
            if parts[1] not in (*OPENSTACK_VERSIONS, "latest"):
                raise MetadataNotFound(path)
            files = self._openstack_files()
            files[PASSWORD_DOCUMENT] = (self.password.encode(), TEXT_TYPE)  # not on the config drive
            if len(parts) == 2:
                return "\n".join(sorted(files)).encode(), TEXT_TYPE
            if len(parts) == 3 and parts[2] in files:
                return files[parts[2]]
            raise MetadataNotFound(path)
        if parts[0] not in (*EC2_VERSIONS, "latest"):
            raise MetadataNotFound(path)
        if len(parts) == 1:
            return b"meta-data/\nuser-data" if self.user_data() is not None else b"meta-data/", TEXT_TYPE
        if parts[1] == "user-data" and len(parts) == 2:
            user_data = self.user_data()
            if user_data is None:
                raise MetadataNotFound(path)
            return user_data, TEXT_TYPE
        if parts[1] != "meta-data":
            raise MetadataNotFound(path)
        return self._ec2_node(parts[2:], path)

    def _ec2_node(self, parts: list[str], path: str) -> tuple[bytes, str]:
        """Walk the EC2 tree: a dict is listed (sub-trees with a trailing slash), a leaf is its value."""
        node: Any = self.ec2_meta_data()
        for part in parts:
            if not isinstance(node, dict) or part not in node:
                raise MetadataNotFound(path)
            node = node[part]
        if not isinstance(node, dict):
            return str(node).encode(), TEXT_TYPE
        if parts == ["public-keys"]:  # EC2 lists keys as "index=name"
            return "\n".join(f"{index}={self.instance['key_name']}" for index in node).encode(), TEXT_TYPE
        return "\n".join(f"{k}/" if isinstance(v, dict) else k for k, v in node.items()).encode(), TEXT_TYPE

    def config_drive_files(self) -> dict[str, bytes]:
        """The files of a `config-2` drive: the OpenStack tree for every version and the EC2 tree."""
        files: dict[str, bytes] = {}
        for version in (*OPENSTACK_VERSIONS, "latest"):
            for name, (body, _) in self._openstack_files().items():
                files[f"openstack/{version}/{name}"] = body
        files["ec2/latest/meta-data.json"] = json.dumps(self.ec2_meta_data()).encode()
        return files
