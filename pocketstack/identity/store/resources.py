"""What the domain, project, user and group stores share: their row types, get-or-404, filtered lists, updates,
and Keystone's 409 on a duplicate name."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pocketstack.common.db import Database
from pocketstack.common.errors import Conflict, Forbidden
from pocketstack.identity.service import IdentityManager
from pocketstack.identity.store.common import get_or_404

T = TypeVar("T")

async def find(db: Database, model: type[T], *, enabled: bool | None = None, **equal: str | None) -> list[T]:
    """The rows of `model` by name whose columns equal the given values (None: no filter), enabled or not."""
    query = select(model).order_by(model.name)  # type: ignore[attr-defined]
    for column, value in equal.items():
        if value is not None:
            query = query.where(getattr(model, column) == value)
    if enabled is not None:
        query = query.where(model.enabled.is_(enabled))  # type: ignore[attr-defined]

    async def read(session: AsyncSession) -> list[T]:
        return list((await session.scalars(query)).all())
    return await db.run(read, write=False)


@contextmanager
def duplicate_name(kind: str, name: str | None, domain_id: str | None = None) -> Iterator[None]:
    """Keystone's 409 for a name already taken (in the domain `domain_id`, when given) while writing a `kind`."""
    try:
        yield
    except IntegrityError:
        where = f" at domain ID {domain_id}" if domain_id is not None else ""
        raise Conflict(f"Conflict occurred attempting to store {kind} - Duplicate entry found with name "
                       f"{name}{where}.") from None


def apply_changes(row: Any, attrs: dict[str, Any], extra: dict[str, Any]) -> None:
    """Set a row's `attrs` and merge `extra` into its extra attributes."""
    for attr, value in attrs.items():
        setattr(row, attr, value)
    row.extra = {**(row.extra or {}), **extra}


async def update_enablable(mgr: IdentityManager, model: type[T], kind: str, row_id: str, *, attrs: dict[str, Any],
                           enabled: bool | None, extra: dict[str, Any], forbid_disabling: str | None = None) -> T:
    """Set the `attrs` and `extra` of a domain or project and enable or disable it: disabling revokes the tokens
    scoped to it, and is a 403 with the message `forbid_disabling` when that is given."""
    async def write(session: AsyncSession) -> T:
        with duplicate_name(kind, attrs.get("name")):
            row: Any = await get_or_404(session, model, row_id, kind)
            apply_changes(row, attrs, extra)
            if enabled is not None:
                if forbid_disabling is not None and not enabled:
                    raise Forbidden(forbid_disabling)
                if row.enabled and not enabled:
                    await mgr.add_revocation(session, **{f"{kind}_id": row_id})
                row.enabled = enabled
            await session.flush()
        return row
    return await mgr.db.run(write, write=True)
