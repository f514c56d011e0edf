"""The metadata API's URL map: every path is a document of the calling guest's tree; a guest POSTs its password."""

from __future__ import annotations

from pocketstack.common.routes import RouteTable
from pocketstack.compute.metadata import api

ROUTES: RouteTable = {
    "/{path:path}": {"GET": api.metadata, "POST": api.post_password},
}
