"""The metadata proxy: guests ask http://169.254.169.254/, the proxy answers from the compute metadata API.

Per network with DHCP, the address 169.254.169.254/32 is on the DHCP port's interface in the `qdhcp-` namespace
and the DHCP server tells guests to route it there (option 121). The proxy listens on a socket created inside
that namespace (a socket stays in the namespace it was made in) and served by the agent's own event loop, so
there is no process per network. A request is identified by (network, source address) -> port -> server (the
port's device_id) and project, then forwarded with Nova's headers: X-Instance-ID, X-Tenant-ID,
X-Instance-ID-Signature (HMAC-SHA256 of the instance id with the shared secret) and X-Forwarded-For.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

from pocketstack.common.clients.base import http_session
from pocketstack.network.agent.linux import socket_in_namespace

log = logging.getLogger("pocketstack.network.agent")

METADATA_PORT = 80
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "server", "date"}

# (network id, guest address) -> the guest's port (as the agent's state has it) or None
PortLookup = Callable[[str, str], Awaitable[dict[str, Any] | None]]


def sign(secret: str, instance_id: str) -> str:
    return hmac.new(secret.encode(), instance_id.encode(), hashlib.sha256).hexdigest()


class MetadataProxy:
    def __init__(self, upstream: str, secret: Callable[[], str], lookup: PortLookup) -> None:
        self.upstream = upstream.rstrip("/")  # the compute metadata API, e.g. http://127.0.0.1:8775
        self.secret = secret
        self.lookup = lookup
        self._servers: dict[str, tuple[asyncio.Server, web.Server]] = {}
        self.requests = 0

    def serving(self) -> set[str]:
        return set(self._servers)

    async def listen(self, network_id: str, namespace: str, address: str = "169.254.169.254",
                     port: int = METADATA_PORT) -> None:
        """Serve guests of the network on `address:port` inside `namespace` (idempotent)."""
        if network_id in self._servers:
            return
        sock = await asyncio.to_thread(socket_in_namespace, namespace)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((address, port))
            sock.listen(128)
            sock.setblocking(False)
            handler = web.Server(lambda request: self.handle(network_id, request), access_log=None)
            server = await asyncio.get_running_loop().create_server(handler, sock=sock)
        except BaseException:
            sock.close()
            raise
        self._servers[network_id] = (server, handler)

    async def stop_listening(self, network_id: str) -> None:
        entry = self._servers.pop(network_id, None)
        if entry is not None:
            server, handler = entry
            server.close()
            with contextlib.suppress(Exception):
                await handler.shutdown(1.0)
            await server.wait_closed()

    async def close(self) -> None:
        for network_id in list(self._servers):
            await self.stop_listening(network_id)

    async def handle(self, network_id: str, request: web.BaseRequest) -> web.StreamResponse:
        self.requests += 1
        guest_ip = request.remote or ""
        port = await self.lookup(network_id, guest_ip)
        if port is None or not port.get("device_id"):
            return web.Response(status=404, text="404 Not Found: no server has this address\n")
        instance_id = port["device_id"]
        headers = {"X-Instance-ID": instance_id, "X-Tenant-ID": port["project_id"],
                   "X-Instance-ID-Signature": sign(self.secret(), instance_id), "X-Forwarded-For": guest_ip}
        for name in ("Accept", "Content-Type"):
            if name in request.headers:
                headers[name] = request.headers[name]
        body = await request.read() if request.can_read_body else None
        try:
            async with http_session().request(request.method, self.upstream + request.path_qs, headers=headers,
                                              data=body, allow_redirects=False,
                                              timeout=aiohttp.ClientTimeout(total=30)) as resp:
                data = await resp.read()
                out = {k: v for k, v in resp.headers.items() if k.lower() not in HOP_HEADERS}
                return web.Response(status=resp.status, body=data, headers=out)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("metadata request of %s (%s) could not reach %s: %s", instance_id, guest_ip,
                        self.upstream, exc)
            return web.Response(status=503, text="503 Service Unavailable: the metadata API is unreachable\n")
