"""RPC interface versions "MAJOR.MINOR": a server at X.Y handles any request X.Z with Z <= Y."""

from __future__ import annotations

import re
from functools import lru_cache

_VERSION_RE = re.compile(r"^(\d+)\.(\d+)$")


def parse_version(version: str) -> tuple[int, int]:
    match = _VERSION_RE.match(version) if isinstance(version, str) else None
    if match is None:
        raise ValueError(f"invalid RPC version {version!r}: expected 'MAJOR.MINOR'")
    return int(match.group(1)), int(match.group(2))


@lru_cache(maxsize=256)
def is_compatible(server_version: str, requested: str) -> bool:
    """Whether a server (endpoint) at server_version can handle a request sent at version `requested`."""
    have, want = parse_version(server_version), parse_version(requested)
    return have[0] == want[0] and have[1] >= want[1]
