"""The console proxies as services: `serial-console` (nova-serialproxy, port 6083) and `vnc` (nova-novncproxy,
port 6080, which also serves the noVNC page). Each reads the console tokens in the compute database (compute owns
and migrates it) and connects to the console a token names; both run where the guests' sockets are."""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from pocketstack.common.app import OperationsEndpoints
from pocketstack.common.db import Database
from pocketstack.common.health import database_check
from pocketstack.common.service import Service, ServiceSpec
from pocketstack.compute.consoleproxy.proxy import serve_console
from pocketstack.compute.store.console_tokens import ConsoleTokenStore
from pocketstack.settings import Settings

PAGE = Path(__file__).with_name("vnc_lite.html")
# noVNC's client library from npm (package.json), bundled for the browser by `npm run build` (scripts/install.sh)
RFB_BUNDLE = Path(__file__).resolve().parents[3] / "build" / "novnc" / "rfb.js"
PAGES = ("/vnc_lite.html", "/vnc_auto.html", "/vnc.html")  # the page names Nova's novncproxy_base_url has used


class ConsoleProxyService(Service):
    def __init__(self, settings: Settings, name: str, console_types: tuple[str, ...]) -> None:
        self.name = name
        self.settings = settings
        self.db = Database(settings.database_url("compute"))  # read-only here
        self.tokens = ConsoleTokenStore(self.db)
        self.console_types = console_types
        routes = [WebSocketRoute("/", self.websocket), Route("/", self.index)]
        if "novnc" in console_types:
            routes += [*(Route(path, self.page) for path in PAGES), Route("/rfb.js", self.rfb)]
        self.app = OperationsEndpoints(Starlette(routes=routes), [database_check(self.db)])

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        await self.db.close()

    async def websocket(self, websocket: WebSocket) -> None:
        await serve_console(websocket, self.tokens, self.console_types, self.settings.consoleauth.allowed_origins)

    async def index(self, request: Request) -> Response:
        return PlainTextResponse(f"pocketstack {self.name} proxy: open the URL of `openstack console url show`\n")

    async def page(self, request: Request) -> Response:
        return FileResponse(PAGE, media_type="text/html")

    async def rfb(self, request: Request) -> Response:
        if not RFB_BUNDLE.exists():
            return PlainTextResponse("noVNC is not built (run scripts/install.sh: npm ci && npm run build)",
                                     status_code=404)
        return FileResponse(RFB_BUNDLE, media_type="text/javascript")


def create_serial(settings: Settings, specs: list[ServiceSpec]) -> ConsoleProxyService:
    return ConsoleProxyService(settings, "serial-console", ("serial",))


def create_novnc(settings: Settings, specs: list[ServiceSpec]) -> ConsoleProxyService:
    return ConsoleProxyService(settings, "vnc", ("novnc",))
