"""Compute quotas: the resources, which of them each microversion shows, and their configured defaults (the
`quotas`, `project_user_quotas` and `quota_classes` rows: `store/quotas.py`)."""

from __future__ import annotations

from pocketstack.common.microversion import APIVersion
from pocketstack.settings import Settings

# the resources counted and enforced
RESOURCES = ("instances", "cores", "ram", "key_pairs", "server_groups", "server_group_members", "metadata_items")
# the network quotas Nova kept from nova-network (shown, stored and settable up to 2.35, never counted)
NETWORK_LEGACY = ("floating_ips", "fixed_ips", "security_groups", "security_group_rules")
# personality files, gone from the API at 2.57 (shown, stored and settable up to 2.56)
FILES_LEGACY = ("injected_files", "injected_file_content_bytes", "injected_file_path_bytes")
ALL_RESOURCES = RESOURCES + NETWORK_LEGACY + FILES_LEGACY
SERVER_GROUP_RESOURCES = ("server_groups", "server_group_members")


def quota_set_resources(version: APIVersion) -> tuple[str, ...]:
    """The resources `os-quota-sets` shows and accepts at a microversion (2.36 drops the network ones, 2.57 the
    personality files)."""
    if version >= "2.57":
        return RESOURCES
    if version >= "2.36":
        return RESOURCES + FILES_LEGACY
    return ALL_RESOURCES


def quota_class_resources(version: APIVersion) -> tuple[str, ...]:
    """The resources `os-quota-class-sets` shows and accepts: before 2.50 without the server group ones (as Nova's
    v2.1 shipped it), from 2.50 without the network ones, from 2.57 without the personality files."""
    if version >= "2.57":
        return RESOURCES
    if version >= "2.50":
        return RESOURCES + FILES_LEGACY
    return tuple(r for r in ALL_RESOURCES if r not in SERVER_GROUP_RESOURCES)


def default_limits(settings: Settings) -> dict[str, int]:
    """The configured defaults of every resource (before the `default` quota class)."""
    cfg = settings.compute
    return {resource: getattr(cfg, f"quota_{resource}") for resource in ALL_RESOURCES}
