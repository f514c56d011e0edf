"""The agents extension (`/v2.0/agents`): a host agent's heartbeat over RPC (what NetworkAgent sends every
`agent_report_interval`) makes its functions appear in `openstack network agent list`, alive until the heartbeats
stop for `agent_down_time`; admins may disable or delete an agent, others see nothing."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from conftest import Cloud
from sqlalchemy import update

from pocketstack.common.rpc import get_transport
from pocketstack.common.timeutils import utcnow
from pocketstack.network import models as m
from pocketstack.network.agent.agent import agent_states
from pocketstack.network.rpcapi import PluginAPI


def _network_service(cloud: Cloud) -> Any:
    return next(s for s in cloud.thread.cloud.services if s.name == "network")


def _heartbeat(cloud: Cloud, host: str, states: list[dict[str, Any]], start: bool = False) -> None:
    """A heartbeat over the cloud's bus, as the agent of `host` sends it."""

    async def send() -> None:
        await PluginAPI(get_transport(cloud.settings)).report_state(host, states, start)

    cloud.thread.call(send)


def test_heartbeats_list_alive_agents_and_admins_manage_them(cloud: Cloud) -> None:
    host = f"agenthost-{uuid.uuid4().hex[:8]}"
    _heartbeat(cloud, host, agent_states(cloud.settings), start=True)
    _heartbeat(cloud, host, agent_states(cloud.settings, devices=3, networks=1))

    rows = [a for a in cloud.cli("network", "agent", "list", "--host", host, "-f", "json")]
    assert sorted(a["Agent Type"] for a in rows) == ["DHCP agent", "L3 agent", "Linux bridge agent",
                                                     "Metadata agent"]
    assert all(a["Alive"] is True and a["State"] is True and a["Host"] == host for a in rows), rows
    dhcp = next(a for a in rows if a["Agent Type"] == "DHCP agent")
    assert dhcp["Binary"] == "neutron-dhcp-agent" and dhcp["Availability Zone"] == "nova"
    shown = cloud.cli("network", "agent", "show", dhcp["ID"], "-f", "json")
    assert shown["configuration"] == {"dhcp_driver": "dnsmasq", "networks": 1} and shown["topic"] == "dhcp_agent"

    cloud.cli("network", "agent", "set", "--disable", "--description", "maintenance", dhcp["ID"])
    shown = cloud.cli("network", "agent", "show", dhcp["ID"], "-f", "json")
    assert shown["admin_state_up"] is False and shown["description"] == "maintenance"
    _heartbeat(cloud, host, agent_states(cloud.settings))  # a heartbeat keeps what the admin set
    assert cloud.cli("network", "agent", "show", dhcp["ID"], "-f", "json")["admin_state_up"] is False

    # silent for longer than agent_down_time: not alive
    stale = utcnow() - timedelta(seconds=cloud.settings.network.agent_down_time + 5)
    service = _network_service(cloud)
    cloud.thread.call(lambda: service.manager.write(lambda session: session.execute(
        update(m.Agent).where(m.Agent.host == host).values(heartbeat_timestamp=stale)), notify=False))
    assert {a["Alive"] for a in cloud.cli("network", "agent", "list", "--host", host, "-f", "json")} == {False}

    # not for members: Neutron's agents are admin only (a member's list is empty, a member's show refused)
    assert cloud.cli("network", "agent", "list", "-f", "json", cloud="pocketstack-demo") == []
    demo = cloud.cli("network", "agent", "show", dhcp["ID"], cloud="pocketstack-demo", check=False)
    assert demo.returncode != 0 and "doesn't allow get_agent" in demo.stderr, demo.stderr

    for row in rows:
        cloud.cli("network", "agent", "delete", row["ID"])
    assert cloud.cli("network", "agent", "list", "--host", host, "-f", "json") == []
    missing = cloud.cli("network", "agent", "show", rows[0]["ID"], check=False)
    assert missing.returncode != 0


def test_an_agent_without_dhcp_and_l3_reports_only_its_bridge_function(cloud: Cloud) -> None:
    host = f"agenthost-{uuid.uuid4().hex[:8]}"
    settings = cloud.settings.model_copy(update={"network": cloud.settings.network.model_copy(
        update={"agent_dhcp": False, "agent_l3": False})})
    _heartbeat(cloud, host, agent_states(settings), start=True)
    rows = cloud.cli("network", "agent", "list", "--host", host, "-f", "json")
    assert [a["Agent Type"] for a in rows] == ["Linux bridge agent"]
    cloud.cli("network", "agent", "delete", rows[0]["ID"])


def test_a_flat_network_binds_only_where_the_hosts_agent_maps_its_physical_network(cloud: Cloud) -> None:
    """As Neutron's Linux bridge mechanism driver: a host whose agent has no bridge for the physical network (a
    compute host without an uplink) fails the binding; a host that maps it, or one without any agent (the fake
    driver's hosts), binds to the bridge."""
    flat = [n for n in cloud.cli("network", "list", "--long", "-f", "json", "-c", "ID", "-c", "Network Type")
            if n["Network Type"] == "flat"]
    created = not flat
    if flat:
        net = flat[0]["ID"]
    else:
        net = cloud.cli("network", "create", "--external", "--provider-network-type", "flat",
                        "--provider-physical-network", "public", f"flat-{uuid.uuid4().hex[:6]}", "-f", "json")["id"]
    mapped, unmapped, agentless = (f"bindhost-{uuid.uuid4().hex[:8]}" for _ in range(3))
    _heartbeat(cloud, mapped, agent_states(cloud.settings), start=True)
    settings = cloud.settings.model_copy(update={"network": cloud.settings.network.model_copy(
        update={"bridge_mappings": {}, "agent_dhcp": False, "agent_l3": False})})
    _heartbeat(cloud, unmapped, agent_states(settings), start=True)
    kinds = {}
    for host in (mapped, unmapped, agentless):
        port = cloud.cli("port", "create", "--network", net, "--host", host, f"p-{host}", "-f", "json")
        kinds[host] = port["binding_vif_type"]
        cloud.cli("port", "delete", port["id"])
    assert kinds == {mapped: "bridge", unmapped: "binding_failed", agentless: "bridge"}
    for host in (mapped, unmapped):
        for row in cloud.cli("network", "agent", "list", "--host", host, "-f", "json"):
            cloud.cli("network", "agent", "delete", row["ID"])
    if created:
        cloud.cli("network", "delete", net)
