"""Guest boot benchmark: QEMU start -> first successful SSH login of the test guest, one guest and N at once.

This is the floor (a bare `qemu-system-x86_64` command line, TCG, config drive for hostname and key, SSH through
a loopback port forward) that the QEMU driver's boot-to-SSH through the API is compared with once the driver
lands. JSON on stdout.

    .venv/bin/python bench/guest.py [--parallel 4] [--repeat 3]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from pocketstack.compute.metadata.content import InstanceMetadata
from pocketstack.compute.virt.configdrive import make_config_drive
from pocketstack.image.guest import build_guest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def boot_to_ssh(base: Path, work: Path, key: Path, index: int, accel: str) -> float:
    """Seconds from starting QEMU to the first SSH command that succeeds."""
    instance = {"uuid": f"bench-{index}", "hostname": f"bench-{index}", "display_name": f"bench-{index}",
                "project_id": "p", "key_name": "k", "key_data": key.with_suffix(".pub").read_text().strip(),
                "user_data": None, "network_info": [], "image_ref": "", "flavor": {}}
    drive = make_config_drive(InstanceMetadata(instance).config_drive_files(), work / f"config-{index}.img")
    overlay = work / f"disk-{index}.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "raw", str(overlay)],
                   check=True)
    port = free_port()
    started = time.monotonic()
    proc = subprocess.Popen(
        ["qemu-system-x86_64", "-nodefaults", "-no-user-config", "-machine", "pc", "-accel", accel, "-m", "256",
         "-display", "none", "-serial", f"file:{work / f'serial-{index}.log'}",
         "-drive", f"file={overlay},if=virtio,format=qcow2", "-drive", f"file={drive},if=virtio,format=raw",
         "-device", "virtio-rng-pci", "-netdev", f"user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:{port}-:22",
         "-device", "virtio-net-pci,netdev=n0"], start_new_session=True)
    try:
        while time.monotonic() - started < 180:
            result = subprocess.run(["ssh", "-q", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o",
                                     "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=2", "-i", str(key),
                                     "-p", str(port), "root@127.0.0.1", "hostname"], capture_output=True, text=True)
            if result.returncode == 0 and result.stdout.strip() == f"bench-{index}":
                return time.monotonic() - started
            time.sleep(0.1)
        raise RuntimeError(f"guest {index} did not answer SSH within 180 s")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--accel", default="tcg,thread=multi")
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "pocketstack-test-guest")
    args = parser.parse_args()
    image = build_guest(args.cache_dir)
    with tempfile.TemporaryDirectory(prefix="pocketstack-bench-guest-") as tmp:
        work = Path(tmp)
        key = work / "id"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        single = [boot_to_ssh(image.raw, work, key, i, args.accel) for i in range(args.repeat)]
        with concurrent.futures.ThreadPoolExecutor(args.parallel) as pool:
            parallel = list(pool.map(lambda i: boot_to_ssh(image.raw, work, key, 100 + i, args.accel),
                                     range(args.parallel)))
    print(json.dumps({
        "accel": args.accel, "cores": os.cpu_count(),
        "bare_qemu_one_s": {"median": round(statistics.median(single), 2), "runs": [round(s, 2) for s in single]},
        f"bare_qemu_{args.parallel}_at_once_s": {"median": round(statistics.median(parallel), 2),
                                                  "max": round(max(parallel), 2)},
    }, indent=2))


if __name__ == "__main__":
    main()
