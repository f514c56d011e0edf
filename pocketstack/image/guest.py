"""The test guest image: a small BIOS-bootable Linux disk built from Debian packages, without mounting anything.

`pocketstack image build-guest` makes it: Debian's cloud kernel (LZ4: fast to start under TCG), an initramfs with
static busybox, dropbear (with the libraries it links) and the virtio modules in dependency order, and a FAT
partition with syslinux on an MBR disk (`mkfs.vfat -C`, `syslinux --install`, `mcopy`; the partition table is
written here). Its init brings up eth0 with DHCP (applying classless static routes, option 121), reads
`http://169.254.169.254/openstack/latest/meta_data.json` or a `config-2` drive, sets the hostname, installs the
public keys for root, runs user data that starts with `#!`, starts dropbear and prints boot markers on ttyS0.

The result is cached under the cache directory, keyed by the package versions and this file's content.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

KERNEL_PACKAGE = "linux-image-cloud-amd64"
# What the guest needs, by module name; their dependencies are added from the modules' own modinfo.
GUEST_MODULES = ("virtio_pci", "virtio_net", "virtio_blk", "virtio_rng", "vfat", "nls_cp437", "nls_ascii", "nls_utf8",
                 "isofs", "button")
DISK_MB = 64
PARTITION_START_SECTOR = 2048
READY_MARKER = "pocketstack guest ready"

INIT = r"""#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /run /tmp /mnt /root/.ssh /etc/dropbear /var/log
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
for m in $(cat /etc/modules); do insmod /lib/modules/$m.ko 2>/dev/null; done
ip link set lo up
echo "pocketstack-guest: starting network"
ip link set eth0 up 2>/dev/null && udhcpc -i eth0 -s /etc/udhcpc.sh -t 10 -T 1 -n -q -O staticroutes
meta=""
if ip route | grep -q '^default\|169.254.169.254'; then
  for i in 1 2 3 4 5; do
    if timeout 3 wget -q -O /run/meta_data.json http://169.254.169.254/openstack/latest/meta_data.json; then
      meta=http
      timeout 3 wget -q -O /run/user_data http://169.254.169.254/openstack/latest/user_data || rm -f /run/user_data
      break
    fi
    sleep 1
  done
fi
if [ -z "$meta" ]; then
  for dev in /dev/vd? /dev/sr0; do
    [ -b "$dev" ] || continue
    if mount -o ro "$dev" /mnt 2>/dev/null; then
      if [ -f /mnt/openstack/latest/meta_data.json ]; then
        cp /mnt/openstack/latest/meta_data.json /run/meta_data.json
        [ -f /mnt/openstack/latest/user_data ] && cp /mnt/openstack/latest/user_data /run/user_data
        meta=config-drive
      fi
      umount /mnt
      [ -n "$meta" ] && break
    fi
  done
fi
echo "pocketstack-guest: metadata from ${meta:-nowhere}"
if [ -f /run/meta_data.json ]; then
  name=$(sed -n 's/.*"hostname": *"\([^"]*\)".*/\1/p' /run/meta_data.json)
  [ -n "$name" ] && hostname "$name"
  sed 's/"data": *"/\n&/g' /run/meta_data.json | sed -n 's/^"data": *"\([^"]*\)".*/\1/p' \
    | sed 's/\\n$//' > /root/.ssh/authorized_keys
  chmod 700 /root/.ssh; chmod 600 /root/.ssh/authorized_keys
  echo "pocketstack-guest: $(grep -c . /root/.ssh/authorized_keys) public key(s) installed for root"
fi
if [ -f /run/user_data ] && head -c 2 /run/user_data | grep -q '#!'; then
  chmod 700 /run/user_data && /run/user_data > /var/log/user_data.log 2>&1 &
