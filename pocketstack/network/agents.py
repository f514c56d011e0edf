"""The host agents as the network service knows them (Neutron's agents extension): each agent reports the
functions it runs on its host (Linux bridge, DHCP, L3, metadata) with a heartbeat over RPC; `GET /v2.0/agents`
lists them, alive while their last heartbeat is younger than `[network] agent_down_time`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pocketstack.common.context import RequestContext
from pocketstack.common.errors import NotFound
from pocketstack.common.timeutils import utcnow
from pocketstack.network import models as m
from pocketstack.network.manager import Core, new_id

AGENT_TIME = "%Y-%m-%d %H:%M:%S"  # Neutron's format for the agents' timestamps


def agent_not_found(agent_id: str) -> NotFound:
    return NotFound(f"Agent {agent_id} could not be found.", error_type="AgentNotFound")


class Agents(Core):
    """Heartbeats in, the agents API out."""

    async def report_agent_state(self, host: str, agents: list[dict[str, Any]], start: bool) -> None:
        """An agent's heartbeat: one entry per function it runs on `host` (agent_type, binary, topic,
        availability_zone, configurations); `start`: its first since it started."""
        now = utcnow()

        async def report(session: AsyncSession) -> None:
            rows = {a.agent_type: a for a in await session.scalars(select(m.Agent).where(m.Agent.host == host))}
            for state in agents:
                row = rows.get(state["agent_type"])
                if row is None:
                    row = m.Agent(id=new_id(), agent_type=state["agent_type"], host=host, admin_state_up=True,
                                  description="", created_at=now, started_at=now)
                    session.add(row)
                elif start:
                    row.started_at = now
                row.binary, row.topic = state["binary"], state["topic"]
                row.availability_zone = state.get("availability_zone")
                row.configurations = state.get("configurations") or {}
                row.heartbeat_timestamp = now

        await self.write(report, notify=False)

    def _agent_dict(self, row: m.Agent) -> dict[str, Any]:
        down_after = utcnow() - timedelta(seconds=self.conf.agent_down_time)
        return {"id": row.id, "agent_type": row.agent_type, "binary": row.binary, "topic": row.topic,
                "host": row.host, "admin_state_up": row.admin_state_up,
                "alive": row.heartbeat_timestamp >= down_after, "availability_zone": row.availability_zone,
                "configurations": row.configurations, "description": row.description,
                "created_at": row.created_at.strftime(AGENT_TIME), "started_at": row.started_at.strftime(AGENT_TIME),
                "heartbeat_timestamp": row.heartbeat_timestamp.strftime(AGENT_TIME), "resources_synced": None}

    async def list_agents(self, ctx: RequestContext) -> list[dict[str, Any]]:
        """Every agent for those get_agent allows (admins); an empty list for the others, as Neutron filters a
        list by the policy of each item."""
        if not self.allowed("get_agent", ctx, {}):
            return []
        async def _read(session: AsyncSession) -> Any:
            rows = await session.scalars(select(m.Agent).order_by(m.Agent.host, m.Agent.agent_type))
            return [self._agent_dict(row) for row in rows]

        return await self.db.run(_read, write=False)

    async def get_agent(self, ctx: RequestContext, agent_id: str) -> dict[str, Any]:
        self.enforce("get_agent", ctx, {})
        async def _read(session: AsyncSession) -> Any:
            row = await session.get(m.Agent, agent_id)
            if row is None:
                raise agent_not_found(agent_id)
            return self._agent_dict(row)

        return await self.db.run(_read, write=False)

    async def update_agent(self, ctx: RequestContext, agent_id: str, data: dict[str, Any]) -> dict[str, Any]:
        self.enforce("update_agent", ctx, {})

        async def update(session: AsyncSession) -> dict[str, Any]:
            row = await session.get(m.Agent, agent_id)
            if row is None:
                raise agent_not_found(agent_id)
            for key, value in data.items():
                setattr(row, key, value)
            return self._agent_dict(row)

        return await self.write(update, notify=False)

    async def delete_agent(self, ctx: RequestContext, agent_id: str) -> None:
        self.enforce("delete_agent", ctx, {})

        async def delete(session: AsyncSession) -> None:
            row = await session.get(m.Agent, agent_id)
            if row is None:
                raise agent_not_found(agent_id)
            await session.delete(row)

        await self.write(delete, notify=False)
