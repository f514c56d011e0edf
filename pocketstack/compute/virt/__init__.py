"""Hypervisor drivers (`driver` in the compute settings)."""

from __future__ import annotations

from pocketstack.compute.virt.driver import ComputeDriver
from pocketstack.settings import Settings


def make_driver(settings: Settings, host: str) -> ComputeDriver:
    if settings.compute.driver == "fake":
        from pocketstack.compute.virt.fake import FakeDriver

        return FakeDriver(host, settings)
    if settings.compute.driver == "qemu":
        from pocketstack.compute.virt.qemu import QemuDriver

        return QemuDriver(host, settings)
    raise ValueError(f"unknown compute driver {settings.compute.driver!r}")
