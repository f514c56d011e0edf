"""The dashboard's registry entry: not in the catalog, no database; `serve dashboard` in the distributed mode."""

from __future__ import annotations

from pocketstack.common.service import Role, ServiceSpec

SPEC = ServiceSpec(
    "dashboard", None, "pocketstack-dashboard", "", "pocketstack.dashboard.service_app:create", database=False,
    roles=(Role("dashboard", "pocketstack.dashboard.service_app:create", api="dashboard", stage=2),),
)
