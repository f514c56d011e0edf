"""Agents (`/v2.0/agents`, admin only): the host agents' functions and whether they are alive."""

from __future__ import annotations

from fastapi import Request, Response
from pydantic import Field

from pocketstack.network.api.common import Body, context, listing, manager, parse, shown

ATTRIBUTES = {"id", "agent_type", "binary", "topic", "host", "admin_state_up", "alive", "availability_zone",
              "description", "created_at", "started_at", "heartbeat_timestamp"}


class AgentUpdate(Body):
    admin_state_up: bool = True
    description: str = Field("", max_length=255)


async def list_agents(request: Request) -> Response:
    return listing(request, "agents", await manager(request).list_agents(context(request)), ATTRIBUTES)


async def show_agent(request: Request, agent_id: str) -> Response:
    return shown(request, "agent", await manager(request).get_agent(context(request), agent_id))


async def update_agent(request: Request, agent_id: str) -> Response:
    data = await parse(request, "agent", AgentUpdate)
    return shown(request, "agent", await manager(request).update_agent(context(request), agent_id, data))


async def delete_agent(request: Request, agent_id: str) -> Response:
    await manager(request).delete_agent(context(request), agent_id)
    return Response(status_code=204)
