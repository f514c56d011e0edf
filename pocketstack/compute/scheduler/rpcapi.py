"""Client side of the scheduler's RPC interface (topic `scheduler`)."""

from __future__ import annotations

from pocketstack.common.rpc import RPCAPI
from pocketstack.compute.build import BuildRequest


class SchedulerAPI(RPCAPI):
    topic = "scheduler"
    namespace = "scheduler"
    version = "1.0"
    steps = {("call", "select_destinations"): "9"}

    async def select_destinations(self, request_spec: BuildRequest, instance_uuids: list[str],
                                  excluded_hosts: list[str] | None = None) -> list[str | None]:
        """FLOW.md steps 9-11: filter, weigh, claim; a host (or None: no valid host) per instance (CALL)."""
        return await self.prepare().call("select_destinations", request_spec=request_spec,
                                         instance_uuids=instance_uuids, excluded_hosts=excluded_hosts or [])
