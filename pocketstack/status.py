"""`pocketstack status`: what runs and whether it answers — services, processes, compute hosts, network agents.

It asks the cloud as its operator would: each service's `/healthcheck` at the address of the settings, the
compute services and network agents through the APIs of the admin cloud's catalog (`os-services`,
`/v2.0/agents`), and, for `up --distributed`, the processes of DATA_DIR/processes.json.
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from rich.console import Console
from rich.table import Table

from pocketstack.common.clients.base import ServiceClient, close_http_session, http_session
from pocketstack.common.errors import APIError
from pocketstack.common.health import HEALTH_PATH
from pocketstack.services import SERVICES
from pocketstack.settings import Settings
from pocketstack.trace.render import admin_auth, admin_session, public_url


async def _health(url: str) -> dict[str, Any]:
    try:
        async with http_session().get(url + HEALTH_PATH, headers={"Accept": "application/json"},
                                      timeout=aiohttp.ClientTimeout(total=5)) as resp:
            body = await resp.json(content_type=None)
            state = "up" if resp.status == 200 else "down"
            reasons = [f"{r['class']}: {r['reason']}" for r in body.get("reasons", [])]
            return {"state": state, "detail": ", ".join(reasons)}
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return {"state": "unreachable", "detail": type(exc).__name__}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _processes(settings: Settings) -> list[dict[str, Any]]:
    path = settings.data_dir / "processes.json"
    if not path.exists():
        return []
    rows = []
    for name, proc in json.loads(path.read_text()).items():
        alive = proc.get("pid") is not None and _alive(proc["pid"])
        rows.append({"name": name, "role": proc["role"], "pid": proc.get("pid"), "state": "up" if alive else "down",
                     "hosts": ", ".join(proc.get("hosts") or [])})
    return rows


def _root(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


async def collect(settings: Settings) -> dict[str, Any]:
    """The status of a cloud, as a dict (`--json`) or for `render`."""
    result: dict[str, Any] = {"services": [], "processes": _processes(settings), "compute_services": [],
                              "network_agents": [], "volume_services": [], "errors": []}
    try:
        try:
            token, body = await admin_session(settings)
        except APIError as exc:
            token, body = None, {}
            result["errors"].append(f"identity: {exc.message}")
        # where the catalog names no endpoint (metadata), the identity endpoint's port offset applies
        offset = urlsplit(admin_auth(settings)["auth_url"]).port or settings.port("identity")
        offset -= settings.port("identity")
        for spec in SERVICES:
            listed = public_url(body, spec.catalog_type) if spec.catalog_type else None
            url = _root(listed) if listed else f"http://{settings.host}:{settings.port(spec.name) + offset}"
            result["services"].append({"name": spec.name, "url": url, **await _health(url)})
        if token is None:
            return result
        compute, network = public_url(body, "compute"), public_url(body, "network")
        volume = public_url(body, "volumev3") or public_url(body, "block-storage")
        for key, url, path, name in (("compute_services", compute, "/os-services", "services"),
                                     ("network_agents", network, "/v2.0/agents", "agents"),
                                     ("volume_services", volume, "/os-services", "services")):
            if url is None:
                continue
            try:
                _, answer, _ = await ServiceClient(url, key).request("GET", path, token=token)
                result[key] = answer.get(name, [])
            except APIError as exc:
                result["errors"].append(f"{key}: {exc.message}")
    finally:
        await close_http_session()
    return result


def render(status: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    colour = {"up": "green", "down": "red", "unreachable": "red", "enabled": "green", "disabled": "yellow"}

    def state(value: str) -> str:
        return f"[{colour.get(value, 'white')}]{value}[/]"

    table = Table("service", "address", "state", "detail", title="services (/healthcheck)")
    for s in status["services"]:
        table.add_row(s["name"], s["url"], state(s["state"]), s["detail"])
    console.print(table)
    if status["processes"]:
        table = Table("process", "role", "pid", "state", "hosts", title="processes (up --distributed)")
        for p in status["processes"]:
            table.add_row(p["name"], p["role"], str(p["pid"]), state(p["state"]), p["hosts"])
        console.print(table)
    for key, title in (("compute_services", "compute services"), ("volume_services", "volume services")):
        if status[key]:
            table = Table("binary", "host", "zone", "status", "state", "updated", title=title)
            for s in status[key]:
                table.add_row(s["binary"], s["host"], s.get("zone", ""), state(s["status"]), state(s["state"]),
                              str(s.get("updated_at") or ""))
            console.print(table)
    if status["network_agents"]:
        table = Table("agent", "host", "alive", "admin state", title="network agents")
        for a in status["network_agents"]:
            table.add_row(a["agent_type"], a["host"], state("up" if a["alive"] else "down"),
                          state("up" if a["admin_state_up"] else "down"))
        console.print(table)
    for error in status["errors"]:
        console.print(f"[red]{error}[/]")
