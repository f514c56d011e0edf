"""The trace store: batches of spans in, a request's spans out, bounded by age and count."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from pocketstack.common.db import Database
from pocketstack.settings import Settings
from pocketstack.trace.models import SpanRow

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_trace"


class TraceStore:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        url = settings.trace.database_url or f"sqlite+aiosqlite:///{settings.data_dir / 'trace.db'}"
        self.db = Database(url)
        self._written_since_prune = 0

    async def migrate(self) -> None:
        await self.db.migrate(MIGRATIONS, VERSION_TABLE)

    async def write(self, spans: list[dict[str, Any]]) -> None:
        if not spans:
            return
        await self.db.run(lambda session: session.execute(insert(SpanRow), spans), write=True)
        self._written_since_prune += len(spans)
        if self._written_since_prune >= 10_000:
            self._written_since_prune = 0
            await self.prune()

    async def prune(self) -> int:
        """Drop spans older than the retention time, then the oldest beyond `max_spans`."""
        cfg = self.settings.trace

        def prune(session: Session) -> int:
            removed = session.execute(delete(SpanRow).where(
                SpanRow.start < time.time() - cfg.retention_hours * 3600)).rowcount or 0
            count = session.scalar(select(func.count()).select_from(SpanRow)) or 0
            if count > cfg.max_spans:
                cutoff = session.scalar(select(SpanRow.id).order_by(SpanRow.id.desc()).offset(cfg.max_spans).limit(1))
                if cutoff is not None:
                    removed += session.execute(delete(SpanRow).where(SpanRow.id <= cutoff)).rowcount or 0
            return removed

        return await self.db.run(prune, write=True)

    async def spans(self, request_id: str) -> list[SpanRow]:
        return await self.db.run(lambda session: list(session.scalars(select(SpanRow).where(
            SpanRow.request_id == request_id).order_by(SpanRow.start, SpanRow.id))), write=False)

    async def token_issue(self, audit_id: str) -> SpanRow | None:
        """The span of the token issue (FLOW.md steps 1-2) whose token carried this audit id."""
        return await self.db.run(lambda session: session.scalar(select(SpanRow).where(
            SpanRow.audit_id == audit_id, SpanRow.step == "1-2").limit(1)), write=False)

    async def close(self) -> None:
        await self.db.close()


def otlp_exporter(settings: Settings) -> object | None:
    """The OpenTelemetry exporter a process's Tracer also hands its spans to, when `trace.otlp_endpoint` is set
    (imported only then: the SDK costs start-up time)."""
    if not settings.trace.otlp_endpoint:
        return None
    from pocketstack.trace.otlp import OtlpExport

    return OtlpExport(settings.trace.otlp_endpoint)
