"""Text every service refuses in what it is sent, checked once for every JSON body (`app.json_body`).

As Nova's name format and Glance's tags do, NUL and the other C0 control characters (and DEL) are refused in names
and tags: 400 in the service's error body; descriptions may break lines (tab, line feed, carriage return), as
Neutron's, Cinder's and Keystone's do. NUL is refused in every string of a body (no database column stores it).
Opaque maps (metadata, extra specs, credential blobs) keep their other characters: upstream stores what the caller
put there.
"""

from __future__ import annotations

import re
from typing import Any

from pocketstack.common.errors import BadRequest

CONTROL = re.compile(r"[\x00-\x1f\x7f]")
CONTROL_BUT_LINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
TEXT_FIELDS = frozenset({"name", "description", "display_name", "display_description", "tags", "tag"})
MULTILINE = frozenset({"description", "display_description"})
OPAQUE = frozenset({"metadata", "meta", "extra_specs", "properties", "blob", "user_data", "config", "options",
                    "input", "extra", "binding:profile", "connector", "connection_info"})


def check_text(field: str, value: Any) -> None:
    """400 when `value` (a string, or a list of them) has a control character."""
    pattern = CONTROL_BUT_LINES if field in MULTILINE else CONTROL
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, str) and pattern.search(item):
            raise BadRequest(f"Invalid input for field/attribute {field}. Value: {item!r}. "
                             "Control characters are not allowed.")


def check_body(body: Any, field: str = "", opaque: bool = False) -> None:
    """Walk a parsed JSON body: control characters in its text fields, NUL anywhere, are 400."""
    if isinstance(body, str):
        if "\x00" in body:
            raise BadRequest(f"Invalid input for field/attribute {field or 'body'}. NUL characters are not allowed.")
        return
    if isinstance(body, list):
        for item in body:
            check_body(item, field, opaque)
        return
    if not isinstance(body, dict):
        return
    path = body.get("path")
    if "op" in body and isinstance(path, str) and path.lstrip("/") in TEXT_FIELDS:  # a JSON-patch operation
        check_text(path.lstrip("/"), body.get("value"))
    for key, value in body.items():
        check_body(key, field, opaque)
        if not opaque and key in TEXT_FIELDS:
            check_text(key, value)
        check_body(value, key, opaque or key in OPAQUE)
