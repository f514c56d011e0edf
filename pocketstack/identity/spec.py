"""The identity service (Keystone v3) as the registry, the launcher and `serve` know it."""

from pocketstack.common.service import Role, ServiceSpec

SPEC = ServiceSpec(
    "identity", "identity", "keystone", "/v3", "pocketstack.identity.service_app:create",
    roles=(Role("identity", "pocketstack.identity.service_app:create", api="identity", stage=0),),
    client_steps=(("POST", "/v3/auth/tokens", "1-2"),),
)
