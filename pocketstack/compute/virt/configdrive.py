"""The config drive: a small vfat disk labelled `config-2` holding the metadata documents, made without mounting."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from pocketstack.compute.virt.driver import DriverError

CONFIG_DRIVE_LABEL = "config-2"


def make_config_drive(files: dict[str, bytes], path: Path, size_kb: int = 16384) -> Path:
    """Write a vfat image at `path` with `files` (relative path -> content), e.g. from InstanceMetadata."""
    path.unlink(missing_ok=True)
    try:
        _run("mkfs.vfat", "-n", CONFIG_DRIVE_LABEL, "-C", str(path), str(size_kb))
        directories = sorted({str(Path(name).parents[i]) for name in files
                              for i in range(len(Path(name).parents) - 1)}, key=lambda d: d.count("/"))
        for directory in directories:
            _run("mmd", "-i", str(path), f"::{directory}")
        with tempfile.TemporaryDirectory() as tmp:
            for name, content in files.items():
                local = Path(tmp) / "file"
                local.write_bytes(content)
                _run("mcopy", "-i", str(path), str(local), f"::{name}")
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def _run(*cmd: str) -> None:
    try:
        subprocess.run(cmd, check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = exc.stderr.strip() if isinstance(exc, subprocess.CalledProcessError) else str(exc)
        raise DriverError(f"could not build the config drive ({cmd[0]}): {detail}") from exc
