"""The compute API's version discovery and admin-side resources (flavors, key pairs, hosts, server groups) as
route tables, in match order (the lead folds these into `routes.py`'s ROUTES)."""

from __future__ import annotations

from pocketstack.common.routes import RouteTable
from pocketstack.compute.api import flavors, hosts, keypairs, server_groups, versions

VERSION_ROUTES: RouteTable = {
    "/": {"GET": versions.versions},
    "/v2.1": {"GET": versions.version_v21},
    "/v2.1/": {"GET": versions.version_v21},
}

ADMIN_ROUTES: RouteTable = {
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
