"""Remote consoles on the fake driver: `remote-consoles` (2.6+) and the legacy console actions, the URLs of
`openstack console url show --serial/--novnc`, console auth tokens (hashed, shown to admins, expiring, gone with
the server), the proxies refusing bad tokens, policy and input errors. The QEMU end-to-end test (a login prompt on
the serial websocket, noVNC connected in Chromium) is in tests/test_consoles_qemu.py."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from server_helpers import api, demo_server, image_and_network, reader_and_outsider, wait_status
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect


@pytest.fixture(scope="module")
def env(cloud: Any, admin: Any) -> Iterator[dict[str, Any]]:
    yield from image_and_network(cloud, admin, "console", "10.93.0.0/24")


@pytest.fixture
def server(env: dict[str, Any], prefix: str) -> Iterator[Any]:
    yield from demo_server(env, prefix)


def token_of(url: str) -> str:
    query = parse_qs(urlsplit(url).query)
    if "path" in query:  # noVNC: ?path=%3Ftoken%3D...
        query = parse_qs(urlsplit(query["path"][0]).query)
    return query["token"][0]


def console(cloud: Any, conn: Any, server_id: str, protocol: str, kind: str, version: str = "2.6") -> Any:
    return api(cloud, conn, "POST", f"/servers/{server_id}/remote-consoles",
               {"remote_console": {"protocol": protocol, "type": kind}}, version=version)


def stored_hashes(cloud: Any) -> list[tuple[str, str]]:
    with sqlite3.connect(cloud.settings.data_dir / "compute.db") as db:
        return db.execute("SELECT token_hash, instance_uuid FROM console_auth_tokens").fetchall()


def test_console_urls_tokens_and_cli(cloud: Any, admin: Any, env: dict[str, Any], server: Any) -> None:
    demo = env["demo"]
    settings = cloud.settings
    serial = console(cloud, demo, server.id, "serial", "serial")
    assert serial.status_code == 200, serial.text
    body = serial.json()["remote_console"]
    assert body["protocol"] == "serial" and body["type"] == "serial"
    assert body["url"].startswith(f"ws://127.0.0.1:{settings.port('serial-console')}/?token=")
    novnc = console(cloud, demo, server.id, "vnc", "novnc").json()["remote_console"]
    assert novnc["url"].startswith(f"http://127.0.0.1:{settings.port('vnc')}/vnc_lite.html?path=%3Ftoken%3D")

    # only the tokens' sha256 are kept
    token = token_of(body["url"])
    hashes = dict(stored_hashes(cloud))
    assert hashlib.sha256(token.encode()).hexdigest() in hashes and token not in str(hashes)

    # the admin looks a token up (2.31+: any console type): where the proxy connects, as Nova's fake driver says
    shown = api(cloud, admin, "GET", f"/os-console-auth-tokens/{token}", version="2.31")
    assert shown.status_code == 200, shown.text
    assert shown.json()["console"] == {"instance_uuid": server.id, "host": "fake", "port": 6969,
                                       "internal_access_path": None}
    vnc_token = token_of(novnc["url"])
    assert api(cloud, admin, "GET", f"/os-console-auth-tokens/{vnc_token}", version="2.31").json()["console"][
        "internal_access_path"] == "FAKE"
    # before 2.31 only RDP consoles' details are shown (401, as Nova); a member may not look (403); unknown 404
    assert api(cloud, admin, "GET", f"/os-console-auth-tokens/{token}", version="2.30").status_code == 401
    assert api(cloud, demo, "GET", f"/os-console-auth-tokens/{token}", version="2.31").status_code == 403
    missing = api(cloud, admin, "GET", "/os-console-auth-tokens/not-a-token", version="2.31")
    assert missing.status_code == 404 and "itemNotFound" in missing.json()

    # the legacy actions up to 2.5, 404 after
    legacy = api(cloud, demo, "POST", f"/servers/{server.id}/action", {"os-getSerialConsole": {"type": "serial"}},
                 version="2.5")
    assert legacy.status_code == 200 and legacy.json()["console"]["type"] == "serial"
    legacy = api(cloud, demo, "POST", f"/servers/{server.id}/action", {"os-getVNCConsole": {"type": "novnc"}},
                 version="2.1")
    assert legacy.status_code == 200 and "vnc_lite.html?path=" in legacy.json()["console"]["url"]
    assert api(cloud, demo, "POST", f"/servers/{server.id}/action", {"os-getVNCConsole": {"type": "novnc"}},
               version="2.6").status_code == 404
    spice = api(cloud, demo, "POST", f"/servers/{server.id}/action",
                {"os-getSPICEConsole": {"type": "spice-html5"}}, version="2.1")
    assert spice.status_code == 400 and "Unavailable console type spice-html5" in spice.text

    # the real CLI
    url = cloud.cli("console", "url", "show", "--serial", server.id, "-f", "json", cloud="pocketstack-demo")["url"]
    assert url.startswith(f"ws://127.0.0.1:{settings.port('serial-console')}/?token=")
    url = cloud.cli("console", "url", "show", "--novnc", server.id, "-f", "json", cloud="pocketstack-demo")["url"]
    assert "/vnc_lite.html?path=%3Ftoken%3D" in url

    # the tokens go with the server
    demo.compute.delete_server(server)
    demo.compute.wait_for_delete(server, wait=30)
    assert api(cloud, admin, "GET", f"/os-console-auth-tokens/{token}", version="2.31").status_code == 404
    assert server.id not in {uuid for _, uuid in stored_hashes(cloud)}


def test_console_errors_and_policy(cloud: Any, admin: Any, env: dict[str, Any], server: Any, prefix: str) -> None:
    demo = env["demo"]
    path = f"/servers/{server.id}/remote-consoles"
    for body, message in [
        ({"remote_console": {"protocol": "telnet", "type": "serial"}}, "'telnet' is not one of"),
        ({"remote_console": {"protocol": "serial", "type": "serial", "extra": 1}}, "Additional properties"),
        ({"remote_console": {"protocol": "serial"}}, "'type' is a required property"),
        ({"remote_console": "serial"}, "is not of type 'object'"),
        ({"remote_console": {"protocol": "vnc", "type": "serial"}}, "Invalid console type serial"),
        ({"remote_console": {"protocol": "serial", "type": "novnc"}}, "Invalid console type novnc"),
        ({"remote_console": {"protocol": "spice", "type": "spice-html5"}}, "Unavailable console type spice-html5"),
    ]:
        resp = api(cloud, demo, "POST", path, body, version="2.6")
        assert resp.status_code == 400 and message in resp.json()["badRequest"]["message"], (body, resp.text)
    # VMware's MKS consoles: in the schema from 2.8, never served
    assert "'mks' is not one of" in console(cloud, demo, server.id, "mks", "webmks", version="2.7").text
    resp = console(cloud, demo, server.id, "mks", "webmks", version="2.8")
    assert resp.status_code == 400 and "Unavailable console type webmks." in resp.text
    # before 2.6 there is no such resource
    assert console(cloud, demo, server.id, "serial", "serial", version="2.5").status_code == 404
    assert console(cloud, demo, "0" * 8 + "-0000-0000-0000-" + "0" * 12, "serial", "serial").status_code == 404

    # a console type the compute hosts do not serve (nova.conf [serial_console] enabled = false)
    cloud.settings.serial_console.enabled = False
    try:
        resp = console(cloud, demo, server.id, "serial", "serial")
        assert resp.status_code == 400 and "Unavailable console type serial." in resp.text
    finally:
        cloud.settings.serial_console.enabled = True

    # a stopped server has no console (409)
    demo.compute.stop_server(server)
    wait_status(demo, server.id, "SHUTOFF")
    resp = console(cloud, demo, server.id, "vnc", "novnc")
    assert resp.status_code == 409 and "is not ready" in resp.json()["conflictingRequest"]["message"]
    demo.compute.start_server(server)
    wait_status(demo, server.id, "ACTIVE")

    # a reader of the project may not open consoles; another project does not see the server
    with reader_and_outsider(cloud, admin, prefix) as (as_reader, as_outsider):
        assert console(cloud, as_reader, server.id, "serial", "serial").status_code == 403
        assert console(cloud, as_outsider, server.id, "serial", "serial").status_code == 404
    # the admin opens any project's console
    assert console(cloud, admin, server.id, "serial", "serial").status_code == 200


def test_proxies_check_tokens(cloud: Any, env: dict[str, Any], server: Any) -> None:
    demo = env["demo"]
    settings = cloud.settings
    serial_base = f"ws://127.0.0.1:{settings.port('serial-console')}/"
    vnc_base = f"ws://127.0.0.1:{settings.port('vnc')}/"
    # no token, an unknown token: refused before the websocket opens
    for url in (serial_base, serial_base + "?token=nope", vnc_base + "?token=nope"):
        with pytest.raises(InvalidStatus) as refused:
            connect(url, open_timeout=10)
        assert refused.value.response.status_code == 403
    serial_url = console(cloud, demo, server.id, "serial", "serial").json()["remote_console"]["url"]
    token = token_of(serial_url)
    # a serial token does not open a VNC console
    with pytest.raises(InvalidStatus):
        connect(f"{vnc_base}?token={token}", open_timeout=10)
    # a page of another site may not open it (Origin checked against Host and consoleauth.allowed_origins)
    with pytest.raises(InvalidStatus):
        connect(serial_url, origin="http://evil.example:8000", open_timeout=10)  # type: ignore[arg-type]
    settings.consoleauth.allowed_origins = ["evil.example"]
    try:
        connect(serial_url, origin="http://evil.example:8000", open_timeout=10).close()  # type: ignore[arg-type]
    finally:
        settings.consoleauth.allowed_origins = []
    # a valid token opens the websocket; the fake guest's console is nowhere (Nova's fake driver): closed 1011
    with connect(serial_url, origin="http://127.0.0.1:8000", open_timeout=10) as ws:  # type: ignore[arg-type]
        with pytest.raises(Exception):  # noqa: B017 - ConnectionClosedError
            ws.recv(timeout=10)
        assert ws.close_code == 1011
    # an expired token is refused
    with sqlite3.connect(settings.data_dir / "compute.db") as db:
        db.execute("UPDATE console_auth_tokens SET expires = '2000-01-01 00:00:00.000000' WHERE token_hash = ?",
                   (hashlib.sha256(token.encode()).hexdigest(),))
    with pytest.raises(InvalidStatus):
        connect(serial_url, open_timeout=10)
    # the noVNC page and its client library are served
    page = requests.get(f"http://127.0.0.1:{settings.port('vnc')}/vnc_lite.html", timeout=10)
    assert page.status_code == 200 and "noVNC" in page.text and "rfb.js" in page.text
    library = requests.get(f"http://127.0.0.1:{settings.port('vnc')}/rfb.js", timeout=10)
    assert library.status_code == 200 and "javascript" in library.headers["content-type"]


def test_tokens_go_when_the_server_leaves_its_host(cloud: Any, admin: Any, env: dict[str, Any], server: Any) -> None:
    """Shelved and offloaded (at once: shelved_offload_time 0), the server's console tokens are gone: they named
    its old host's console; unshelved, it has consoles again."""
    demo = env["demo"]
    token = token_of(console(cloud, demo, server.id, "serial", "serial").json()["remote_console"]["url"])
    assert api(cloud, admin, "GET", f"/os-console-auth-tokens/{token}", version="2.31").status_code == 200
    demo.compute.shelve_server(server)
    wait_status(demo, server.id, "SHELVED_OFFLOADED")
    assert api(cloud, admin, "GET", f"/os-console-auth-tokens/{token}", version="2.31").status_code == 404
    assert console(cloud, demo, server.id, "serial", "serial").status_code == 409  # no host: not ready
    demo.compute.unshelve_server(server)
    wait_status(demo, server.id, "ACTIVE")
    assert console(cloud, demo, server.id, "serial", "serial").status_code == 200
