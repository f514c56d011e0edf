"""Remote consoles on a compute host (Nova's get_serial_console, get_vnc_console), mixed into `ComputeAgent`: where
the guest's console listens, for the API to put in a console token."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pocketstack.common.errors import BadRequest, Conflict
from pocketstack.compute.virt.driver import DriverError

if TYPE_CHECKING:
    from pocketstack.compute.agent.manager import ComputeAgent

# console type -> (settings section that enables it, driver method)
CONSOLE_TYPES = {"serial": ("serial_console", "get_serial_console"), "novnc": ("vnc", "get_vnc_console")}


class ConsoleOperations:
    """The agent's console methods; `self` is the `ComputeAgent`."""

    async def get_console(self: ComputeAgent, instance_uuid: str, console_type: str) -> dict[str, Any] | None:
        """The host, port and internal access path of the guest's `console_type` console (CALL, 1.7); None when
        the driver has no such console. 400 for a type this host does not serve, 409 for a guest not running."""
        if console_type not in CONSOLE_TYPES or not self.settings.service(CONSOLE_TYPES[console_type][0]).enabled:
            raise BadRequest(f"Unavailable console type {console_type}.")
        instance = await self.conductor.instance_get(instance_uuid)
        try:
            endpoint = await getattr(self.driver, CONSOLE_TYPES[console_type][1])(instance)
        except NotImplementedError:
            return None
        except DriverError:
            raise Conflict(f"Instance {instance_uuid} is not ready")
        return {"host": endpoint.host, "port": endpoint.port, "internal_access_path": endpoint.internal_access_path}
