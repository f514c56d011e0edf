"""The network service's settings section (`[network]`: API, IPAM, quotas and the host agent)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from pocketstack.common.config import ServiceSettings


class NetworkSettings(ServiceSettings):
    port: int = 9696
    default_mtu: int = Field(1500, ge=68, description="MTU of the physical network; overlays subtract their header")
    tenant_network_type: Literal["vxlan", "local"] = "vxlan"  # type of networks created without provider:*
    mechanism: Literal["linuxbridge"] = "linuxbridge"  # how ports are bound on hosts (vif_type "bridge")
    bridge_prefix: str = Field("brq", max_length=4, description="host bridge name = prefix + network id[:11]")
    # physical_network -> host bridge of flat networks (DevStack's public:br-ex); the agent makes a missing
    # bridge itself and then, as DevStack does, holds the external subnets' gateway address on it
    bridge_mappings: dict[str, str] = {"public": "br-ex"}
    quota_network: int = Field(100, ge=-1)
    quota_subnet: int = Field(100, ge=-1)
    quota_port: int = Field(500, ge=-1)
    quota_router: int = Field(10, ge=-1)
    quota_floatingip: int = Field(50, ge=-1)
    quota_security_group: int = Field(10, ge=-1)
    quota_security_group_rule: int = Field(100, ge=-1)
    service_password: str | None = None  # of the "neutron" service user; default: generated into the data dir
    # --- host data plane (network/agent): bridges, DHCP, metadata proxy, security groups, routers ---
    agent_enabled: bool | None = Field(None, description="run the host network agent in the network service; "
                                       "default: when the compute driver is qemu")
    agent_dhcp: bool = Field(True, description="the agent serves DHCP and metadata for every network")
    agent_l3: bool = Field(True, description="the agent runs routers and floating IPs")
    agent_state_dir: Path | None = None  # what the agent made and its dnsmasq files; default DATA_DIR/network-agent
    agent_resync_interval: float = Field(30.0, gt=0, description="seconds between full resyncs of the agent")
    agent_report_interval: float = Field(10.0, gt=0, description="seconds between the agent's heartbeats")
    agent_down_time: float = Field(60.0, gt=0, description="an agent silent this long is down (not alive)")
    agent_teardown_on_stop: bool = Field(False, description="stopping the agent removes all it made (test clouds); "
                                         "by default guests keep their network while the cloud restarts")
    # VXLAN between hosts (Neutron linuxbridge's [vxlan] section): with `local_ip` set, the bridge of every vxlan
    # network gets a VXLAN device (VNI = segmentation id) whose floods go to multicast group `vxlan_group`; without
    # it, vxlan networks stay on this one host (the all-in-one)
    local_ip: str | None = Field(None, description="this host's tunnel endpoint address; None: no tunnels")
    vxlan_group: str = Field("239.1.1.1", description="multicast group of the VXLAN floods (every host joins)")
    vxlan_port: int = Field(4789, ge=1, le=65535, description="UDP port of VXLAN")
    dhcp_lease_time: int = Field(86400, ge=120, description="DHCP lease time in seconds")
    dns_domain: str = "openstacklocal"
    # first start with the agent enabled (as DevStack): network `public` and, for project demo, `private` + router1
    default_networks: bool = True
    public_physnet: str = "public"
    public_cidr: str = "172.24.4.0/24"
    private_cidr: str = "10.0.0.0/26"
