"""Client side of the conductor's RPC interface (topic `conductor`)."""

from __future__ import annotations

from typing import Any

from pocketstack.common.rpc import RPCAPI
from pocketstack.compute.build import BuildRequest, InstanceView


class ConductorAPI(RPCAPI):
    topic = "conductor"
    namespace = "conductor"
    version = "1.5"  # 1.1: bdm_update, bdm_destroy (volumes); 1.2: abort_build; 1.3: instance_update changes_only
    # 1.4: unshelve_instance; 1.5: migrate_server, migration_get, migration_update, move_finish, move_done,
    # move_confirm, move_back
    steps = {("cast", "build_instances"): "8", ("call", "instance_get"): "14, 18", ("call", "instance_update"): "19"}

    async def build_instances(self, instance_uuids: list[str], request_spec: BuildRequest) -> None:
        """FLOW.md step 8: the API hands the build over (CAST)."""
        await self.prepare().cast("build_instances", instance_uuids=instance_uuids, request_spec=request_spec)

    async def reschedule(self, instance_uuid: str, failed_host: str, reason: str) -> None:
        await self.prepare().cast("reschedule", instance_uuid=instance_uuid, failed_host=failed_host,
                                  reason=reason)

    async def unshelve_instance(self, instance_uuid: str, request_id: str, availability_zone: str | None = None,
                                host: str | None = None) -> None:
        """Schedule a shelved-offloaded server again and hand it to the host chosen (CAST, 1.4)."""
        await self.prepare(version="1.4").cast("unshelve_instance", instance_uuid=instance_uuid,
                                               request_id=request_id, availability_zone=availability_zone,
                                               host=host)

    async def migrate_server(self, instance_uuid: str, migration_uuid: str, request_id: str,
                             host: str | None = None) -> None:
        """Schedule a resize or cold migration and hand it to the destination (CAST, 1.5)."""
        await self.prepare(version="1.5").cast("migrate_server", instance_uuid=instance_uuid,
                                               migration_uuid=migration_uuid, request_id=request_id, host=host)

    async def migration_get(self, migration_uuid: str) -> dict[str, Any]:
        return await self.prepare(version="1.5").call("migration_get", migration_uuid=migration_uuid)

    async def migration_update(self, migration_uuid: str, status: str) -> dict[str, Any]:
        return await self.prepare(version="1.5").call("migration_update", migration_uuid=migration_uuid,
                                                      status=status)

    async def move_finish(self, instance_uuid: str, migration_uuid: str) -> dict[str, Any]:
        """The destination takes the server: new flavor and host recorded; the instance as it is now (1.5)."""
        return await self.prepare(version="1.5").call("move_finish", instance_uuid=instance_uuid,
                                                      migration_uuid=migration_uuid)

    async def move_done(self, instance_uuid: str, migration_uuid: str, power_state: int) -> None:
        await self.prepare(version="1.5").call("move_done", instance_uuid=instance_uuid,
                                               migration_uuid=migration_uuid, power_state=power_state)

    async def move_confirm(self, instance_uuid: str, migration_uuid: str) -> None:
        await self.prepare(version="1.5").call("move_confirm", instance_uuid=instance_uuid,
                                               migration_uuid=migration_uuid)

    async def move_back(self, instance_uuid: str, migration_uuid: str, *, status: str, power_state: int,
                        fault: str | None = None, error: bool = False) -> None:
        """The server back on its source with its old flavor and claim: reverted, or a failed move (1.5)."""
        await self.prepare(version="1.5").call("move_back", instance_uuid=instance_uuid,
                                               migration_uuid=migration_uuid, status=status,
                                               power_state=power_state, fault=fault, error=error)

    async def instance_get(self, instance_uuid: str) -> InstanceView:
        """FLOW.md steps 14-18: the compute agent reads its instance through the conductor (CALL)."""
        return await self.prepare().call("instance_get", instance_uuid=instance_uuid)

    async def instance_update(self, instance_uuid: str, updates: dict[str, Any],
                              expected_task_state: list[str | None] | None = None) -> dict[str, Any]:
        """Step 19: change an instance (only from one of `expected_task_state` when given). Returns the fields it
        changed as `InstanceView` shows them, for the caller to merge into its view."""
        return await self.prepare(version="1.3").call("instance_update", instance_uuid=instance_uuid,
                                                      updates=updates, expected_task_state=expected_task_state,
                                                      changes_only=True)

    async def bdm_update(self, bdm_id: int, updates: dict[str, Any]) -> dict[str, Any]:
        return await self.prepare(version="1.1").call("bdm_update", bdm_id=bdm_id, updates=updates)

    async def bdm_destroy(self, bdm_id: int) -> None:
        await self.prepare(version="1.1").call("bdm_destroy", bdm_id=bdm_id)

    async def instance_destroy(self, instance_uuid: str) -> None:
        await self.prepare().call("instance_destroy", instance_uuid=instance_uuid)

    async def instances_on_host(self, host: str) -> list[dict[str, Any]]:
        return await self.prepare().call("instances_on_host", host=host)

    async def action_event(self, instance_uuid: str, request_id: str, event: str, start_time: str,
                           result: str, host: str, details: str | None = None) -> None:
        await self.prepare().call("action_event", instance_uuid=instance_uuid, request_id=request_id,
                                  event=event, start_time=start_time, result=result, host=host, details=details)

    async def abort_build(self, instance_uuid: str, reason: str) -> bool:
        """A build that can no longer finish (its host restarted mid-build): ERROR, claims and ports released."""
        return await self.prepare(version="1.2").call("abort_build", instance_uuid=instance_uuid,
                                                      reason=reason)

    async def service_report(self, host: str, binary: str, topic: str,
                             resources: dict[str, Any] | None = None) -> dict[str, Any]:
        """Heartbeat (and, from compute agents, the resource report); returns the service's record."""
        return await self.prepare().call("service_report", host=host, binary=binary, topic=topic,
                                         resources=resources)
