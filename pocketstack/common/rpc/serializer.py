"""What crosses the bus: plain data packed with msgpack, plus datetimes, dates and UUIDs.

Anything else (sets, ORM objects, pydantic models, enums that are not str/int subclasses) is refused with a
`SerializationError` that names the offending value's type and where it sits in the message, so the sender can
convert it (`.model_dump()`, `list(...)`) instead of finding out on the far side.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import msgpack

from pocketstack.common.rpc.exceptions import SerializationError

_EXT_DATETIME = 1  # ISO 8601 text: keeps naive vs aware and the UTC offset
_EXT_DATE = 2
_EXT_UUID = 3

_MIN_INT, _MAX_INT = -(2**63), 2**64 - 1
_SCALARS = (type(None), bool, float, str, bytes, bytearray, dt.datetime, dt.date, uuid.UUID)
ALLOWED = "None, bool, int, float, str, bytes, list, tuple, dict, datetime, date and UUID"


def _default(obj: Any) -> msgpack.ExtType:
    if isinstance(obj, dt.datetime):
        return msgpack.ExtType(_EXT_DATETIME, obj.isoformat().encode())
    if isinstance(obj, dt.date):
        return msgpack.ExtType(_EXT_DATE, obj.isoformat().encode())
    if isinstance(obj, uuid.UUID):
        return msgpack.ExtType(_EXT_UUID, obj.bytes)
    raise TypeError(type(obj).__name__)


def _ext_hook(code: int, data: bytes) -> Any:
    if code == _EXT_DATETIME:
        return dt.datetime.fromisoformat(data.decode())
    if code == _EXT_DATE:
        return dt.date.fromisoformat(data.decode())
    if code == _EXT_UUID:
        return uuid.UUID(bytes=data)
    raise SerializationError(f"unknown msgpack extension type {code} in an RPC message")


def find_unsendable(obj: Any, path: str = "") -> tuple[str, str] | None:
    """(where, why) for the first value in obj that cannot cross the bus, or None when all of it can."""
    if isinstance(obj, bool) or isinstance(obj, _SCALARS):
        return None
    if isinstance(obj, int):
        return None if _MIN_INT <= obj <= _MAX_INT else (path or "the message", "an integer outside 64 bits")
    if isinstance(obj, list | tuple):
        for i, item in enumerate(obj):
            found = find_unsendable(item, f"{path}[{i}]")
            if found:
                return found
        return None
    if isinstance(obj, dict):
        for key, value in obj.items():
            if not isinstance(key, str | int | bytes):
                return f"{path}{{{key!r}}}", f"a dict key of type {type(key).__name__!r}"
            found = find_unsendable(value, f"{path}.{key}" if path else str(key))
            if found:
                return found
        return None
    return path or "the message", f"a value of type {type(obj).__name__!r}"


def dumps(obj: Any) -> bytes:
    """Pack plain data; raise SerializationError naming what cannot be sent."""
    try:
        return msgpack.packb(obj, default=_default, use_bin_type=True, datetime=False)
    except (TypeError, ValueError, OverflowError) as exc:
        where, what = find_unsendable(obj) or ("the message", str(exc))
        raise SerializationError(
            f"cannot send {what} over RPC (at {where}): only {ALLOWED} cross the bus; convert it to plain data"
        ) from None


def loads(data: bytes) -> Any:
    try:
        return msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=False)
    except SerializationError:
        raise
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise SerializationError(f"malformed RPC message: {exc}") from None