fi
dropbear -R -p 22 -P /run/dropbear.pid
echo "pocketstack-guest: $(ip -4 -o addr show eth0 2>/dev/null | awk '{print $4}')"
echo "__READY__"
echo "$(hostname) login:"
while true; do sleep 3600; done
"""

UDHCPC_SCRIPT = r"""#!/bin/sh
# busybox udhcpc hook: address, routes (option 121 wins over the router option, RFC 3442), DNS.
case "$1" in
  deconfig) ip -4 addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    [ -n "$mtu" ] && ip link set "$interface" mtu "$mtu"
    if [ -n "$staticroutes" ]; then
      set -- $staticroutes
      while [ $# -ge 2 ]; do
        if [ "$2" = "0.0.0.0" ]; then ip route add "$1" dev "$interface"
        else ip route add "$1" via "$2" dev "$interface"; fi
        shift 2
      done
    elif [ -n "$router" ]; then
      for r in $router; do ip route add default via "$r" dev "$interface"; break; done
    fi
    : > /etc/resolv.conf
    for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done
    echo "pocketstack-guest: dhcp $ip on $interface"
    ;;
esac
exit 0
"""

SYSLINUX_CFG = """DEFAULT linux
PROMPT 0
TIMEOUT 0
LABEL linux
  KERNEL vmlinuz
  INITRD initrd.gz
  APPEND console=ttyS0 quiet panic=-1
"""


class GuestBuildError(RuntimeError):
    """A step of the guest build failed (a missing tool or package)."""


@dataclass(frozen=True)
class GuestImage:
    raw: Path
    qcow2: Path
    kernel: Path
    initrd: Path


def _run(*cmd: str, cwd: Path | None = None) -> str:
    try:
        return subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True).stdout
    except FileNotFoundError as exc:
        raise GuestBuildError(f"{cmd[0]} is not installed (run scripts/install.sh)") from exc
    except subprocess.CalledProcessError as exc:
        raise GuestBuildError(f"{' '.join(cmd)} failed: {exc.stderr.strip()}") from exc


def _package_version(package: str) -> str:
    out = _run("apt-cache", "policy", package)
    match = re.search(r"Candidate: (\S+)", out)
    if not match or match.group(1) == "(none)":
        raise GuestBuildError(f"Debian package {package} is not available (apt-get update?)")
    return match.group(1)


def _kernel_package() -> str:
    """The versioned kernel package the cloud metapackage depends on."""
    out = _run("apt-cache", "depends", KERNEL_PACKAGE)
    match = re.search(r"Depends: (linux-image-\S+-cloud-amd64)", out)
    if not match:
        raise GuestBuildError(f"cannot resolve {KERNEL_PACKAGE}")
    return match.group(1)


def _download(package: str, into: Path) -> Path:
    """The package's .deb in `into` (apt-get download, once), extracted; not installed on the host."""
    into.mkdir(parents=True, exist_ok=True)
    debs = list(into.glob(f"{package}_*.deb"))
    if not debs:
        _run("apt-get", "download", "-q", package, cwd=into)
        debs = list(into.glob(f"{package}_*.deb"))
    tree = into / package
    if not tree.exists():
        partial = into / f".{package}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        _run("dpkg-deb", "-x", str(debs[0]), str(partial))
        partial.rename(tree)
    return tree


def module_dependencies(ko: Path) -> list[str]:
    """The `depends=` of a kernel module, read from its .modinfo strings (what depmod puts in modules.dep)."""
    match = re.search(rb"(?:^|\0)depends=([^\0]*)\0", ko.read_bytes())
    return [d.decode() for d in match.group(1).split(b",") if d] if match else []


def ordered_modules(modules_dir: Path, wanted: tuple[str, ...]) -> list[Path]:
    """Module files for `wanted` and everything they depend on, dependencies first; built-ins are skipped."""
    files = {p.name.removesuffix(".ko").replace("-", "_"): p for p in modules_dir.rglob("*.ko")}
    order: list[Path] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        name = name.replace("-", "_")
        if name in seen or name not in files:  # not a module: built into the kernel
            return
        seen.add(name)
        for dep in module_dependencies(files[name]):
            visit(dep)
        order.append(files[name])

    for name in wanted:
        visit(name)
    return order


def _shared_libraries(binary: str) -> list[Path]:
    return [Path(p) for p in re.findall(r"(/\S+\.so[.\d]*)", _run("ldd", binary))]


def _initramfs(root: Path, kernel_tree: Path, output: Path) -> None:
    for sub in ("bin", "sbin", "etc", "lib/modules", "root", "proc", "sys", "dev", "run", "tmp", "mnt"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    shutil.copy2(shutil.which("busybox") or "/bin/busybox", root / "bin/busybox")
    dropbear = shutil.which("dropbear") or "/usr/sbin/dropbear"
    shutil.copy2(dropbear, root / "sbin/dropbear")
    for lib in _shared_libraries(dropbear):
        target = root / str(lib.resolve()).lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(lib.resolve(), target)
        link = root / str(lib).lstrip("/")
        if link != target and not link.exists():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(lib.resolve())
    modules = ordered_modules(next((kernel_tree / "lib/modules").iterdir()), GUEST_MODULES)
    for ko in modules:
        shutil.copy2(ko, root / "lib/modules" / ko.name)
    (root / "etc/modules").write_text("\n".join(ko.name.removesuffix(".ko") for ko in modules) + "\n")
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc/group").write_text("root:x:0:\n")
    (root / "etc/shadow").write_text("root:*:19000:0:99999:7:::\n")
    (root / "etc/shells").write_text("/bin/sh\n")
    for path, text in ((root / "init", INIT.replace("__READY__", READY_MARKER)),
                       (root / "etc/udhcpc.sh", UDHCPC_SCRIPT)):
        path.write_text(text)
        path.chmod(0o755)
    (root / "root").chmod(0o700)
    names = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    cpio = subprocess.run(["cpio", "-o", "-H", "newc", "--quiet"], cwd=root,
                          input="\n".join([".", *names]).encode(), capture_output=True, check=False)
    if cpio.returncode != 0:
        raise GuestBuildError(f"cpio failed: {cpio.stderr.decode(errors='replace')}")
    raw = cpio.stdout
    output.write_bytes(gzip.compress(raw, compresslevel=6))


def _mbr_partition_entry(start: int, sectors: int) -> bytes:
    """One bootable MBR entry of type 0x0c (FAT32 LBA); CHS fields set to the LBA-only marker."""
    return (bytes([0x80, 0xFE, 0xFF, 0xFF, 0x0C, 0xFE, 0xFF, 0xFF]) + start.to_bytes(4, "little")
            + sectors.to_bytes(4, "little"))


def _disk(work: Path, kernel: Path, initrd: Path, output: Path) -> None:
    part = work / "part.img"
    sectors = DISK_MB * 2048 - PARTITION_START_SECTOR
    part.unlink(missing_ok=True)
    _run("mkfs.vfat", "-n", "GUEST", "-C", str(part), str(sectors // 2))
    cfg = work / "syslinux.cfg"
    cfg.write_text(SYSLINUX_CFG)
    _run("mcopy", "-i", str(part), str(kernel), "::vmlinuz")
    _run("mcopy", "-i", str(part), str(initrd), "::initrd.gz")
    _run("mcopy", "-i", str(part), str(cfg), "::syslinux.cfg")
    _run("syslinux", "--install", str(part))
    mbr = Path("/usr/lib/syslinux/mbr/mbr.bin").read_bytes()[:440]
    header = bytearray(PARTITION_START_SECTOR * 512)
    header[:440] = mbr
    header[446:462] = _mbr_partition_entry(PARTITION_START_SECTOR, sectors)
    header[510:512] = b"\x55\xaa"
    with open(output, "wb") as out, open(part, "rb") as src:
        out.write(header)
        shutil.copyfileobj(src, out, 1 << 20)


def build_guest(cache_dir: Path) -> GuestImage:
    """Build the guest (or return the cached build) under `cache_dir`."""
    kernel_package = _kernel_package()
    versions = [kernel_package, _package_version(kernel_package), _package_version("busybox-static"),
                _package_version("dropbear-bin"), hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]]
    key = hashlib.sha256("|".join(versions).encode()).hexdigest()[:16]
    out = cache_dir / f"guest-{key}"
    image = GuestImage(out / "guest.raw", out / "guest.qcow2", out / "vmlinuz", out / "initrd.gz")
    if image.qcow2.exists():
        return image
    cache_dir.mkdir(parents=True, exist_ok=True)
    kernel_tree = _download(kernel_package, cache_dir / "debs")
    with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
        work = Path(tmp)
        staged = work / "out"
        staged.mkdir()
        shutil.copy2(next((kernel_tree / "boot").glob("vmlinuz-*")), staged / "vmlinuz")
        _initramfs(work / "root", kernel_tree, staged / "initrd.gz")
        _disk(work, staged / "vmlinuz", staged / "initrd.gz", staged / "guest.raw")
        _run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(staged / "guest.raw"), str(staged / "guest.qcow2"))
        for path in staged.iterdir():
            path.chmod(stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IROTH)
        shutil.rmtree(out, ignore_errors=True)
        os.replace(staged, out)
    return image
