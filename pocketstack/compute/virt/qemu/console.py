"""A QEMU guest's consoles: its serial port on a unix socket (logged to console.log, what `console log show`
reads) and its VGA display on a VNC unix socket, both in the instance dir; the console proxies connect to them."""

from __future__ import annotations

import tempfile
from pathlib import Path

from pocketstack.compute.virt.qemu.domain import SLOT_VGA, UNIX_PATH_MAX, qemu_opt


def console_socket(instance_dir: Path, kind: str) -> Path:
    """The unix socket of the guest's `kind` console ("serial" or "vnc"): in the instance dir unless that path is
    too long for a unix socket."""
    path = instance_dir / f"{kind}.sock"
    if len(str(path)) <= UNIX_PATH_MAX:
        return path
    return Path(tempfile.gettempdir(), "pocketstack-consoles", f"{instance_dir.name}-{kind}.sock")


def prepare_console_sockets(instance_dir: Path) -> None:
    """Before QEMU starts: the sockets' directory there, no socket of an earlier run left."""
    for kind in ("serial", "vnc"):
        path = console_socket(instance_dir, kind)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)


def console_args(instance_dir: Path) -> list[str]:
    """The QEMU options of the serial port (a listening socket that logs what the guest writes) and of the VNC
    display (a VGA card shown on a VNC socket)."""
    serial, vnc = console_socket(instance_dir, "serial"), console_socket(instance_dir, "vnc")
    log = instance_dir / "console.log"
    return [
        "-chardev", f"socket,id=console,path={qemu_opt(str(serial))},server=on,wait=off,"
                    f"logfile={qemu_opt(str(log))},logappend=on",
        "-serial", "chardev:console",
        "-device", f"VGA,addr={hex(SLOT_VGA)}",
        "-vnc", f"unix:{qemu_opt(str(vnc))}",
    ]
