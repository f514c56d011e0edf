"""The QEMU driver: one detached `qemu-system` process per server, driven through QMP (FLOW.md step 29).

On the host, under `instances_path` (default DATA_DIR/instances):

    _base/<image id>        the image, fetched once from the image service and converted once to raw
    <uuid>/domain.json      the server's definition (libvirt's domain XML): CPUs, memory, disks, NICs, volumes;
                            every start of the server's QEMU is made from it
    <uuid>/disk             qcow2 overlay on the cached base (copy-on-write), sized to the flavor's root disk
    <uuid>/disk.config      the config drive (vfat, label config-2) when one is asked for
    <uuid>/console.log      the serial console (`openstack console log show`)
    <uuid>/qemu.pid         the process; <uuid>/qmp.sock its QMP socket (see `_qmp_path` for long paths)
    <uuid>/suspend.state    the saved guest while suspended

QEMU runs with `-daemonize` in its own session, so the compute agent may stop or crash: a new agent finds the
servers again from their pid files and QMP sockets. Guest NICs are taps `tap<port id[:11]>` on the network's
bridge (`vif_details["bridge_name"]`), created here as Nova's Linux bridge VIF plugging does; the host network
agent secures and reports them, and the guest only runs once `network-vif-plugged` arrived for each port.
"""

from pocketstack.compute.virt.qemu.domain import tap_name
from pocketstack.compute.virt.qemu.driver import QemuDriver

__all__ = ["QemuDriver", "tap_name"]
