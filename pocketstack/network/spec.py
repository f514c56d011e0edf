"""The network service (Neutron v2.0) and its host agent as the registry, the launcher and `serve` know them."""

from pocketstack.common.errors import WEBOB_EXCEPTION_NAMES, APIError, Body, ErrorStyle
from pocketstack.common.service import RestStep, Role, ServiceSpec


def _neutron_body(err: APIError) -> Body:
    error_type = err.error_type or WEBOB_EXCEPTION_NAMES.get(err.status, "HTTPInternalServerError")
    return {"NeutronError": {"type": error_type, "message": err.message, "detail": ""}}, "application/json"


# Neutron's error body: the specific exception's name (e.g. NetworkNotFound) or webob's.
ERRORS = ErrorStyle(_neutron_body)

# The secret the host agent's metadata proxy signs instance ids with: Neutron's metadata_proxy_shared_secret, the
# same one the metadata API checks (so either service alone gets it generated on the first start).
METADATA_SECRET_KEY = "metadata_proxy_shared_secret"

SPEC = ServiceSpec(
    "network", "network", "neutron", "", "pocketstack.network.service_app:create", service_user="neutron",
    roles=(
        Role("network", "pocketstack.network.service_app:create_api", api="network"),
        Role("network-agent", "pocketstack.network.service_app:create_agent", stage=2, host_local=True,
             wanted=lambda settings: settings.network_agent_enabled, host_networking=lambda settings: True),
    ),
    rest_steps=(RestStep("identity", "GET", "/v3/auth/tokens", "24"),), errors=ERRORS,
    shared_secret=METADATA_SECRET_KEY,
)
