"""Remote consoles: `POST /servers/{id}/remote-consoles` (2.6+), the legacy actions `os-getSerialConsole`,
`os-getVNCConsole` (and the SPICE and RDP ones, never enabled) up to 2.5, and `GET /os-console-auth-tokens/{token}`.

The agent says where the guest's console listens; the API keeps a token for it (its sha256) and answers a URL of
the serial console proxy (`ws://HOST:6083/?token=...`) or of the noVNC proxy's page
(`http://HOST:6080/vnc_lite.html?path=%3Ftoken%3D...`), as Nova's ConsoleAuthToken.access_url."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import Request, Response

from pocketstack.common import apikit
from pocketstack.common.app import json_body, json_response, request_context
from pocketstack.common.errors import APIError, BadRequest, Conflict, NotFound, Unauthorized
from pocketstack.compute import states
from pocketstack.compute.api.common import state
from pocketstack.compute.store.console_tokens import ConsoleTokenStore
from pocketstack.settings import Settings

POLICY = "os_compute_api:os-remote-consoles"
# the protocols and types of the 2.6 schema (2.8 adds mks and webmks: valid, never served)
PROTOCOLS = ["vnc", "spice", "rdp", "serial"]
TYPES = ["novnc", "xvpvnc", "rdp-html5", "spice-html5", "serial"]
SERVED = {"vnc": "novnc", "serial": "serial"}  # protocol -> the one type of it this cloud serves
# legacy action -> (its protocol, the types its schema allows)
LEGACY = {"os-getVNCConsole": ("vnc", ["novnc", "xvpvnc"]), "os-getSerialConsole": ("serial", ["serial"]),
          "os-getSPICEConsole": ("spice", ["spice-html5"]), "os-getRDPConsole": ("rdp", ["rdp-html5"])}
RUNNING = (states.ACTIVE, states.PAUSED, states.RESCUED)


class NotImplementedFault(APIError):
    status, title, default_message = 501, "Not Implemented", "Feature not supported"


def access_url_base(settings: Settings, console_type: str) -> str:
    """nova.conf's [serial_console] base_url and [vnc] novncproxy_base_url, by default this cloud's proxies."""
    if console_type == "serial":
        return settings.serial_console.base_url or "ws" + settings.base_url("serial-console")[4:] + "/"
    return settings.vnc.base_url or settings.base_url("vnc") + "/vnc_lite.html"


def access_url(base: str, console_type: str, token: str) -> str:
    """noVNC (since 1.1) takes the websocket path in its `path` parameter; the serial client the token itself."""
    if console_type == "novnc":
        return f"{base}?{urlencode({'path': f'?token={token}'})}"
    return f"{base}?token={token}"


def _enum(field: str, value: Any, allowed: list[str]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise BadRequest(f"Invalid input for field/attribute {field}. Value: {value}. {value!r} is not one of "
                         f"{allowed}")
    return value


def _object(field: str, value: Any, required: list[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest(f"Invalid input for field/attribute {field}. Value: {value}. {value!r} is not of type "
                         "'object'")
    missing = [key for key in required if key not in value]
    if missing:
        raise BadRequest(f"Invalid input for field/attribute {field}. Value: {value}. {missing[0]!r} is a "
                         "required property")
    extra = sorted(set(value) - set(required))
    if extra:
        raise BadRequest(f"Additional properties are not allowed ({', '.join(repr(k) for k in extra)} "
                         f"{'was' if len(extra) == 1 else 'were'} unexpected)")
    return value


async def _console_url(request: Request, server_id: str, protocol: str, console_type: str) -> str:
    """Check (404, 403, 409 not running), ask the server's agent where its console is (400 type not served there),
    keep a token for it; the console URL."""
    ctx = request_context(request)
    api = state(request)
    inst = await api.servers.visible(server_id, ctx)
    api.policy.enforce(POLICY, ctx, {"project_id": inst.project_id})
    if protocol not in SERVED:
        raise BadRequest(f"Unavailable console type {console_type}.")
    if console_type != SERVED[protocol]:
        raise BadRequest(f"Invalid console type {console_type}")
    if inst.host is None or inst.vm_state not in RUNNING:
        raise Conflict(f"Instance {inst.uuid} is not ready")
    connect = await api.agents.get_console(inst.host, inst.uuid, console_type)
    if connect is None:
        raise NotImplementedFault()
    base = access_url_base(api.settings, console_type)
    token = await ConsoleTokenStore(api.db).authorize(
        inst.uuid, console_type, connect["host"], connect["port"], connect["internal_access_path"], base,
        api.settings.consoleauth.token_ttl)
    return access_url(base, console_type, token)


async def create_remote_console(request: Request, server_id: str) -> Response:
    """`POST /servers/{id}/remote-consoles` (2.6+)."""
    if apikit.version(request) < "2.6":
        raise NotFound("The resource could not be found.")
    body = _object("body", await json_body(request), ["remote_console"])
    entity = _object("remote_console", body["remote_console"], ["protocol", "type"])
    mks = apikit.version(request) >= "2.8"
    protocol = _enum("protocol", entity["protocol"], [*PROTOCOLS, "mks"] if mks else PROTOCOLS)
    console_type = _enum("type", entity["type"], [*TYPES, "webmks"] if mks else TYPES)
    url = await _console_url(request, server_id, protocol, console_type)
    return json_response({"remote_console": {"protocol": protocol, "type": console_type, "url": url}})


async def _legacy(request: Request, server_id: str, args: Any, name: str) -> Response:
    if apikit.version(request) >= "2.6":
        raise NotFound("The resource could not be found.")
    protocol, types = LEGACY[name]
    entity = _object(name, args, ["type"])
    console_type = _enum("type", entity["type"], types)
    url = await _console_url(request, server_id, protocol, console_type)
    return json_response({"console": {"type": console_type, "url": url}})


def _legacy_action(name: str) -> Any:
    async def handler(request: Request, server_id: str, args: Any) -> Response:
        return await _legacy(request, server_id, args, name)

    return handler


SERVER_ACTIONS = {name: _legacy_action(name) for name in LEGACY}


async def show_console_auth_token(request: Request, console_token: str) -> Response:
    """`GET /os-console-auth-tokens/{token}` (admin): where a valid token's console is; before 2.31 only RDP
    consoles' (never served here: 401, as Nova)."""
    ctx = request_context(request)
    api = state(request)
    api.policy.enforce("os_compute_api:os-console-auth-tokens", ctx, {})
    connection = await ConsoleTokenStore(api.db).validate(console_token)
    if connection is None:
        raise NotFound("Token not found")
    if apikit.version(request) < "2.31" and connection.console_type != "rdp-html5":
        raise Unauthorized("The requested console type details are not accessible")
    return json_response({"console": {"instance_uuid": connection.instance_uuid, "host": connection.host,
                                      "port": connection.port,
                                      "internal_access_path": connection.internal_access_path}})
