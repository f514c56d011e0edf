"""Security groups and rules (`/v2.0/security-groups`, `/v2.0/security-group-rules`)."""

from __future__ import annotations

from typing import Literal

from pocketstack.network.api.common import Body, Resource
from pocketstack.network.api.core import Name, Owned

COMMON = {"id", "description", "project_id", "tenant_id", "created_at", "updated_at", "revision_number", "tags"}
GROUP_ATTRS = COMMON | {"name", "stateful", "shared", "security_group_rules"}
RULE_ATTRS = COMMON | {"security_group_id", "direction", "ethertype", "protocol", "port_range_min",
                       "port_range_max", "remote_ip_prefix", "normalized_cidr", "remote_group_id",
                       "remote_address_group_id", "belongs_to_default_sg"}


class GroupUpdate(Body):
    name: str = Name
    description: str = Name
    stateful: bool = True


class GroupCreate(GroupUpdate, Owned):
    pass


class RuleCreate(Owned):
    security_group_id: str
    direction: Literal["ingress", "egress"]
    ethertype: Literal["IPv4", "IPv6"] = "IPv4"
    protocol: str | int | None = None
    port_range_min: int | None = None  # 0-65535, checked with Neutron's message by the manager
    port_range_max: int | None = None
    remote_ip_prefix: str | None = None
    remote_group_id: str | None = None
    remote_address_group_id: None = None
    description: str = Name


SECURITY_GROUPS = Resource(
    "/v2.0/security-groups", kind="security_group", collection="security_groups", attributes=GROUP_ATTRS,
    create=GroupCreate, update=GroupUpdate)
SECURITY_GROUP_RULES = Resource(
    "/v2.0/security-group-rules", kind="security_group_rule", collection="security_group_rules",
    attributes=RULE_ATTRS, create=RuleCreate, update=None)
