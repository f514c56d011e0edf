"""The websocket side of a console proxy: check the `?token=`, then pipe bytes both ways between the websocket and
the console the token names (the guest's unix socket on this host, or a TCP host and port), as websockify does for
Nova's proxies."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from urllib.parse import urlsplit

from starlette.websockets import WebSocket, WebSocketDisconnect

from pocketstack.compute.store.console_tokens import ConsoleConnection, ConsoleTokenStore

log = logging.getLogger("pocketstack.consoleproxy")
CHUNK = 64 * 1024
CONNECT_TIMEOUT = 5.0
POLICY_VIOLATION = 1008  # websocket close codes
UNREACHABLE = 1011


def origin_allowed(websocket: WebSocket, allowed: list[str]) -> bool:
    """A browser's websocket from another site's page is refused unless that site's host is `allowed` (Nova checks
    Origin against Host and [console] allowed_origins)."""
    origin = websocket.headers.get("origin")
    if not origin or origin == "null":
        return True
    hostname = urlsplit(origin).hostname
    return hostname == urlsplit(f"//{websocket.headers.get('host', '')}").hostname or hostname in allowed


async def open_console(connection: ConsoleConnection) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    if connection.port == 0 and connection.internal_access_path:
        return await asyncio.wait_for(asyncio.open_unix_connection(connection.internal_access_path),
                                      CONNECT_TIMEOUT)
    return await asyncio.wait_for(asyncio.open_connection(connection.host, connection.port), CONNECT_TIMEOUT)


async def _to_console(websocket: WebSocket, writer: asyncio.StreamWriter) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        data = message.get("bytes") or (message.get("text") or "").encode()
        if data:
            writer.write(data)
            await writer.drain()


async def _from_console(websocket: WebSocket, reader: asyncio.StreamReader) -> None:
    while data := await reader.read(CHUNK):
        await websocket.send_bytes(data)


async def serve_console(websocket: WebSocket, tokens: ConsoleTokenStore, console_types: tuple[str, ...],
                        allowed_origins: list[str]) -> None:
    """One console session: refused before the handshake (HTTP 403) without a valid token of `console_types`;
    closed with 1011 when the console cannot be reached."""
    token = websocket.query_params.get("token", "")
    connection = await tokens.validate(token, console_types) if token else None
    if connection is None or not origin_allowed(websocket, allowed_origins):
        log.info("console websocket refused: %s", "bad origin" if connection else "invalid or expired token")
        await websocket.close(code=POLICY_VIOLATION)
        return
    offered = websocket.scope.get("subprotocols") or []
    await websocket.accept(subprotocol="binary" if "binary" in offered else None)  # noVNC asks for "binary"
    try:
        reader, writer = await open_console(connection)
    except (OSError, TimeoutError) as exc:
        log.warning("console of %s unreachable: %s", connection.instance_uuid, exc)
        await websocket.close(code=UNREACHABLE, reason="the console is not reachable")
        return
    log.info("console %s of %s opened", connection.console_type, connection.instance_uuid)
    tasks = [asyncio.create_task(_to_console(websocket, writer)), asyncio.create_task(_from_console(websocket, reader))]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, OSError, RuntimeError):
                await task
        writer.close()
        with contextlib.suppress(OSError, RuntimeError, WebSocketDisconnect):  # the client may have gone first
            await websocket.close()
        log.info("console %s of %s closed", connection.console_type, connection.instance_uuid)
