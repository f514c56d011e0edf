"""Remote consoles of a real QEMU guest through the `openstack` CLI: the serial console URL's websocket reaches the
guest's getty (a login prompt), `console log show` still reads the boot, and the noVNC URL's page connects to the
guest's display in headless Chromium (Debian's, driven by Playwright), as does the dashboard's serial console
page (xterm.js). One guest (TCG) serves every check."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import Cloud
from qemu_helpers import qemu_cloud
from server_helpers import api
from websockets.sync.client import connect

from pocketstack.guest.build import IMAGE_NAME

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def qcloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    yield from qemu_cloud(tmp_path_factory.mktemp("qemu-consoles"))


@pytest.fixture(scope="module")
def guest(qcloud: Cloud) -> Iterator[str]:
    """A booted test guest (its getty on ttyS0 is up)."""
    server = qcloud.cli("server", "create", "--image", IMAGE_NAME, "--flavor", "m1.tiny", "--nic", "none",
                        "--wait", "-f", "json", "console-vm", cloud="pocketstack-demo")
    uid = server["id"]
    try:
        deadline = time.monotonic() + 240
        while "pocketstack guest ready" not in qcloud.cli("console", "log", "show", uid, cloud="pocketstack-demo"):
            assert time.monotonic() < deadline, "the guest did not boot in time"
            time.sleep(1)
        yield uid
    finally:
        qcloud.cli("server", "delete", "--wait", uid, cloud="pocketstack-demo")


def test_serial_console_websocket_reaches_the_getty(qcloud: Cloud, guest: str) -> None:
    url = qcloud.cli("console", "url", "show", "--serial", guest, "-f", "json", cloud="pocketstack-demo")["url"]
    seen = b""
    with connect(url, subprotocols=["binary"], open_timeout=10) as ws:  # type: ignore[list-item]
        ws.send(b"\r")
        deadline = time.monotonic() + 60
        while b"login:" not in seen:
            assert time.monotonic() < deadline, f"no login prompt on the serial console: {seen[-500:]!r}"
            try:
                data = ws.recv(timeout=5)
            except TimeoutError:
                ws.send(b"\r")
                continue
            seen += data if isinstance(data, bytes) else data.encode()
    assert b"pocketstack test guest" in seen  # /etc/issue, printed by getty above its prompt
    # the serial log still gets what the guest writes (console log show)
    log = qcloud.cli("console", "log", "show", guest, cloud="pocketstack-demo")
    assert "pocketstack guest ready" in log and "login:" in log


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not shutil.which("chromium"):
        pytest.skip("Debian's chromium is not installed (scripts/install.sh installs it)")
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


def test_novnc_page_connects_to_the_guest_display(qcloud: Cloud, guest: str, browser: Any) -> None:
    from playwright.sync_api import expect

    url = qcloud.cli("console", "url", "show", "--novnc", guest, "-f", "json", cloud="pocketstack-demo")["url"]
    page = browser.new_page()
    try:
        page.goto(url)
        expect(page.locator("#status")).to_contain_text("Connected (unencrypted) to: QEMU", timeout=30000)
        assert page.locator("#screen canvas").count() == 1
    finally:
        page.close()


def test_dashboard_serial_console_shows_the_login_prompt(qcloud: Cloud, guest: str, browser: Any) -> None:
    """The dashboard's serial page: xterm.js on the serial console websocket, the getty answering."""
    from playwright.sync_api import expect

    page = browser.new_page()
    try:
        page.goto(qcloud.url("dashboard") + "/login")
        page.fill("input[name=username]", "demo")
        page.fill("input[name=password]", "demo-secret")
        page.fill("input[name=project]", "demo")
        page.click("#login")
        page.wait_for_selector("text=Overview of")
        page.goto(qcloud.url("dashboard") + f"/servers/{guest}/serial")
        expect(page.locator("#serial-status")).to_have_text("connected", timeout=30000)
        rows = page.locator("#terminal .xterm-rows")
        expect(rows).to_contain_text("login:", timeout=60000)
        prompts = rows.inner_text().count("login:")
        page.locator("#terminal textarea").press("Enter")  # a typed key reaches the guest: getty prompts again
        deadline = time.monotonic() + 30
        while rows.inner_text().count("login:") <= prompts:
            assert time.monotonic() < deadline, f"no new prompt after Enter:\n{rows.inner_text()}"
            time.sleep(0.2)
        assert "pocketstack test guest" in rows.inner_text()
    finally:
        page.close()


def test_console_tokens_go_with_the_guest_sockets(qcloud: Cloud, guest: str) -> None:
    """The token's connection info names the guest's unix socket on its host (admin, 2.31+)."""
    admin = qcloud.conn()
    url = qcloud.cli("console", "url", "show", "--serial", guest, "-f", "json", cloud="pocketstack-demo")["url"]
    token = url.split("token=")[1]
    shown = api(qcloud, admin, "GET", f"/os-console-auth-tokens/{token}", version="2.31").json()["console"]
    assert shown["instance_uuid"] == guest and shown["port"] == 0
    assert shown["internal_access_path"].endswith("serial.sock")
    assert shown["host"] == qcloud.settings.compute.host
