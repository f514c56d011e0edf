"""`pocketstack up -d` and `pocketstack down`: the cloud as a background process (LocalStack's start/stop).

`up -d` starts the same `pocketstack up` in a session of its own, its output in DATA_DIR/log/up.log and its pid in
DATA_DIR/up.pid, and returns once it printed `pocketstack ready` (printing what it printed), or fails with the
log's end if it exits first. `down` sends it SIGTERM, waits for the stop it logs, and prints that stop.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

READY = "pocketstack ready"
START_TIMEOUT = 900.0  # a first start builds the test guest and migrates every database
STOP_TIMEOUT = 120.0


class BackgroundError(RuntimeError):
    """Why the background cloud could not be started or stopped."""


def pid_file(data_dir: Path) -> Path:
    return data_dir / "up.pid"


def log_file(data_dir: Path) -> Path:
    return data_dir / "log" / "up.log"


def running_pid(data_dir: Path) -> int | None:
    """The pid of this data dir's background `up`, if it still runs (a stale pid file is removed)."""
    path = pid_file(data_dir)
    try:
        pid = int(path.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        path.unlink(missing_ok=True)
        return None
    if b"up" not in cmdline:  # the pid was reused by something else
        path.unlink(missing_ok=True)
        return None
    return pid


def start(data_dir: Path, up_args: list[str], timeout: float = START_TIMEOUT) -> list[str]:
    """Start `pocketstack up UP_ARGS` in the background; the lines it printed up to its ready line."""
    pid = running_pid(data_dir)
    if pid is not None:
        raise BackgroundError(f"the cloud of {data_dir} already runs in the background (pid {pid}); "
                              "`pocketstack down` stops it")
    log = log_file(data_dir)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "pocketstack", "up", *up_args], stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    pid_file(data_dir).write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = log.read_text(errors="replace").splitlines()
        if READY in lines:
            return lines[:lines.index(READY) + 1]
        if proc.poll() is not None:
            pid_file(data_dir).unlink(missing_ok=True)
            raise BackgroundError(f"pocketstack up exited ({proc.returncode}) before it was ready; the end of "
                                  f"{log}:\n" + "\n".join(lines[-20:]))
        time.sleep(0.2)
    raise BackgroundError(f"pocketstack up (pid {proc.pid}) was not ready within {timeout:.0f} s; see {log}")


def stop(data_dir: Path, timeout: float = STOP_TIMEOUT) -> list[str]:
    """SIGTERM to the background cloud, then the lines its stop logged."""
    pid = running_pid(data_dir)
    if pid is None:
        raise BackgroundError(f"no cloud of {data_dir} runs in the background (`pocketstack up -d` starts one)")
    log = log_file(data_dir)
    before = len(log.read_text(errors="replace").splitlines()) if log.exists() else 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists() or _zombie(pid):
            pid_file(data_dir).unlink(missing_ok=True)
            return log.read_text(errors="replace").splitlines()[before:] if log.exists() else []
        time.sleep(0.2)
    raise BackgroundError(f"pocketstack up (pid {pid}) did not stop within {timeout:.0f} s; see {log}")


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return False
