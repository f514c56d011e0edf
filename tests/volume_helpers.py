"""Volume test helpers: plain HTTP to the block storage API (exact statuses and error bodies), waits, file checks."""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import requests


class VolumeAPI:
    """Requests to `/v3/{project_id}` of a connection's project with its token, at a chosen microversion."""

    def __init__(self, cloud: Any, conn: Any, microversion: str = "3.65") -> None:
        self.root = cloud.url("volume")
        self.project_id = conn.current_project_id
        self.token = conn.auth_token
        self.microversion = microversion

    def __call__(self, method: str, path: str, body: Any = None, *, version: str | None = None,
                 raw: bytes | None = None, project_id: str | None = None) -> tuple[int, Any]:
        headers = {"X-Auth-Token": self.token, "OpenStack-API-Version": f"volume {version or self.microversion}"}
        url = f"{self.root}/v3/{project_id or self.project_id}{path}"
        if raw is not None:
            resp = requests.request(method, url, data=raw, timeout=60,
                                    headers={**headers, "Content-Type": "application/json"})
        else:
            resp = requests.request(method, url, json=body, timeout=60, headers=headers)
        return resp.status_code, (resp.json() if resp.content else None)

    def wait(self, kind: str, ident: str, *statuses: str, timeout: float = 60.0) -> dict[str, Any]:
        """Poll `/{kind}s/{id}` until its status is one of `statuses` (a 404 counts as status "deleted")."""
        deadline = time.monotonic() + timeout
        while True:
            code, body = self("GET", f"/{kind}s/{ident}")
            status = "deleted" if code == 404 else body[kind]["status"]
            if status in statuses:
                return body[kind] if code == 200 else {}
            if time.monotonic() > deadline:
                raise AssertionError(f"{kind} {ident} is {status}, not {' or '.join(statuses)}")
            time.sleep(0.1)

    def create_volume(self, **attrs: Any) -> dict[str, Any]:
        code, body = self("POST", "/volumes", {"volume": attrs})
        assert code == 202, body
        return self.wait("volume", body["volume"]["id"], "available", "error")

    def delete_volume(self, volume_id: str) -> None:
        code, body = self("DELETE", f"/volumes/{volume_id}")
        assert code == 202, body
        self.wait("volume", volume_id, "deleted")


def fault(result: tuple[int, Any]) -> tuple[int, str, str]:
    """(status, fault name, message) of an error answer; asserts Cinder's error body shape."""
    status, body = result
    assert isinstance(body, dict) and len(body) == 1, body
    (name, detail), = body.items()
    assert set(detail) == {"code", "message"} and detail["code"] == status, body
    return status, name, detail["message"]


def volume_file(cloud: Any, volume_id: str) -> Path:
    return cloud.settings.data_dir / "volumes" / f"volume-{volume_id}"


def volume_files(cloud: Any, volume_id: str) -> list[Path]:
    """Every file of a volume (its own and those its snapshots froze)."""
    return sorted((cloud.settings.data_dir / "volumes").glob(f"volume-{volume_id}*"))


def qemu_info(path: str | Path) -> dict[str, Any]:
    return json.loads(subprocess.run(["qemu-img", "info", "-U", "--output=json", str(path)], check=True,
                                     capture_output=True, text=True).stdout)


def read_bytes(path: str | Path, fmt: str, length: int) -> bytes:
    """The first `length` bytes of a disk image as the guest sees them."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "flat.raw"
        subprocess.run(["qemu-img", "convert", "-U", "-f", fmt, "-O", "raw", str(path), str(out)], check=True,
                       capture_output=True)
        with open(out, "rb") as f:
            return f.read(length)
