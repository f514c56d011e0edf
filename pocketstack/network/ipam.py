"""IP address management: subnet geometry (CIDR, gateway, allocation pools) and address allocation.

Concurrency: an allocation is a row in `ip_allocations` whose primary key is (subnet_id, ip_address). A
transaction picks a free address from what it reads and inserts it; if another transaction committed the same
address first, the insert fails with an IntegrityError and the whole request is retried (`Core.write` in the
manager) with a fresh view. On SQLite the in-process writer lock already serialises allocations; on
PostgreSQL the unique key plus retry makes them correct, and picking at random keeps concurrent transactions
from colliding on the same address.

Cost: an allocation looks up SAMPLE random pool addresses in one indexed query and takes a free one; only a
nearly full subnet falls back to reading the pools window by window. Neither reads the subnet's allocations.
"""

from __future__ import annotations

import ipaddress
import itertools
import random
from collections.abc import Callable, Iterable, Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session

from pocketstack.common.context import RequestContext
from pocketstack.common.errors import BadRequest, Conflict, NotFound
from pocketstack.network import models as m

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

SPREAD = 64  # pick among this many free addresses so concurrent writers rarely race for the same one
WINDOW = 64  # pool addresses checked per query when scanning
SAMPLE = 16  # random pool addresses checked first (one query); a subnet with room rarely needs more


def invalid(message: str) -> BadRequest:
    return BadRequest(f"Invalid input for operation: {message}", error_type="InvalidInput")


def parse_cidr(cidr: str, ip_version: int | None) -> IPNetwork:
    """A subnet CIDR: valid, in canonical form (no host bits) and of the stated IP version."""
    try:
        net = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        raise invalid(f"'{cidr}' is not a valid IP subnet.")
    if str(net) != cidr and str(net) != cidr.lower():
        raise invalid(f"'{cidr}' isn't a recommended CIDR, '{net}' is recommended")
    if ip_version is not None and net.version != ip_version:
        raise invalid("Cidr and ip_version mismatch")
    if net.num_addresses < (4 if net.version == 4 else 2):
        raise invalid(f"Subnet {cidr} is too small: it has no room for addresses.")
    return net


def parse_ip(value: str, what: str = "IP address") -> IPAddress:
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        raise invalid(f"'{value}' is not a valid {what}")


def usable_range(net: IPNetwork) -> tuple[int, int]:
    """First and last assignable address: not the network address, not IPv4's broadcast address."""
    first = int(net.network_address) + 1
    last = int(net.broadcast_address) - (1 if net.version == 4 else 0)
    return first, last


def default_gateway(net: IPNetwork) -> str:
    return str(net[1])


def check_gateway(net: IPNetwork, gateway: str) -> str:
    gw = parse_ip(gateway, "gateway IP")
    if gw.version != net.version or gw not in net:
        raise invalid(f"Gateway IP {gateway} is outside subnet {net}.")
    first, last = usable_range(net)
    if not first <= int(gw) <= last:
        raise invalid(f"Gateway IP {gateway} is the network or broadcast address of subnet {net}.")
    return str(gw)


def default_pools(net: IPNetwork, gateway: str | None) -> list[dict[str, str]]:
    first, last = usable_range(net)
    ranges = [(first, last)]
    if gateway is not None:
        gw = int(ipaddress.ip_address(gateway))
        ranges = [(a, b) for a, b in ((first, gw - 1), (gw + 1, last)) if a <= b]
    return [{"start": str(ipaddress.ip_address(a)), "end": str(ipaddress.ip_address(b))} for a, b in ranges]


def check_pools(net: IPNetwork, pools: list[dict[str, str]], gateway: str | None) -> list[dict[str, str]]:
    """Validate requested allocation pools: inside the subnet's usable range, ordered, disjoint, no gateway."""
    first, last = usable_range(net)
    spans: list[tuple[int, int]] = []
    for pool in pools:
        start = parse_ip(pool["start"], "allocation pool start")
        end = parse_ip(pool["end"], "allocation pool end")
        if start.version != net.version or end.version != net.version:
            raise invalid(f"Allocation pool {start}-{end} does not match the IP version of subnet {net}.")
        if int(start) > int(end):
            raise invalid(f"The allocation pool {start}-{end} is invalid: its start is after its end.")
        if not (first <= int(start) and int(end) <= last):
            raise BadRequest(f"The allocation pool {start}-{end} spans beyond the subnet cidr {net}.",
                             error_type="OutOfBoundsAllocationPool")
        spans.append((int(start), int(end)))
    spans.sort()
    for (a1, b1), (a2, b2) in itertools.pairwise(spans):
        if a2 <= b1:
            raise BadRequest(f"Found overlapping allocation pools: {ipaddress.ip_address(a1)}-"
                             f"{ipaddress.ip_address(b1)} and {ipaddress.ip_address(a2)}-"
                             f"{ipaddress.ip_address(b2)} for subnet {net}.", error_type="OverlappingAllocationPools")
    if gateway is not None:
        gw = int(ipaddress.ip_address(gateway))
        for a, b in spans:
            if a <= gw <= b:
                raise Conflict(f"Gateway ip {gateway} conflicts with allocation pool "
                               f"{ipaddress.ip_address(a)}-{ipaddress.ip_address(b)}",
                               error_type="GatewayConflictWithAllocationPools")
    return [{"start": str(ipaddress.ip_address(a)), "end": str(ipaddress.ip_address(b))} for a, b in spans]


