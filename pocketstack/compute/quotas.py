"""Compute quotas: the resources and their configured defaults (the `quotas` rows: `store/quotas.py`)."""

from __future__ import annotations

from pocketstack.settings import Settings

RESOURCES = ("instances", "cores", "ram", "key_pairs", "server_groups", "server_group_members", "metadata_items")


def default_limits(settings: Settings) -> dict[str, int]:
    cfg = settings.compute
    return {resource: getattr(cfg, f"quota_{resource}") for resource in RESOURCES}


def __getattr__(name: str) -> object:
    """`project_limits`, now in store/quotas.py, for the modules still importing it from here (lead: remove)."""
    if name in ("project_limits", "project_limits_sync"):
        from pocketstack.compute.store import quotas as store

        return getattr(store, name)
    raise AttributeError(name)
