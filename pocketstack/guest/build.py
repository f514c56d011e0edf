"""Build the pocketstack test guest: a small BIOS-bootable whole-disk image made from Debian packages.

The disk holds one FAT partition with syslinux, Debian's cloud kernel (`linux-image-cloud-amd64`, LZ4, fetched
with `apt-get download` into the cache, never installed on the host) and an initramfs that is the whole system:
busybox (static), dropbear and its libraries, the kernel modules the guest needs (with their dependencies, in
load order) and the boot scripts in `files/`. Nothing is mounted while building: `mkfs.vfat -C`, `syslinux
--install` and `mcopy` work on the partition file, the MBR (syslinux's `mbr.bin` + one partition entry) is
written in Python. The result is cached under a key made of the package versions and the builder's own files, so
it is built once per host and rebuilt when any of them changes.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

IMAGE_NAME = "pocketstack-guest"
KERNEL_METAPACKAGE = "linux-image-cloud-amd64"
# Measured under TCG: `quiet` (console output costs seconds) and `mitigations=off` (~0.5 s; a test guest runs no
# untrusted code). Not `pci=noacpi` or `acpi=noirq`: they save ~1 s of ACPI IRQ-link setup but break MSI-X and
# PCI hot-plug of volumes.
KERNEL_CMDLINE = "console=ttyS0 quiet mitigations=off cryptomgr.notests 8250.nr_uarts=1"
# Modules the guest loads (their dependencies are added): NICs and disks (virtio), entropy for dropbear, the ACPI
# power button (system_powerdown), vfat and iso9660 for config drives.
GUEST_MODULES = ("virtio_pci", "virtio_net", "virtio_blk", "virtio_rng", "button", "evdev", "vfat", "nls_cp437",
                 "nls_ascii", "nls_utf8", "isofs")
HOST_FILES = {  # path in the guest -> (path on the host, Debian package that provides it)
    "bin/busybox": ("/bin/busybox", "busybox-static"),
    "usr/sbin/dropbear": ("/usr/sbin/dropbear", "dropbear-bin"),
    "usr/bin/dropbearkey": ("/usr/bin/dropbearkey", "dropbear-bin"),
}
SYSLINUX_MBR = Path("/usr/lib/syslinux/mbr/mbr.bin")
PARTITION_START = 1 << 20  # bytes; the first partition at 1 MiB, as partitioning tools align it
FILES = Path(__file__).with_name("files")
BUILD_FORMAT = 1  # bump when the layout changes in a way the files' hash does not show
EPOCH = 1_700_000_000  # fixed mtime: the same inputs give the same initramfs


class GuestBuildError(Exception):
    """The guest image could not be built; the message says what is missing."""


@dataclass(frozen=True)
class GuestImage:
    raw: Path
    qcow2: Path
    version: str  # cache key: identifies the inputs
    kernel: str  # kernel release, e.g. 6.1.0-56-cloud-amd64
    size: int  # bytes of the raw disk

    @property
    def properties(self) -> dict[str, str]:
        """Image properties to register it with (Glance's common image properties)."""
        return {"os_type": "linux", "os_distro": "pocketstack-guest", "os_version": self.version,
                "hw_disk_bus": "virtio", "hw_vif_model": "virtio", "hw_rng_model": "virtio",
                "pocketstack_guest_kernel": self.kernel}


Log = Callable[[str], None]


def _run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(args, check=True, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    except FileNotFoundError:
        raise GuestBuildError(f"{args[0]} is not installed")
    except subprocess.CalledProcessError as exc:
        raise GuestBuildError(f"{' '.join(args)} failed: {(exc.stderr or exc.stdout).strip()}")


def _package_version(package: str) -> str:
    proc = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True)
    if proc.returncode != 0 or not proc.stdout:
        raise GuestBuildError(f"the Debian package {package} is not installed (apt-get install {package})")
    return proc.stdout


def _apt_show(package: str) -> dict[str, str]:
    proc = subprocess.run(["apt-cache", "show", "--no-all-versions", package], capture_output=True, text=True)
    fields: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        key, sep, value = line.partition(": ")
        if sep and not line.startswith(" "):
            fields[key] = value
    return fields


def resolve_kernel(debs: Path) -> tuple[str, str]:
    """The real kernel package behind linux-image-cloud-amd64 and its version, from apt (or the cached debs)."""
    meta = _apt_show(KERNEL_METAPACKAGE)
    match = re.search(r"(linux-image-[^\s,]+-cloud-amd64(?:-unsigned)?)\s*\(=\s*([^)\s]+)\)", meta.get("Depends", ""))
    if match:
        return match.group(1), match.group(2)
    cached = sorted(debs.glob("linux-image-*-cloud-amd64_*.deb"))
    if cached:
        name, version, _ = cached[-1].name.split("_")
        return name, version.replace("%3a", ":")
    raise GuestBuildError(f"apt knows no {KERNEL_METAPACKAGE} package: run apt-get update (Debian main must be in "
                          "the apt sources)")


def fetch_deb(package: str, version: str, debs: Path) -> Path:
    """`apt-get download` one package version into the cache (once)."""
    pattern = f"{package}_{version.replace(':', '%3a')}_*.deb"
    found = sorted(debs.glob(pattern))
    if found:
        return found[0]
    debs.mkdir(parents=True, exist_ok=True)
    _run(["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", f"{package}={version}"], cwd=debs)
    found = sorted(debs.glob(pattern))
    if not found:
        raise GuestBuildError(f"apt-get download {package}={version} left no {pattern} in {debs}")
    return found[0]


def shared_libraries(binary: str) -> list[str]:
    """The shared objects a dynamic binary loads (ldd), loader included."""
    libs = []
    for line in _run(["ldd", binary]).stdout.splitlines():
        match = re.search(r"(?:=>\s*)?(/\S+)\s+\(0x", line)
        if match:
            libs.append(match.group(1))
    return libs


# ----- kernel modules ----------------------------------------------------------------------------------------
def modinfo(path: Path) -> dict[str, list[str]]:
    """The .modinfo section of a kernel module (ELF64): key -> values."""
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        raise GuestBuildError(f"{path} is not an ELF64 kernel module")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)

    def section(index: int) -> tuple[int, int, int]:
        name, _type, _flags, _addr, offset, size = struct.unpack_from("<IIQQQQ", data, shoff + index * shentsize)
        return name, offset, size

    _, str_off, _ = section(shstrndx)
    info: dict[str, list[str]] = {}
    for index in range(shnum):
        name, offset, size = section(index)
        if data[str_off + name:data.index(b"\0", str_off + name)] == b".modinfo":
            for entry in data[offset:offset + size].split(b"\0"):
                key, sep, value = entry.decode(errors="replace").partition("=")
                if sep:
                    info.setdefault(key, []).append(value)
    return info


