"""Volume benchmark: time to create a volume from an image (POST /volumes with imageRef until `available`), for a
small and a large image, through the real APIs; JSON on stdout.

The first volume of an image fetches it from the image service and converts it to a raw base in the backend's
image cache (once per image, so that time grows with the image); every later volume of it is a qcow2 overlay on
that base, whose creation time should not depend on the image size. Both are measured, for each size.

Image data is real and uploaded through the image API: a sparse file of the given size with 1 MiB of random data
every 64 MiB. By default the benchmark starts its own cloud (identity + image + volume, test-like settings on free
ports) in a child process.

    .venv/bin/python bench/volume.py [--sizes-mib 100 2048] [--repeat 10] [--workdir /var/tmp]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

MiB = 1 << 20
GiB = 1 << 30


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(data_dir: Path) -> None:
    """Child mode: run identity + image + volume until stdin closes; print the auth URL once ready."""
    from pocketstack.launcher import CloudThread
    from pocketstack.services import SERVICES
    from pocketstack.settings import Settings

    specs = [s for s in SERVICES if s.name in ("identity", "image", "volume")]
    values: dict[str, Any] = {"data_dir": data_dir, "log_level": "warning", "access_log": False}
    for spec in specs:
        values[spec.name] = {"port": free_port()}
    values["identity"].update(bcrypt_rounds=4, admin_password="bench-admin")
    values["volume"].update(capacity_gb=1000)
    settings = Settings(**values)
    cloud = CloudThread(settings, specs).start()
    print(settings.base_url("identity") + "/v3", flush=True)
    sys.stdin.read()
    cloud.stop()


def login(auth_url: str, user: str, password: str, project: str) -> tuple[str, dict[str, str]]:
    body = {"auth": {"identity": {"methods": ["password"], "password": {
        "user": {"name": user, "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"name": "Default"}}}}}
    resp = requests.post(auth_url.rstrip("/") + "/auth/tokens", json=body, timeout=30)
    resp.raise_for_status()
    urls = {}
    for service in resp.json()["token"]["catalog"]:
        for endpoint in service["endpoints"]:
            if endpoint["interface"] == "public":
                urls[service["type"]] = endpoint["url"].rstrip("/")
    return resp.headers["X-Subject-Token"], urls


def make_image_file(path: Path, size: int) -> None:
    """A sparse file of `size` bytes with 1 MiB of random data every 64 MiB (real, non-zero content)."""
    with open(path, "wb") as f:
        f.truncate(size)
        for offset in range(0, size, 64 * MiB):
            f.seek(offset)
            f.write(os.urandom(min(MiB, size - offset)))


class Client:
    def __init__(self, token: str, urls: dict[str, str]) -> None:
        self.session = requests.Session()
        self.session.headers.update({"X-Auth-Token": token, "OpenStack-API-Version": "volume 3.65"})
        self.image = urls["image"]
        self.volume = urls["block-storage"]

    def upload_image(self, path: Path, name: str) -> str:
        resp = self.session.post(f"{self.image}/v2/images", timeout=30,
                                 json={"name": name, "disk_format": "raw", "container_format": "bare"})
        resp.raise_for_status()
        image_id = resp.json()["id"]
        token = self.session.headers["X-Auth-Token"]
        subprocess.run(["curl", "-sS", "--fail", "-X", "PUT", "-H", f"X-Auth-Token: {token}", "-H",
                        "Content-Type: application/octet-stream", "-H", "Expect:", "-T", str(path),
                        f"{self.image}/v2/images/{image_id}/file"], check=True)
        return image_id

    def create_volume(self, size_gb: int, image_id: str) -> tuple[str, float]:
        """(volume id, seconds from the POST until the volume is available)."""
        started = time.perf_counter()
        resp = self.session.post(f"{self.volume}/volumes", timeout=30,
                                 json={"volume": {"size": size_gb, "imageRef": image_id}})
        resp.raise_for_status()
        volume_id = resp.json()["volume"]["id"]
        while True:
            status = self.session.get(f"{self.volume}/volumes/{volume_id}", timeout=30).json()["volume"]["status"]
            if status == "available":
                return volume_id, time.perf_counter() - started
            if status == "error":
                raise SystemExit(f"volume {volume_id} from image {image_id} failed")
            time.sleep(0.005)

    def delete_volume(self, volume_id: str) -> None:
        self.session.delete(f"{self.volume}/volumes/{volume_id}", timeout=30).raise_for_status()
        while self.session.get(f"{self.volume}/volumes/{volume_id}", timeout=30).status_code != 404:
            time.sleep(0.01)


def measure(client: Client, work: Path, size_mib: int, repeat: int) -> dict[str, Any]:
    source = work / f"image-{size_mib}.raw"
    make_image_file(source, size_mib * MiB)
    started = time.perf_counter()
    image_id = client.upload_image(source, f"bench-{size_mib}")
    upload_s = time.perf_counter() - started
    source.unlink()
    size_gb = -(-size_mib * MiB // GiB)
    first_id, first_s = client.create_volume(size_gb, image_id)
    warm = [client.create_volume(size_gb, image_id) for _ in range(repeat)]
    for volume_id in [first_id, *(v for v, _ in warm)]:
        client.delete_volume(volume_id)
    client.session.delete(f"{client.image}/v2/images/{image_id}", timeout=30)
    times = [t for _, t in warm]
    return {"image_mib": size_mib, "upload_s": round(upload_s, 2), "first_volume_s": round(first_s, 3),
            "cached_volume_median_s": round(statistics.median(times), 4),
            "cached_volume_max_s": round(max(times), 4), "cached_volumes": repeat}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes-mib", type=int, nargs="+", default=[100, 2048])
    parser.add_argument("--repeat", type=int, default=10, help="volumes created per image after the first")
    parser.add_argument("--workdir", type=Path, default=None, help="where the cloud and the test files go")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return

    work = Path(tempfile.mkdtemp(prefix="pocketstack-volume-bench-", dir=args.workdir))
    child = subprocess.Popen([sys.executable, __file__, "--serve", str(work / "cloud")], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        auth_url = child.stdout.readline().strip()  # type: ignore[union-attr]
        if not auth_url:
            raise SystemExit("the benchmark cloud did not start")
        client = Client(*login(auth_url, "admin", "bench-admin", "admin"))
        project = client.volume.rsplit("/", 1)[-1]
        client.session.put(f"{client.volume}/os-quota-sets/{project}", timeout=30, json={
            "quota_set": {"volumes": -1, "gigabytes": -1}}).raise_for_status()
        results = [measure(client, work, size, args.repeat) for size in args.sizes_mib]
        small, large = results[0], results[-1]
        print(json.dumps({
            "results": results,
            "cached_large_vs_small": round(large["cached_volume_median_s"] / small["cached_volume_median_s"], 2),
            "first_large_vs_small": round(large["first_volume_s"] / small["first_volume_s"], 2),
            "cpus": os.cpu_count(),
        }, indent=2))
    finally:
        child.stdin.close()  # type: ignore[union-attr]
        try:
            child.wait(60)
        except subprocess.TimeoutExpired:
            child.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
