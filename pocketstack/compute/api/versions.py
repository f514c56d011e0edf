"""Version discovery at `/` and `/v2.1`, with the microversion range."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response

from pocketstack.common.app import json_response
from pocketstack.compute.api.common import MICROVERSIONS, base_url


def _version(request: Request) -> dict[str, Any]:
    return {"id": "v2.1", "status": "CURRENT", "version": MICROVERSIONS.maximum,
            "min_version": MICROVERSIONS.minimum, "updated": "2013-07-23T11:33:21Z",
            "links": [{"rel": "self", "href": f"{base_url(request)}/v2.1/"}],
            "media-types": [{"base": "application/json",
                             "type": "application/vnd.openstack.compute+json;version=2.1"}]}


async def versions(request: Request) -> Response:
    return json_response({"versions": [_version(request)]})


async def version_v21(request: Request) -> Response:
    return json_response({"version": _version(request)})
