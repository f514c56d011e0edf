"""The block storage service's settings section (`[volume]`)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Literal

from pydantic import Field

from pocketstack.common.config import ServiceSettings


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
    # Cinder's quota set always carries these; pocketstack has no backups or groups yet, so their use stays 0
    quota_backups: int = Field(10, ge=-1)
    quota_backup_gigabytes: int = Field(1000, ge=-1)
    quota_groups: int = Field(10, ge=-1)
    service_password: str | None = None  # of the "cinder" service user; default: generated into the data dir
