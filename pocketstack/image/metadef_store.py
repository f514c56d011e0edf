"""The SQL of metadata definitions (metadefs): namespaces with their objects, properties, tags and resource
type associations, and the resource types.

Every method is one `Database.run` transaction, as in `store.py`. Changes to a namespace's contents take a
callback that runs inside the transaction on the loaded namespace (its collections are loaded with it):
raising there rolls the whole change back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from pocketstack.common.context import RequestContext
from pocketstack.common.db import Database
from pocketstack.common.errors import BadRequest, Conflict, NotFound
from pocketstack.common.timeutils import utcnow
from pocketstack.image import models as m

T = TypeVar("T")

# The row types handlers and views see.
Namespace = m.MetadefNamespace
MetadefObject = m.MetadefObject
MetadefProperty = m.MetadefProperty
MetadefTag = m.MetadefTag
ResourceType = m.MetadefResourceType
Association = m.MetadefAssociation

NAMESPACE_SORT_KEYS = ("created_at", "updated_at", "namespace", "display_name", "visibility", "protected", "owner")


@dataclass
class AssociationSpec:
    """A resource type association as a request asks for it."""

    name: str
    prefix: str | None = None
    properties_target: str | None = None


@dataclass
class NamespaceQuery:
    """A parsed namespace list request."""

    visibility: str | None = None
    resource_types: list[str] = field(default_factory=list)
    sort_key: str = "created_at"
    sort_dir: str = "desc"
    marker: str | None = None
    limit: int = 25


def namespace_missing(name: str) -> NotFound:
    return NotFound(f"Metadata definition namespace={name} was not found.")


def _can_see(ctx: RequestContext, ns: m.MetadefNamespace) -> bool:
    """Public namespaces are everyone's; private ones only their owner's project's (and admin's)."""
    return ctx.is_admin or ns.visibility == "public" or (ns.owner is not None and ns.owner == ctx.project_id)


def _visible(session: Session, ctx: RequestContext, name: str) -> m.MetadefNamespace:
    ns = session.scalars(select(m.MetadefNamespace).where(m.MetadefNamespace.namespace == name)).first()
    if ns is None or not _can_see(ctx, ns):
        raise namespace_missing(name)
    return ns


def _resource_type(session: Session, name: str, *, create: bool) -> m.MetadefResourceType:
    found = session.scalars(select(m.MetadefResourceType).where(m.MetadefResourceType.name == name)).first()
    if found is None:
        if not create:
            raise NotFound(f"Metadata definition resource-type={name} not found.")
        now = utcnow()
        found = m.MetadefResourceType(name=name, protected=False, created_at=now, updated_at=now)
        session.add(found)
        session.flush()
    return found


def _associate(session: Session, ns: m.MetadefNamespace, spec: AssociationSpec) -> m.MetadefAssociation:
    """Associate a resource type (made when it does not exist yet, as Glance does) with the namespace."""
    if any(a.resource_type.name == spec.name for a in ns.associations):
        raise Conflict(f"The metadata definition resource-type association of resource-type={spec.name} to "
                       f"namespace={ns.namespace}, already exists.")
    now = utcnow()
    association = m.MetadefAssociation(resource_type=_resource_type(session, spec.name, create=True),
                                       prefix=spec.prefix, properties_target=spec.properties_target,
                                       created_at=now, updated_at=now)
    ns.associations.append(association)
    return association


class MetadefStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # ----- namespaces ------------------------------------------------------------------------------------
    async def namespaces(self, ctx: RequestContext, q: NamespaceQuery) -> list[m.MetadefNamespace]:
        """Up to `limit + 1` namespaces the caller may see (one more than the page tells whether there is a
        next), in the order asked for, after the marker namespace."""
        def read(session: Session) -> list[m.MetadefNamespace]:
            query = select(m.MetadefNamespace)
            if not ctx.is_admin:
                query = query.where(or_(m.MetadefNamespace.visibility == "public",
                                        m.MetadefNamespace.owner == ctx.project_id))
            if q.visibility is not None:
                query = query.where(m.MetadefNamespace.visibility == q.visibility)
            if q.resource_types:
                associated = select(m.MetadefAssociation.namespace_id).join(m.MetadefResourceType).where(
                    m.MetadefResourceType.name.in_(q.resource_types))
                query = query.where(m.MetadefNamespace.id.in_(associated))
            column = getattr(m.MetadefNamespace, q.sort_key)
            order = [column.asc(), m.MetadefNamespace.id.asc()] if q.sort_dir == "asc" else [
                column.desc(), m.MetadefNamespace.id.desc()]
            rows = list(session.scalars(query.order_by(*order)))
            if q.marker is not None:
                at = next((i for i, ns in enumerate(rows) if ns.namespace == q.marker), None)
                if at is None:
                    raise BadRequest(f"Invalid marker. Namespace {q.marker} could not be found.")
                rows = rows[at + 1:]
            return rows[:q.limit + 1]

        return await self.db.run(read, write=False)

    async def get(self, ctx: RequestContext, name: str) -> m.MetadefNamespace:
        return await self.db.run(lambda s: _visible(s, ctx, name), write=False)

    async def add(self, ns: m.MetadefNamespace, associations: list[AssociationSpec]) -> None:
        """Store a new namespace (with whatever contents it was built with) unless its name is taken."""
        def write(session: Session) -> None:
            taken = session.scalars(select(m.MetadefNamespace.id).where(
                m.MetadefNamespace.namespace == ns.namespace)).first()
            if taken is not None:
                raise Conflict(f"Metadata definition namespace={ns.namespace} already exists.")
            session.add(ns)
            for spec in associations:
                _associate(session, ns, spec)

        await self.db.run(write, write=True)

    async def change(self, ctx: RequestContext, name: str, change: Callable[[m.MetadefNamespace], T], *,
                     rename: str | None = None) -> T:
        """Apply `change` to a namespace the caller may see, in one write transaction; `rename`: the name
        the change gives it, checked to be free after the change (and its policy check) ran."""
        def write(session: Session) -> T:
            ns = _visible(session, ctx, name)
            with session.no_autoflush:  # the rename is not written before the check below
                result = change(ns)
                if rename is not None and rename != name:
                    taken = session.scalars(select(m.MetadefNamespace.id).where(
                        m.MetadefNamespace.namespace == rename, m.MetadefNamespace.id != ns.id)).first()
                    if taken is not None:
                        raise Conflict(f"Metadata definition namespace={rename} already exists.")
            return result

        return await self.db.run(write, write=True)

    async def delete(self, ctx: RequestContext, name: str, check: Callable[[m.MetadefNamespace], None]) -> None:
        """Delete a namespace and everything in it."""
        def write(session: Session) -> None:
            ns = _visible(session, ctx, name)
            check(ns)
            session.delete(ns)

        await self.db.run(write, write=True)

    # ----- resource types --------------------------------------------------------------------------------
    async def resource_types(self) -> list[m.MetadefResourceType]:
        return await self.db.run(lambda s: list(s.scalars(select(m.MetadefResourceType).order_by(
            m.MetadefResourceType.id))), write=False)

    async def associate(self, ctx: RequestContext, name: str, spec: AssociationSpec,
                        check: Callable[[m.MetadefNamespace], None]) -> m.MetadefAssociation:
        def write(session: Session) -> m.MetadefAssociation:
            ns = _visible(session, ctx, name)
            check(ns)
            return _associate(session, ns, spec)

        return await self.db.run(write, write=True)

    async def dissociate(self, ctx: RequestContext, name: str, resource_type: str,
                         check: Callable[[m.MetadefNamespace], None]) -> None:
        def write(session: Session) -> None:
            ns = _visible(session, ctx, name)
            check(ns)
            _resource_type(session, resource_type, create=False)
            found = next((a for a in ns.associations if a.resource_type.name == resource_type), None)
            if found is None:
                raise NotFound(f"The metadata definition resource-type association of resource-type="
                               f"{resource_type} to namespace={name}, was not found.")
            ns.associations.remove(found)

        await self.db.run(write, write=True)
