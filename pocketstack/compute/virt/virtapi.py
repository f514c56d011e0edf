"""What a driver may ask of its compute agent (Nova's VirtAPI): waiting for external instance events.

The network service tells compute `network-vif-plugged` (tag: the port id) once the host's network agent has
wired a server's tap. A driver registers the events it expects *before* plugging the taps, so none is missed,
starts the guest paused, and lets it run once they have all arrived (Nova's libvirt driver does the same).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from pocketstack.compute.virt.driver import DriverError

log = logging.getLogger("pocketstack.compute.virtapi")

EventKey = tuple[str, str, str | None]  # (instance uuid, event name, tag)


class InstanceEventTimeout(DriverError):
    """Expected events did not arrive in time."""


class InstanceEventFailed(DriverError):
    """An expected event arrived with status failed."""


class VirtAPI:
    """Futures for external events, keyed by (instance uuid, name, tag); the agent dispatches into them."""

    def __init__(self) -> None:
        self._waiters: dict[EventKey, asyncio.Future[str]] = {}

    def prepare(self, instance_uuid: str, name: str, tag: str | None) -> asyncio.Future[str]:
        key = (instance_uuid, name, tag)
        future = self._waiters.get(key)
        if future is None or future.done():
            future = asyncio.get_running_loop().create_future()
            self._waiters[key] = future
        return future

    def dispatch(self, instance_uuid: str, name: str, tag: str | None, status: str) -> bool:
        """Resolve a waiter with the event's status; False when nobody waits for it."""
        future = self._waiters.pop((instance_uuid, name, tag), None)
        if future is None or future.done():
            return False
        future.set_result(status)
        return True

    def discard(self, instance_uuid: str, name: str, tag: str | None) -> None:
        future = self._waiters.pop((instance_uuid, name, tag), None)
        if future is not None and not future.done():
            future.cancel()

    def waiting(self, instance_uuid: str) -> list[tuple[str, str | None]]:
        return [(name, tag) for uuid, name, tag in self._waiters if uuid == instance_uuid]

    @contextlib.asynccontextmanager
    async def wait_for_instance_event(self, instance_uuid: str, events: list[tuple[str, str | None]],
                                      deadline: float) -> AsyncIterator[None]:
        """Register `events` on entry; after the body ran, wait up to `deadline` seconds for all of them.

        Raises InstanceEventTimeout naming the missing events, or InstanceEventFailed for one with status
        `failed`. The waiters are dropped in every case.
        """
        futures = {(name, tag): self.prepare(instance_uuid, name, tag) for name, tag in events}
        try:
            yield
            if futures:
                await asyncio.wait(futures.values(), timeout=deadline)
                missing = [f"{name} for {tag}" for (name, tag), fut in futures.items() if not fut.done()]
                if missing:
                    raise InstanceEventTimeout(f"Timed out after {deadline:g} s waiting for {', '.join(missing)}")
                failed = [f"{name} for {tag}" for (name, tag), fut in futures.items() if fut.result() == "failed"]
                if failed:
                    raise InstanceEventFailed(f"Event(s) failed: {', '.join(failed)}")
        finally:
            for name, tag in futures:
                self.discard(instance_uuid, name, tag)
