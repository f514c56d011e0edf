"""The server's definition (libvirt's domain): its disks, NICs and fixed PCI slots, kept as domain.json."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pocketstack.compute import states

GiB = 1 << 30
CONSOLE_TAIL = 100 * 1024  # bytes of console log returned, as Nova's MAX_CONSOLE_BYTES
UNIX_PATH_MAX = 107
QMP_TIMEOUT = 10.0
DETACH_TIMEOUT = 30.0
MIGRATE_TIMEOUT = 600.0
# PCI slots on the pc machine's bus 0, fixed so that a restarted (or resumed) QEMU has the same devices where the
# guest saw them: a suspended guest's saved state only loads into an identical machine.
SLOT_RNG, SLOT_ROOT, SLOT_VGA, SLOT_CONFIG = 0x02, 0x03, 0x1E, 0x1F
NIC_SLOTS = range(0x04, 0x0C)
VOLUME_SLOTS = range(0x0C, SLOT_VGA)
IMAGE_FORMATS = {"raw": "raw", "qcow2": "qcow2", "vmdk": "vmdk", "vdi": "vdi", "vhd": "vpc", "vhdx": "vhdx"}
QMP_POWER_STATES = {
    "running": states.RUNNING, "paused": states.PAUSED_POWER, "prelaunch": states.PAUSED_POWER,
    "inmigrate": states.PAUSED_POWER, "postmigrate": states.PAUSED_POWER, "finish-migrate": states.PAUSED_POWER,
    "save-vm": states.PAUSED_POWER, "restore-vm": states.PAUSED_POWER, "debug": states.PAUSED_POWER,
    "suspended": states.SUSPENDED_POWER, "shutdown": states.SHUTDOWN, "internal-error": states.CRASHED,
    "io-error": states.CRASHED, "guest-panicked": states.CRASHED, "watchdog": states.CRASHED,
}
PROBE_MARKER = "pocketstack-kvm-probe-ok"


@dataclass
class Disk:
    node: str  # QEMU block node name: root, config, vol-vdb
    path: str
    format: str  # raw or qcow2
    slot: int
    read_only: bool = False
    serial: str | None = None  # virtio-blk serial: the volume id (guest: /sys/block/vdX/serial)
    mountpoint: str | None = None  # for volumes: the device name Nova reports, e.g. /dev/vdb
    bootindex: int | None = None

    @property
    def device_id(self) -> str:
        return f"dev-{self.node}"

    def blockdev(self) -> dict[str, Any]:
        return {"driver": self.format, "node-name": self.node, "read-only": self.read_only,
                "file": {"driver": "file", "filename": self.path, "read-only": self.read_only}}

    def device(self) -> dict[str, Any]:
        dev: dict[str, Any] = {"driver": "virtio-blk-pci", "drive": self.node, "id": self.device_id,
                               "addr": hex(self.slot)}
        if self.serial:
            dev["serial"] = self.serial[:20]
        if self.bootindex is not None:
            dev["bootindex"] = self.bootindex
        return dev


@dataclass
class Nic:
    port_id: str
    mac: str
    bridge: str
    slot: int
    mtu: int | None = None

    @property
    def tap(self) -> str:
        return tap_name(self.port_id)

    def netdev_args(self) -> str:
        return f"tap,id=net-{self.tap},ifname={self.tap},script=no,downscript=no"

    def device(self) -> dict[str, Any]:
        # romfile "": no iPXE option ROM; a cloud server boots its disk, and SeaBIOS saves loading it
        return {"driver": "virtio-net-pci", "netdev": f"net-{self.tap}", "mac": self.mac, "id": f"nic-{self.tap}",
                "addr": hex(self.slot), "romfile": ""}


@dataclass
class Domain:
    uuid: str
    name: str
    vcpus: int
    memory_mb: int
    machine: str
    disks: list[Disk] = field(default_factory=list)
    nics: list[Nic] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Domain:
        return cls(**{**data, "disks": [Disk(**d) for d in data["disks"]], "nics": [Nic(**n) for n in data["nics"]]})

    def volume(self, mountpoint: str) -> Disk | None:
        return next((d for d in self.disks if d.mountpoint == mountpoint and d.node.startswith("vol-")), None)




def tap_name(port_id: str) -> str:
    return f"tap{port_id[:11]}"


def qemu_opt(value: str) -> str:
    """A value inside a QEMU key=value option list (commas doubled)."""
    return value.replace(",", ",,")

