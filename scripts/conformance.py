"""OpenStack conformance as a number: run Tempest's API tests against a fresh pocketstack and write the report.

Started by `scripts/conformance.sh [--regex R] [SERVICE ...]`. Each run starts an all-in-one cloud of this tree on
free ports (fake driver, 4 hosts) in a temporary data directory, prepares it as DevStack prepares a cloud for
Tempest, writes `tempest.conf` (Tempest's defaults except the flags in FLAGS_OFF, each with its reason), runs each
service's part of `tempest.api` in a Tempest venv of its own and, for whole-service runs, writes
`docs/conformance/SERVICE.md` + `.json` and the summary `docs/conformance.md`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
WORK = ROOT / ".conformance"
TEMPEST_VERSION = "47.0.0"
TEMPEST_VENV = Path(os.environ.get("TEMPEST_VENV", Path.home() / ".cache/pocketstack-tempest/venv"))
SERVICES = ("identity", "image", "network", "volume", "compute")
AVAILABLE = {"nova": True, "glance": True, "neutron": True, "cinder": True, "swift": False, "placement": False,
             "horizon": False, "ceilometer": False, "aodh": False}

# Feature flags set away from Tempest's default: (section, option) -> (value, why). Nothing else is changed.
FLAGS_OFF: dict[tuple[str, str], tuple[str, str]] = {
    ("validation", "run_validation"): (
        "false", "the fake driver boots no guest to SSH into (the QEMU end-to-end tests cover guests)"),
    ("volume-feature-enabled", "backup"): ("false", "no volume backup service yet"),
    ("compute-feature-enabled", "vnc_console"): (
        "true", "the noVNC proxy serves VNC consoles (on the fake driver, as on Nova's, the console is nowhere: "
                "test_novnc's RFB handshake needs a real guest, tests/test_consoles_qemu.py does it)"),
    ("compute-feature-enabled", "serial_console"): ("true", "the serial console proxy serves serial consoles"),
    ("compute-feature-enabled", "resize"): ("true", "resize, confirm and revert are implemented (Tempest's default "
                                                    "is off)"),
    ("compute", "min_compute_nodes"): ("2", "the cloud has 4 fake hosts, so the multi-host tests (cold migration) "
                                            "run"),
    ("compute-feature-enabled", "live_migration"): ("false", "no live migration yet"),
}

# Tempest's parser of a subunit stream, run in the Tempest venv: one JSON line per test.
SUBUNIT_TO_JSON = r"""
import json, sys, subunit, testtools
def on_test(t):
    details = {k: v.as_text() for k, v in t["details"].items() if k in ("reason", "traceback")}
    print(json.dumps({"id": t["id"], "status": t["status"], **details}))
