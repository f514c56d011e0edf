"""The whole cloud's settings: the core of `common.config` with every service's own section composed in.

A new service adds its section here (its model lives in its package's `settings.py`).
"""

from __future__ import annotations

from pocketstack.common.config import CoreSettings
from pocketstack.compute.settings import (
    ComputeSettings,
    ConsoleAuthSettings,
    MetadataSettings,
    SerialConsoleSettings,
    VncSettings,
)
from pocketstack.dashboard.settings import DashboardSettings
from pocketstack.distributed.settings import DistributedSettings
from pocketstack.identity.settings import IdentitySettings
from pocketstack.image.settings import ImageSettings
from pocketstack.network.settings import NetworkSettings
from pocketstack.trace.settings import TraceSettings
from pocketstack.volume.settings import VolumeSettings


class Settings(CoreSettings):
    identity: IdentitySettings = IdentitySettings()
    image: ImageSettings = ImageSettings()
    compute: ComputeSettings = ComputeSettings()
    network: NetworkSettings = NetworkSettings()
    volume: VolumeSettings = VolumeSettings()
    metadata: MetadataSettings = MetadataSettings()
    serial_console: SerialConsoleSettings = SerialConsoleSettings()
    vnc: VncSettings = VncSettings()
    consoleauth: ConsoleAuthSettings = ConsoleAuthSettings()
    trace: TraceSettings = TraceSettings()
    dashboard: DashboardSettings = DashboardSettings()
    distributed: DistributedSettings = DistributedSettings()

    @property
    def network_agent_enabled(self) -> bool:
        """Whether the network service runs the host data plane agent (default: with real guests only)."""
        enabled = self.network.agent_enabled
        return self.compute.driver == "qemu" if enabled is None else enabled
