"""Image test helpers: disk image headers built byte by byte (the qcow2/VMDK header layouts are public)."""

from __future__ import annotations

import struct
import time
from typing import Any

import requests


def qcow2_image(virtual_size: int = 1 << 30, *, backing: str | None = None, data_file: bool = False,
                version: int = 3, length: int = 128 * 1024) -> bytes:
    """A qcow2 file: header (+ backing file name at 512 when given), zero clusters after it."""
    backing_offset, backing_size = (512, len(backing)) if backing else (0, 0)
    header = b"QFI\xfb" + struct.pack(">IQIIQ", version, backing_offset, backing_size, 16, virtual_size)
    header += struct.pack(">IIQQIIQ", 0, 1, 0x30000, 0x10000, 1, 0, 0)  # crypt, l1, refcount, snapshots
    if version == 3:
        incompatible = 1 << 2 if data_file else 0
        header += struct.pack(">QQQII", incompatible, 0, 0, 4, 104)
        header += struct.pack(">II", 0, 0)  # end of header extensions
    data = bytearray(length)
    data[:len(header)] = header
    if backing:
        data[512:512 + len(backing)] = backing.encode()
    return bytes(data)


def vmdk_descriptor(create_type: str, extent: str = 'RW 2048 FLAT "/etc/passwd" 0') -> bytes:
    return (f'# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="{create_type}"\n'
            f"\n# Extent description\n{extent}\n").encode()


class Raw:
    """Plain HTTP to the image API with a token (for what the SDK would not send: bad types, ranges)."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base = base_url.rstrip("/")
        self.token = token

    def __call__(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"X-Auth-Token": self.token, **kwargs.pop("headers", {})}
        return requests.request(method, self.base + path, headers=headers, timeout=60, **kwargs)

    def create(self, **attrs: Any) -> dict[str, Any]:
        resp = self("POST", "/v2/images", json=attrs)
        assert resp.status_code == 201, resp.text
        return resp.json()

    def upload(self, image_id: str, data: bytes, content_type: str = "application/octet-stream",
               **headers: str) -> requests.Response:
        return self("PUT", f"/v2/images/{image_id}/file", data=data,
                    headers={"Content-Type": content_type, **headers})

    def wait_status(self, image_id: str, wanted: str, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            body = self("GET", f"/v2/images/{image_id}").json()
            if body["status"] == wanted or time.monotonic() > deadline:
                return body
            time.sleep(0.05)
