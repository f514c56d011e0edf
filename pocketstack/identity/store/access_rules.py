"""Application credential access rules: a user's (service, method, path) rules, shared by the user's
application credentials, kept as records (`access_rule` per rule, `app_cred_rules` per credential)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pocketstack.common.db import Database
from pocketstack.common.errors import BadRequest, Forbidden, NotFound
from pocketstack.identity import models as m
from pocketstack.identity.store.records import Record

RULE_KEYS = ("service", "method", "path")


def _rule(row: Record) -> dict[str, Any]:
    return {"id": row.id, **{k: row.data.get(k) for k in RULE_KEYS}}


async def attach(db: Database, user_id: str, cred_id: str, wanted: list[dict[str, Any]],
                 new_id: Any) -> list[dict[str, Any]]:
    """Give credential `cred_id` the rules `wanted` (by id, or by service/method/path: an identical rule of the
    user is reused, else created); the rules."""
    async def write(session: AsyncSession) -> list[dict[str, Any]]:
        mine = (await session.scalars(select(Record).where(Record.kind == "access_rule",
                                                            Record.owner == user_id))).all()
        ids: list[str] = []
        for ref in wanted:
            if not isinstance(ref, dict):
                raise BadRequest("Invalid input: an access rule must be an object.")
            if ref.get("id"):
                match = [r for r in mine if r.id == ref["id"]]
                if not match:
                    raise NotFound(f"Could not find access rule: {ref['id']}.")
            else:
                if set(ref) - set(RULE_KEYS) or not all(isinstance(ref.get(k), str) and ref.get(k)
                                                        for k in RULE_KEYS):
                    raise BadRequest("Invalid input: an access rule has a 'service', a 'method' and a 'path'.")
                if ref["method"] not in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"):
                    raise BadRequest(f"Invalid input: {ref['method']!r} is not an HTTP method.")
                match = [r for r in mine if all(r.data.get(k) == ref[k] for k in RULE_KEYS)]
                if not match:
                    row = Record(kind="access_rule", id=new_id(), owner=user_id,
                                 data={k: ref[k] for k in RULE_KEYS})
                    session.add(row)
                    mine = [*mine, row]
                    match = [row]
            ids.append(match[0].id)
        session.add(Record(kind="app_cred_rules", id=cred_id, owner=user_id, data={"rule_ids": ids}))
        await session.flush()
        by_id = {r.id: r for r in mine}
        return [_rule(by_id[i]) for i in ids]
    return await db.run(write, write=True)


async def of_user(db: Database, user_id: str) -> tuple[dict[str, dict[str, Any]], dict[str, list[str]]]:
    """The user's rules by id, and the rule ids of each of the user's credentials."""
    async def read(session: AsyncSession) -> tuple[dict[str, dict[str, Any]], dict[str, list[str]]]:
        rows = (await session.scalars(select(Record).where(
            Record.owner == user_id, Record.kind.in_(("access_rule", "app_cred_rules"))))).all()
        rules = {r.id: _rule(r) for r in rows if r.kind == "access_rule"}
        creds = {r.id: list(r.data.get("rule_ids", [])) for r in rows if r.kind == "app_cred_rules"}
        return rules, creds
    return await db.run(read, write=False)


async def detach(session: AsyncSession, cred_id: str) -> None:
    """Inside the credential's deletion: forget its rules (the rules stay the user's)."""
    row = await session.get(Record, ("app_cred_rules", cred_id))
    if row is not None:
        await session.delete(row)


async def delete_rule(db: Database, user_id: str, rule_id: str) -> None:
    """Delete a rule of the user; 403 while an application credential uses it."""
    async def write(session: AsyncSession) -> None:
        row = await session.get(Record, ("access_rule", rule_id))
        if row is None or row.owner != user_id:
            raise NotFound(f"Could not find access rule: {rule_id}.")
        users = (await session.scalars(select(Record).where(Record.kind == "app_cred_rules",
                                                             Record.owner == user_id))).all()
        if any(rule_id in u.data.get("rule_ids", []) for u in users):
            raise Forbidden("An application credential still uses the access rule; delete it first.")
        if await session.get(m.User, user_id) is None:
            raise NotFound(f"Could not find user: {user_id}.")
        await session.delete(row)
    await db.run(write, write=True)
