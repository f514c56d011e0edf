"""The image service's settings section (`[image]`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from pocketstack.common.config import ServiceSettings


class ImageSettings(ServiceSettings):
    port: int = 9292
    store: Literal["file"] = "file"  # the image store driver (pocketstack/image/stores)
    store_dir: Path | None = None  # default: DATA_DIR/images
    quota_image_count: int = Field(1000, ge=-1, description="images per project; -1: unlimited")
    quota_image_bytes: int = Field(1 << 40, ge=-1, description="bytes of image data per project; -1: unlimited")
    max_image_size: int = Field(1 << 40, ge=1, description="largest accepted image in bytes")
