"""Helpers of the QEMU driver and guest tests: the built guest, prerequisites, a loop for driver coroutines."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import tempfile
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

from conftest import require

from pocketstack.guest.build import GuestImage, build_guest_image

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