case = subunit.ByteStreamToStreamResult(open(sys.argv[1], "rb"), non_subunit_name="stdout")
res = testtools.StreamToDict(on_test)
res.startTestRun(); case.run(res); res.stopTestRun()
"""


def log(msg: str) -> None:
    print(f"[conformance] {msg}", file=sys.stderr, flush=True)


def ensure_tempest() -> Path:
    tempest = TEMPEST_VENV / "bin" / "tempest"
    if not tempest.exists():
        log(f"installing tempest=={TEMPEST_VERSION} into {TEMPEST_VENV}")
        subprocess.run([sys.executable, "-m", "venv", str(TEMPEST_VENV)], check=True)
        pip = str(TEMPEST_VENV / "bin" / "pip")
        subprocess.run([pip, "install", "-q", "-U", "pip"], check=True)
        subprocess.run([pip, "install", "-q", f"tempest=={TEMPEST_VERSION}"], check=True)
    return tempest


def free_port_offset() -> int:
    """An offset that puts every service's port below the ephemeral range on a port nobody holds."""
    from pocketstack.services import SERVICES as SPECS
    from pocketstack.settings import Settings

    settings = Settings()
    bases = [settings.port(spec.name) for spec in SPECS]
    for _ in range(200):
        offset = random.randrange(10000, 32000 - max(bases), 10)
        if all(_port_free(base + offset) for base in bases):
            return offset
    raise RuntimeError("no free port offset found")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class Cloud:
    """`pocketstack up --compute-driver fake --fake-hosts 4` of this tree, in a temporary data directory."""

    def __init__(self, work: Path) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix="pocketstack-conformance-"))
        self.log_path = work / "cloud.log"
        self.offset = free_port_offset()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 300) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "POCKETSTACK_CONFIG": str(self.data_dir / "none.toml")}
        cmd = [sys.executable, "-m", "pocketstack", "up", "--compute-driver", "fake", "--fake-hosts", "4",
               "--data-dir", str(self.data_dir), "--port-offset", str(self.offset)]
        log(f"starting the cloud (port offset {self.offset}, data {self.data_dir})")
        self.proc = subprocess.Popen(cmd, stdout=self.log_path.open("wb"), stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the cloud exited ({self.proc.returncode}); see {self.log_path}")
            if "pocketstack ready" in self.log_path.read_text(errors="replace"):
                return
            time.sleep(0.5)
        raise RuntimeError(f"the cloud was not ready in {timeout:.0f} s; see {self.log_path}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def server_errors(self) -> list[str]:
        """The 5xx answers: access-log lines with a 5xx status, and the unexpected errors each 500 is logged as
        (`up` logs no access lines unless asked)."""
        pattern = re.compile(r" (GET|HEAD|POST|PUT|PATCH|DELETE) \S+ 5\d\d "
                             r"|ERROR pocketstack\.api: unexpected error in ")
        return [line for line in self.log_path.read_text(errors="replace").splitlines() if pattern.search(line)]


def prepare(cloud: Cloud) -> dict[str, str]:
    """As DevStack prepares a cloud for Tempest: Keystone's roles, two public images, m1 flavors, network public."""
    import openstack

    os.environ["OS_CLIENT_CONFIG_FILE"] = str(cloud.data_dir / "clouds.yaml")
    conn = openstack.connect(cloud="pocketstack")
    auth = conn.config.config["auth"]
    roles = {role.name for role in conn.identity.roles()}
    for name in ("admin", "manager", "member", "reader", "service"):
        if name not in roles:
            conn.identity.create_role(name=name)
    images = []
    for name in ("cirros-0.6.3-x86_64-disk", "cirros-0.6.3-x86_64-disk-alt"):
        image = conn.image.create_image(name=name, disk_format="raw", container_format="bare", visibility="public",
                                        data=os.urandom(1 << 20))
        images.append(image.id)
    flavors = {flavor.name: flavor.id for flavor in conn.compute.flavors()}
    public = conn.network.find_network("public")
    if public is None:
        public = conn.network.create_network(name="public", is_router_external=True,
                                             provider_network_type="flat", provider_physical_network="public")
        conn.network.create_subnet(name="public-subnet", network_id=public.id, ip_version=4,
                                   cidr="172.24.4.0/24", gateway_ip="172.24.4.1", is_dhcp_enabled=False)
    return {"uri_v3": auth["auth_url"].rstrip("/") + ("" if auth["auth_url"].rstrip("/").endswith("/v3") else "/v3"),
            "admin_user": auth["username"], "admin_password": auth["password"],
            "admin_project": auth["project_name"], "image_ref": images[0], "image_ref_alt": images[1],
            "flavor_ref": flavors["m1.nano"], "flavor_ref_alt": flavors["m1.micro"], "public_network_id": public.id}


def tempest_conf(workspace: Path, facts: dict[str, str]) -> str:
    available = "\n".join(f"{name} = {str(on).lower()}" for name, on in AVAILABLE.items())
    conf: dict[str, dict[str, str]] = {
        "DEFAULT": {"log_file": str(workspace / "tempest.log")},
        "oslo_concurrency": {"lock_path": str(workspace / "lock")},
        "auth": {"admin_username": facts["admin_user"], "admin_password": facts["admin_password"],
                 "admin_project_name": facts["admin_project"], "admin_domain_name": "Default",
                 "use_dynamic_credentials": "true", "create_isolated_networks": "true"},
        "identity": {"uri_v3": facts["uri_v3"], "auth_version": "v3", "region": "RegionOne"},
        "identity-feature-enabled": {"api_v2": "false"},
        "compute": {"image_ref": facts["image_ref"], "image_ref_alt": facts["image_ref_alt"],
                    "flavor_ref": facts["flavor_ref"], "flavor_ref_alt": facts["flavor_ref_alt"]},
        "network": {"public_network_id": facts["public_network_id"], "floating_network_name": "public"},
    }
    for (section, option), (value, _why) in FLAGS_OFF.items():
        conf.setdefault(section, {})[option] = value
    text = "".join(f"[{section}]\n" + "".join(f"{k} = {v}\n" for k, v in opts.items()) + "\n"
                   for section, opts in conf.items())
    return text + f"[service_available]\n{available}\n"


def init_workspace(tempest: Path, workspace: Path) -> None:
    """A fresh `tempest init` workspace (its .stestr.conf finds Tempest's tests), registered under its own name."""
    shutil.rmtree(workspace, ignore_errors=True)
    name = f"pocketstack-{ROOT.name}-{workspace.name}"
    subprocess.run([str(tempest), "workspace", "remove", "--name", name], capture_output=True)
    subprocess.run([str(tempest), "init", "--name", name, str(workspace)], capture_output=True, check=True)
    (workspace / "lock").mkdir(exist_ok=True)


def run_tempest(tempest: Path, workspace: Path, regex: str, concurrency: int) -> tuple[list[str], list[dict]]:
    """The tests `regex` lists, and one record per test that ran."""
    env = {**os.environ, "PATH": f"{tempest.parent}:{os.environ['PATH']}"}
    listed = subprocess.run([str(tempest), "run", "--list-tests", "--regex", regex], cwd=workspace, env=env,
                            capture_output=True, text=True).stdout
    tests = [line for line in listed.splitlines() if line.startswith("tempest.")]
    log(f"{len(tests)} tests match {regex}; running with concurrency {concurrency}")
    with (workspace / "run.log").open("w") as out:
        subprocess.run([str(tempest), "run", "--regex", regex, "--concurrency", str(concurrency)], cwd=workspace,
                       env=env, stdout=out, stderr=subprocess.STDOUT)
    subunit = workspace / "results.subunit"
    with subunit.open("wb") as out:
        subprocess.run([str(tempest.parent / "stestr"), "last", "--subunit"], cwd=workspace, env=env, stdout=out)
    parsed = subprocess.run([str(tempest.parent / "python"), "-c", SUBUNIT_TO_JSON, str(subunit)],
                            capture_output=True, text=True, check=True).stdout
    return tests, [json.loads(line) for line in parsed.splitlines() if line.startswith("{")]


_VOLATILE = [(re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}"), "<id>"),
             (re.compile(r"\breq-<id>"), "<req>"), (re.compile(r"tempest-[\w-]+?-\d+"), "<name>"),
             (re.compile(r"\b\d+(\.\d+)?\b"), "<n>"), (re.compile(r"(?<=')([^']{100})[^']+'"), r"\1...'"),
             (re.compile(r" at 0x[0-9a-f]+"), "")]


def cause(record: dict) -> str:
    """A failure's cause: its last exception line and the first detail line, with ids and numbers masked."""
    text = record.get("traceback", "").strip()
    if not text:
        return "no traceback (setUpClass/tearDownClass or the worker died)"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    exc_at = max((i for i, line in enumerate(lines) if re.match(r"^[\w.]+(Error|Exception|Failure|Exc|"
                  r"NotFound|Forbidden|BadRequest|Conflict|Unauthorized|Timeout|ServerFault|"
                  r"InvalidHTTPResponseBody|Invalid\w*|\w+Exception)\b:?", line)), default=len(lines) - 1)
    head = " ".join(lines[exc_at:exc_at + 3])[:300]
    for pattern, repl in _VOLATILE:
        head = pattern.sub(repl, head)
    return head


def summarize(service: str, tests: list[str], records: list[dict], errors: list[str]) -> dict[str, Any]:
    by_status: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        by_status[record["status"]].append(record)
    failed = by_status["fail"] + by_status["uxsuccess"]
    passed = len(by_status["success"]) + len(by_status["xfail"])
    groups: dict[str, list[str]] = defaultdict(list)
    for record in failed:
        groups[cause(record)].append(record["id"].split("[")[0])
    skips: dict[str, list[str]] = defaultdict(list)
    for record in by_status["skip"]:
        skips[record.get("reason", "").strip() or "(no reason)"].append(record["id"].split("[")[0])
    ran = passed + len(failed)
    return {"service": service, "listed": len(tests), "passed": passed, "failed": len(failed),
            "skipped": len(by_status["skip"]), "ran": ran, "percent": round(100 * passed / ran, 1) if ran else 0.0,
            "failures": sorted(([c, sorted(ids)] for c, ids in groups.items()), key=lambda g: -len(g[1])),
            "skips": sorted(([r, sorted(ids)] for r, ids in skips.items()), key=lambda g: -len(g[1])),
            "server_errors": errors[:50], "server_error_count": len(errors)}


def git_commit() -> str:
    out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "pocketstack"],
                           capture_output=True, text=True).stdout.strip()
    return out.stdout.strip() + ("+changes" if dirty else "")


