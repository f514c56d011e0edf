"""The README's walkthroughs run as a newcomer runs them: each shell block's lines, unchanged, in a fresh home
directory (so `~/.local/share/pocketstack` and `~/.ssh` are new), from a directory where `.venv` is the
project's, against the cloud `pocketstack up` starts there. What a newcomer would adapt is adapted and nothing
else: the free ports and the test's own public range and bridge come from POCKETSTACK_* variables (the README's
lines do not change), the floating IP the README shows as an example is the one `floating ip create` printed,
the first `ssh` to a new guest accepts its host key (a person answers "yes"), and lines that reach into a guest
are retried while it boots. A line that fails fails the test with its output."""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import free_port, require
from qemu_helpers import GUEST_CACHE, guest_image

from pocketstack.services import SERVICES

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
EXAMPLE_FIP = "172.24.4.76"


def shell_blocks() -> list[list[str]]:
    """The README's ```sh blocks as logical lines (continuations joined, blank lines dropped)."""
    blocks = []
    for body in re.findall(r"```sh\n(.*?)```", README, flags=re.S):
        lines, current = [], ""
        for raw in body.splitlines():
            current += raw.rstrip()
            if current.endswith("\\"):
                current = current[:-1] + " "
                continue
            if current.strip():
                lines.append(current.strip())
            current = ""
        blocks.append(lines)
    return blocks


def block_starting(first: str) -> list[str]:
    found = [b for b in shell_blocks() if b and b[0].startswith(first)]
    assert len(found) == 1, f"README has no single block starting with {first!r}"
    return found[0]


def output_of(outputs: dict[str, str], start: str, contains: str = "") -> str:
    """The output of the line that starts with `start` and whose command (its comment aside) has `contains`."""
    found = [out for line, out in outputs.items() if line.startswith(start) and contains in line.split("#")[0]]
    assert len(found) == 1, f"no single line {start!r} ... {contains!r} in {list(outputs)}"
    return found[0]


class Newcomer:
    """A fresh home and working directory, the cloud `pocketstack up` runs from them, and a shell for lines."""

    def __init__(self, base: Path, *, qemu: bool) -> None:
        self.home = base / "home"
        self.cwd = base / "work"
        self.home.mkdir()
        self.cwd.mkdir()
        (self.cwd / ".venv").symlink_to(ROOT / ".venv")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "POCKETSTACK_", "VIRTUAL_ENV"))}
        self.env.update(HOME=str(self.home), POCKETSTACK_ACCESS_LOG="false",
                        POCKETSTACK_IDENTITY__BCRYPT_ROUNDS="4")
        for spec in SERVICES:
            self.env[f"POCKETSTACK_{spec.name.replace('-', '_').upper()}__PORT"] = str(free_port())
        tag = uuid.uuid4().hex[:8]
        self.env.update(POCKETSTACK_NETWORK__PUBLIC_CIDR=f"100.{random.randint(64, 127)}.{random.randint(0, 255)}.0/24",
                        POCKETSTACK_NETWORK__BRIDGE_MAPPINGS=f'{{"public": "ex{tag}"}}',
                        POCKETSTACK_NETWORK__AGENT_TEARDOWN_ON_STOP="true")
        if qemu:
            self.env.update(POCKETSTACK_COMPUTE__ACCEL="tcg", POCKETSTACK_COMPUTE__GUEST_CACHE_DIR=str(GUEST_CACHE),
                            POCKETSTACK_COMPUTE__VIF_PLUGGING_TIMEOUT="60")
        self.cloud: subprocess.Popen[str] | None = None
        self.substitutions: dict[str, str] = {}

    def start(self, command: str) -> None:
        """`pocketstack up ...` as the README gives it, in the background, until it prints that it is ready."""
        args = command.split("#")[0].strip().rstrip("&").split()
        exe = str(ROOT / ".venv" / "bin" / "pocketstack") if args[0] == "pocketstack" else args[0]
        self.cloud = subprocess.Popen([exe, *args[1:]], cwd=self.cwd, env=self.env, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        assert self.cloud.stdout is not None
        seen = []
        for line in self.cloud.stdout:
            seen.append(line)
            if line.strip() == "pocketstack ready":
                return
        raise AssertionError("pocketstack up did not get ready:\n" + "".join(seen[-30:]))

    def run(self, lines: list[str], *, retry: tuple[str, ...] = (), within: float = 180.0) -> dict[str, str]:
        """Run each line in one bash session's state (exports carry over); lines starting with a `retry` word
        are run again until they succeed or `within` runs out. Returns each line's output."""
        outputs: dict[str, str] = {}
        exports = ""
        for line in lines:
            for example, real in self.substitutions.items():
                line = line.replace(example, real)
            script = f"set -eo pipefail\ncd {self.cwd}\n{exports}{line}\n"
            deadline = time.monotonic() + (within if line.startswith(retry) else 0)
            while True:
                proc = subprocess.run(["bash", "-c", script], env=self.env, capture_output=True, text=True,
                                      timeout=600)
                if proc.returncode == 0 or time.monotonic() > deadline:
                    break
                time.sleep(3)
            assert proc.returncode == 0, f"README line failed ({proc.returncode}): {line}\n{proc.stdout}\n{proc.stderr}"
            outputs[line] = proc.stdout
            if line.startswith(("export ", "source ")):
                exports += line.split("#")[0] + "\n"
        return outputs

    def stop(self) -> None:
        if self.cloud is not None and self.cloud.poll() is None:
            os.killpg(self.cloud.pid, signal.SIGTERM)
            try:
                self.cloud.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.cloud.pid, signal.SIGKILL)
                self.cloud.wait(10)
        # what stays on the host for the guests, removed as the README says
        subprocess.run([str(ROOT / ".venv" / "bin" / "pocketstack"), "purge"], cwd=self.cwd, env=self.env,
                       capture_output=True, timeout=300)


