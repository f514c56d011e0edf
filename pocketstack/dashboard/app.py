"""The dashboard's Starlette app: the URL map, the session and CSRF checks, the pages."""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from pocketstack.common.app import OperationsEndpoints
from pocketstack.common.clients.identity import IdentityClient
from pocketstack.common.errors import APIError
from pocketstack.common.health import HealthCheck
from pocketstack.dashboard import netpages, pages
from pocketstack.dashboard.session import COOKIE, SessionStore, UserSession
from pocketstack.dashboard.web import first, form, render

# npm's packages (package.json at the repo root, `npm ci` in scripts/install.sh), served as they were installed
NODE_MODULES = Path(__file__).resolve().parents[2] / "node_modules"
ASSETS = {"htmx.min.js": "htmx.org/dist/htmx.min.js", "xterm.js": "@xterm/xterm/lib/xterm.js",
          "xterm.css": "@xterm/xterm/css/xterm.css"}


async def asset(request: Request) -> Response:
    relative = ASSETS.get(request.path_params["name"])
    if relative is None or not (NODE_MODULES / relative).exists():
        return Response("not installed (run scripts/install.sh: npm ci)", status_code=404)
    return FileResponse(NODE_MODULES / relative,
                        media_type="text/css" if relative.endswith(".css") else "text/javascript")


# The pages' URL map: path, handler, whether it changes something (a member's or admin's), methods
PAGES: list[tuple[str, Any, bool, list[str]]] = [
    ("/", pages.overview, False, ["GET"]),
    ("/servers", pages.servers, False, ["GET"]),
    ("/servers/rows", pages.server_rows, False, ["GET"]),
    ("/servers/launch", pages.launch_form, False, ["GET"]),
    ("/servers/launch", pages.launch, True, ["POST"]),
    ("/servers/{server_id}/action", pages.server_action, True, ["POST"]),
    ("/servers/{server_id}/console", pages.server_console, False, ["GET"]),
    ("/servers/{server_id}/serial", pages.serial_console, False, ["GET"]),
    ("/images", pages.images, False, ["GET"]),
    ("/networks", pages.networks, False, ["GET"]),
    ("/topology", netpages.topology, False, ["GET"]),
    ("/security-groups", netpages.security_groups, False, ["GET"]),
    ("/security-groups/{group_id}/rules", netpages.add_rule, True, ["POST"]),
    ("/security-groups/rules/{rule_id}/delete", netpages.delete_rule, True, ["POST"]),
    ("/volumes", pages.volumes, False, ["GET"]),
    ("/volumes", pages.create_volume, True, ["POST"]),
    ("/volumes/{volume_id}/attach", pages.attach_volume, True, ["POST"]),
    ("/keypairs", pages.keypairs, False, ["GET"]),
    ("/floating-ips", pages.floating_ips, False, ["GET"]),
    ("/admin/hypervisors", pages.hypervisors, False, ["GET"]),
    ("/admin/services", pages.compute_services, False, ["GET"]),
    ("/admin/network-agents", netpages.network_agents, False, ["GET"]),
]


def create_app(settings: Any, sessions: SessionStore) -> ASGIApp:
    """The pages behind `/healthcheck` and `/metrics` (healthy when Keystone, which every login needs, answers)."""
    identity_url = settings.base_url("identity")

    def guarded(handler: Any, write: bool = False) -> Any:
        """A page of a logged-in user; a POST must carry the session's CSRF token (and a writer's role)."""
        async def endpoint(request: Request) -> Response:
            session = sessions.get(request.cookies.get(COOKIE))
            if session is None:
                return RedirectResponse("/login", status_code=303)
            request.scope["dashboard_session"] = session
            if request.method == "POST":
                data = await form(request)
                sent = first(data, "csrf") or request.headers.get("X-CSRF-Token", "")
                if not hmac.compare_digest(sent, session.csrf):
                    return HTMLResponse("CSRF token missing or wrong", status_code=403)
                if write and not session.can_write:
                    return HTMLResponse("Your roles only let you read", status_code=403)
                request.scope["dashboard_form"] = data
            try:
                return await handler(request, session)
            except APIError as exc:  # the service's own message, on the page
                return render("error.html", request, status=exc.status, message=exc.message)
        return endpoint

    async def login(request: Request) -> Response:
        if request.method == "GET":
            return render("login.html", request, values={"domain": "Default"})
        data = await form(request)
        values = {k: first(data, k) for k in ("username", "domain", "project")}
        try:
            token, body = await IdentityClient(identity_url).issue_token(
                values["username"], first(data, "password"), values["project"], values["domain"] or "Default")
        except APIError as exc:
            return render("login.html", request, status=exc.status, error=exc.message, values=values)
        sid = sessions.add(token, body, identity_url)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(COOKIE, sid, httponly=True, samesite="strict", max_age=int(sessions.ttl), path="/")
        return response

    async def logout(request: Request, session: UserSession) -> Response:
        sessions.drop(request.cookies.get(COOKIE, ""))
        try:  # revoke the token: Keystone's DELETE /v3/auth/tokens
            await IdentityClient(identity_url).request("DELETE", "/v3/auth/tokens", token=session.token,
                                                       headers={"X-Subject-Token": session.token})
        except APIError:
            pass
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    async def switch_project(request: Request, session: UserSession) -> Response:
        project_id = first(request.scope["dashboard_form"], "project_id")
        body = {"auth": {"identity": {"methods": ["token"], "token": {"id": session.token}},
                         "scope": {"project": {"id": project_id}}}}
        _, data, headers = await IdentityClient(identity_url).request("POST", "/v3/auth/tokens", json=body,
                                                                      token=session.token)
        session.token = next(v for k, v in headers.items() if k.lower() == "x-subject-token")
        session.body = data["token"]
        return RedirectResponse("/", status_code=303)

    routes = [Route("/login", login, methods=["GET", "POST"]), Route("/static/{name}", asset),
              Route("/logout", guarded(logout), methods=["POST"]),
              Route("/switch", guarded(switch_project), methods=["POST"]),
              Route("/servers/{server_id}/flow", guarded(pages.flow(settings)))]
    routes += [Route(path, guarded(handler, write), methods=methods) for path, handler, write, methods in PAGES]
    identity = HealthCheck("identity", lambda: IdentityClient(identity_url).request("GET", "/v3", ok=(200,)))
    return OperationsEndpoints(Starlette(routes=routes), [identity])
