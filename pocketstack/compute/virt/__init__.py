"""Hypervisor drivers (`driver` in the compute settings)."""

from __future__ import annotations

from pocketstack.common.clients.identity import ServiceTokenProvider
from pocketstack.common.clients.image import ImageClient
from pocketstack.compute.virt.driver import ComputeDriver
from pocketstack.settings import Settings


def make_driver(settings: Settings, host: str, *, image: ImageClient | None = None,
                service_tokens: ServiceTokenProvider | None = None) -> ComputeDriver:
    """The host's driver, given the agent's image client and service tokens (the QEMU driver fetches images)."""
    if settings.compute.driver == "fake":
        from pocketstack.compute.virt.fake import FakeDriver

        return FakeDriver(host, settings)
    if settings.compute.driver == "qemu":
        from pocketstack.compute.virt.qemu import QemuDriver

        return QemuDriver(host, settings, image=image, service_tokens=service_tokens)
    raise ValueError(f"unknown compute driver {settings.compute.driver!r}")
