"""Write docs/screenshots/*.png of each dashboard page: an in-process cloud (fake driver), a demo server booted
through the launch form, a failed boot, then every page as demo and the admin pages as admin.

    PYTHONPATH=$PWD .venv/bin/python scripts/screenshots.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from conftest import Cloud, make_settings  # noqa: E402

from pocketstack.compute.virt.fake import FakeDriver  # noqa: E402

OUT = ROOT / "docs" / "screenshots"


def login(page: Page, base: str, user: str, password: str, project: str) -> None:
    page.goto(base + "/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.fill("input[name=project]", project)
    page.click("#login")
    page.wait_for_selector("text=Overview of")


def launch(page: Page, base: str, name: str, status: str) -> None:
    page.goto(base + "/servers/launch")
    page.fill("input[name=name]", name)
    if page.locator("select[name=network] option:text-is('private')").count():
        page.select_option("select[name=network]", label="private")
    page.click("#submit-launch")
    page.wait_for_selector(f"tr[data-server='{name}'] td.status:text-is('{status}')")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    cloud = Cloud(make_settings(Path(tempfile.mkdtemp(prefix="pocketstack-shots-")))).start()
    try:
        admin = cloud.conn()
        admin.image.create_image(name="cirros", data=b"\0" * 1024, disk_format="raw", container_format="bare",
                                 visibility="public")
        if not list(admin.compute.flavors()):
            admin.compute.create_flavor(name="m1.tiny", ram=64, vcpus=1, disk=1)
        # a topology to draw: the external network, demo's network and router between them
        public = admin.network.create_network(name="public", is_router_external=True)
        admin.network.create_subnet(network_id=public.id, cidr="172.24.4.0/24", ip_version=4)
        demo = cloud.conn("pocketstack-demo")
        private = demo.network.create_network(name="private")
        subnet = demo.network.create_subnet(network_id=private.id, cidr="10.0.0.0/26", ip_version=4)
        router = demo.network.create_router(name="router1", external_gateway_info={"network_id": public.id})
        demo.network.add_interface_to_router(router, subnet_id=subnet.id)
        base = cloud.url("dashboard")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 800})
            page.goto(base + "/login")
            page.screenshot(path=OUT / "login.png")
            login(page, base, "demo", "demo-secret", "demo")
            launch(page, base, "web1", "ACTIVE")
            compute = next(s for s in cloud.thread.cloud.services if s.name == "compute")
            FakeDriver.fail_spawn_on.update({agent.host: "disk on fire" for agent in compute.agents})
            launch(page, base, "broken", "ERROR")
            FakeDriver.fail_spawn_on.clear()
            for name, path in (("overview", "/"), ("servers", "/servers"), ("launch", "/servers/launch"),
                               ("images", "/images"), ("networks", "/networks"), ("volumes", "/volumes"),
                               ("keypairs", "/keypairs"), ("floating-ips", "/floating-ips"),
                               ("topology", "/topology"), ("security-groups", "/security-groups")):
                page.goto(base + path)
                page.screenshot(path=OUT / f"{name}.png", full_page=True)
            for name, server in (("flow", "web1"), ("flow-error", "broken")):
                page.goto(base + "/servers")
                page.click(f"tr[data-server='{server}'] a:text-is('flow')")
                page.wait_for_selector("svg.flow")
                page.screenshot(path=OUT / f"{name}.png", full_page=True)
            page.click("#logout")
            login(page, base, "admin", "admin-secret", "admin")
            for name, path in (("hypervisors", "/admin/hypervisors"), ("services", "/admin/services")):
                page.goto(base + path)
                page.screenshot(path=OUT / f"{name}.png", full_page=True)
            browser.close()
    finally:
        cloud.stop()
    print(f"screenshots in {OUT}")


if __name__ == "__main__":
    main()
