"""Metadata definitions (Glance's metadefs) over plain HTTP: namespaces and their visibility, protection, objects,
properties, tags, resource types and associations, schemas."""

from __future__ import annotations

import pytest
from image_helpers import Raw
from openstack import exceptions as sdk_exc

NS = "/v2/metadefs/namespaces"



def _namespace(raw: Raw, name: str, **attrs) -> dict:
    resp = raw("POST", NS, json={"namespace": name, **attrs})
    assert resp.status_code == 201, resp.text
    assert resp.headers["Location"] == f"{NS}/{name}"
    return resp.json()


def test_resource_types_shipped_and_schemas(raw, demo_raw) -> None:
    names = [rt["name"] for rt in demo_raw("GET", "/v2/metadefs/resource_types").json()["resource_types"]]
    assert {"OS::Glance::Image", "OS::Cinder::Volume", "OS::Nova::Flavor", "OS::Nova::Server"} <= set(names)
    for path, name in (("namespace", "namespace"), ("namespaces", "namespaces"), ("object", "object"),
                       ("objects", "objects"), ("property", "property"), ("properties", "properties"),
                       ("tag", "tag"), ("tags", "tags"), ("resource_type", "resource_type_association"),
                       ("resource_types", "resource_type_associations")):
        resp = demo_raw("GET", f"/v2/schemas/metadefs/{path}")
        assert resp.status_code == 200 and resp.json()["name"] == name
    assert raw("GET", "/v2/schemas/metadefs/nope").status_code == 404


