"""Known image formats and a check that uploaded data is what its `disk_format` claims.

Only the first `HEAD_SIZE` bytes (and, for VHD, the last 512) are looked at, so the check runs while the data
streams. Besides the format match it refuses what makes an image unsafe to hand to a hypervisor: qcow2 images
that point at a backing file or an external data file, and VMDK descriptors that reference external extents
(a guest could read host files through them).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

DISK_FORMATS = ("ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop")
CONTAINER_FORMATS = ("ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed")

HEAD_SIZE = 64 * 1024
ISO_MAGIC_OFFSET = 0x8001  # "CD001" of the primary volume descriptor
QCOW2_MAGIC = b"QFI\xfb"
QCOW2_INCOMPAT_DATA_FILE = 1 << 2
QCOW2_EXT_DATA_FILE = 0x44415441
VMDK_SAFE_TYPES = ("monolithicSparse", "streamOptimized")


class FormatError(ValueError):
    """The data does not match its declared format, or the format is one we refuse to store."""


@dataclass
class FormatInfo:
    virtual_size: int | None


def detect(head: bytes) -> str | None:
    """The format the first bytes of an image reveal, or None for raw-looking data."""
    if head.startswith(QCOW2_MAGIC):
        return "qcow2"
    if head.startswith(b"KDMV") or head.startswith(b"# Disk DescriptorFile"):
        return "vmdk"
    if head.startswith(b"vhdxfile"):
        return "vhdx"
    if len(head) >= 0x44 and struct.unpack_from("<I", head, 0x40)[0] == 0xBEDA107F:
        return "vdi"
    if head.startswith(b"conectix"):
        return "vhd"
    if head[ISO_MAGIC_OFFSET:ISO_MAGIC_OFFSET + 5] == b"CD001":
        return "iso"
    return None


def _qcow2(head: bytes) -> FormatInfo:
    if len(head) < 72 or not head.startswith(QCOW2_MAGIC):
        raise FormatError("The data is not a qcow2 image: the qcow2 header is missing.")
    version, backing_offset, backing_size, _cluster_bits, virtual_size = struct.unpack_from(">IQIIQ", head, 4)
    if version not in (2, 3):
        raise FormatError(f"Unsupported qcow2 version {version}.")
    if backing_offset or backing_size:
        raise FormatError("qcow2 images with a backing file are not allowed.")
    if version == 3:
        if len(head) < 104:
            raise FormatError("The data is not a qcow2 image: the qcow2 v3 header is truncated.")
        incompatible = struct.unpack_from(">Q", head, 72)[0]
        if incompatible & QCOW2_INCOMPAT_DATA_FILE:
            raise FormatError("qcow2 images with an external data file are not allowed.")
        header_length = struct.unpack_from(">I", head, 100)[0]
        offset = max(header_length, 104)
        while offset + 8 <= len(head):  # header extensions, up to the end marker
            ext_type, ext_len = struct.unpack_from(">II", head, offset)
            if ext_type == 0:
                break
            if ext_type == QCOW2_EXT_DATA_FILE:
                raise FormatError("qcow2 images with an external data file are not allowed.")
            offset += 8 + ((ext_len + 7) & ~7)
    return FormatInfo(virtual_size=virtual_size)


def _vmdk_descriptor_check(text: str) -> None:
    match = re.search(r'^\s*createType\s*=\s*"?([A-Za-z]+)"?', text, re.MULTILINE)
    create_type = match.group(1) if match else None
    if create_type not in VMDK_SAFE_TYPES:
        raise FormatError(f"VMDK images of type {create_type or 'unknown'} are not allowed: only "
                          f"{' and '.join(VMDK_SAFE_TYPES)} images (no external extents) are accepted.")


def _vmdk(head: bytes) -> FormatInfo:
    if head.startswith(b"# Disk DescriptorFile"):
        _vmdk_descriptor_check(head.decode("latin-1"))
        return FormatInfo(virtual_size=None)
    if not head.startswith(b"KDMV") or len(head) < 77:
        raise FormatError("The data is not a VMDK image: the VMDK header is missing.")
    capacity, _grain, desc_offset, desc_size = struct.unpack_from("<QQQQ", head, 12)
    start, stop = desc_offset * 512, (desc_offset + desc_size) * 512
    if desc_offset and stop <= len(head):
        _vmdk_descriptor_check(head[start:stop].split(b"\0", 1)[0].decode("latin-1"))
    elif desc_offset:
        raise FormatError("The VMDK descriptor lies beyond the inspected header; it cannot be checked.")
    return FormatInfo(virtual_size=capacity * 512)


def _simple(name: str, magic_found: bool) -> FormatInfo:
    if not magic_found:
        raise FormatError(f"The data is not a {name} image: its signature is missing.")
    return FormatInfo(virtual_size=None)


def check(disk_format: str, head: bytes, tail: bytes, total: int) -> FormatInfo:
    """Check the data (first bytes `head`, last bytes `tail`, `total` bytes) against its disk format."""
    found = detect(head)
    if disk_format == "qcow2":
        return _qcow2(head)
    if disk_format == "vmdk":
        return _vmdk(head)
    if disk_format == "vhdx":
        return _simple("VHDX", found == "vhdx")
    if disk_format == "vdi":
        return _simple("VDI", found == "vdi")
    if disk_format == "iso":
        return _simple("ISO 9660", head[ISO_MAGIC_OFFSET:ISO_MAGIC_OFFSET + 5] == b"CD001")
    if disk_format == "vhd":
        # a dynamic VHD starts with a copy of its footer; a fixed one has it only at the end
        return _simple("VHD", found == "vhd" or b"conectix" in tail[-512:][:9])
    if disk_format == "raw":
        if found in ("qcow2", "vmdk", "vhdx", "vdi"):
            raise FormatError(f"The image is declared raw but its data is a {found} image; "
                              f"set disk_format to {found}.")
        return FormatInfo(virtual_size=total)
    return FormatInfo(virtual_size=None)  # ami, ari, aki, ploop: no signature to check
