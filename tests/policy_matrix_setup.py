"""Project A's resources for the authorization matrix, one of each kind per service (SETUP), and the valid bodies a
denied persona sends (BODIES; `{name}` strings are replaced by the resource ids)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from policy_matrix_helpers import World


def _wait(world: World, service: str, path: str, key: str, status: str, persona: str = "member") -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if world.ok(service, persona, "GET", path)[key]["status"].lower() == status:
            return
        time.sleep(0.2)
    raise AssertionError(f"{path} never became {status}")


def identity(w: World) -> dict[str, str]:
    def r(method: str, path: str, body: Any = None) -> dict[str, Any]:
        return w.ok("identity", "root", method, path, body)

    def m(method: str, path: str, body: Any = None) -> dict[str, Any]:
        return w.ok("identity", "member", method, path, body)

    a, member = w.projects["A"], w.users["member"]
    roles = {x["name"]: x["id"] for x in r("GET", "/v3/roles")["roles"]}
    dom = r("POST", "/v3/domains", {"domain": {"name": "mx-dom"}})["domain"]["id"]
    group = r("POST", "/v3/groups", {"group": {"name": "mx-group", "domain_id": "default"}})["group"]["id"]
    r("PUT", f"/v3/groups/{group}/users/{member}")
    role = r("POST", "/v3/roles", {"role": {"name": "mx-role"}})["role"]["id"]
    role2 = r("POST", "/v3/roles", {"role": {"name": "mx-role2"}})["role"]["id"]
    r("PUT", f"/v3/roles/{role}/implies/{role2}")
    grantee = r("POST", "/v3/users", {"user": {"name": "mx-grantee", "domain_id": "default"}})["user"]["id"]
    r("PUT", f"/v3/projects/{a}/users/{grantee}/roles/{role}")
    r("PUT", f"/v3/system/users/{grantee}/roles/{role}")
    r("PUT", f"/v3/OS-INHERIT/projects/{a}/users/{grantee}/roles/{role}/inherited_to_projects")
    region = r("POST", "/v3/regions", {"region": {"id": "mx-region"}})["region"]["id"]
    service = r("POST", "/v3/services", {"service": {"type": "mx-type", "name": "mx"}})["service"]["id"]
    endpoint = r("POST", "/v3/endpoints", {"endpoint": {"service_id": service, "interface": "public",
                                                        "url": "http://mx.example"}})["endpoint"]["id"]
    policy = r("POST", "/v3/policies", {"policy": {"blob": "{}", "type": "application/json"}})["policy"]["id"]
    consumer = r("POST", "/v3/OS-OAUTH1/consumers", {"consumer": {"description": "mx"}})["consumer"]["id"]
    epg = r("POST", "/v3/OS-EP-FILTER/endpoint_groups", {"endpoint_group": {
        "name": "mx-epg", "filters": {"interface": "public"}}})["endpoint_group"]["id"]
    r("PUT", f"/v3/OS-EP-FILTER/endpoint_groups/{epg}/projects/{a}")
    r("PUT", f"/v3/OS-EP-FILTER/projects/{a}/endpoints/{endpoint}")
    r("PUT", f"/v3/domains/{dom}/config", {"config": {"identity": {"driver": "ldap"}}})
    r("PUT", f"/v3/projects/{a}/tags/mx-tag")
    cred = m("POST", "/v3/credentials", {"credential": {"user_id": member, "type": "totp",
                                                        "blob": "mx-blob"}})["credential"]["id"]
    ec2 = m("POST", f"/v3/users/{member}/credentials/OS-EC2", {"tenant_id": a})["credential"]["access"]
    trustee = r("POST", "/v3/users", {"user": {"name": "mx-trustee", "domain_id": "default"}})["user"]["id"]
    trust = m("POST", "/v3/OS-TRUST/trusts", {"trust": {
        "trustor_user_id": member, "trustee_user_id": trustee, "project_id": a, "roles": [{"name": "member"}],
        "impersonation": False}})["trust"]["id"]
    app = m("POST", f"/v3/users/{member}/application_credentials",
            {"application_credential": {"name": "mx-app"}})["application_credential"]["id"]
    return {"domain_id": dom, "group": "identity", "option": "driver", "project_id": a, "tag": "mx-tag",
            "user_id": member, "access": ec2, "credential_id": cred, "trust_id": trust,
            "member_role": roles["member"], "group_id": group, "role_id": role, "prior_id": role,
            "implied_id": role2, "actor_kind": "users", "actor_id": grantee, "target_kind": "projects",
            "target_id": a, "region_id": region, "service_id": service, "endpoint_id": endpoint, "cred_id": app,
            "policy_id": policy, "consumer_id": consumer, "endpoint_group": epg, "trustee": trustee}


def _network(w: World, cidr: str) -> tuple[str, str]:
    net = w.ok("network", "member", "POST", "/v2.0/networks", {"network": {"name": "mx-net"}})["network"]["id"]
    subnet = w.ok("network", "member", "POST", "/v2.0/subnets", {"subnet": {
        "network_id": net, "cidr": cidr, "ip_version": 4, "name": "mx-subnet"}})["subnet"]["id"]
    return net, subnet


def _public(w: World) -> str:
    """The external network (made here: the fake driver's cloud has no host data plane, so no `public`)."""
    nets = w.ok("network", "root", "GET", "/v2.0/networks?name=mx-public")["networks"]
    if nets:
        return nets[0]["id"]
    net = w.ok("network", "root", "POST", "/v2.0/networks", {"network": {
        "name": "mx-public", "router:external": True}})["network"]["id"]
    w.ok("network", "root", "POST", "/v2.0/subnets", {"subnet": {
        "network_id": net, "cidr": "100.99.0.0/24", "ip_version": 4, "name": "mx-public-subnet"}})
    return net


def network(w: World) -> dict[str, str]:
    def m(method: str, path: str, body: Any = None) -> dict[str, Any]:
        return w.ok("network", "member", method, path, body)

    net, subnet = _network(w, "10.77.0.0/24")
    pool = m("POST", "/v2.0/subnetpools", {"subnetpool": {"name": "mx-pool", "prefixes": ["10.200.0.0/16"]}})
    port = m("POST", "/v2.0/ports", {"port": {"network_id": net, "name": "mx-port"}})["port"]["id"]
    sg = m("POST", "/v2.0/security-groups", {"security_group": {"name": "mx-sg"}})["security_group"]["id"]
    rule = m("POST", "/v2.0/security-group-rules", {"security_group_rule": {
        "security_group_id": sg, "direction": "ingress", "protocol": "tcp", "port_range_min": 22,
        "port_range_max": 22}})["security_group_rule"]["id"]
    router = m("POST", "/v2.0/routers", {"router": {"name": "mx-router"}})["router"]["id"]
    public = _public(w)
    fip = m("POST", "/v2.0/floatingips", {"floatingip": {"floating_network_id": public}})["floatingip"]["id"]
    m("PUT", f"/v2.0/networks/{net}/tags/mx-tag")
    agents = w.ok("network", "root", "GET", "/v2.0/agents")["agents"]
    ids = {"network": net, "subnet": subnet, "subnetpool": pool["subnetpool"]["id"], "port": port,
           "secgroup": sg, "secgroup_rule": rule, "router": router, "floatingip": fip, "public": public,
           "collection": "networks", "tag": "mx-tag", "project_id": w.projects["A"], "alias": "router"}
    if agents:
        ids["agent"] = agents[0]["id"]
    return ids


def _volume(w: World, name: str) -> str:
    a = w.projects["A"]
    vol = w.ok("volume", "member", "POST", f"/v3/{a}/volumes", {"volume": {"size": 1, "name": name}})["volume"]
    _wait(w, "volume", f"/v3/{a}/volumes/{vol['id']}", "volume", "available")
    return vol["id"]


def volume(w: World) -> dict[str, str]:
    a = w.projects["A"]

    def m(method: str, path: str, body: Any = None, mv: str = "3.0") -> dict[str, Any]:
        return w.ok("volume", "member", method, f"/v3/{a}" + path, body, {"OpenStack-API-Version": f"volume {mv}"})

    root_project = _root_project(w)

    def r(method: str, path: str, body: Any = None) -> dict[str, Any]:
        return w.ok("volume", "root", method, f"/v3/{root_project}" + path, body)

    vol = _volume(w, "mx-vol")
    m("POST", f"/volumes/{vol}/metadata", {"metadata": {"mx": "1"}})
    snap = m("POST", "/snapshots", {"snapshot": {"volume_id": vol, "name": "mx-snap"}})["snapshot"]["id"]
    _wait(w, "volume", f"/v3/{a}/snapshots/{snap}", "snapshot", "available")
    m("POST", f"/snapshots/{snap}/metadata", {"metadata": {"mx": "1"}})
    transfer = m("POST", "/os-volume-transfer", {"transfer": {"volume_id": _volume(w, "mx-tvol")}})["transfer"]
    attached = _volume(w, "mx-avol")
    attachment = m("POST", "/attachments", {"attachment": {"volume_uuid": attached,
                                                           "instance_uuid": str(uuid.uuid4())}},
                   mv="3.27")["attachment"]
    vtype = r("POST", "/types", {"volume_type": {"name": "mx-type"}})["volume_type"]["id"]
    r("POST", f"/types/{vtype}/extra_specs", {"extra_specs": {"mx_key": "v"}})
    enc = r("POST", f"/types/{vtype}/encryption", {"encryption": {
        "provider": "luks", "control_location": "front-end"}})["encryption"]
    qos = r("POST", "/qos-specs", {"qos_specs": {"name": "mx-qos"}})["qos_specs"]["id"]
    services = r("GET", "/os-services")["services"]
    return {"volume_id": vol, "key": "mx", "snapshot_id": snap, "transfer_id": transfer["id"],
            "attachment_id": attachment["id"], "type_id": vtype, "spec_key": "mx_key",
            "encryption_key": enc.get("encryption_id", "provider"), "qos_id": qos, "project_a": a,
            "class_name": "default", "action": "disable", "host": services[0]["host"]}


def _root_project(w: World) -> str:
    resp = w.call("identity", "root", "GET", "/v3/auth/tokens", headers={"X-Subject-Token": w.tokens["root"]})
    return resp.json()["token"]["project"]["id"]


def image(w: World) -> dict[str, str]:
    def m(method: str, path: str, body: Any = None) -> dict[str, Any]:
        return w.ok("image", "member", method, path, body)

    def r(method: str, path: str, body: Any = None) -> dict[str, Any]:
        return w.ok("image", "root", method, path, body)

    private = m("POST", "/v2/images", {"name": "mx-img", "disk_format": "raw", "container_format": "bare"})["id"]
    m("PUT", f"/v2/images/{private}/tags/mx-tag")
    shared = m("POST", "/v2/images", {"name": "mx-shared", "disk_format": "raw", "container_format": "bare",
                                      "visibility": "shared"})["id"]
    m("POST", f"/v2/images/{shared}/members", {"member": w.projects["B"]})
    r("POST", "/v2/metadefs/namespaces", {"namespace": "mx-ns", "visibility": "public"})
    r("POST", "/v2/metadefs/namespaces/mx-ns/objects", {"name": "mx-obj"})
    r("POST", "/v2/metadefs/namespaces/mx-ns/properties", {"name": "mx-prop", "title": "t", "type": "string"})
    r("POST", "/v2/metadefs/namespaces/mx-ns/tags/mx-tag")
    r("POST", "/v2/metadefs/namespaces/mx-ns/resource_types", {"name": "OS::Nova::Server"})
    return {"image_id": private, "shared_image": shared, "project_a": w.projects["A"], "tag": "mx-tag",
            "action": "deactivate",
            "member_id": w.projects["B"], "project_b": w.projects["B"], "schema": "image",
            "metadef_schema": "namespace", "namespace": "mx-ns", "object_name": "mx-obj",
            "property_name": "mx-prop", "tag_name": "mx-tag", "resource_type": "OS::Nova::Server"}


def compute(w: World) -> dict[str, str]:
    def m(method: str, path: str, body: Any = None) -> dict[str, Any]:
        return w.ok("compute", "member", method, "/v2.1" + path, body)

    def r(method: str, path: str, body: Any = None) -> dict[str, Any]:
        return w.ok("compute", "root", method, "/v2.1" + path, body)

    base = w.ok("image", "root", "POST", "/v2/images", {"name": "mx-base", "disk_format": "raw",
                                                         "container_format": "bare", "visibility": "public"})
    resp = w.call("image", "root", "PUT", f"/v2/images/{base['id']}/file", b"\0" * 4096)
    assert resp.status_code == 204, resp.text
    img = w.ok("image", "member", "POST", "/v2/images", {"name": "mx-cimg", "disk_format": "raw",
                                                          "container_format": "bare", "mx_key": "v"})["id"]
    net, _ = _network(w, "10.78.0.0/24")
    vol = _volume(w, "mx-cvol")
    snap_vol = _volume(w, "mx-csvol")
    a = w.projects["A"]
    snap = w.ok("volume", "member", "POST", f"/v3/{a}/snapshots", {"snapshot": {"volume_id": snap_vol}})
    server = m("POST", "/servers", {"server": {"name": "mx-vm", "imageRef": base["id"], "flavorRef": "1",
                                               "networks": [{"uuid": net}]}})["server"]["id"]
    _wait(w, "compute", f"/v2.1/servers/{server}", "server", "active")
    m("POST", f"/servers/{server}/os-volume_attachments", {"volumeAttachment": {"volumeId": vol}})
    _wait(w, "volume", f"/v3/{a}/volumes/{vol}", "volume", "in-use")
    m("POST", f"/servers/{server}/metadata", {"metadata": {"mx": "1"}})
    w.call("compute", "member", "PUT", f"/v2.1/servers/{server}/tags/mx-tag",
           headers={"OpenStack-API-Version": "compute 2.26"})
    port = m("GET", f"/servers/{server}/os-interface")["interfaceAttachments"][0]["port_id"]
    request_id = m("GET", f"/servers/{server}/os-instance-actions")["instanceActions"][0]["request_id"]
    m("POST", "/os-keypairs", {"keypair": {"name": "mx-kp"}})
    group = m("POST", "/os-server-groups", {"server_group": {"name": "mx-grp", "policies": ["affinity"]}})
    flavor = r("POST", "/flavors", {"flavor": {"name": "mx-flavor", "ram": 64, "vcpus": 1, "disk": 1}})["flavor"]
    r("POST", f"/flavors/{flavor['id']}/os-extra_specs", {"extra_specs": {"mx_key": "v"}})
    aggregate = r("POST", "/os-aggregates", {"aggregate": {"name": "mx-agg"}})["aggregate"]["id"]
    hypervisor = r("GET", "/os-hypervisors")["hypervisors"][0]
    service = r("GET", "/os-services")["services"][0]
    sg = w.ok("network", "member", "POST", "/v2.0/security-groups",
              {"security_group": {"name": "mx-csg"}})["security_group"]["id"]
    rule = w.ok("network", "member", "POST", "/v2.0/security-group-rules", {"security_group_rule": {
        "security_group_id": sg, "direction": "ingress", "protocol": "udp"}})["security_group_rule"]["id"]
    fip = w.ok("network", "member", "POST", "/v2.0/floatingips",
               {"floatingip": {"floating_network_id": _public(w)}})["floatingip"]["id"]
    return {"server_id": server, "port_id": port, "project_id": a, "member_user": w.users["member"],
            "request_id": request_id, "key": "mx",
            "tag": "mx-tag", "volume_id": vol, "flavor_id": str(flavor["id"]), "flavor_key": "mx_key",
            "keypair": "mx-kp", "pattern": hypervisor["hypervisor_hostname"],
            "hypervisor_id": str(hypervisor["id"]), "service_id": str(service["id"]),
            "group_id": group["server_group"]["id"], "network": "mx-net", "alias": "os-keypairs",
            "image_id": img, "image_key": "mx_key", "secgroup": sg, "rule_id": rule, "floating_ip_id": fip,
            "network_id": net, "snapshot_id": snap["snapshot"]["id"], "aggregate_id": str(aggregate),
            "host_name": service["host"], "class_name": "default", "before_timestamp": "2020-01-01 00:00:00"}


SETUP: dict[str, Callable[[World], dict[str, str]]] = {
    "identity": identity, "network": network, "volume": volume, "image": image, "compute": compute}

# the resources only project A (and admins) may see: no listing shows them to project B
PRIVATE: dict[str, tuple[str, ...]] = {
    "compute": ("server_id", "port_id", "volume_id", "image_id", "secgroup", "rule_id", "floating_ip_id",
                "network_id", "snapshot_id", "group_id"),
    "network": ("network", "subnet", "subnetpool", "port", "secgroup", "secgroup_rule", "router", "floatingip"),
    "volume": ("volume_id", "snapshot_id", "transfer_id", "attachment_id"),
    "image": ("image_id",),
    "identity": ("credential_id", "trust_id", "cred_id", "access", "user_id", "project_id"),
}

# what only project A's member (the user who made them) and admins may list
USER_PRIVATE: dict[str, tuple[str, ...]] = {
    "compute": ("keypair",),
    "identity": ("credential_id", "trust_id", "cred_id", "access"),
}

BODIES: dict[str, dict[str, Any]] = {
    "identity": {
        "domain": {"domain": {"name": "mx-dom2"}}, "domain_update": {"domain": {"description": "x"}},
        "domain_config": {"config": {"identity": {"driver": "ldap"}}}, "domain_option": {"config": {"driver": "x"}},
        "project": {"project": {"name": "mx-p2", "domain_id": "default"}},
        "project_update": {"project": {"description": "x"}}, "tags": {"tags": ["a"]},
        "user": {"user": {"name": "mx-u2", "domain_id": "default"}}, "user_update": {"user": {"description": "x"}},
        "password": {"user": {"password": "new-secret-1", "original_password": "not-the-password"}},
        "ec2": {"tenant_id": "{project_id}"},
        "credential": {"credential": {"user_id": "{user_id}", "type": "totp", "blob": "x"}},
        "credential_update": {"credential": {"blob": "y"}},
        "trust": {"trust": {"trustor_user_id": "{user_id}", "trustee_user_id": "{trustee}",
                            "project_id": "{project_id}", "roles": [{"name": "member"}], "impersonation": False}},
        "group": {"group": {"name": "mx-g2", "domain_id": "default"}}, "group_update": {"group": {"description": "x"}},
        "role": {"role": {"name": "mx-r3"}}, "role_update": {"role": {"description": "x"}},
        "region": {"region": {"description": "x"}}, "region_update": {"region": {"description": "y"}},
        "service": {"service": {"type": "mx2"}}, "service_update": {"service": {"description": "x"}},
        "endpoint": {"endpoint": {"service_id": "{service_id}", "interface": "public", "url": "http://x"}},
        "endpoint_update": {"endpoint": {"url": "http://y"}},
        "app_cred": {"application_credential": {"name": "mx-app2"}},
        "policy": {"policy": {"blob": "{}", "type": "application/json"}},
        "consumer": {"consumer": {"description": "x"}}, "consumer_update": {"consumer": {"description": "y"}},
        "endpoint_group": {"endpoint_group": {"name": "x", "filters": {"interface": "public"}}},
    },
    "compute": {
        "server_update": {"server": {"name": "x"}}, "stop": {"os-stop": None},
        "console": {"os-getConsoleOutput": {"length": 1}}, "reset_state": {"os-resetState": {"state": "active"}},
        "console_serial": {"remote_console": {"protocol": "serial", "type": "serial"}},
        "lock": {"lock": None}, "pause": {"pause": None}, "create_image": {"createImage": {"name": "mx-snap"}},
        "rescue": {"rescue": None}, "shelve_offload": {"shelveOffload": None},
        "resize": {"resize": {"flavorRef": "{flavor_id}"}}, "migrate": {"migrate": None},
        "inject_network_info": {"injectNetworkInfo": None},
        "add_secgroup": {"addSecurityGroup": {"name": "default"}},
        "interface": {"interfaceAttachment": {"net_id": "{network_id}"}},
        "events": {"events": [{"name": "network-changed", "server_uuid": "{server_id}"}]},
        "quota": {"quota_set": {"instances": 20}}, "metadata": {"metadata": {"k": "v"}},
        "meta_item": {"meta": {"mx": "v"}}, "tags": {"tags": ["a"]},
        "attach": {"volumeAttachment": {"volumeId": "{volume_id}"}},
        "swap": {"volumeAttachment": {"volumeId": "{volume_id}"}},
        "flavor": {"flavor": {"name": "mx-f2", "ram": 64, "vcpus": 1, "disk": 1}},
        "flavor_update": {"flavor": {"description": "x"}}, "extra_specs": {"extra_specs": {"a": "b"}},
        "extra_spec": {"mx_key": "v"}, "flavor_access": {"addTenantAccess": {"tenant": "{project_id}"}},
        "service_update": {"status": "disabled"},
        "server_group": {"server_group": {"name": "x", "policies": ["affinity"]}},
        "image_meta_item": {"meta": {"mx_key": "v"}},
        "secgroup": {"security_group": {"name": "x", "description": "y"}},
        "secgroup_rule": {"security_group_rule": {"parent_group_id": "{secgroup}", "ip_protocol": "tcp",
                                                  "from_port": 22, "to_port": 22, "cidr": "0.0.0.0/0"}},
        "floating_ip": {"pool": "public"}, "volume": {"volume": {"size": 1}},
        "snapshot": {"snapshot": {"volume_id": "{volume_id}", "force": True}},
        "aggregate": {"aggregate": {"name": "mx-agg2"}},
        "aggregate_meta": {"set_metadata": {"metadata": {"a": "b"}}}, "host_update": {"status": "enable"},
        "quota_class": {"quota_class_set": {"instances": 20}},
    },
    "network": {
        "network": {"network": {"name": "x"}}, "shared_network": {"network": {"name": "x", "shared": True}},
        "port_mac": {"port": {"mac_address": "fa:16:3e:00:00:99"}},
        "floatingip_address": {"floatingip": {"floating_network_id": "{public}",
                                              "floating_ip_address": "100.99.0.50"}},
        "subnet": {"subnet": {"network_id": "{network}", "cidr": "10.79.0.0/24", "ip_version": 4}},
        "subnet_update": {"subnet": {"name": "x"}},
        "subnetpool": {"subnetpool": {"name": "x", "prefixes": ["10.201.0.0/16"]}},
        "subnetpool_update": {"subnetpool": {"name": "y"}}, "port": {"port": {"network_id": "{network}"}},
        "port_update": {"port": {"name": "x"}}, "secgroup": {"security_group": {"name": "x"}},
        "secgroup_update": {"security_group": {"name": "y"}},
        "secgroup_rule": {"security_group_rule": {"security_group_id": "{secgroup}", "direction": "ingress"}},
        "router": {"router": {"name": "x"}}, "floatingip": {"floatingip": {"floating_network_id": "{public}"}},
        "floatingip_update": {"floatingip": {"description": "x"}}, "router_interface": {"subnet_id": "{subnet}"},
        "quota": {"quota": {"network": 20}}, "tags": {"tags": ["a"]}, "agent": {"agent": {"admin_state_up": True}},
    },
    "volume": {
        "volume": {"volume": {"size": 1}}, "volume_update": {"volume": {"name": "x"}},
        "metadata": {"metadata": {"k": "v"}}, "meta_item": {"meta": {"mx": "v"}},
        "extend": {"os-extend": {"new_size": 2}}, "reset_status": {"os-reset_status": {"status": "available"}},
        "force_delete": {"os-force_delete": {}}, "set_bootable": {"os-set_bootable": {"bootable": True}},
        "readonly": {"os-update_readonly_flag": {"readonly": True}},
        "force_detach": {"os-force_detach": {"attachment_id": "{attachment_id}"}},
        "snapshot": {"snapshot": {"volume_id": "{volume_id}", "force": True}},
        "snapshot_update": {"snapshot": {"name": "x"}}, "type": {"volume_type": {"name": "x"}},
        "type_update": {"volume_type": {"description": "x"}}, "extra_specs": {"extra_specs": {"a": "b"}},
        "extra_spec": {"mx_key": "v"}, "type_access": {"addProjectAccess": {"project": "{project_a}"}},
        "encryption": {"encryption": {"provider": "luks", "control_location": "front-end"}},
        "qos": {"qos_specs": {"name": "x"}}, "qos_update": {"qos_specs": {"a": "b"}}, "qos_keys": {"keys": ["a"]},
        "attachment": {"attachment": {"volume_uuid": "{volume_id}", "instance_uuid": str(uuid.uuid4())}},
        "attachment_update": {"attachment": {"connector": {"host": "x"}}},
        "attachment_complete": {"os-complete": None}, "transfer": {"transfer": {"volume_id": "{volume_id}"}},
        "accept": {"accept": {"auth_key": "not-the-key"}},
        "default_type": {"default_type": {"volume_type": "{type_id}"}}, "quota": {"quota_set": {"volumes": 20}},
        "quota_class": {"quota_class_set": {"volumes": 20}},
        "service_disable": {"host": "{host}", "binary": "cinder-volume"},
    },
    "image": {
        "image": {"name": "x"}, "image_patch": [{"op": "replace", "path": "/name", "value": "x"}],
        "publicize": [{"op": "replace", "path": "/visibility", "value": "public"}],
        "import": {"method": {"name": "glance-direct"}}, "member": {"member": "{project_b}"},
        "member_status": {"status": "accepted"}, "task": {"type": "import", "input": {}},
        "namespace": {"namespace": "mx-ns"}, "resource_type": {"name": "OS::Cinder::Volume"},
        "md_object": {"name": "mx-obj"}, "md_property": {"name": "mx-prop", "title": "t", "type": "string"},
        "md_tags": {"tags": [{"name": "a"}]}, "md_tag": {"name": "mx-tag"}, "data": b"x" * 16,
    },
}
