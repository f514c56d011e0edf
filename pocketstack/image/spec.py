"""The image service (Glance v2) as the registry, the launcher and `serve` know it."""

from pocketstack.common.errors import HTML_PAGE_STYLE
from pocketstack.common.service import RestStep, Role, ServiceSpec

SPEC = ServiceSpec(
    "image", "image", "glance", "", "pocketstack.image.service_app:create",
    roles=(Role("image", "pocketstack.image.service_app:create", api="image"),),
    rest_steps=(RestStep("identity", "GET", "/v3/auth/tokens", "21"),),
    errors=HTML_PAGE_STYLE,  # Glance answers with webob's HTML error page
)
