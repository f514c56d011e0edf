"""One typed settings object for every service: `pocketstack.toml` + `POCKETSTACK_*` environment variables.

Precedence (highest first): explicit keyword arguments, environment (`POCKETSTACK_IDENTITY__PORT=5001`), the
TOML file (`POCKETSTACK_CONFIG` or `./pocketstack.toml`), then the defaults, which serve the all-in-one case.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_DATA_DIR = Path.home() / ".local" / "share" / "pocketstack"


class ServiceSettings(BaseModel):
    """What every HTTP service has: where it listens and where its database is."""

    port: int
    database_url: str | None = None  # default: a SQLite file in the data dir
    workers: int = Field(1, ge=1, description="API worker processes of `pocketstack serve`")


class IdentitySettings(ServiceSettings):
    port: int = 5000
    token_expiration: int = Field(3600, description="token lifetime in seconds")
    bcrypt_rounds: int = Field(12, ge=4, le=31, description="bcrypt cost for passwords and secrets")
    max_active_keys: int = Field(3, ge=2, description="Fernet keys kept: staged + primary + secondaries")
    admin_password: str | None = None  # generated on first start when unset
    demo_password: str | None = None
    revocation_refresh: float = Field(1.0, description="seconds between reloads of revocation events")
    key_repository: Path | None = None  # default: DATA_DIR/fernet-keys


class ImageSettings(ServiceSettings):
    port: int = 9292
    store: Literal["file"] = "file"  # the image store driver (pocketstack/image/stores)
    store_dir: Path | None = None  # default: DATA_DIR/images
    quota_image_count: int = Field(1000, ge=-1, description="images per project; -1: unlimited")
    quota_image_bytes: int = Field(1 << 40, ge=-1, description="bytes of image data per project; -1: unlimited")
    max_image_size: int = Field(1 << 40, ge=1, description="largest accepted image in bytes")


class ComputeSettings(ServiceSettings):
    """The compute family: API, conductor, scheduler and compute agents (nova.conf's main options)."""

    port: int = 8774
    driver: Literal["fake", "qemu"] = Field(
        default_factory=lambda: "qemu" if os.geteuid() == 0 and shutil.which("qemu-system-x86_64") else "fake",
        description="hypervisor driver; default qemu where QEMU is installed and we are root (taps, bridges), "
                    "else fake")
    host: str = Field(default_factory=socket.gethostname, description="this compute agent's host name")
    fake_hosts: int = Field(1, ge=1, description="compute agents the all-in-one runs with the fake driver")
    fake_vcpus: int = 8
    fake_memory_mb: int = 16384
    fake_disk_gb: int = 200
    # qemu driver (nova.conf [libvirt] and friends)
    instances_path: Path | None = None  # default: DATA_DIR/instances (per server dirs, _base image cache)
    qemu_binary: str = "qemu-system-x86_64"
    accel: Literal["auto", "kvm", "tcg"] = Field("auto", description="auto: KVM when a probe boot works, else TCG")
    kvm_probe_timeout: float = Field(5.0, gt=0, description="seconds the KVM probe boot may take")
    machine_type: str = Field("pc", description="QEMU machine; pc hot-plugs volumes (microvm cannot)")
    vif_plugging_timeout: float = Field(300.0, ge=0, description="seconds to wait for network-vif-plugged; 0: "
                                        "do not wait")
    vif_plugging_is_fatal: bool = True  # a vif that does not plug in time fails the build
    shutdown_timeout: float = Field(60.0, ge=0, description="seconds a guest has to power off on ACPI before "
                                    "it is stopped hard")
    register_guest_image: bool = Field(True, description="all-in-one with the qemu driver: build the test guest "
                                       "and register it as public image pocketstack-guest on start")
    guest_cache_dir: Path | None = None  # where the test guest build is cached; default DATA_DIR/guest
    # --- distributed mode (issue 8) ---
    hosts: list[str] = Field([], description="host names of the agents `pocketstack serve compute` runs "
                             "(fake driver); default HOST-fake1..N (fake_hosts), or HOST")
    fake_spawn_seconds: float = Field(0.0, ge=0, description="time the fake driver takes to spawn a guest")
    build_timeout: float = Field(600.0, ge=0, description="a build older than this ends in ERROR (Nova's "
                                 "instance_build_timeout); 0: never")
    build_check_interval: float = Field(10.0, gt=0, description="seconds between the conductor's checks for "
                                        "timed-out builds and builds on hosts that went down")
    # --- end distributed mode ---
    cpu_allocation_ratio: float = 4.0
    ram_allocation_ratio: float = 1.0
    disk_allocation_ratio: float = 1.0
    reserved_host_memory_mb: int = 0
    enabled_filters: list[str] = ["ComputeFilter", "AvailabilityZoneFilter", "RamFilter", "DiskFilter", "CoreFilter",
                                  "ImagePropertiesFilter", "ServerGroupAntiAffinityFilter",
                                  "ServerGroupAffinityFilter"]
    weighers: dict[str, float] = {"RAMWeigher": 1.0, "CPUWeigher": 1.0, "DiskWeigher": 1.0}
    max_attempts: int = Field(3, ge=1, description="hosts tried for one build before ERROR")
    report_interval: float = Field(10.0, gt=0, description="seconds between compute heartbeats")
    service_down_time: float = Field(60.0, gt=0, description="a service silent this long is down")
    sync_power_state_interval: float = 60.0
    default_availability_zone: str = "nova"
    service_password: str | None = None  # of the "nova" service user; default: generated into the data dir
    quota_instances: int = 10
    quota_cores: int = 20
    quota_ram: int = 51200
    quota_key_pairs: int = 100
    quota_server_groups: int = 10
    quota_server_group_members: int = 10
    quota_metadata_items: int = 128


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


class VolumeSettings(ServiceSettings):
    """The block storage service (cinder-api, its scheduler, and the volume manager with its backend)."""

    port: int = 8776
    host: str = Field(default_factory=socket.gethostname, description="this volume manager's host name")
    backend: Literal["file"] = "file"  # the backend driver (pocketstack/volume/backends)
    backend_name: str = Field("file", pattern=r"^[A-Za-z0-9_.-]+$", description="volume_backend_name")
    volumes_dir: Path | None = None  # default: DATA_DIR/volumes
    capacity_gb: int = Field(100, ge=1, description="space the backend may provision, in GiB")
    volume_format: Literal["raw", "qcow2"] = "raw"  # format of new empty volumes
    default_volume_type: str = "__DEFAULT__"
    availability_zone: str = "nova"
    report_interval: float = Field(10.0, gt=0, description="seconds between volume manager heartbeats")
    service_down_time: float = Field(60.0, gt=0, description="a volume service silent this long is down")
    quota_volumes: int = Field(10, ge=-1)
    quota_snapshots: int = Field(10, ge=-1)
    quota_gigabytes: int = Field(1000, ge=-1)
    quota_per_volume_gigabytes: int = Field(-1, ge=-1)
    service_password: str | None = None  # of the "cinder" service user; default: generated into the data dir


class MetadataSettings(ServiceSettings):
    """The compute metadata API (nova-api-metadata) that the network agent's proxy forwards guests to."""

    port: int = 8775
    shared_secret: str | None = None  # signs X-Instance-ID between proxy and API; default: generated


class TraceSettings(BaseModel):
    """The span store behind `pocketstack trace`."""

    enabled: bool = True
    database_url: str | None = None  # default: DATA_DIR/trace.db
    retention_hours: float = Field(72.0, gt=0)
    max_spans: int = Field(1_000_000, ge=1000)


class AuthSettings(BaseModel):
    """The token validation cache every consuming service keeps (keystonemiddleware + memcached)."""

    cache_ttl: float = 5.0
    cache_size: int = 10000
    cache_backend: Literal["memory", "redis"] = "memory"
    cache_url: str | None = None  # redis://host:6379/0 when cache_backend = "redis"


class RpcSettings(BaseModel):
    """The RPC bus between the processes of a service family (oslo.messaging's transport_url)."""

    transport_url: str = "local://"  # local:// (in-process, all-in-one) or amqp://user:pass@host:5672/vhost
    call_timeout: float = Field(60.0, gt=0, description="seconds a call waits for its reply")
    exchange: str = "pocketstack"  # the AMQP topic exchange (oslo's control_exchange)


class DistributedSettings(BaseModel):
    """`pocketstack up --distributed`: the engines it deploys on and how many copies of each process it runs."""

    database_server_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"  # creates a database per service
    broker_url: str = "amqp://guest:guest@127.0.0.1:5672/"  # its own vhost is created (rabbitmqctl) on this broker
    cache_url: str | None = "redis://127.0.0.1:6379/0"  # the shared token cache; None: one cache per process
    name: str | None = None  # prefix of the vhost and database names; default: derived from the data dir
    conductors: int = Field(1, ge=1, description="conductor processes")
    schedulers: int = Field(1, ge=1, description="scheduler processes")
    hosts_per_process: int = Field(1, ge=1, description="fake compute hosts per `serve compute` process")
    # compute hosts in network namespaces (qemu driver): each runs its compute agent and its network agent inside
    # a namespace of its own, with its own address on the management bridge, as separate machines would
    namespace_hosts: int = Field(0, ge=0, description="compute hosts, each in a network namespace of its own; 0: "
                                 "the compute agents run on this machine")
    management_cidr: str = Field("10.250.0.0/24", description="the management network of the namespaced hosts: "
                                 "this machine (the controller) is its first address, host i its (10+i)th")
    management_bridge: str = Field("br-mgmt", max_length=11, description="the management network's bridge here")
    restart_delay: float = Field(1.0, ge=0, description="seconds before a process that died is started again")
    db_pool_size: int = Field(4, ge=1, description="connections each `serve` process keeps per database")
    db_max_overflow: int = Field(6, ge=0, description="connections it may open beyond them under load")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="POCKETSTACK_", env_nested_delimiter="__", extra="ignore", validate_default=True
    )

    data_dir: Path = DEFAULT_DATA_DIR
    bind: str = "127.0.0.1"
    public_host: str | None = None  # host name put in catalog URLs; default: bind (127.0.0.1 for 0.0.0.0)
    port_offset: int = 0
    region: str = "RegionOne"
    log_level: str = "info"
    access_log: bool = True
    policy_file: Path | None = None  # YAML/JSON of rule overrides, as oslo.policy's policy.yaml

    identity: IdentitySettings = IdentitySettings()
    image: ImageSettings = ImageSettings()
    compute: ComputeSettings = ComputeSettings()
    network: NetworkSettings = NetworkSettings()
    volume: VolumeSettings = VolumeSettings()
    metadata: MetadataSettings = MetadataSettings()
    auth: AuthSettings = AuthSettings()
    trace: TraceSettings = TraceSettings()
    rpc: RpcSettings = RpcSettings()
    distributed: DistributedSettings = DistributedSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = Path(os.environ.get("POCKETSTACK_CONFIG", "pocketstack.toml"))
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=toml_file))

    def service(self, name: str) -> ServiceSettings:
        return getattr(self, name.replace("-", "_"))

    def port(self, name: str) -> int:
        return self.service(name).port + self.port_offset

    @property
    def host(self) -> str:
        if self.public_host:
            return self.public_host
        return "127.0.0.1" if self.bind in ("0.0.0.0", "::", "") else self.bind

    @property
    def network_agent_enabled(self) -> bool:
        """Whether the network service runs the host data plane agent (default: with real guests only)."""
        enabled = self.network.agent_enabled
        return self.compute.driver == "qemu" if enabled is None else enabled

    def base_url(self, name: str) -> str:
        """Root URL of a service as clients reach it, without a version path."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port(name)}"

    def database_url(self, name: str) -> str:
        url = self.service(name).database_url
        if url:
            return url
        return f"sqlite+aiosqlite:///{self.data_dir / (name.replace('-', '_') + '.db')}"
