"""The compute family's settings sections (`[compute]`, and `[metadata]` of its metadata API)."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from pocketstack.common.config import ServiceSettings


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
    kvm_probe_cache: Path = Field(Path("~/.cache/pocketstack/kvm-probe.json").expanduser(),
                                  description="the KVM probe's answer, kept per host, kernel and QEMU version")
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
    shelved_offload_time: int = Field(0, ge=-1, description="seconds a shelved server keeps its host before it is "
                                      "offloaded: 0 at once (Nova's default), -1 never (only shelveOffload)")
    cpu_allocation_ratio: float = 4.0
    ram_allocation_ratio: float = 1.0
    disk_allocation_ratio: float = 1.0
    reserved_host_memory_mb: int = 0
    enabled_filters: list[str] = ["ComputeFilter", "AvailabilityZoneFilter", "RamFilter", "DiskFilter", "CoreFilter",
                                  "ImagePropertiesFilter", "ServerGroupAntiAffinityFilter",
                                  "ServerGroupAffinityFilter"]
    weighers: dict[str, float] = {"RAMWeigher": 1.0, "CPUWeigher": 1.0, "DiskWeigher": 1.0}
    max_attempts: int = Field(3, ge=1, description="hosts tried for one build before ERROR")
    max_placement_results: int = Field(100, ge=1, description="candidate hosts the database returns per page for "
                                       "the filters and weighers (placement's max_placement_results): the "
                                       "scheduler's cost follows this, not the number of hosts")
    report_interval: float = Field(10.0, gt=0, description="seconds between compute heartbeats")
    heartbeat_batch_window: float = Field(0.2, ge=0, description="seconds the conductor gathers heartbeats "
                                          "before writing them in one transaction")
    service_down_time: float = Field(60.0, gt=0, description="a service silent this long is down")
    sync_power_state_interval: float = 60.0
    default_availability_zone: str = "nova"
    enable_instance_password: bool = Field(True, description="create (and rebuild, rescue) return an adminPass, "
                                           "generated when none is sent, that the guest reads from its metadata")
    service_password: str | None = None  # of the "nova" service user; default: generated into the data dir
    quota_instances: int = 10
    quota_cores: int = 20
    quota_ram: int = 51200
    quota_key_pairs: int = 100
    quota_server_groups: int = 10
    quota_server_group_members: int = 10
    quota_metadata_items: int = 128
    # the legacy quotas Nova still shows (network ones up to 2.35, personality files up to 2.56); never counted
    quota_floating_ips: int = 10
    quota_fixed_ips: int = -1
    quota_security_groups: int = 10
    quota_security_group_rules: int = 20
    quota_injected_files: int = 5
    quota_injected_file_content_bytes: int = 10240
    quota_injected_file_path_bytes: int = 255


class MetadataSettings(ServiceSettings):
    """The compute metadata API (nova-api-metadata) that the network agent's proxy forwards guests to."""

    port: int = 8775
    shared_secret: str | None = None  # signs X-Instance-ID between proxy and API; default: generated


class SerialConsoleSettings(ServiceSettings):
    """The serial console proxy (nova-serialproxy, nova.conf [serial_console]): websockets to the guests' serial
    ports."""

    port: int = 6083
    enabled: bool = Field(True, description="serve serial consoles (remote-consoles type serial)")
    base_url: str | None = None  # what console URLs start with; default ws://HOST:PORT/


class VncSettings(ServiceSettings):
    """The noVNC proxy (nova-novncproxy, nova.conf [vnc]): the noVNC client and websockets to the guests' VNC."""

    port: int = 6080
    enabled: bool = Field(True, description="serve VNC consoles (remote-consoles type novnc)")
    base_url: str | None = None  # default http://HOST:PORT/vnc_lite.html (novncproxy_base_url)


class ConsoleAuthSettings(BaseModel):
    """Console tokens (nova.conf [consoleauth])."""

    token_ttl: int = Field(600, gt=0, description="seconds a console URL's token stays valid")
    allowed_origins: list[str] = Field([], description="host names (besides the proxy's own) whose pages may open "
                                       "console websockets (nova.conf [console] allowed_origins)")
