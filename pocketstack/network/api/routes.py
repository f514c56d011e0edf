"""The networking API's URL map (Neutron v2.0): path -> method -> handler, in match order. Each CRUD resource
(`Resource` in api/common.py) gives its collection and member rows; the rest are listed one by one."""

from __future__ import annotations

from pocketstack.common.routes import Route, RouteTable
from pocketstack.network.api import agents, core, l3, quotas, security, tags, versions

TAGGED = "/v2.0/{collection}/{resource_id}/tags"

ROUTES: RouteTable = {
    "/": {"GET": versions.versions},
    "/v2.0": {"GET": versions.version},
    "/v2.0/": {"GET": versions.version},
    "/v2.0/extensions": {"GET": versions.list_extensions},
    "/v2.0/extensions/{alias}": {"GET": versions.show_extension},
    "/v2.0/service-providers": {"GET": versions.list_service_providers},
    **core.NETWORKS.routes(),
    **core.SUBNETS.routes(),
    **core.SUBNETPOOLS.routes(),
    **core.PORTS.routes(),
    **security.SECURITY_GROUPS.routes(),
    **security.SECURITY_GROUP_RULES.routes(),
    **l3.ROUTERS.routes(),
    **l3.FLOATING_IPS.routes(),
    "/v2.0/routers/{router_id}/add_router_interface": {"PUT": l3.add_interface},
    "/v2.0/routers/{router_id}/remove_router_interface": {"PUT": l3.remove_interface},
    "/v2.0/quotas": {"GET": quotas.list_quotas},
    "/v2.0/quotas/{project_id}": {"GET": quotas.show_quota, "PUT": quotas.update_quota,
                                  "DELETE": Route(quotas.delete_quota, status=204)},
    "/v2.0/quotas/{project_id}/default": {"GET": quotas.show_default_quota},
    "/v2.0/quotas/{project_id}/details": {"GET": quotas.show_quota_details},
    "/v2.0/network-ip-availabilities": {"GET": quotas.list_availabilities},
    "/v2.0/network-ip-availabilities/{network_id}": {"GET": quotas.show_availability},
    TAGGED: {"GET": tags.list_tags, "PUT": tags.replace_tags, "DELETE": Route(tags.clear_tags, status=204)},
    f"{TAGGED}/{{tag}}": {"GET": Route(tags.check_tag, status=204), "PUT": Route(tags.add_tag, status=201),
                          "DELETE": Route(tags.remove_tag, status=204)},
    "/v2.0/agents": {"GET": agents.list_agents},
    "/v2.0/agents/{agent_id}": {"GET": agents.show_agent, "PUT": agents.update_agent,
                                "DELETE": Route(agents.delete_agent, status=204)},
}
