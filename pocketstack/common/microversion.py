"""API microversions (`OpenStack-API-Version: compute 2.79`), as Nova and Cinder negotiate them.

A request without a header gets the minimum; `latest` gets the maximum; anything outside [min, max] is 406.
The chosen version is in `request.state.api_version` (an `APIVersion`, comparable with `>=` to a string) and
every response says which version served it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache, total_ordering

from fastapi import Request

from pocketstack.common.errors import BadRequest, NotAcceptable

_VERSION_RE = re.compile(r"^([1-9]\d*)\.(0|[1-9]\d*)$")


@total_ordering
@dataclass(frozen=True)
class APIVersion:
    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> APIVersion:
        match = _VERSION_RE.match(text.strip())
        if not match:
            raise BadRequest(f"Invalid microversion {text!r}: it must look like 2.1.")
        return cls(int(match.group(1)), int(match.group(2)))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    def _other(self, other: object) -> APIVersion:
        return _parsed(other) if isinstance(other, str) else other  # type: ignore[return-value]

    def __eq__(self, other: object) -> bool:
        o = self._other(other)
        return isinstance(o, APIVersion) and (self.major, self.minor) == (o.major, o.minor)

    def __lt__(self, other: object) -> bool:
        o = self._other(other)
        return (self.major, self.minor) < (o.major, o.minor)

    def __hash__(self) -> int:
        return hash((self.major, self.minor))


@lru_cache(maxsize=256)
def _parsed(text: str) -> APIVersion:
    """The version literals code compares with (`ver >= "2.47"`), parsed once (views compare per item)."""
    return APIVersion.parse(text)


@dataclass(frozen=True)
class MicroversionSpec:
    service_type: str  # "compute", "volume"
    minimum: str
    maximum: str
    legacy_header: str | None = None  # "X-OpenStack-Nova-API-Version"

    def negotiate(self, headers: dict[str, str]) -> APIVersion:
        requested = None
        modern = headers.get("openstack-api-version")
        if modern:
            for item in modern.split(","):
                parts = item.strip().split()
                if len(parts) == 2 and parts[0].lower() == self.service_type:
                    requested = parts[1]
        if requested is None and self.legacy_header:
            requested = headers.get(self.legacy_header.lower())
        low, high = APIVersion.parse(self.minimum), APIVersion.parse(self.maximum)
        if requested is None:
            return low
        if requested.strip().lower() == "latest":
            return high
        try:
            version = APIVersion.parse(requested)
        except BadRequest:
            raise NotAcceptable(f"Version {requested} is not supported by the API. Minimum is {low} and maximum "
                                f"is {high}.")
        if not low <= version <= high:
            raise NotAcceptable(f"Version {version} is not supported by the API. Minimum is {low} and maximum "
                                f"is {high}.")
        return version

    def response_headers(self, version: APIVersion) -> list[tuple[bytes, bytes]]:
        headers = [(b"openstack-api-version", f"{self.service_type} {version}".encode()),
                   (b"vary", b"OpenStack-API-Version" + (f", {self.legacy_header}".encode()
                                                          if self.legacy_header else b""))]
        if self.legacy_header:
            headers.append((self.legacy_header.lower().encode(), str(version).encode()))
        return headers


def api_version(request: Request) -> APIVersion:
    """The microversion negotiated for this request."""
    return request.scope["state"]["api_version"]
