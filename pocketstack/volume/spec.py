"""The block storage service (Cinder v3) as the registry, the launcher and `serve` know it."""

from pocketstack.common.errors import FAULT_STYLE
from pocketstack.common.service import RestStep, Role, ServiceSpec

SPEC = ServiceSpec(
    "volume", "block-storage", "cinder", "/v3/$(project_id)s", "pocketstack.volume.service_app:create",
    extra_types=("volumev3",), service_user="cinder",
    roles=(
        Role("volume-api", "pocketstack.volume.service_app:create_api", api="volume"),
        Role("volume", "pocketstack.volume.service_app:create_manager", stage=2, host_section="volume"),
    ),
    rest_steps=(RestStep("identity", "GET", "/v3/auth/tokens", "27"),), errors=FAULT_STYLE,
)
