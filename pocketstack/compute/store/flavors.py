"""Flavors, their extra specs and their project access lists (`/flavors`, `os-flavor-manage`, `os-extra_specs`,
`os-flavor-access`, and the default flavors a new cloud starts with)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pocketstack.common.context import RequestContext
from pocketstack.common.db import Database
from pocketstack.common.errors import BadRequest, Conflict, NotFound
from pocketstack.common.timeutils import utcnow
from pocketstack.compute import models as m

Flavor = m.Flavor  # the row type the API's views render

# The columns `GET /flavors?sort_key=` may name.
SORT_KEYS = {"created_at": m.Flavor.created_at, "description": m.Flavor.description, "disabled": m.Flavor.disabled,
             "ephemeral_gb": m.Flavor.ephemeral_gb, "flavorid": m.Flavor.flavorid, "id": m.Flavor.id,
             "is_public": m.Flavor.is_public, "memory_mb": m.Flavor.memory_mb, "name": m.Flavor.name,
             "root_gb": m.Flavor.root_gb, "rxtx_factor": m.Flavor.rxtx_factor, "swap": m.Flavor.swap,
             "vcpus": m.Flavor.vcpus}


@dataclass(frozen=True)
class FlavorQuery:
    """A page of `GET /flavors`: visibility, filters, sort and pagination, already validated."""

    is_public: bool | None  # True: public (plus the viewer's private ones), False: private only, None: all
    min_ram: int | None
    min_disk: int | None
    sort_key: str
    sort_dir: str  # asc | desc
    marker: str | None
    limit: int


def _visible(ctx: RequestContext) -> Any:
    """A flavor a non-admin may see: public, or private with the caller's project on its access list."""
    return or_(m.Flavor.is_public.is_(True),
               m.Flavor.id.in_(select(m.FlavorProject.flavor_id).where(m.FlavorProject.project_id == ctx.project_id)))


def _get(session: Session, flavor_id: str, ctx: RequestContext) -> m.Flavor:
    """The flavor `flavor_id` as the caller may see it; 404 otherwise."""
    query = select(m.Flavor).where(m.Flavor.flavorid == flavor_id)
    if not ctx.is_admin:
        query = query.where(_visible(ctx))
    flavor = session.scalar(query)
    if flavor is None:
        raise NotFound(f"Flavor {flavor_id} could not be found.")
    return flavor


def _specs(session: Session, flavor_ids: list[int]) -> dict[int, dict[str, str]]:
    result: dict[int, dict[str, str]] = {i: {} for i in flavor_ids}
    if flavor_ids:
        for row in session.scalars(select(m.FlavorExtraSpec).where(m.FlavorExtraSpec.flavor_id.in_(flavor_ids))):
            result[row.flavor_id][row.key] = row.value
    return result


def _upsert_specs(session: Session, flavor: m.Flavor, specs: dict[str, str]) -> None:
    for key, value in specs.items():
        row = session.get(m.FlavorExtraSpec, (flavor.id, key))
        if row is None:
            session.add(m.FlavorExtraSpec(flavor_id=flavor.id, key=key, value=value))
        else:
            row.value = value


def _access_list(session: Session, flavor: m.Flavor) -> list[dict[str, str]]:
    rows = session.scalars(select(m.FlavorProject.project_id).where(
        m.FlavorProject.flavor_id == flavor.id).order_by(m.FlavorProject.project_id)).all()
    return [{"flavor_id": flavor.flavorid, "tenant_id": project} for project in rows]


def _page(session: Session, ctx: RequestContext, page: FlavorQuery, with_specs: bool
          ) -> tuple[list[m.Flavor], dict[int, dict[str, str]]]:
    query = select(m.Flavor).where(m.Flavor.disabled.is_(False))
    if page.is_public is True:
        query = query.where(_visible(ctx))
    elif page.is_public is False:
        query = query.where(m.Flavor.is_public.is_(False))
    if page.min_ram is not None:
        query = query.where(m.Flavor.memory_mb >= page.min_ram)
    if page.min_disk is not None:
        query = query.where(m.Flavor.root_gb >= page.min_disk)
    column = SORT_KEYS[page.sort_key]
    ascending = page.sort_dir == "asc"
    if page.marker:
        marker = session.scalar(select(m.Flavor).where(m.Flavor.flavorid == page.marker))
        if marker is None:
            raise BadRequest(f"marker [{page.marker}] not found")
        value = getattr(marker, column.key)
        after = column > value if ascending else column < value
        query = query.where(or_(after, and_(column == value, m.Flavor.id > marker.id)))
    query = query.order_by(column.asc() if ascending else column.desc(), m.Flavor.id.asc())
    rows = list(session.scalars(query.limit(page.limit)).all())
    return rows, _specs(session, [f.id for f in rows]) if with_specs else {}


