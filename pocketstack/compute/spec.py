"""The compute family (Nova v2.1: API, conductor, scheduler, agents) and its metadata API as the registry, the
launcher and `serve` know them."""

from pocketstack.common.errors import FAULT_STYLE, HTML_PAGE_STYLE
from pocketstack.common.service import RestStep, Role, ServiceSpec

APP = "pocketstack.compute.service_app"

SPEC = ServiceSpec(
    "compute", "compute", "nova", "/v2.1", f"{APP}:create", service_user="nova",
    roles=(
        Role("compute-api", f"{APP}:create_api", api="compute"),
        Role("conductor", f"{APP}:create_conductor", copies="conductors"),
        Role("scheduler", f"{APP}:create_scheduler", copies="schedulers"),
        Role("compute", f"{APP}:create_agents", per_hosts=True, stage=2, host_local=True,
             host_networking=lambda settings: settings.compute.driver == "qemu"),
    ),
    rest_steps=(
        RestStep("identity", "GET", "/v3/auth/tokens", "4-5"),
        RestStep("image", "GET", "/v2/images/", "20, 22"),
        RestStep("network", "POST", "/v2.0/ports", "23, 25"),
        RestStep("network", "PUT", "/v2.0/ports/", "25"),
        RestStep("volume", "", "/v3/", "26, 28"),
    ),
    client_steps=(("POST", "/v2.1/servers", "3"),), errors=FAULT_STYLE,
)

# The metadata API (nova-api-metadata) is its own service: its own port, no database, not in the catalog.
METADATA_SECRET_KEY = "metadata_proxy_shared_secret"

METADATA_SPEC = ServiceSpec(
    "metadata", None, "nova-metadata", "", "pocketstack.compute.metadata.service_app:create", database=False,
    shared_secret=METADATA_SECRET_KEY, errors=HTML_PAGE_STYLE,  # webob pages, as nova-api-metadata answers
    roles=(Role("metadata", "pocketstack.compute.metadata.service_app:create", api="metadata"),),
)

# The console proxies (nova-serialproxy, nova-novncproxy): their own ports, the compute database's console tokens
# (migrated by compute), not in the catalog; they connect to the guests' console sockets on this machine.
PROXY_APP = "pocketstack.compute.consoleproxy.service_app"

SERIAL_PROXY_SPEC = ServiceSpec(
    "serial-console", None, "nova-serialproxy", "", f"{PROXY_APP}:create_serial", database=False,
    errors=HTML_PAGE_STYLE,
    roles=(Role("serial-console", f"{PROXY_APP}:create_serial", api="serial-console", stage=2, websocket=True),),
)

NOVNC_PROXY_SPEC = ServiceSpec(
    "vnc", None, "nova-novncproxy", "", f"{PROXY_APP}:create_novnc", database=False, errors=HTML_PAGE_STYLE,
    roles=(Role("vnc", f"{PROXY_APP}:create_novnc", api="vnc", stage=2, websocket=True),),
)