def test_namespace_lifecycle_protection_and_visibility(raw, demo_raw, prefix) -> None:
    name = f"{prefix}::Hypervisor"
    body = _namespace(raw, name, display_name="Hypervisor", description="Pick one", visibility="public",
                      protected=True, resource_type_associations=[{"name": "OS::Glance::Image",
                                                                   "prefix": "hw_"}])
    assert body["namespace"] == name and body["visibility"] == "public" and body["protected"] is True
    assert body["self"] == f"{NS}/{name}" and body["schema"] == "/v2/schemas/metadefs/namespace"
    assert body["resource_type_associations"][0]["prefix"] == "hw_"
    assert raw("POST", NS, json={"namespace": name}).status_code == 409
    assert name in [n["namespace"] for n in demo_raw("GET", NS).json()["namespaces"]]
    assert demo_raw("GET", f"{NS}/{name}").json()["display_name"] == "Hypervisor"
    assert demo_raw("DELETE", f"{NS}/{name}").status_code == 403  # admins write the catalog
    assert raw("DELETE", f"{NS}/{name}").status_code == 403  # protected
    resp = raw("PUT", f"{NS}/{name}", json={"namespace": name, "visibility": "private", "protected": False,
                                           "display_name": "Hypervisor"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["visibility"] == "private" and resp.json()["protected"] is False
    # private: the owner's project (admin's) and admins only
    assert demo_raw("GET", f"{NS}/{name}").status_code == 404
    assert name not in [n["namespace"] for n in demo_raw("GET", NS).json()["namespaces"]]
    assert raw("GET", f"{NS}?visibility=private&resource_types=OS::Glance::Image").json()["namespaces"][0][
        "namespace"] == name
    # a rename: to a name in use is a conflict (told only to those who may rename), to a free one moves it
    other = _namespace(raw, f"{name}-2", visibility="public")["namespace"]
    assert raw("PUT", f"{NS}/{other}", json={"namespace": name}).status_code == 409
    assert demo_raw("PUT", f"{NS}/{other}", json={"namespace": name, "visibility": "public"}).status_code == 403
    resp = raw("PUT", f"{NS}/{other}", json={"namespace": f"{name}-3", "visibility": "public"})
    assert resp.status_code == 200 and resp.json()["self"] == f"{NS}/{name}-3"
    assert raw("GET", f"{NS}/{other}").status_code == 404
    assert raw("DELETE", f"{NS}/{name}-3").status_code == 204
    assert raw("DELETE", f"{NS}/{name}").status_code == 204
    assert raw("GET", f"{NS}/{name}").status_code == 404


def test_namespace_bad_input(raw, prefix) -> None:
    assert raw("POST", NS, json={"display_name": "x"}).status_code == 400
    assert raw("POST", NS, json={"namespace": f"{prefix}-b", "visibility": "shared"}).status_code == 400
    assert raw("POST", NS, json={"namespace": f"{prefix}-b", "protected": "yes"}).status_code == 400
    assert raw("POST", NS, json={"namespace": f"{prefix}-b", "colour": "red"}).status_code == 400
    assert raw("POST", NS, json={"namespace": "x" * 81}).status_code == 400
    assert raw("POST", NS, json=["x"]).status_code == 400
    assert raw("POST", NS, json={"namespace": f"{prefix}-b", "created_at": "now"}).status_code == 403  # read-only
    assert raw("GET", f"{NS}?sort_key=colour").status_code == 400
    assert raw("GET", f"{NS}/{prefix}-none").status_code == 404


def test_namespace_list_pages(raw, prefix) -> None:
    for i in range(3):
        _namespace(raw, f"{prefix}-page{i}", visibility="public")
    seen, url = [], f"{NS}?limit=1&sort_key=namespace&sort_dir=asc"
    while url:
        body = raw("GET", url).json()
        seen += [n["namespace"] for n in body["namespaces"]]
        url = body.get("next")
    mine = [n for n in seen if n.startswith(f"{prefix}-page")]
    assert mine == [f"{prefix}-page{i}" for i in range(3)]
    for i in range(3):
        assert raw("DELETE", f"{NS}/{prefix}-page{i}").status_code == 204


def test_objects_and_properties(raw, demo_raw, prefix) -> None:
    name = f"{prefix}-contents"
    _namespace(raw, name, visibility="public")
    url = f"{NS}/{name}"
    prop = {"type": "string", "title": "CPU mode", "enum": ["host", "custom"]}
    resp = raw("POST", f"{url}/objects", json={"name": "CPU Limits", "description": "limits",
                                               "required": ["quota"], "properties": {"quota": prop}})
    assert resp.status_code == 201, resp.text
    obj = resp.json()
    assert obj["self"] == f"{url}/objects/CPU%20Limits" and obj["properties"]["quota"]["title"] == "CPU mode"
    assert raw("POST", f"{url}/objects", json={"name": "CPU Limits"}).status_code == 409
    assert raw("POST", f"{url}/objects", json={"name": "bad", "properties": {"p": {"type": "str"}}}
               ).status_code == 400
    assert demo_raw("GET", f"{url}/objects/CPU Limits").json()["required"] == ["quota"]
    assert demo_raw("POST", f"{url}/objects", json={"name": "mine"}).status_code == 403
    resp = raw("PUT", f"{url}/objects/CPU Limits", json={"name": "CPU Caps", "required": ["quota"],
                                                         "properties": {"quota": prop}})
    assert resp.status_code == 200 and resp.json()["name"] == "CPU Caps"
    assert raw("GET", f"{url}/objects/CPU Limits").status_code == 404
    assert [o["name"] for o in raw("GET", f"{url}/objects").json()["objects"]] == ["CPU Caps"]

    resp = raw("POST", f"{url}/properties", json={"name": "hw_cpu_mode", **prop})
    assert resp.status_code == 201 and resp.json()["name"] == "hw_cpu_mode"
    assert raw("POST", f"{url}/properties", json={"name": "hw_cpu_mode", **prop}).status_code == 409
    assert raw("POST", f"{url}/properties", json={"name": "x", "type": "string"}).status_code == 400  # title
    assert raw("POST", f"{url}/properties", json={"name": "x", "title": "X", "type": "string", "min": 1}
               ).status_code == 400
    listed = raw("GET", f"{url}/properties").json()["properties"]
    assert listed == {"hw_cpu_mode": prop}
    resp = raw("PUT", f"{url}/properties/hw_cpu_mode", json={"name": "hw_cpu_mode", **prop, "title": "Mode"})
    assert resp.status_code == 200 and resp.json()["title"] == "Mode"
    # a property shown through a resource type association's prefix
    assert raw("POST", f"{url}/resource_types", json={"name": "OS::Nova::Flavor", "prefix": "hw_"}
               ).status_code == 201
    resp = raw("GET", f"{url}/properties/hw_cpu_mode?resource_type=OS::Nova::Flavor")
    assert resp.status_code == 404  # the stored name carries no prefix: hw_hw_cpu_mode would show it
    assert raw("GET", f"{url}/properties/hw_hw_cpu_mode?resource_type=OS::Nova::Flavor").json()["title"] == "Mode"
    shown = raw("GET", url).json()
    assert shown["properties"]["hw_cpu_mode"]["title"] == "Mode" and shown["objects"][0]["name"] == "CPU Caps"
    shown = raw("GET", f"{url}?resource_type=OS::Nova::Flavor").json()  # names as that resource type sees them
    assert list(shown["properties"]) == ["hw_hw_cpu_mode"]
    assert list(shown["objects"][0]["properties"]) == ["hw_quota"] and shown["objects"][0]["required"] == ["hw_quota"]
    raw("PUT", url, json={"namespace": name, "visibility": "public", "protected": True})
    assert raw("DELETE", f"{url}/objects/CPU Caps").status_code == 403
    assert raw("DELETE", f"{url}/properties").status_code == 403
    raw("PUT", url, json={"namespace": name, "visibility": "public"})
    assert raw("DELETE", f"{url}/properties/hw_cpu_mode").status_code == 204
    assert raw("GET", f"{url}/properties").json()["properties"] == {}
    assert raw("DELETE", f"{url}/objects/CPU Caps").status_code == 204
    assert raw("DELETE", f"{url}/objects/CPU Caps").status_code == 404
    assert raw("DELETE", url).status_code == 204


def test_tags(raw, prefix) -> None:
    name = f"{prefix}-tags"
    _namespace(raw, name)
    url = f"{NS}/{name}/tags"
    resp = raw("POST", url, json={"tags": [{"name": "a"}, {"name": "b"}, {"name": "c"}]})
    assert resp.status_code == 201 and [t["name"] for t in resp.json()["tags"]] == ["a", "b", "c"]
    # a second create replaces them, unless told to append
    assert raw("POST", url, json={"tags": [{"name": "b"}, {"name": "d"}]}).status_code == 201
    assert sorted(t["name"] for t in raw("GET", url).json()["tags"]) == ["b", "d"]
    resp = raw("POST", url, json={"tags": [{"name": "e"}]}, headers={"X-Openstack-Append": "True"})
    assert resp.status_code == 201
    assert sorted(t["name"] for t in raw("GET", url).json()["tags"]) == ["b", "d", "e"]
    assert raw("POST", url, json={"tags": [{"name": "x"}, {"name": "X"}]}).status_code == 409
    assert raw("POST", url, json={"tags": "x"}).status_code == 400
    assert raw("POST", url, json={"tags": [{"name": "x", "colour": "red"}]}).status_code == 400
    resp = raw("POST", f"{url}/single")
    assert resp.status_code == 201 and resp.json()["name"] == "single"
    assert raw("POST", f"{url}/SINGLE").status_code == 409  # tag names are case insensitive
    resp = raw("PUT", f"{url}/single", json={"name": "renamed"})
    assert resp.status_code == 200 and resp.json()["name"] == "renamed"
    assert raw("GET", f"{url}/single").status_code == 404
    assert raw("GET", f"{url}/renamed").json()["name"] == "renamed"
    assert raw("DELETE", f"{url}/renamed").status_code == 204
    assert raw("DELETE", url).status_code == 204
    assert raw("GET", url).json()["tags"] == []
    assert raw("DELETE", f"{NS}/{name}").status_code == 204


def test_resource_type_associations(raw, prefix) -> None:
    name = f"{prefix}-rt"
    _namespace(raw, name, protected=True)
    url = f"{NS}/{name}/resource_types"
    resp = raw("POST", url, json={"name": "OS::Cinder::Volume", "prefix": "vol_", "properties_target": "image"})
    assert resp.status_code == 201 and resp.json()["name"] == "OS::Cinder::Volume"
    assert raw("POST", url, json={"name": "OS::Cinder::Volume"}).status_code == 409
    assert raw("POST", url, json={"name": f"{prefix}::Thing"}).status_code == 201  # a new type is made
    types = [rt["name"] for rt in raw("GET", "/v2/metadefs/resource_types").json()["resource_types"]]
    assert f"{prefix}::Thing" in types
    assert [a["name"] for a in raw("GET", url).json()["resource_type_associations"]] == [
        "OS::Cinder::Volume", f"{prefix}::Thing"]
    assert raw("DELETE", f"{url}/OS::Cinder::Volume").status_code == 403  # the namespace is protected
    raw("PUT", f"{NS}/{name}", json={"namespace": name, "protected": False})
    assert raw("DELETE", f"{url}/OS::Cinder::Volume").status_code == 204
    assert raw("DELETE", f"{url}/OS::Cinder::Volume").status_code == 404
    assert raw("DELETE", f"{url}/{prefix}::Nothing").status_code == 404
    assert [a["name"] for a in raw("GET", url).json()["resource_type_associations"]] == [f"{prefix}::Thing"]
    assert raw("DELETE", f"{NS}/{name}").status_code == 204


def test_through_openstacksdk(admin, prefix) -> None:
    name = f"{prefix}-sdk"
    ns = admin.image.create_metadef_namespace(namespace=name, display_name="SDK", visibility="public")
    assert ns.namespace == name and ns.visibility == "public" and ns.is_protected is False
    assert name in [n.namespace for n in admin.image.metadef_namespaces()]
    ns = admin.image.update_metadef_namespace(ns, description="through the SDK", visibility="public")
    assert ns.description == "through the SDK"
    assert admin.image.get_metadef_namespace(name).display_name is None  # a PUT resets what it leaves out
    admin.image.create_metadef_property(name, name="hw_x", title="X", type="integer", minimum=0)
    props = list(admin.image.metadef_properties(name))
    assert [p.name for p in props] == ["hw_x"] and props[0].minimum == 0
    assert admin.image.get_metadef_property("hw_x", name).title == "X"
    obj = admin.image.create_metadef_object(name, name="Limits",
                                            properties={"q": {"title": "Q", "type": "string"}})
    assert obj.name == "Limits"
    assert [o.name for o in admin.image.metadef_objects(name)] == ["Limits"]
    assert "OS::Glance::Image" in [rt.name for rt in admin.image.metadef_resource_types()]
    admin.image.create_metadef_resource_type_association(name, name="OS::Glance::Image", prefix="img_")
    assert [a.name for a in admin.image.metadef_resource_type_associations(name)] == ["OS::Glance::Image"]
    assert admin.image.get_metadef_namespace_schema().name == "namespace"
    admin.image.delete_metadef_namespace(name, ignore_missing=False)
    with pytest.raises(sdk_exc.NotFoundException):
        admin.image.get_metadef_namespace(name)


def test_through_the_openstack_cli(cloud, prefix) -> None:
    name = f"{prefix}-cli"
    cloud.cli("image", "metadef", "namespace", "create", name, "--public", "--display-name", "CLI",
              "-f", "json")
    listed = cloud.cli("image", "metadef", "namespace", "list", "-f", "json")
    assert name in [row["namespace"] for row in listed]
    cloud.cli("image", "metadef", "property", "create", name, "--name", "hw_y", "--title", "Y",
              "--type", "string", "--schema", '{"enum": ["a", "b"]}', "-f", "json")
    shown = cloud.cli("image", "metadef", "property", "show", name, "hw_y", "-f", "json")
    assert shown["title"] == "Y" and shown["enum"] == ["a", "b"]
    cloud.cli("image", "metadef", "object", "create", "--namespace", name, "Caps", "-f", "json")
    assert [o["name"] for o in cloud.cli("image", "metadef", "object", "list", name, "-f", "json")] == ["Caps"]
    types = cloud.cli("image", "metadef", "resource", "type", "list", "-f", "json")
    assert "OS::Nova::Server" in [t.get("Name", t.get("name")) for t in types]
    cloud.cli("image", "metadef", "namespace", "delete", name)
    assert name not in [row["namespace"] for row in cloud.cli("image", "metadef", "namespace", "list",
                                                                    "-f", "json")]