def service_report(summary: dict[str, Any]) -> str:
    s = summary
    out = [f"# Tempest {TEMPEST_VERSION}: {s['service']}", "",
           f"`scripts/conformance.sh {s['service']}` on {s['date']} (pocketstack {s['commit']}): "
           f"**{s['passed']} of {s['ran']} passed ({s['percent']}%)**; {s['listed']} listed, {s['failed']} failed, "
           f"{s['skipped']} skipped; {s['server_error_count']} answers with a 5xx status in the cloud's log.", ""]
    out += ["## Failures by cause", ""] if s["failures"] else []
    for reason, ids in s["failures"]:
        out += [f"- **{len(ids)}** — `{reason}`"] + [f"  - {i}" for i in ids[:15]]
        out += [f"  - ... and {len(ids) - 15} more"] if len(ids) > 15 else []
    out += ["", "## Skipped, by Tempest's reason", ""] if s["skips"] else []
    for reason, ids in s["skips"]:
        out += [f"- **{len(ids)}** — {reason}"] + [f"  - {i}" for i in ids[:10]]
        out += [f"  - ... and {len(ids) - 10} more"] if len(ids) > 10 else []
    if s["server_errors"]:
        out += ["", "## 5xx answers in the cloud's log", "", "```", *s["server_errors"][:20], "```"]
    return "\n".join(out) + "\n"


