"""The compute API's URL map (Nova v2.1): path -> method -> handler, in match order: version discovery, servers and
what hangs off them (actions, interfaces, metadata, tags, volume attachments, instance actions), external events,
limits and quota sets, then the admin-side resources (flavors, key pairs, zones, hypervisors, aggregates, services,
server groups)."""

from __future__ import annotations

from pocketstack.common.routes import RouteTable
from pocketstack.compute.api import (
    flavors,
    hosts,
    instance_actions,
    keypairs,
    limits,
    server_actions,
    server_groups,
    server_meta,
    servers,
    versions,
    volume_attachments,
)

SERVER = "/v2.1/servers/{server_id}"

ROUTES: RouteTable = {
    # version discovery
    "/": {"GET": versions.versions},
    "/v2.1": {"GET": versions.version_v21},
    "/v2.1/": {"GET": versions.version_v21},
    # servers
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
    # flavors, os-flavor-manage, os-extra_specs, os-flavor-access
    "/v2.1/flavors": {"GET": flavors.list_flavors, "POST": flavors.create_flavor},
    "/v2.1/flavors/detail": {"GET": flavors.list_flavors_detail},
    "/v2.1/flavors/{flavor_id}": {"GET": flavors.show_flavor, "PUT": flavors.update_flavor,
                                  "DELETE": flavors.delete_flavor},
    "/v2.1/flavors/{flavor_id}/os-extra_specs": {"GET": flavors.list_extra_specs,
                                                 "POST": flavors.create_extra_specs},
    "/v2.1/flavors/{flavor_id}/os-extra_specs/{key}": {"GET": flavors.show_extra_spec,
                                                       "PUT": flavors.update_extra_spec,
                                                       "DELETE": flavors.delete_extra_spec},
    "/v2.1/flavors/{flavor_id}/os-flavor-access": {"GET": flavors.list_flavor_access},
    "/v2.1/flavors/{flavor_id}/action": {"POST": flavors.flavor_action},
    # os-keypairs
    "/v2.1/os-keypairs": {"POST": keypairs.create_keypair, "GET": keypairs.list_keypairs},
    "/v2.1/os-keypairs/{name}": {"GET": keypairs.show_keypair, "DELETE": keypairs.delete_keypair},
    # os-availability-zone, os-hypervisors, os-aggregates, os-services
    "/v2.1/os-availability-zone": {"GET": hosts.list_zones},
    "/v2.1/os-availability-zone/detail": {"GET": hosts.list_zones_detail},
    "/v2.1/os-hypervisors": {"GET": hosts.list_hypervisors},
    "/v2.1/os-hypervisors/detail": {"GET": hosts.list_hypervisors_detail},
    "/v2.1/os-hypervisors/statistics": {"GET": hosts.hypervisor_statistics},
    "/v2.1/os-hypervisors/{pattern}/search": {"GET": hosts.search_hypervisors},
    "/v2.1/os-hypervisors/{pattern}/servers": {"GET": hosts.hypervisor_servers},
    "/v2.1/os-hypervisors/{hypervisor_id}/uptime": {"GET": hosts.hypervisor_uptime},
    "/v2.1/os-hypervisors/{hypervisor_id}": {"GET": hosts.show_hypervisor},
    "/v2.1/os-aggregates": {"GET": hosts.list_aggregates},
    "/v2.1/os-services": {"GET": hosts.list_services},
    "/v2.1/os-services/{service_id}": {"PUT": hosts.update_service, "DELETE": hosts.delete_service},
    # os-server-groups
    "/v2.1/os-server-groups": {"POST": server_groups.create_group, "GET": server_groups.list_groups},
    "/v2.1/os-server-groups/{group_id}": {"GET": server_groups.show_group, "DELETE": server_groups.delete_group},
}
