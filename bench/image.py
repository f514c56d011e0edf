"""Image benchmark: upload and download a large image (1 GiB by default) through the image API, compared
with `cp` and `dd conv=fsync` of the same file on the same disk in the same run; JSON on stdout.

By default it starts its own cloud (identity + image through `pocketstack.launcher.CloudThread`, test-like
settings on free ports) in a child process, so the server's peak RSS (VmHWM) is its own; `--auth-url` (with
`--username/--password/--project`) points it at a running cloud instead (`--server-pid` then gives the RSS).
Transfers use `curl` (a client that is not the bottleneck); the upload is checked against sha512.

    .venv/bin/python bench/image.py [--size-mib 1024] [--workdir /var/tmp]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(data_dir: Path) -> None:
    """Child mode: run identity + image until stdin closes; print the auth URL once ready."""
    from pocketstack.launcher import CloudThread
    from pocketstack.services import SERVICES
    from pocketstack.settings import Settings

    specs = [s for s in SERVICES if s.name in ("identity", "image")]
    values: dict = {"data_dir": data_dir, "log_level": "warning", "access_log": False}
    for spec in specs:
        values[spec.name] = {"port": free_port()}
    values["identity"].update(bcrypt_rounds=4, admin_password="bench-admin")
    settings = Settings(**values)
    cloud = CloudThread(settings, specs).start()
    print(settings.base_url("identity") + "/v3", flush=True)
    sys.stdin.read()
    cloud.stop()


def rss_kib(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields


def token_and_image_url(auth_url: str, user: str, password: str, project: str) -> tuple[str, str]:
    body = {"auth": {"identity": {"methods": ["password"], "password": {
        "user": {"name": user, "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"name": "Default"}}}}}
    resp = requests.post(auth_url.rstrip("/") + "/auth/tokens", json=body, timeout=30)
    resp.raise_for_status()
    catalog = resp.json()["token"]["catalog"]
    image = next(s for s in catalog if s["type"] == "image")
    url = next(e["url"] for e in image["endpoints"] if e["interface"] == "public")
    return resp.headers["X-Subject-Token"], url.rstrip("/")


def timed(cmd: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def make_file(path: Path, size: int) -> str:
    """Random data (so nothing compresses or dedups), written once; returns its sha512."""
    hasher = hashlib.sha512()
    block = os.urandom(8 << 20)
    with open(path, "wb") as f:
        left = size
        while left:
            chunk = block[:min(left, len(block))]
            f.write(chunk)
            hasher.update(chunk)
            left -= len(chunk)
        f.flush()
        os.fsync(f.fileno())
    return hasher.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--workdir", type=Path, default=None, help="where the test files go (same disk)")
    parser.add_argument("--auth-url")
    parser.add_argument("--username", default="admin")
    parser.add_argument("--password", default="bench-admin")
    parser.add_argument("--project", default="admin")
    parser.add_argument("--server-pid", type=int)
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return

    work = Path(tempfile.mkdtemp(prefix="pocketstack-image-bench-", dir=args.workdir))
    child = None
    try:
        auth_url, pid = args.auth_url, args.server_pid
        if auth_url is None:
            child = subprocess.Popen([sys.executable, __file__, "--serve", str(work / "cloud")],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            auth_url, pid = child.stdout.readline().strip(), child.pid
            if not auth_url:
                raise SystemExit("the benchmark cloud did not start")
        token, image_url = token_and_image_url(auth_url, args.username, args.password, args.project)
        size = args.size_mib << 20
        source = work / "source.raw"
        digest = make_file(source, size)
        mib = size / (1 << 20)

        cp_s = timed(["sh", "-c", f'cp "{source}" "{work}/cp.raw" && sync "{work}/cp.raw"'])
        dd_s = timed(["dd", f"if={source}", f"of={work}/dd.raw", "bs=4M", "conv=fsync", "status=none"])
        for name in ("cp.raw", "dd.raw"):
            (work / name).unlink()
        rss_before = rss_kib(pid) if pid else {}

        resp = requests.post(f"{image_url}/v2/images", headers={"X-Auth-Token": token}, timeout=30,
                             json={"name": "bench", "disk_format": "raw", "container_format": "bare"})
        resp.raise_for_status()
        image_id = resp.json()["id"]
        auth = ["-H", f"X-Auth-Token: {token}"]
        up_s = timed(["curl", "-sS", "--fail", "-X", "PUT", *auth, "-H", "Content-Type: application/octet-stream",
                      "-H", "Expect:", "-T", str(source), f"{image_url}/v2/images/{image_id}/file"])
        image = requests.get(f"{image_url}/v2/images/{image_id}", headers={"X-Auth-Token": token},
                             timeout=30).json()
        assert image["status"] == "active" and image["os_hash_value"] == digest, "upload corrupted"
        out = work / "download.raw"
        down_s = timed(["curl", "-sS", "--fail", *auth, "-o", str(out), f"{image_url}/v2/images/{image_id}/file"])
        assert out.stat().st_size == size
        down_sync_s = down_s + timed(["sync", str(out)])
        null_s = timed(["curl", "-sS", "--fail", *auth, "-o", "/dev/null", f"{image_url}/v2/images/{image_id}/file"])
        rss_after = rss_kib(pid) if pid else {}
        requests.delete(f"{image_url}/v2/images/{image_id}", headers={"X-Auth-Token": token}, timeout=30)

        result = {
            "size_mib": args.size_mib,
            "cp_mb_s": round(mib / cp_s, 1), "dd_fsync_mb_s": round(mib / dd_s, 1),
            "upload_mb_s": round(mib / up_s, 1), "download_mb_s": round(mib / down_s, 1),
            "download_synced_mb_s": round(mib / down_sync_s, 1), "download_to_null_mb_s": round(mib / null_s, 1),
            "upload_vs_cp": round(cp_s / up_s, 2), "upload_vs_dd": round(dd_s / up_s, 2),
            "download_vs_cp": round(cp_s / down_sync_s, 2),
            "server_rss_before_mib": round(rss_before.get("VmRSS", 0) / 1024, 1) if pid else None,
            "server_peak_rss_mib": round(rss_after.get("VmHWM", 0) / 1024, 1) if pid else None,
            "cpus": os.cpu_count(),
        }
        print(json.dumps(result, indent=2))
    finally:
        if child is not None:
            child.stdin.close()
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
