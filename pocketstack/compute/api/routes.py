"""The compute API's URL map for servers and what hangs off them (actions, interfaces, metadata, tags, volume
attachments, instance actions), external events, limits and quota sets: path -> method -> handler, in match order.

The flavor, key pair, server group, host and version routes are still mounted from their own modules
(`service_app.ROUTER_MODULES`)."""

from __future__ import annotations

from pocketstack.common.routes import RouteTable
from pocketstack.compute.api import (
    instance_actions,
    limits,
    server_actions,
    server_meta,
    servers,
    volume_attachments,
)

SERVER = "/v2.1/servers/{server_id}"

ROUTES: RouteTable = {
    "/v2.1/servers": {"POST": servers.create_server, "GET": servers.list_servers},
    "/v2.1/servers/detail": {"GET": servers.list_servers_detail},
    SERVER: {"GET": servers.show_server, "PUT": servers.update_server, "DELETE": servers.delete_server},
    f"{SERVER}/action": {"POST": server_actions.server_action},
    f"{SERVER}/os-interface": {"GET": server_actions.list_interfaces, "POST": server_actions.attach_interface},
    f"{SERVER}/os-interface/{{port_id}}": {"GET": server_actions.show_interface,
                                           "DELETE": server_actions.detach_interface},
    "/v2.1/os-server-external-events": {"POST": server_actions.external_events},
    "/v2.1/limits": {"GET": limits.show_limits},
    "/v2.1/os-quota-sets/{project_id}/defaults": {"GET": limits.quota_defaults},
    "/v2.1/os-quota-sets/{project_id}/detail": {"GET": limits.quota_detail},
    "/v2.1/os-quota-sets/{project_id}": {"GET": limits.show_quota, "PUT": limits.update_quota,
                                         "DELETE": limits.delete_quota},
    f"{SERVER}/os-instance-actions": {"GET": instance_actions.list_actions},
    f"{SERVER}/os-instance-actions/{{request_id}}": {"GET": instance_actions.show_action},
    f"{SERVER}/metadata": {"GET": server_meta.list_metadata, "POST": server_meta.merge_metadata,
                           "PUT": server_meta.replace_metadata},
    f"{SERVER}/metadata/{{key}}": {"GET": server_meta.show_metadata_item, "PUT": server_meta.set_metadata_item,
                                   "DELETE": server_meta.delete_metadata_item},
    f"{SERVER}/tags": {"GET": server_meta.list_tags, "PUT": server_meta.replace_tags,
                       "DELETE": server_meta.delete_tags},
    f"{SERVER}/tags/{{tag}}": {"GET": server_meta.check_tag, "PUT": server_meta.add_tag,
                               "DELETE": server_meta.delete_tag},
    f"{SERVER}/os-volume_attachments": {"GET": volume_attachments.list_attachments,
                                        "POST": volume_attachments.attach_volume},
    f"{SERVER}/os-volume_attachments/{{volume_id}}": {"GET": volume_attachments.show_attachment,
                                                      "DELETE": volume_attachments.detach_volume},
}