def pool_spans(subnet: m.Subnet) -> list[tuple[int, int]]:
    return [(int(ipaddress.ip_address(p["start"])), int(ipaddress.ip_address(p["end"])))
            for p in subnet.allocation_pools]


def pool_size(subnet: m.Subnet) -> int:
    return sum(b - a + 1 for a, b in pool_spans(subnet))


def _windows(subnet: m.Subnet, size: int) -> Iterator[list[int]]:
    """The subnet's pool addresses in chunks of `size`, starting at a random chunk and wrapping around, so
    allocations spread over the pools (as Neutron's random allocation does) and a full beginning of the pool
    does not make every allocation scan it."""
    spans = pool_spans(subnet)
    total = sum(b - a + 1 for a, b in spans)
    count = -(-total // size)
    if not count:
        return
    first = random.randrange(count)
    for k in range(count):
        lo = ((first + k) % count) * size
        hi = min(total, lo + size)
        window: list[int] = []
        offset = 0
        for a, b in spans:
            length = b - a + 1
            start, end = max(lo, offset), min(hi, offset + length)
            window.extend(range(a + start - offset, a + end - offset))
            offset += length
            if offset >= hi:
                break
        yield window


def _nth(spans: list[tuple[int, int]], index: int) -> int:
    """The address at position `index` of the pools taken as one sequence."""
    for a, b in spans:
        if index <= b - a:
            return a + index
        index -= b - a + 1
    raise IndexError(index)


def _free(session: Session, subnet: m.Subnet, candidates: list[int]) -> list[str]:
    texts = [str(ipaddress.ip_address(v)) for v in candidates]
    taken = set(session.scalars(select(m.IPAllocation.ip_address).where(
        m.IPAllocation.subnet_id == subnet.id, m.IPAllocation.ip_address.in_(texts))))
    return [t for t in texts if t not in taken and t != subnet.gateway_ip]


def pick_address(session: Session, subnet: m.Subnet) -> str:
    """A free address from the subnet's pools; 409 IpAddressGenerationFailure when none is left.

    First SAMPLE random pool addresses in one indexed query; when all are taken (a nearly full subnet), the
    pools window by window (one query per WINDOW addresses). The cost does not grow with the number of ports.
    """
    spans = pool_spans(subnet)
    total = sum(b - a + 1 for a, b in spans)
    if total > 2 * SAMPLE:
        offsets = {random.randrange(total) for _ in range(SAMPLE)}  # randrange: IPv6 pools exceed sample()'s len
        free = _free(session, subnet, sorted(_nth(spans, i) for i in offsets))
        if free:
            return random.choice(free)
    for window in _windows(subnet, WINDOW):
        free = _free(session, subnet, window)
        if free:
            return random.choice(free[:SPREAD])
    raise Conflict(f"No more IP addresses available on network {subnet.network_id}.",
                   error_type="IpAddressGenerationFailure")


def check_requested(session: Session, subnet: m.Subnet, ip: str, *, allow_gateway: bool) -> str:
    """A specifically requested address: in the subnet, assignable, and not taken (409 otherwise)."""
    addr = parse_ip(ip)
    net = ipaddress.ip_network(subnet.cidr)
    first, last = usable_range(net)
    if addr.version != net.version or addr not in net or not first <= int(addr) <= last:
        raise BadRequest(f"IP address {ip} is not a valid IP for the specified subnet.",
                         error_type="InvalidIpForSubnet")
    text = str(addr)
    if (text == subnet.gateway_ip and not allow_gateway) or session.get(m.IPAllocation, (subnet.id, text)):
        raise Conflict(f"IP address {text} already allocated in subnet {subnet.id}",
                       error_type="IpAddressAlreadyAllocated")
    return text


def eui64_address(subnet: m.Subnet, mac: str) -> str:
    """The SLAAC address of a MAC in an IPv6 /64 (modified EUI-64)."""
    net = ipaddress.ip_network(subnet.cidr)
    octets = [int(x, 16) for x in mac.split(":")]
    octets[0] ^= 0x02
    iid = [*octets[:3], 255, 254, *octets[3:]]
    return str(ipaddress.ip_address(int(net.network_address) | int.from_bytes(bytes(iid), "big")))


def is_slaac(subnet: m.Subnet) -> bool:
    return subnet.ip_version == 6 and subnet.ipv6_address_mode in ("slaac", "dhcpv6-stateless")


def overlapping(net: IPNetwork, others: Iterable[str]) -> str | None:
    for cidr in others:
        other = ipaddress.ip_network(cidr)
        if other.version == net.version and net.overlaps(other):
            return cidr
    return None


# ----- subnet pools ------------------------------------------------------------------------------------------
def free_cidr(prefixes: Iterable[str], allocated: Iterable[str], prefixlen: int) -> IPNetwork | None:
    """The lowest CIDR of `prefixlen` inside the pool's prefixes that overlaps none of `allocated`.

    The free space is the prefixes with the allocated CIDRs cut out (`address_exclude`), as CIDR blocks; the
    first block at least that large gives its first subnet: cost grows with the allocations, not the pool size.
    """
    free: list[IPNetwork] = [ipaddress.ip_network(p) for p in prefixes]
    for used in (ipaddress.ip_network(a) for a in allocated):
        kept: list[IPNetwork] = []
        for block in free:
            if block.version != used.version or not block.overlaps(used):
                kept.append(block)
            elif not used.supernet_of(block):  # type: ignore[arg-type]
                kept.extend(block.address_exclude(used))  # type: ignore[arg-type]
        free = kept
    for block in sorted(free, key=lambda b: int(b.network_address)):
        if block.prefixlen <= prefixlen:
            return next(block.subnets(new_prefix=prefixlen))
    return None


def pool_not_found(pool_id: str) -> NotFound:
    return NotFound(f"Subnet pool {pool_id} could not be found.", error_type="SubnetPoolNotFound")


def allocate_from_pool(session: Session, allowed: Callable[..., bool], ctx: RequestContext, pool_id: str,
                       project_id: str, cidr: str | None, prefixlen: int | None,
                       ip_version: int | None) -> tuple[str, str]:
    """(CIDR, pool id) of a new subnet from the pool, under the pool row's lock (synchronous, in the create's
    transaction); `allowed` is the manager's policy check."""
    pool = session.get(m.SubnetPool, pool_id, with_for_update=True)
    if pool is None or not allowed("get_subnetpool", ctx, {"project_id": pool.project_id, "shared": pool.shared}):
        raise pool_not_found(pool_id)
    if ip_version is not None and ip_version != pool.ip_version:
        raise invalid(f"Cannot allocate an IPv{ip_version} subnet from IPv{pool.ip_version} subnet pool "
                           f"{pool.id}.")
    allocated = list(session.scalars(select(m.Subnet.cidr).where(m.Subnet.subnetpool_id == pool.id)))
    if cidr is not None:
        wanted = parse_cidr(cidr, pool.ip_version)
        if not any(wanted.subnet_of(ipaddress.ip_network(p)) for p in pool.prefixes):  # type: ignore[arg-type]
            raise invalid(f"Cidr {wanted} is not within the prefixes of subnet pool {pool.id}.")
        if any(wanted.overlaps(ipaddress.ip_network(a)) for a in allocated):  # type: ignore[arg-type]
            raise Conflict(f"Unable to allocate subnet with prefix {wanted}: it overlaps a subnet allocated from "
                           f"pool {pool.id}.", error_type="SubnetAllocationError")
        chosen = wanted
    else:
        length = prefixlen if prefixlen is not None else pool.default_prefixlen
        if not pool.min_prefixlen <= length <= pool.max_prefixlen:
            raise invalid(f"Illegal prefix bounds: prefixlen={length}, min_prefixlen={pool.min_prefixlen}, "
                               f"max_prefixlen={pool.max_prefixlen}.")
        found = free_cidr(pool.prefixes, allocated, length)
        if found is None:
            raise Conflict(f"Insufficient prefix space to allocate subnet size /{length} from subnet pool "
                           f"{pool.id}.", error_type="SubnetAllocationError")
        chosen = found
    if pool.default_quota is not None:
        owned = session.scalars(select(m.Subnet.cidr).where(m.Subnet.subnetpool_id == pool.id,
                                                            m.Subnet.project_id == project_id))
        used = sum(ipaddress.ip_network(c).num_addresses for c in owned)
        if used + chosen.num_addresses > pool.default_quota:
            raise Conflict(f"Per-project quota of subnet pool {pool.id} ({pool.default_quota} addresses) would be "
                           "exceeded.", error_type="SubnetPoolQuotaExceeded")
    return str(chosen), pool.id