def summary_report() -> str:
    rows = []
    for service in SERVICES:
        path = DOCS / "conformance" / f"{service}.json"
        if path.exists():
            s = json.loads(path.read_text())
            rows.append(f"| [{service}](conformance/{service}.md) | {s['listed']} | {s['ran']} | {s['passed']} | "
                        f"{s['failed']} | {s['skipped']} | **{s['percent']}%** | {s['server_error_count']} | "
                        f"{s['date']} ({s['commit']}) |")
    flags = [f"| `[{sec}] {opt} = {value}` | {why} |" for (sec, opt), (value, why) in FLAGS_OFF.items()]
    return "\n".join([
        "# OpenStack conformance", "",
        f"Tempest {TEMPEST_VERSION}'s API tests (`tempest.api.SERVICE`) against a fresh all-in-one (fake driver, 4 "
        "hosts), prepared as DevStack prepares a cloud for Tempest: Keystone's roles, two public images, the m1 "
        "flavors, the external network `public`. Dynamic credentials, Tempest's default settings except the flags "
        "below. Run it with `scripts/conformance.sh [SERVICE ...]` (not in CI: each service takes minutes to an "
        "hour on 2 cores); the percentage is passed of the tests that ran.", "",
        "| service | listed | ran | passed | failed | skipped | passed of ran | 5xx in log | run |",
        "|---|---|---|---|---|---|---|---|---|", *rows, "",
        "## Feature flags changed from Tempest's defaults", "",
        "| flag | why |", "|---|---|", *flags, ""])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("services", nargs="*", metavar="SERVICE",
                        help=f"of {', '.join(SERVICES)} (default: identity image network volume)")
    parser.add_argument("--regex", help="run only these tests (no report written; failures printed)")
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()
    args.services = args.services or ["identity", "image", "network", "volume"]
    unknown = set(args.services) - set(SERVICES)
    if unknown:
        parser.error(f"unknown service(s): {', '.join(sorted(unknown))}")
    tempest = ensure_tempest()
    WORK.mkdir(exist_ok=True)
    cloud = Cloud(WORK)
    try:
        cloud.start()
        facts = prepare(cloud)
        for service in args.services:
            workspace = WORK / service
            init_workspace(tempest, workspace)
            (workspace / "etc" / "tempest.conf").write_text(tempest_conf(workspace, facts))
            before = len(cloud.server_errors())
            regex = args.regex or rf"^tempest\.api\.{service}\."
            t0 = time.monotonic()
            tests, records = run_tempest(tempest, workspace, regex, args.concurrency)
            summary = summarize(service, tests, records, cloud.server_errors()[before:])
            summary |= {"date": datetime.date.today().isoformat(), "commit": git_commit(),
                        "seconds": round(time.monotonic() - t0)}
            (workspace / "summary.json").write_text(json.dumps(summary, indent=1))
            print(f"{service}: {summary['passed']} passed of {summary['ran']} that ran ({summary['percent']}%), "
                  f"{summary['failed']} failed, {summary['skipped']} skipped, {summary['listed']} listed, "
                  f"{summary['server_error_count']} 5xx, {summary['seconds']} s; details in {workspace}")
            for reason, ids in summary["failures"]:
                print(f"  {len(ids):4d}  {reason}\n        e.g. {ids[0]}")
            if not args.regex:
                (DOCS / "conformance").mkdir(parents=True, exist_ok=True)
                (DOCS / "conformance" / f"{service}.md").write_text(service_report(summary))
                (DOCS / "conformance" / f"{service}.json").write_text(
                    json.dumps({k: v for k, v in summary.items() if k not in ("failures", "skips", "server_errors")},
                               indent=1) + "\n")
                (DOCS / "conformance.md").write_text(summary_report())
    finally:
        cloud.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
