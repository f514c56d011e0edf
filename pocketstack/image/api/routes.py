"""The image API's URL map (Glance v2): path -> method -> handler, in match order."""

from __future__ import annotations

from pocketstack.common.routes import Route, RouteTable
from pocketstack.image.api import data, images, members, metadef_contents, metadef_schemas, metadefs, tasks, versions

IMAGE = "/v2/images/{image_id}"
NS = "/v2/metadefs/namespaces/{namespace}"

ROUTES: RouteTable = {
    "/": {"GET": versions.root_versions},
    "/versions": {"GET": versions.root_versions},
    "/v2": {"GET": versions.v2_versions},
    "/v2/": {"GET": versions.v2_versions},
    "/v2/info/import": {"GET": versions.import_info},
    "/v2/info/stores": {"GET": versions.stores_info},
    "/v2/info/usage": {"GET": versions.usage_info},
    "/v2/schemas/metadefs/{name}": {"GET": metadef_schemas.schema},
    "/v2/schemas/{name}": {"GET": versions.schema},
    "/v2/images": {"POST": images.create_image, "GET": images.list_images},
    IMAGE: {"GET": images.show_image, "PATCH": images.update_image,
            "DELETE": Route(images.delete_image, status=204)},
    f"{IMAGE}/tags/{{tag}}": {"PUT": Route(images.add_tag, status=204),
                              "DELETE": Route(images.delete_tag, status=204)},
    f"{IMAGE}/actions/{{action}}": {"POST": Route(images.image_action, status=204)},
    f"{IMAGE}/file": {"PUT": Route(data.upload, status=204), "GET": data.download},
    f"{IMAGE}/stage": {"PUT": Route(data.stage, status=204)},
    f"{IMAGE}/import": {"POST": Route(data.import_image, status=202)},
    f"{IMAGE}/tasks": {"GET": data.image_tasks},
    f"{IMAGE}/members": {"POST": members.add_member, "GET": members.list_members},
    f"{IMAGE}/members/{{member_id}}": {"GET": members.show_member, "PUT": members.update_member,
                                       "DELETE": Route(members.delete_member, status=204)},
    "/v2/tasks": {"POST": tasks.create_task, "GET": tasks.list_tasks},
    "/v2/tasks/{task_id}": {"GET": tasks.show_task},
    # metadata definitions
    "/v2/metadefs/resource_types": {"GET": metadefs.list_resource_types},
    "/v2/metadefs/namespaces": {"POST": metadefs.create_namespace, "GET": metadefs.list_namespaces},
    NS: {"GET": metadefs.show_namespace, "PUT": metadefs.update_namespace,
         "DELETE": Route(metadefs.delete_namespace, status=204)},
    f"{NS}/resource_types": {"GET": metadefs.list_associations, "POST": metadefs.create_association},
    f"{NS}/resource_types/{{resource_type}}": {"DELETE": Route(metadefs.delete_association, status=204)},
    f"{NS}/objects": {"GET": metadef_contents.list_objects, "POST": metadef_contents.create_object,
                      "DELETE": Route(metadef_contents.delete_objects, status=204)},
    f"{NS}/objects/{{object_name}}": {"GET": metadef_contents.show_object, "PUT": metadef_contents.update_object,
                                      "DELETE": Route(metadef_contents.delete_object, status=204)},
    f"{NS}/properties": {"GET": metadef_contents.list_properties, "POST": metadef_contents.create_property,
                         "DELETE": Route(metadef_contents.delete_properties, status=204)},
    f"{NS}/properties/{{property_name}}": {
        "GET": metadef_contents.show_property, "PUT": metadef_contents.update_property,
        "DELETE": Route(metadef_contents.delete_property, status=204)},
    f"{NS}/tags": {"GET": metadef_contents.list_tags, "POST": metadef_contents.create_tags,
                   "DELETE": Route(metadef_contents.delete_tags, status=204)},
    f"{NS}/tags/{{tag_name}}": {"POST": metadef_contents.create_tag, "GET": metadef_contents.show_tag,
                                "PUT": metadef_contents.update_tag,
                                "DELETE": Route(metadef_contents.delete_tag, status=204)},
}
