"""The identity service (Keystone v3) as the registry, the launcher and `serve` know it."""

from pocketstack.common.errors import APIError, Body, ErrorStyle
from pocketstack.common.service import Role, ServiceSpec


def _keystone_body(err: APIError) -> Body:
    return {"error": {"code": err.status, "title": err.title, "message": err.message}}, "application/json"


def _keystone_headers(err: APIError) -> dict[str, str]:
    return {"WWW-Authenticate": 'Keystone uri="/v3"'} if err.status == 401 else {}


# Keystone's error body, and the challenge it sends with a 401.
ERRORS = ErrorStyle(_keystone_body, _keystone_headers)

SPEC = ServiceSpec(
    "identity", "identity", "keystone", "/v3", "pocketstack.identity.service_app:create",
    roles=(Role("identity", "pocketstack.identity.service_app:create", api="identity", stage=0),),
    client_steps=(("POST", "/v3/auth/tokens", "1-2"),), errors=ERRORS,
)