def module_load_order(modules_dir: Path, wanted: Iterable[str]) -> list[Path]:
    """Module files for `wanted` and everything they depend on, dependencies first (what modules.dep gives).

    The Debian package ships no modules.dep (depmod runs at install); the same `depends=` lists are in each
    module's .modinfo. Modules built into the kernel (modules.builtin) need no file.
    """
    index = {p.name.removesuffix(".ko").replace("-", "_"): p for p in modules_dir.rglob("*.ko")}
    builtin = {Path(line).name.removesuffix(".ko").replace("-", "_")
               for line in (modules_dir / "modules.builtin").read_text().split()}
    order: list[Path] = []
    seen: set[str] = set()

    def visit(name: str, chain: tuple[str, ...]) -> None:
        name = name.replace("-", "_")
        if name in seen or name in builtin:
            return
        if name in chain:
            raise GuestBuildError(f"kernel module dependency cycle: {' -> '.join((*chain, name))}")
        path = index.get(name)
        if path is None:
            raise GuestBuildError(f"kernel module {name} is neither built in nor in {modules_dir}")
        for dep in ",".join(modinfo(path).get("depends", [])).split(","):
            if dep:
                visit(dep, (*chain, name))
        seen.add(name)
        order.append(path)

    for name in wanted:
        visit(name, ())
    return order


# ----- initramfs (cpio newc, written directly: root-owned entries and device nodes without root) ---------------
class Cpio:
    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.dirs: set[str] = set()
        self.ino = 1

    def _entry(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)) -> None:
        encoded = name.encode() + b"\0"
        fields = (self.ino, mode, 0, 0, 2 if mode & 0o040000 else 1, EPOCH, len(data), 0, 0, rdev[0], rdev[1],
                  len(encoded), 0)
        self.ino += 1
        header = b"070701" + b"".join(b"%08X" % value for value in fields)
        self.chunks += [header, encoded, b"\0" * (-(len(header) + len(encoded)) % 4), data, b"\0" * (-len(data) % 4)]

    def mkdir(self, path: str) -> None:
        parts = path.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            sub = "/".join(parts[:i])
            if sub and sub not in self.dirs:
                self.dirs.add(sub)
                self._entry(sub, 0o040755)

    def file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        path = path.strip("/")
        self.mkdir(os.path.dirname(path))
        self._entry(path, 0o100000 | mode, data)

    def symlink(self, path: str, target: str) -> None:
        path = path.strip("/")
        self.mkdir(os.path.dirname(path))
        self._entry(path, 0o120777, target.encode())

    def chardev(self, path: str, major: int, minor: int, mode: int = 0o600) -> None:
        self._entry(path.strip("/"), 0o020000 | mode, rdev=(major, minor))

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        return b"".join(self.chunks)


