"""The servable roles: what `pocketstack serve ROLE` can run, and how `pocketstack up --distributed` places it.

A role is one kind of process. Its factory builds a `Service` (the same classes the all-in-one runs) from the
settings and the catalog's services; `api` names the settings section of the HTTP API it serves (its port,
database and `workers`), None for processes that only speak RPC. Adding a role is one line here.

The roles are the issue's services: the all-in-one's `compute` is compute-api, conductor, scheduler and compute
(agents) here, its `volume` is volume-api (API and scheduler) and volume (the manager of this host's backend), its
`network` is network (API, the agents' RPC server) and network-agent (the host data plane, where it runs at all).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from pocketstack.common.config import Settings
from pocketstack.common.service import SERVICES, Service


@dataclass(frozen=True)
class Role:
    name: str  # `pocketstack serve NAME`
    factory: str  # "package.module:function" taking (settings, catalog specs), returning a Service
    api: str | None = None  # settings section of the HTTP API served (port, workers); None: RPC only
    stage: int = 1  # `up --distributed` starts the stages in order, each once the previous one is ready
    copies: str | None = None  # DistributedSettings field giving how many processes `up --distributed` runs
    per_hosts: bool = False  # `up --distributed` runs one per group of compute hosts (POCKETSTACK_COMPUTE__HOSTS)
    host_section: str = "compute"  # settings section whose `host` names this process (`serve --host`)
    # whether `up --distributed` runs it: the network agent runs where the all-in-one would run it
    wanted: Callable[[Settings], bool] = lambda settings: True
    # whether it drives host networking (netlink through pyroute2: asyncio's own loop, not uvloop)
    host_networking: Callable[[Settings], bool] = lambda settings: False

    def build(self, settings: Settings) -> Service:
        module_name, func = self.factory.split(":")
        return getattr(importlib.import_module(module_name), func)(settings, list(SERVICES))

    def instances(self, settings: Settings) -> int:
        return getattr(settings.distributed, self.copies) if self.copies else 1


# Stage 0 bootstraps the accounts, the catalog and the secrets the others use; the RPC servers of stage 1 declare
# the topic queues (a message to a topic nobody has consumed yet is dropped) before the agents of stage 2 call them.
ROLES: list[Role] = [
    Role("identity", "pocketstack.identity.service_app:create", api="identity", stage=0),
    Role("image", "pocketstack.image.service_app:create", api="image"),
    Role("network", "pocketstack.network.service_app:create_api", api="network"),
    Role("volume-api", "pocketstack.volume.service_app:create_api", api="volume"),
    Role("compute-api", "pocketstack.compute.service_app:create_api", api="compute"),
    Role("metadata", "pocketstack.compute.metadata.service_app:create", api="metadata"),
    Role("conductor", "pocketstack.compute.service_app:create_conductor", copies="conductors"),
    Role("scheduler", "pocketstack.compute.service_app:create_scheduler", copies="schedulers"),
    Role("volume", "pocketstack.volume.service_app:create_manager", stage=2, host_section="volume"),
    Role("network-agent", "pocketstack.network.service_app:create_agent", stage=2,
         wanted=lambda settings: settings.network_agent_enabled, host_networking=lambda settings: True),
    Role("compute", "pocketstack.compute.service_app:create_agents", per_hosts=True, stage=2,
         host_networking=lambda settings: settings.compute.driver == "qemu"),
]


def role(name: str) -> Role:
    found = next((r for r in ROLES if r.name == name), None)
    if found is None:
        raise KeyError(f"no role {name!r}; roles: {', '.join(r.name for r in ROLES)}")
    return found
