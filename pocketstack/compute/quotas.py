"""Compute quotas: the resources and their configured defaults (the `quotas` rows: `store/quotas.py`)."""

from __future__ import annotations

from pocketstack.settings import Settings

RESOURCES = ("instances", "cores", "ram", "key_pairs", "server_groups", "server_group_members", "metadata_items")


def default_limits(settings: Settings) -> dict[str, int]:
    cfg = settings.compute
    return {resource: getattr(cfg, f"quota_{resource}") for resource in RESOURCES}