def build_initramfs(kernel_root: Path, kernel_release: str, release: str) -> bytes:
    cpio = Cpio()
    for directory in ("dev", "proc", "sys", "run", "tmp", "mnt/config", "root", "etc/dropbear", "var/log"):
        cpio.mkdir(directory)
    cpio.chardev("dev/console", 5, 1)
    cpio.chardev("dev/null", 1, 3, 0o666)
    for guest_path, (host_path, package) in HOST_FILES.items():
        if not Path(host_path).exists():
            raise GuestBuildError(f"{host_path} is missing: apt-get install {package}")
        cpio.file(guest_path, Path(host_path).read_bytes(), 0o755)
    libraries = {lib for host_path, _ in HOST_FILES.values() if host_path != "/bin/busybox"
                 for lib in shared_libraries(host_path)}
    for lib in sorted(libraries):
        cpio.file(lib, Path(lib).read_bytes(), 0o755)
    applets = _run(["/bin/busybox", "--list-full"]).stdout.split()
    for applet in applets:
        if applet != "bin/busybox":
            cpio.symlink(applet, "/bin/busybox")
    cpio.symlink("init", "/bin/busybox")
    modules_dir = kernel_root / "lib" / "modules" / kernel_release
    load = []
    for path in module_load_order(modules_dir, GUEST_MODULES):
        cpio.file(f"lib/modules/{path.name}", path.read_bytes())
        load.append(path.name)
    cpio.file("etc/modules", ("\n".join(load) + "\n").encode())
    scripts = {"etc/init.d/rcS": "rcS", "etc/init.d/rcK": "rcK", "etc/udhcpc.script": "udhcpc.script",
               "etc/acpi/PWRF/00000080": "acpi-power-button"}
    for guest_path, name in scripts.items():
        cpio.file(guest_path, (FILES / name).read_bytes(), 0o755)
    cpio.file("etc/inittab", (FILES / "inittab").read_bytes())
    cpio.file("etc/jsonflat.awk", (FILES / "jsonflat.awk").read_bytes())
    cpio.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    cpio.file("etc/shadow", b"root:*:19000:0:99999:7:::\n", 0o600)
    cpio.file("etc/group", b"root:x:0:\n")
    cpio.file("etc/shells", b"/bin/sh\n")
    cpio.file("etc/issue", f"pocketstack test guest {release} \\n \\l\n\n".encode())
    cpio.file("etc/pocketstack-guest-release", f"pocketstack-guest {release}\n".encode())
    return compress_initramfs(cpio.finish())


def compress_initramfs(data: bytes) -> bytes:
    """LZ4 (legacy frame, what the kernel reads; ~0.4 s faster to unpack under TCG than gzip), else gzip."""
    if shutil.which("lz4"):
        return subprocess.run(["lz4", "-l", "-9", "-q", "-c"], input=data, capture_output=True, check=True).stdout
    return gzip.compress(data, compresslevel=9, mtime=EPOCH)


# ----- the disk ------------------------------------------------------------------------------------------------
def _mbr(partition_bytes: int, fat_type: int) -> bytes:
    """syslinux's boot code + one active partition at PARTITION_START (LBA addressing, dummy CHS)."""
    code = SYSLINUX_MBR.read_bytes()[:440]
    start, sectors = PARTITION_START // 512, partition_bytes // 512
    entry = struct.pack("<B3sB3sII", 0x80, b"\xfe\xff\xff", fat_type, b"\xfe\xff\xff", start, sectors)
    return code.ljust(440, b"\0") + b"PSGS" + b"\0\0" + entry + b"\0" * 48 + b"\x55\xaa"


