"""The real `pocketstack up` command: first start, ready line, clouds.yaml, clean stop, restart keeps state."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import requests
import yaml
from conftest import OPENSTACK_CLI, Cloud, free_port, make_settings

from pocketstack.services import SERVICES

POCKETSTACK = str(Path(sys.executable).with_name("pocketstack"))


def start_up(data_dir: Path, env: dict[str, str]) -> tuple[subprocess.Popen, list[str]]:
    proc = subprocess.Popen([POCKETSTACK, "up", "--data-dir", str(data_dir), "--log-level", "warning"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines: list[str] = []
    deadline = time.monotonic() + 90
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip())
        if line.strip() == "pocketstack ready":
            return proc, lines
    proc.kill()
    raise AssertionError("pocketstack up did not print 'pocketstack ready':\n" + "\n".join(lines))


def stop(proc: subprocess.Popen, lines: list[str] | None = None) -> int:
    """SIGTERM, then the exit code; what it printed while stopping is added to `lines`."""
    proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    if lines is not None:
        lines += out.splitlines()
    return proc.returncode


def openstack(data_dir: Path, *args: str, cloud: str = "pocketstack") -> subprocess.CompletedProcess:
    env = {**os.environ, "OS_CLIENT_CONFIG_FILE": str(data_dir / "clouds.yaml")}
    return subprocess.run([OPENSTACK_CLI, "--os-cloud", cloud, *args], capture_output=True, text=True, env=env,
                          timeout=120)


def test_up_ready_clouds_yaml_stop_and_restart(tmp_path):
    data_dir = tmp_path / "state"
    # the fake driver: the qemu default (root, QEMU installed) would put the data plane on the host's br-ex
    env = {**os.environ, "POCKETSTACK_IDENTITY__BCRYPT_ROUNDS": "4", "POCKETSTACK_COMPUTE__DRIVER": "fake"}
    for spec in SERVICES:
        env[f"POCKETSTACK_{spec.name.upper().replace('-', '_')}__PORT"] = str(free_port())
    proc, lines = start_up(data_dir, env)
    try:
        # generated passwords are kept, private, in the data dir, and never printed
        assert any(line.startswith("created user admin;") for line in lines)
        assert (data_dir / "passwords.json").stat().st_mode & 0o077 == 0
        passwords = json.loads((data_dir / "passwords.json").read_text())
        assert passwords["admin"] and not any(passwords["admin"] in line for line in lines)
        clouds = yaml.safe_load((data_dir / "clouds.yaml").read_text())["clouds"]
        assert set(clouds) == {"pocketstack", "pocketstack-demo"}
        assert (data_dir / "clouds.yaml").stat().st_mode & 0o077 == 0

        issued = openstack(data_dir, "token", "issue", "-f", "value", "-c", "id")
        assert issued.returncode == 0, issued.stderr
        token = issued.stdout.strip()
        demo = openstack(data_dir, "token", "issue", cloud="pocketstack-demo")
        assert demo.returncode == 0, demo.stderr
        created = openstack(data_dir, "project", "create", "kept-across-restart")
        assert created.returncode == 0, created.stderr
    finally:
        code = stop(proc, lines)
    assert code == 0
    # the stop names what it stopped; the terminal has no access-log lines, the access log has them
    assert "pocketstack stopped" in lines and not any("POST /v3/auth/tokens" in line for line in lines)
    assert "POST /v3/auth/tokens" in (data_dir / "log" / "access.log").read_text()

    proc, lines = start_up(data_dir, env)
    try:
        assert not any("created user" in line for line in lines)  # nothing re-bootstrapped
        projects = openstack(data_dir, "project", "list", "-f", "value", "-c", "Name")
        assert "kept-across-restart" in projects.stdout.split()
        auth_url = clouds["pocketstack"]["auth"]["auth_url"]
        resp = requests.get(auth_url + "/auth/tokens", headers={"X-Auth-Token": token, "X-Subject-Token": token})
        assert resp.status_code == 200  # tokens issued before the restart stay valid
        refused = subprocess.run([POCKETSTACK, "purge", "--data-dir", str(data_dir)], capture_output=True,
                                 text=True, env=env, timeout=60)
        assert refused.returncode == 1 and "stop it first" in refused.stderr
    finally:
        assert stop(proc) == 0
    purged = subprocess.run([POCKETSTACK, "purge", "--data-dir", str(data_dir)], capture_output=True, text=True,
                            env=env, timeout=60)
    assert purged.returncode == 0 and "nothing to remove" in purged.stdout  # the fake driver left nothing


def test_rotate_keys_keeps_recent_tokens_valid(tmp_path):
    # its own cloud: rotating the shared one would invalidate tokens other test modules hold
    cloud = Cloud(make_settings(tmp_path)).start()
    try:
        _check_rotation(cloud)
    finally:
        cloud.stop()


def _check_rotation(cloud: Cloud) -> None:
    issued = cloud.cli("token", "issue", "-f", "json")["id"]

    def valid(token: str) -> bool:
        resp = requests.get(cloud.auth_url + "/auth/tokens", headers={"X-Auth-Token": cloud.conn().session.get_token(),
                                                                      "X-Subject-Token": token})
        return resp.status_code == 200

    rotate = [POCKETSTACK, "identity", "rotate-keys", "--data-dir", str(cloud.settings.data_dir)]
    out = subprocess.run(rotate, capture_output=True, text=True, check=True)
    assert "is now primary" in out.stdout
    time.sleep(1.1)  # the service reloads its key repository at most once a second
    assert valid(issued)  # signed by what is now a secondary key
    for _ in range(cloud.settings.identity.max_active_keys):
        subprocess.run(rotate, capture_output=True, text=True, check=True)
    time.sleep(1.1)
    assert not valid(issued)  # its key has been pruned


def test_up_detached_then_down(tmp_path):
    data_dir = tmp_path / "bg"
    env = {**os.environ, "POCKETSTACK_IDENTITY__BCRYPT_ROUNDS": "4", "POCKETSTACK_COMPUTE__DRIVER": "fake"}
    for spec in SERVICES:
        env[f"POCKETSTACK_{spec.name.upper().replace('-', '_')}__PORT"] = str(free_port())
    started = subprocess.run([POCKETSTACK, "up", "-d", "--data-dir", str(data_dir), "--log-level", "warning"],
                             capture_output=True, text=True, env=env, timeout=300)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        assert "pocketstack ready" in started.stdout.splitlines() and "pocketstack down" in started.stdout
        pid = int((data_dir / "up.pid").read_text())
        assert openstack(data_dir, "token", "issue").returncode == 0  # it answers after `up -d` returned
        again = subprocess.run([POCKETSTACK, "up", "-d", "--data-dir", str(data_dir)], capture_output=True,
                               text=True, env=env, timeout=60)
        assert again.returncode == 1 and f"pid {pid}" in again.stderr  # one background cloud per data dir
    finally:
        stopped = subprocess.run([POCKETSTACK, "down", "--data-dir", str(data_dir)], capture_output=True,
                                 text=True, env=env, timeout=180)
    assert stopped.returncode == 0 and "pocketstack stopped" in stopped.stdout, stopped.stdout + stopped.stderr
    # ended (a zombie at most: an init that does not reap may hold it as its child)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not (data_dir / "up.pid").exists()
    assert openstack(data_dir, "token", "issue").returncode != 0
    nothing = subprocess.run([POCKETSTACK, "down", "--data-dir", str(data_dir)], capture_output=True, text=True,
                             env=env, timeout=60)
    assert nothing.returncode == 1 and "no cloud" in nothing.stderr


def test_a_killed_cloud_restarts_with_no_build_left_hanging(tmp_path):
    data_dir = tmp_path / "crash"
    env = {**os.environ, "POCKETSTACK_IDENTITY__BCRYPT_ROUNDS": "4", "POCKETSTACK_COMPUTE__DRIVER": "fake",
           "POCKETSTACK_COMPUTE__FAKE_SPAWN_SECONDS": "4", "POCKETSTACK_COMPUTE__FAKE_HOSTS": "2"}
    for spec in SERVICES:
        env[f"POCKETSTACK_{spec.name.upper().replace('-', '_')}__PORT"] = str(free_port())
    proc, _ = start_up(data_dir, env)
    conn = Cloud.__new__(Cloud)  # only its connection helper, on this cloud's clouds.yaml
    conn.clouds_yaml = data_dir / "clouds.yaml"
    admin = conn.conn()
    try:
        image = admin.image.create_image(name="crash-img", data=b"\0" * 1024, disk_format="raw",
                                         container_format="bare")
        flavor = admin.compute.create_flavor(name="crash.tiny", ram=64, vcpus=1, disk=1)
        created = [admin.compute.create_server(name=f"crash-{i}", image_id=image.id, flavor_id=flavor.id,
                                               networks="none") for i in range(8)]
        time.sleep(1.0)  # some scheduled and spawning (4 s), some still queued
    finally:
        proc.kill()  # SIGKILL: no clean stop, the in-process bus loses what it held
        proc.wait()
    proc, _ = start_up(data_dir, env)
    try:
        admin = conn.conn()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            servers = [admin.compute.get_server(s.id) for s in created]
            if all(s.status != "BUILD" and s.task_state is None for s in servers):
                break
            time.sleep(1)
        assert all(s.status in ("ERROR", "ACTIVE", "SHUTOFF") and s.task_state is None for s in servers), [
            (s.name, s.status, s.task_state) for s in servers]
        errors = [s for s in servers if s.status == "ERROR"]
        assert errors and all("restart" in s.fault["message"] for s in errors)
        # no claim is left for a server that did not come up: the hosts hold only the ones that did
        used = sum(h.vcpus_used for h in admin.compute.hypervisors(details=True))
        assert used == len(servers) - len(errors)
    finally:
        assert stop(proc) == 0


def test_no_password_or_token_in_any_log_or_the_trace_store(tmp_path):
    """A boot at debug log level: the passwords and the tokens it used appear in no log line and no span."""
    data_dir = tmp_path / "secrets"
    env = {**os.environ, "POCKETSTACK_IDENTITY__BCRYPT_ROUNDS": "4", "POCKETSTACK_COMPUTE__DRIVER": "fake"}
    for spec in SERVICES:
        env[f"POCKETSTACK_{spec.name.upper().replace('-', '_')}__PORT"] = str(free_port())
    proc = subprocess.Popen([POCKETSTACK, "up", "--data-dir", str(data_dir), "--log-level", "debug"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines: list[str] = []
    assert proc.stdout is not None
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and "pocketstack ready" not in lines:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip())
    # debug output keeps coming: read it all along, or the cloud blocks writing to a full pipe
    reader = threading.Thread(target=lambda: lines.extend(line.rstrip() for line in proc.stdout), daemon=True)
    reader.start()
    disk = tmp_path / "disk.raw"
    disk.write_bytes(b"\0" * 4096)
    try:
        assert "pocketstack ready" in lines, "\n".join(lines[-30:])
        tokens = [openstack(data_dir, "token", "issue", "-f", "value", "-c", "id", cloud=c).stdout.strip()
                  for c in ("pocketstack", "pocketstack-demo")]
        assert all(tokens)
        created = openstack(data_dir, "image", "create", "--disk-format", "raw", "--container-format", "bare",
                            "--public", "--file", str(disk), "secrets-img")
        assert created.returncode == 0, created.stderr
        openstack(data_dir, "flavor", "create", "--ram", "64", "--vcpus", "1", "--disk", "1", "secrets.tiny")
        boot = openstack(data_dir, "server", "create", "--image", "secrets-img", "--flavor", "secrets.tiny",
                         "--nic", "none", "--wait", "vm-secrets", cloud="pocketstack-demo")
        assert boot.returncode == 0, boot.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        reader.join(timeout=10)
    secrets = [*json.loads((data_dir / "passwords.json").read_text()).values(), *tokens]
    assert all(len(s) >= 8 for s in secrets)
    where = {"the terminal": "\n".join(lines)}
    for path in (data_dir / "log").rglob("*"):
        if path.is_file():
            where[str(path)] = path.read_text(errors="replace")
    for path in data_dir.rglob("trace*.db"):
        where[str(path)] = path.read_bytes().decode("latin-1")
    assert len(where) > 2, where.keys()  # the terminal, the access log and the span store at least
    leaks = [(name, secret[:6]) for name, text in where.items() for secret in secrets if secret in text]
    assert leaks == []


def test_fake_guests_survive_a_clean_restart(tmp_path):
    """The fake driver keeps its guests in DATA_DIR/fake-hosts: after a stop and a start, a running server is still
    running (the power-state sync finds its guest) with its console, as a QEMU guest is."""
    data_dir = tmp_path / "keep"
    env = {**os.environ, "POCKETSTACK_IDENTITY__BCRYPT_ROUNDS": "4", "POCKETSTACK_COMPUTE__DRIVER": "fake",
           "POCKETSTACK_COMPUTE__SYNC_POWER_STATE_INTERVAL": "1"}
    for spec in SERVICES:
        env[f"POCKETSTACK_{spec.name.upper().replace('-', '_')}__PORT"] = str(free_port())
    proc, _ = start_up(data_dir, env)
    conn = Cloud.__new__(Cloud)
    conn.clouds_yaml = data_dir / "clouds.yaml"
    try:
        admin = conn.conn()
        image = admin.image.create_image(name="keep-img", data=b"\0" * 1024, disk_format="raw",
                                         container_format="bare")
        flavor = admin.compute.create_flavor(name="keep.tiny", ram=64, vcpus=1, disk=1)
        server = admin.compute.wait_for_server(admin.compute.create_server(
            name="kept", image_id=image.id, flavor_id=flavor.id, networks="none"), wait=60)
        stopped = admin.compute.wait_for_server(admin.compute.create_server(
            name="kept-off", image_id=image.id, flavor_id=flavor.id, networks="none"), wait=60)
        admin.compute.stop_server(stopped)
        admin.compute.wait_for_server(stopped, status="SHUTOFF", wait=60)
    finally:
        assert stop(proc) == 0
    proc, _ = start_up(data_dir, env)
    try:
        admin = conn.conn()
        time.sleep(4)  # several power-state syncs
        again = admin.compute.get_server(server.id)
        assert (again.status, again.power_state) == ("ACTIVE", 1)
        assert "kept login:" in admin.compute.get_server_console_output(server.id)["output"]
        assert admin.compute.get_server(stopped.id).status == "SHUTOFF"
        admin.compute.start_server(stopped)
        admin.compute.wait_for_server(stopped, status="ACTIVE", wait=60)
    finally:
        assert stop(proc) == 0