@pytest.fixture
def newcomer(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Newcomer]:
    person = Newcomer(tmp_path, qemu=request.param == "qemu")
    try:
        yield person
    finally:
        person.stop()
        shutil.rmtree(person.home, ignore_errors=True)


@pytest.mark.parametrize("newcomer", ["fake"], indirect=True)
def test_the_cli_walkthroughs_with_the_fake_driver(newcomer: Newcomer) -> None:
    newcomer.start("pocketstack up --compute-driver fake --fake-hosts 4")
    identity = block_starting("export OS_CLIENT_CONFIG_FILE")
    assert any("token issue" in line for line in identity)
    newcomer.run(identity)
    servers = block_starting("head -c 1048576")
    outputs = newcomer.run(["source .venv/bin/activate", "export OS_CLIENT_CONFIG_FILE="
                            "~/.local/share/pocketstack/clouds.yaml", *servers])
    shown = output_of(outputs, "openstack --os-cloud pocketstack server show vm1")
    assert "ACTIVE" in shown
    trace = output_of(outputs, "pocketstack trace vm1")
    assert "scheduler" in trace.lower()


@pytest.mark.parametrize("newcomer", ["qemu"], indirect=True)
def test_the_real_vm_walkthrough_with_ssh_and_volumes(newcomer: Newcomer) -> None:
    require("qemu-system-x86_64", "ssh", "ssh-keygen", root=True)
    guest_image()  # built once for the whole suite; the cloud finds it in its guest cache
    vm = block_starting("source .venv/bin/activate")
    start = next(line for line in vm if line.startswith("pocketstack up"))
    newcomer.start(start)
    ssh_dir = newcomer.home / ".ssh"
    lines = [line for line in vm if line != start]
    fip_line = next(line for line in lines if line.startswith("openstack floating ip create"))
    before_fip = lines[:lines.index(fip_line)]
    newcomer.run(before_fip)
    out = newcomer.run([*[x for x in before_fip if x.startswith(("source ", "export "))], fip_line])
    found = re.search(r"\|\s*floating_ip_address\s*\|\s*(\d+\.\d+\.\d+\.\d+)\s*\|", out[fip_line])
    assert found, out[fip_line]
    fip = found.group(1)
    newcomer.substitutions[EXAMPLE_FIP] = fip
    # the first ssh to the guest: a person answers "yes" to its new host key. ssh reads the passwd entry's home,
    # not $HOME, so the newcomer's `ssh` is given their own configuration (and known hosts) explicitly
    (ssh_dir / "config").write_text(f"StrictHostKeyChecking accept-new\nConnectTimeout 5\n"
                                    f"UserKnownHostsFile {ssh_dir / 'known_hosts'}\n")
    ssh_dir.chmod(0o700)
    wrappers = newcomer.home / "bin"
    wrappers.mkdir()
    (wrappers / "ssh").write_text(f'#!/bin/sh\nexec {shutil.which("ssh")} -F {ssh_dir / "config"} "$@"\n')
    (wrappers / "ssh").chmod(0o755)
    newcomer.env["PATH"] = f"{wrappers}:{newcomer.env['PATH']}"
    env_lines = [x for x in lines if x.startswith(("source ", "export "))]
    rest = lines[lines.index(fip_line) + 1:]
    outputs = newcomer.run([*env_lines, *rest], retry=("ssh ", "openstack console log show"))
    hostname = output_of(outputs, "ssh ", "hostname")
    assert hostname.strip() == "vm2"
    console = output_of(outputs, "openstack console log show")
    assert "pocketstack guest ready: vm2" in console
    novnc = output_of(outputs, "openstack console url show --novnc")
    assert "vnc_lite.html" in novnc or "token" in novnc

    volumes = block_starting("openstack volume create")
    outputs = newcomer.run([*env_lines, *volumes], retry=("ssh ",))
    size = output_of(outputs, "ssh ", "/sys/block/vdb/size")
    assert size.strip() == "2097152"
