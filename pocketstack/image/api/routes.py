"""The image API's URL map (Glance v2): path -> method -> handler, in match order."""

from __future__ import annotations

from pocketstack.common.routes import Route, RouteTable
from pocketstack.image.api import data, images, members, versions

IMAGE = "/v2/images/{image_id}"

ROUTES: RouteTable = {
    "/": {"GET": versions.root_versions},
    "/versions": {"GET": versions.root_versions},
    "/v2": {"GET": versions.v2_versions},
    "/v2/": {"GET": versions.v2_versions},
    "/v2/info/import": {"GET": versions.import_info},
    "/v2/info/stores": {"GET": versions.stores_info},
    "/v2/info/usage": {"GET": versions.usage_info},
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
    f"{IMAGE}/members": {"POST": members.add_member, "GET": members.list_members},
    f"{IMAGE}/members/{{member_id}}": {"GET": members.show_member, "PUT": members.update_member,
                                       "DELETE": Route(members.delete_member, status=204)},
}
