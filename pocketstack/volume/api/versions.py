"""Version discovery: `/` (300 Multiple Choices, as Cinder) and `/v3/`, with the microversion range."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response

from pocketstack.common.app import json_response
from pocketstack.volume.api.common import MICROVERSIONS

PUBLIC_PATHS = {("GET", "/"), ("GET", "/v3"), ("GET", "/v3/")}


def _versions(request: Request) -> dict[str, Any]:
    root = f"{request.url.scheme}://{request.url.netloc}"
    return {"versions": [{
        "id": "v3.0", "status": "CURRENT", "version": MICROVERSIONS.maximum, "min_version": MICROVERSIONS.minimum,
        "updated": "2023-08-31T00:00:00Z",
        "links": [{"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"},
                  {"rel": "self", "href": f"{root}/v3/"}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.volume+json;version=3"}]}]}


async def versions(request: Request) -> Response:
    return json_response(_versions(request), status=300)


async def version_v3(request: Request) -> Response:
    return json_response(_versions(request))