class FlavorStore:
    """The flavor rows; lookups see what the caller `ctx` may see (admins: all, others: public plus shared)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def add_defaults(self, flavors: list[tuple[str, str, int, int, int]]) -> None:
        """Create (flavorid, name, vcpus, ram MiB, disk GiB) public flavors if the cloud has no flavor yet."""

        def add(session: Session) -> None:
            if session.scalar(select(func.count()).select_from(m.Flavor)):
                return
            for flavorid, name, vcpus, ram, disk in flavors:
                session.add(m.Flavor(flavorid=flavorid, name=name, vcpus=vcpus, memory_mb=ram, root_gb=disk,
                                     ephemeral_gb=0, swap=0, rxtx_factor=1.0, is_public=True, disabled=False,
                                     created_at=utcnow()))

        await self.db.run(add, write=True)

    async def page(self, ctx: RequestContext, page: FlavorQuery, *, with_specs: bool
                   ) -> tuple[list[m.Flavor], dict[int, dict[str, str]]]:
        """A page of enabled flavors and (with_specs) their extra specs by row id; 400 for an unknown marker."""
        return await self.db.run(lambda s: _page(s, ctx, page, with_specs), write=False)

    async def get_with_specs(self, flavor_id: str, ctx: RequestContext) -> tuple[m.Flavor, dict[str, str]]:
        def read(session: Session) -> tuple[m.Flavor, dict[str, str]]:
            flavor = _get(session, flavor_id, ctx)
            return flavor, _specs(session, [flavor.id])[flavor.id]

        return await self.db.run(read, write=False)

    async def create(self, values: dict[str, Any]) -> m.Flavor:
        """A new flavor from its column values; 409 when its name or flavorid is taken."""

        def create(session: Session) -> m.Flavor:
            name, flavorid = values["name"], values["flavorid"]
            if session.scalar(select(m.Flavor.id).where(m.Flavor.name == name)) is not None:
                raise Conflict(f"Flavor with name {name} already exists.")
            if session.scalar(select(m.Flavor.id).where(m.Flavor.flavorid == flavorid)) is not None:
                raise Conflict(f"Flavor with ID {flavorid} already exists.")
            flavor = m.Flavor(**values, disabled=False, created_at=utcnow())
            session.add(flavor)
            return flavor

        try:
            return await self.db.run(create, write=True)
        except IntegrityError:  # a concurrent create won the race for the name or id
            raise Conflict(f"Flavor with name {values['name']} or ID {values['flavorid']} already exists.") from None

    async def set_description(self, flavor_id: str, ctx: RequestContext, description: str | None
                              ) -> tuple[m.Flavor, dict[str, str]]:
        def update(session: Session) -> tuple[m.Flavor, dict[str, str]]:
            flavor = _get(session, flavor_id, ctx)
            flavor.description = description
            return flavor, _specs(session, [flavor.id])[flavor.id]

        return await self.db.run(update, write=True)

    async def delete(self, flavor_id: str, ctx: RequestContext) -> None:
        """Delete a flavor with its specs and access list (servers keep the snapshot taken at boot, as in Nova)."""

        def remove(session: Session) -> None:
            flavor = _get(session, flavor_id, ctx)
            session.execute(delete(m.FlavorExtraSpec).where(m.FlavorExtraSpec.flavor_id == flavor.id))
            session.execute(delete(m.FlavorProject).where(m.FlavorProject.flavor_id == flavor.id))
            session.delete(flavor)

        await self.db.run(remove, write=True)

    async def extra_specs(self, flavor_id: str, ctx: RequestContext) -> dict[str, str]:
        return (await self.get_with_specs(flavor_id, ctx))[1]

    async def extra_spec(self, flavor_id: str, ctx: RequestContext, key: str) -> str:
        def read(session: Session) -> str:
            row = session.get(m.FlavorExtraSpec, (_get(session, flavor_id, ctx).id, key))
            if row is None:
                raise NotFound(f"Flavor {flavor_id} has no extra specs with key {key}.")
            return row.value

        return await self.db.run(read, write=False)

    async def set_extra_specs(self, flavor_id: str, ctx: RequestContext, specs: dict[str, str]) -> None:
        await self.db.run(lambda s: _upsert_specs(s, _get(s, flavor_id, ctx), specs), write=True)

    async def delete_extra_spec(self, flavor_id: str, ctx: RequestContext, key: str) -> None:
        def remove(session: Session) -> None:
            row = session.get(m.FlavorExtraSpec, (_get(session, flavor_id, ctx).id, key))
            if row is None:
                raise NotFound(f"Flavor {flavor_id} has no extra specs with key {key}.")
            session.delete(row)

        await self.db.run(remove, write=True)

    async def access_list(self, flavor_id: str, ctx: RequestContext) -> list[dict[str, str]]:
        """The projects a private flavor is shared with; 404 for a public flavor."""

        def read(session: Session) -> list[dict[str, str]]:
            flavor = _get(session, flavor_id, ctx)
            if flavor.is_public:
                raise NotFound("Access list not available for public flavors.")
            return _access_list(session, flavor)

        return await self.db.run(read, write=False)

    async def add_access(self, flavor_id: str, ctx: RequestContext, project_id: str) -> list[dict[str, str]]:
        """Share a private flavor with a project; the access list after."""

        def add(session: Session) -> list[dict[str, str]]:
            flavor = _get(session, flavor_id, ctx)
            if flavor.is_public:
                raise Conflict("Can not add access to a public flavor.")
            if session.get(m.FlavorProject, (flavor.id, project_id)) is not None:
                raise Conflict(f"Flavor access already exists for flavor {flavor_id} and project {project_id} "
                               "combination.")
            session.add(m.FlavorProject(flavor_id=flavor.id, project_id=project_id))
            session.flush()
            return _access_list(session, flavor)

        return await self.db.run(add, write=True)

    async def remove_access(self, flavor_id: str, ctx: RequestContext, project_id: str) -> list[dict[str, str]]:
        """Stop sharing a flavor with a project; the access list after."""

        def remove(session: Session) -> list[dict[str, str]]:
            flavor = _get(session, flavor_id, ctx)
            row = session.get(m.FlavorProject, (flavor.id, project_id))
            if row is None:
                raise NotFound(f"Flavor access not found for {flavor_id} / {project_id} combination.")
            session.delete(row)
            session.flush()
            return _access_list(session, flavor)

        return await self.db.run(remove, write=True)