def build_disk(kernel: Path, initrd: Path, out: Path, work: Path) -> None:
    size_mb = (kernel.stat().st_size + initrd.stat().st_size) // (1 << 20) + 8
    part = work / "part.img"
    _run(["mkfs.vfat", "-C", "-F", "16", "-n", "PSGUEST", str(part), str(size_mb * 1024)])
    _run(["syslinux", "--install", str(part)])
    cfg = work / "syslinux.cfg"
    cfg.write_text(f"SERIAL 0 115200\nDEFAULT linux\nPROMPT 0\nTIMEOUT 0\nLABEL linux\n  KERNEL /vmlinuz\n"
                   f"  INITRD /initrd.img\n  APPEND {KERNEL_CMDLINE}\n")
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    for src, name in ((kernel, "vmlinuz"), (initrd, "initrd.img"), (cfg, "syslinux.cfg")):
        _run(["mcopy", "-o", "-i", str(part), str(src), f"::{name}"], env=env)
    with open(out, "wb") as disk:
        disk.write(_mbr(part.stat().st_size, 0x0E))  # 0x0E: FAT16, LBA
        disk.seek(PARTITION_START)
        with open(part, "rb") as src_file:
            shutil.copyfileobj(src_file, disk, 1 << 20)
    part.unlink()


def _inputs_hash(kernel_pkg: str, kernel_version: str) -> str:
    h = hashlib.sha256()
    h.update(f"format={BUILD_FORMAT} kernel={kernel_pkg}={kernel_version} cmdline={KERNEL_CMDLINE}\n".encode())
    h.update(f"modules={','.join(GUEST_MODULES)} lz4={bool(shutil.which('lz4'))}\n".encode())
    for package in sorted({pkg for _, pkg in HOST_FILES.values()} | {"syslinux", "syslinux-common", "libc6"}):
        h.update(f"{package}={_package_version(package)}\n".encode())
    for path in sorted(FILES.iterdir()):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    h.update(Path(__file__).read_bytes())
    return h.hexdigest()[:16]


def build_guest_image(cache_dir: Path, *, force: bool = False, prune: bool = False,
                      log: Log = lambda _msg: None) -> GuestImage:
    """The guest image in `cache_dir`, built first if its inputs changed (or `force`); `prune` drops older builds."""
    debs = cache_dir / "debs"
    kernel_pkg, kernel_version = resolve_kernel(debs)
    version = _inputs_hash(kernel_pkg, kernel_version)
    target = cache_dir / version
    manifest_path = target / "manifest.json"
    if manifest_path.exists() and not force:
        manifest = json.loads(manifest_path.read_text())
        image = GuestImage(target / f"{IMAGE_NAME}.raw", target / f"{IMAGE_NAME}.qcow2", version,
                           manifest["kernel"], manifest["size"])
        if image.raw.exists() and image.qcow2.exists():
            return image
    log(f"building the guest image {version} ({kernel_pkg} {kernel_version})")
    deb = fetch_deb(kernel_pkg, kernel_version, debs)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".build-", dir=cache_dir) as tmp:
        work = Path(tmp)
        root = work / "kernel"
        _run(["dpkg-deb", "-x", str(deb), str(root)])
        vmlinuz = sorted((root / "boot").glob("vmlinuz-*"))
        if not vmlinuz:
            raise GuestBuildError(f"{deb.name} holds no /boot/vmlinuz-*")
        release = vmlinuz[0].name.removeprefix("vmlinuz-")
        initrd = work / "initrd.img"
        initrd.write_bytes(build_initramfs(root, release, version))
        out = work / "out"
        out.mkdir()
        raw = out / f"{IMAGE_NAME}.raw"
        build_disk(vmlinuz[0], initrd, raw, work)
        _run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(out / f"{IMAGE_NAME}.qcow2")])
        size = raw.stat().st_size
        (out / "manifest.json").write_text(json.dumps({
            "version": version, "kernel": release, "kernel_package": f"{kernel_pkg}={kernel_version}",
            "size": size, "cmdline": KERNEL_CMDLINE}, indent=2) + "\n")
        if target.exists():
            shutil.rmtree(target)
        try:
            out.rename(target)
        except OSError:  # another process finished the same build first
            if not manifest_path.exists():
                raise
    if prune:  # earlier builds: the registered copies live in the image service
        for old in cache_dir.glob("*/manifest.json"):
            if old.parent != target:
                shutil.rmtree(old.parent, ignore_errors=True)
    log(f"guest image built: {target / f'{IMAGE_NAME}.raw'}")
    return GuestImage(target / f"{IMAGE_NAME}.raw", target / f"{IMAGE_NAME}.qcow2", version, release, size)
