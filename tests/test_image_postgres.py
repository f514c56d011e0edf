"""The image schema on PostgreSQL, the distributed case: the migrations (JSON columns, the seeded resource types),
metadefs and image tasks written and read back. Skipped when no PostgreSQL server answers at
IMAGE_TEST_POSTGRES_URL (default: postgres@127.0.0.1:5432, trust auth), except in CI."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest_asyncio
from conftest import postgres_database

from pocketstack.common.context import RequestContext
from pocketstack.common.db import Database
from pocketstack.common.timeutils import utcnow
from pocketstack.image import models as m
from pocketstack.image.metadef_store import AssociationSpec, MetadefStore, NamespaceQuery
from pocketstack.image.store import ImageStore, new_image
from pocketstack.services import SERVICES

SERVER = os.environ.get("IMAGE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SPEC = next(s for s in SERVICES if s.name == "image")
ADMIN = RequestContext(user_id="u", project_id="p", roles=["admin", "member", "reader"])


@pytest_asyncio.fixture
async def db() -> AsyncIterator[Database]:
    async with postgres_database(SERVER, "pocketstack_img") as url:
        database = Database(url)
        try:
            await database.migrate(SPEC.migrations_dir, SPEC.version_table)
            yield database
        finally:
            await database.close()


async def test_metadefs_on_postgres(db: Database) -> None:
    store = MetadefStore(db)
    assert "OS::Glance::Image" in [rt.name for rt in await store.resource_types()]
    now = utcnow()
    ns = m.MetadefNamespace(namespace="OS::Test", visibility="private", protected=False, owner="p",
                            created_at=now, updated_at=now, objects=[], properties=[], tags=[], associations=[])
    ns.properties.append(m.MetadefProperty(name="x", schema={"title": "X", "type": "string", "enum": ["a"]},
                                           created_at=now, updated_at=now))
    ns.objects.append(m.MetadefObject(name="o", required=["x"], properties={"x": {"title": "X", "type": "string"}},
                                      created_at=now, updated_at=now))
    await store.add(ns, [AssociationSpec("OS::Glance::Image", prefix="t_"), AssociationSpec("OS::New")])
    got = await store.get(ADMIN, "OS::Test")
    assert got.properties[0].schema["enum"] == ["a"] and got.objects[0].required == ["x"]
    assert [a.resource_type.name for a in got.associations] == ["OS::Glance::Image", "OS::New"]
    listed = await store.namespaces(ADMIN, NamespaceQuery(resource_types=["OS::New"]))
    assert [n.namespace for n in listed] == ["OS::Test"]
    other = RequestContext(user_id="v", project_id="q", roles=["member"])
    assert await store.namespaces(other, NamespaceQuery()) == []


async def test_image_tasks_on_postgres(db: Database) -> None:
    images = ImageStore(db)
    image = new_image("6f2a4b62-0000-4000-8000-000000000001", "p")
    now = utcnow()
    task = m.ImageTask(id="t1", image_id=image.id, type="import", status="pending", owner="p", input={"a": [1]},
                       message="", created_at=now, updated_at=now)
    await images.add(image, 10, task)
    await images.set_task("t1", "success", result={"image_id": image.id})
    shown = await images.task(ADMIN, "t1")
    assert shown.status == "success" and shown.result == {"image_id": image.id} and shown.input == {"a": [1]}
    assert [t.id for t in await images.tasks(ADMIN, image.id, lambda image: None)] == ["t1"]
