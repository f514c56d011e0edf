"""Helpers of the QEMU driver and guest tests: the built guest, prerequisites, a loop for driver coroutines."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import tempfile
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

from conftest import Cloud, make_settings, require

from pocketstack.compute.virt.qemu import QemuDriver
from pocketstack.guest.build import GuestImage, build_guest_image
from pocketstack.guest.register import register_guest_image

T = TypeVar("T")

# Shared between runs: the build is keyed by its inputs, so a stale one is never used.
GUEST_CACHE = Path(tempfile.gettempdir()) / "pocketstack-test-guest"


def guest_image() -> GuestImage:
    require("qemu-img", "mkfs.vfat", "syslinux", "mcopy", "apt-get", "dpkg-deb")
    return build_guest_image(GUEST_CACHE)


@contextlib.contextmanager
def teardown_on_sigterm() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so fixture teardown still stops the (detached) guests of a killed run."""
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class Loop:
    """One event loop for a test module's driver calls (the driver's locks belong to the loop that made them)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def __call__(self, coro: Coroutine[Any, Any, T], within: float = 300.0) -> T:
        return self.loop.run_until_complete(asyncio.wait_for(coro, within))

    def close(self) -> None:
        self.loop.close()


def qemu_cloud(data_dir: Path) -> Iterator[Cloud]:
    """For a module's cloud fixture: an all-in-one with the QEMU driver (TCG, no network agent) and the test guest
    registered; on the way out every guest left is destroyed."""
    require("qemu-system-x86_64", root=True)
    image = guest_image()
    settings = make_settings(data_dir, compute={"driver": "qemu", "accel": "tcg", "vif_plugging_timeout": 0,
                                                "register_guest_image": False})
    cloud = Cloud(settings).start()
    try:
        with teardown_on_sigterm():
            cloud.thread.call(lambda: register_guest_image(settings, image), timeout=120)
            yield cloud
    finally:
        cloud.stop()
        leftovers = QemuDriver("cleanup", settings)

        async def reap() -> None:
            for uid in await leftovers.list_instances():
                await leftovers.destroy({"uuid": uid}, [])

        asyncio.run(reap())
