"""The dashboard in a real browser: Playwright driving Debian's chromium against the in-process cloud."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
import requests

from pocketstack.compute.virt.fake import FakeDriver

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not shutil.which("chromium"):
        pytest.skip("Debian's chromium is not installed (scripts/install.sh installs it)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def bootable(admin) -> Iterator[None]:
    """A public image and a flavor for the launch form."""
    image = admin.image.create_image(name="web-cirros", data=b"\0" * 1024, disk_format="raw",
                                     container_format="bare", visibility="public")
    flavor = admin.compute.find_flavor("web.tiny") or admin.compute.create_flavor(name="web.tiny", ram=64,
                                                                                  vcpus=1, disk=1)
    yield
    admin.image.delete_image(image)
    admin.compute.delete_flavor(flavor)


@pytest.fixture(autouse=True)
def leaves_nothing(demo, admin, prefix) -> Iterator[None]:
    """What a test made through the pages (its names carry the prefix) is deleted, so later tests start clean."""
    yield
    servers = [s for s in demo.compute.servers() if s.name.startswith(prefix)]
    for volume in demo.block_storage.volumes():
        if volume.name and volume.name.startswith(prefix):
            for attachment in volume.attachments:
                demo.compute.delete_volume_attachment(attachment["server_id"], volume.id)
            demo.block_storage.wait_for_status(volume, "available", wait=60)
            demo.block_storage.delete_volume(volume)
            demo.block_storage.wait_for_delete(volume, wait=60)
    for server in servers:
        demo.compute.delete_server(server)
        demo.compute.wait_for_delete(server, wait=60)
    for user in admin.identity.users(name=f"{prefix}reader"):
        admin.identity.delete_user(user)


def _login(browser: object, cloud, user: str, password: str, project: str):
    page = browser.new_page()  # type: ignore[attr-defined]
    page.set_default_timeout(30000)
    page.goto(cloud.url("dashboard") + "/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.fill("input[name=project]", project)
    page.click("#login")
    page.wait_for_selector("text=Overview of")
    return page


def _launch(page, cloud, name: str) -> None:
    page.goto(cloud.url("dashboard") + "/servers")
    page.click("#launch")
    page.fill("input[name=name]", name)
    page.click("#submit-launch")
    page.wait_for_selector(f"tr[data-server='{name}'], .error")
    assert not page.locator(".error").count(), page.inner_text(".error")


def test_login_launch_active_flow_logout(cloud, browser, bootable, admin, prefix) -> None:
    page = _login(browser, cloud, "demo", "demo-secret", "demo")
    cookie = next(c for c in page.context.cookies() if c["name"] == "pocketstack_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    _launch(page, cloud, f"{prefix}web")
    # the status cell turns ACTIVE through htmx's polling, without a reload
    page.wait_for_selector(f"tr[data-server='{prefix}web'] td.status:text-is('ACTIVE')")
    # its console link opens the noVNC page of a console URL (the fake guest has no display: it cannot connect)
    console = page.locator(f"tr[data-server='{prefix}web'] a:text-is('console')").get_attribute("href")
    vnc = browser.new_page()  # type: ignore[attr-defined]
    vnc.context.add_cookies(page.context.cookies())
    vnc.goto(cloud.url("dashboard") + console)
    assert "/vnc_lite.html?path=%3Ftoken%3D" in vnc.url and vnc.title() == "noVNC"
    vnc.close()
    # its serial page runs xterm.js on a serial console URL (the fake guest's console is nowhere: closed)
    page.click(f"tr[data-server='{prefix}web'] a:text-is('serial')")
    page.wait_for_selector("#terminal .xterm")
    assert page.locator("#terminal").get_attribute("data-url").startswith(
        f"ws://127.0.0.1:{cloud.settings.port('serial-console')}/?token=")
    sync_api.expect(page.locator("#serial-status")).to_have_text("closed", timeout=15000)
    page.goto(cloud.url("dashboard") + "/servers")
    page.click(f"tr[data-server='{prefix}web'] a:text-is('flow')")
    page.wait_for_selector("svg.flow")
    lanes = page.eval_on_selector_all("svg.flow g.lane", "els => els.map(e => e.dataset.lane)")
    assert {"client", "compute-api", "conductor", "scheduler", "compute", "hypervisor"} <= set(lanes)
    assert page.locator("svg.flow g.hop").count() >= 5
    assert page.locator("svg.flow g.hop.failed").count() == 0
    dashboard = next(s for s in cloud.thread.cloud.services if s.name == "dashboard")
    token = dashboard.sessions.get(cookie["value"]).token  # type: ignore[attr-defined]
    page.click("#logout")
    page.wait_for_selector("#login")
    check = requests.get(cloud.auth_url + "/auth/tokens", timeout=10,
                         headers={"X-Auth-Token": admin.session.get_token(), "X-Subject-Token": token})
    assert check.status_code == 404  # logout revoked the token
    page.goto(cloud.url("dashboard") + "/servers")
    page.wait_for_selector("#login")  # the session is gone
    page.close()


def test_failed_boot_shows_the_red_hop(cloud, browser, bootable, prefix) -> None:
    compute = next(s for s in cloud.thread.cloud.services if s.name == "compute")
    hosts = [agent.host for agent in compute.agents]  # type: ignore[attr-defined]
    FakeDriver.fail_spawn_on.update({h: "the disk exploded" for h in hosts})
    try:
        page = _login(browser, cloud, "demo", "demo-secret", "demo")
        _launch(page, cloud, f"{prefix}bad")
        page.wait_for_selector(f"tr[data-server='{prefix}bad'] td.status:text-is('ERROR')")
    finally:
        for h in hosts:
            FakeDriver.fail_spawn_on.pop(h, None)
    page.click(f"tr[data-server='{prefix}bad'] a:text-is('flow')")
    page.wait_for_selector("svg.flow g.hop.failed")
    assert "No valid host" in (page.text_content("svg.flow text.fault") or "")
    page.close()


def test_bad_input_shows_the_service_message(cloud, browser, prefix) -> None:
    page = _login(browser, cloud, "demo", "demo-secret", "demo")
    page.goto(cloud.url("dashboard") + "/volumes")
    page.fill("input[name=name]", f"{prefix}vol")
    page.fill("input[name=size]", "-3")
    page.click("#create-volume")
    page.wait_for_selector(".error")
    page.close()


def test_reader_sees_no_launch_button(cloud, browser, admin, prefix) -> None:
    user = admin.identity.create_user(name=f"{prefix}reader", password="reader-secret", domain_id="default")
    project = admin.identity.find_project("demo")
    admin.identity.assign_project_role_to_user(project, user, admin.identity.find_role("reader"))
    page = _login(browser, cloud, f"{prefix}reader", "reader-secret", "demo")
    page.goto(cloud.url("dashboard") + "/servers")
    page.wait_for_selector("#server-rows", state="attached")
    assert page.locator("#launch").count() == 0
    assert page.locator("#server-rows button").count() == 0
    page.close()


def test_volume_create_attach_and_csrf(cloud, browser, bootable, prefix) -> None:
    page = _login(browser, cloud, "demo", "demo-secret", "demo")
    _launch(page, cloud, f"{prefix}host")
    page.wait_for_selector(f"tr[data-server='{prefix}host'] td.status:text-is('ACTIVE')")
    page.goto(cloud.url("dashboard") + "/volumes")
    page.fill("input[name=name]", f"{prefix}data")
    page.fill("input[name=size]", "1")
    page.click("#create-volume")
    row = f"tr[data-volume='{prefix}data']"
    page.wait_for_selector(f"{row} td.status:text-is('available')")
    page.select_option(f"{row} select[name=server_id]", label=f"{prefix}host")
    page.click(f"{row} button:text-is('attach')")
    page.wait_for_selector(f"{row}, .error")
    assert not page.locator(".error").count(), page.inner_text(".error")
    page.wait_for_selector(f"{row} td.status:text-is('in-use')")  # polled while attaching
    # a form posted without the session's CSRF token is refused, even with the session cookie
    resp = page.request.post(cloud.url("dashboard") + "/volumes", form={"name": f"{prefix}forged", "size": "1"})
    assert resp.status == 403
    page.close()


def test_security_group_rules_and_topology(cloud, browser, bootable, demo, admin, prefix) -> None:
    net = demo.network.create_network(name=f"{prefix}net")
    subnet = demo.network.create_subnet(network_id=net.id, cidr="10.83.0.0/24", ip_version=4)
    router = demo.network.create_router(name=f"{prefix}r")
    demo.network.add_interface_to_router(router, subnet_id=subnet.id)
    group = demo.network.create_security_group(name=f"{prefix}sg")
    try:
        page = _login(browser, cloud, "demo", "demo-secret", "demo")
        page.goto(cloud.url("dashboard") + "/security-groups")
        section = f"section[data-group='{prefix}sg']"
        before = page.locator(f"{section} tr.rule").count()  # the default egress rules
        page.fill(f"{section} input[name=port_min]", "22")
        page.fill(f"{section} input[name=remote]", "0.0.0.0/0")
        page.click(f"{section} button.add")
        page.wait_for_selector(f"{section} tr.rule:has-text('tcp'):has-text('22')")
        assert page.locator(f"{section} tr.rule").count() == before + 1
        page.fill(f"{section} input[name=remote]", "not-a-cidr")
        page.click(f"{section} button.add")
        page.wait_for_selector(".error")  # Neutron's own message
        assert "not-a-cidr" in page.inner_text(".error")
        page.goto(cloud.url("dashboard") + "/security-groups")
        page.click(f"{section} tr.rule:has-text('22') button:text-is('delete')")
        page.wait_for_selector(f"{section}")
        assert page.locator(f"{section} tr.rule:has-text('22')").count() == 0
        # the topology: the network with its CIDR, the router on it
        page.goto(cloud.url("dashboard") + "/topology")
        page.wait_for_selector("svg.topology")
        assert page.locator(f"svg.topology g.network[data-network='{prefix}net']").count() == 1
        assert "10.83.0.0/24" in (page.text_content(f"svg.topology g.network[data-network='{prefix}net']") or "")
        assert page.locator(f"svg.topology g.router[data-name='router {prefix}r']").count() == 1
        page.close()
    finally:
        demo.network.remove_interface_from_router(router, subnet_id=subnet.id)
        demo.network.delete_router(router)
        demo.network.delete_network(net)
        demo.network.delete_security_group(group)
