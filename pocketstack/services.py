"""The one registry of the services, in start order: read by the all-in-one launcher, `serve`, `up
--distributed`, the database commands and the catalog bootstrap. A new service adds its `spec.SPEC` here."""

from __future__ import annotations

from pocketstack.common import tracing
from pocketstack.common.service import Role, ServiceSpec
from pocketstack.compute.spec import METADATA_SPEC, NOVNC_PROXY_SPEC, SERIAL_PROXY_SPEC
from pocketstack.compute.spec import SPEC as COMPUTE
from pocketstack.dashboard.spec import SPEC as DASHBOARD
from pocketstack.identity.spec import SPEC as IDENTITY
from pocketstack.image.spec import SPEC as IMAGE
from pocketstack.network.spec import SPEC as NETWORK
from pocketstack.volume.spec import SPEC as VOLUME

SERVICES: list[ServiceSpec] = [IDENTITY, IMAGE, NETWORK, VOLUME, COMPUTE, METADATA_SPEC, SERIAL_PROXY_SPEC,
                               NOVNC_PROXY_SPEC, DASHBOARD]

# The servable roles, each stage's in the order `up --distributed` starts them. Stage 0 bootstraps the accounts,
# the catalog and the secrets the others use; the RPC servers of stage 1 declare the topic queues (a message to a
# topic nobody has consumed yet is dropped) before the agents of stage 2 call them.
ROLES: list[Role] = sorted((role for spec in SERVICES for role in spec.roles), key=lambda role: role.stage)


def service(name: str) -> ServiceSpec:
    found = next((spec for spec in SERVICES if spec.name == name), None)
    if found is None:
        raise KeyError(f"no service {name!r}; services: {', '.join(spec.name for spec in SERVICES)}")
    return found


def role(name: str) -> Role:
    found = next((r for r in ROLES if r.name == name), None)
    if found is None:
        raise KeyError(f"no role {name!r}; roles: {', '.join(r.name for r in ROLES)}")
    return found


def install_flow_steps(specs: list[ServiceSpec] | None = None) -> None:
    """Give the tracer the FLOW.md rows the services declare (REST hops they make, client requests they answer)."""
    rest: dict[str, list[tuple[str, str, str, str]]] = {}
    client: dict[tuple[str, str, str], str] = {}
    for spec in specs if specs is not None else SERVICES:
        rows = [(row.callee, row.method, row.prefix, row.step) for row in spec.rest_steps]
        for component in dict.fromkeys(spec.components):
            rest.setdefault(component, []).extend(rows)
            for method, path, step in spec.client_steps:
                client[(component, method, path)] = step
    tracing.install_flow_steps(rest, client)
