"""Client side of the host agents' RPC interface (topic `network_agent`): the server tells every agent that
something it may wire changed (Neutron's agent notifier fanout); each agent then fetches its host's state."""

from __future__ import annotations

from pocketstack.common.rpc import RPCAPI

TOPIC = "network_agent"
LINUX_BRIDGE_AGENT = "Linux bridge agent"  # the agent type whose `bridge_mappings` decide where flat networks bind


class AgentAPI(RPCAPI):
    topic = TOPIC
    namespace = "network_agent"
    version = "1.0"

    async def state_changed(self) -> None:
        await self.prepare(fanout=True).cast("state_changed")
