"""Key/value metadata of volumes and snapshots (one row per key)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from pocketstack.common.context import RequestContext
from pocketstack.common.db import Database
from pocketstack.common.errors import NotFound
from pocketstack.common.timeutils import utcnow
from pocketstack.volume import models as m
from pocketstack.volume.store.lookups import Authorize

Lookup = Callable[[Session, str, RequestContext], Any]  # the owner as the caller may see it (visible_volume, ...)

# the item model and the column naming its owner, per owner type
_ITEMS: dict[type, tuple[type, str]] = {m.Volume: (m.VolumeMetadata, "volume_id"),
                                        m.Snapshot: (m.SnapshotMetadata, "snapshot_id")}


def metadata_of(owner: Any) -> dict[str, str]:
    return {i.key: i.value for i in owner.metadata_items}


def write_metadata(session: Session, owner: Any, metadata: dict[str, str], *, replace: bool) -> dict[str, str]:
    """Set `metadata` on a volume or snapshot (with `replace`, drop the keys it does not name); returns it all."""
    item_model, owner_column = _ITEMS[type(owner)]
    have = {i.key: i for i in owner.metadata_items}
    for key, item in have.items():
        if replace and key not in metadata:
            session.delete(item)
    for key, value in metadata.items():
        if key in have:
            have[key].value = value
        else:
            session.add(item_model(**{owner_column: owner.id, "key": key, "value": value}))
    owner.updated_at = utcnow()
    session.flush()
    session.expire(owner, ["metadata_items"])
    return metadata_of(owner)


def delete_metadata_item(session: Session, owner: Any, key: str, kind: str) -> None:
    """Drop one key (404 when the owner has none such); `kind` names the owner in the message."""
    item = next((i for i in owner.metadata_items if i.key == key), None)
    if item is None:
        raise NotFound(f"{kind} {owner.id} has no metadata with key {key}.")
    session.delete(item)
    owner.updated_at = utcnow()


async def read_metadata(db: Database, lookup: Lookup, ctx: RequestContext, authorize: Authorize,
                        owner_id: str) -> dict[str, str]:
    def read(session: Session) -> dict[str, str]:
        owner = lookup(session, owner_id, ctx)
        authorize(owner)
        return metadata_of(owner)
    return await db.run(read, write=False)


async def update_metadata(db: Database, lookup: Lookup, ctx: RequestContext, authorize: Authorize, owner_id: str,
                          metadata: dict[str, str], *, replace: bool,
                          check: Callable[[Any], None] | None = None) -> dict[str, str]:
    """`write_metadata` on the owner, after `authorize` and the owner's own `check` of its state."""
    def write(session: Session) -> dict[str, str]:
        owner = lookup(session, owner_id, ctx)
        authorize(owner)
        if check is not None:
            check(owner)
        return write_metadata(session, owner, metadata, replace=replace)
    return await db.run(write, write=True)


async def remove_metadata_item(db: Database, lookup: Lookup, ctx: RequestContext, authorize: Authorize,
                               owner_id: str, key: str, kind: str) -> None:
    def write(session: Session) -> None:
        owner = lookup(session, owner_id, ctx)
        authorize(owner)
        delete_metadata_item(session, owner, key, kind)
    await db.run(write, write=True)
