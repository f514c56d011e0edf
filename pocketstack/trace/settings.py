"""The span store's settings section (`[trace]`)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class TraceSettings(BaseModel):
    """The span store behind `pocketstack trace`."""

    enabled: bool = True
    database_url: str | None = None  # default: DATA_DIR/trace.db
    retention_hours: float = Field(72.0, gt=0)
    max_spans: int = Field(1_000_000, ge=1000)
    otlp_endpoint: str | None = None  # an OTLP/HTTP collector (Jaeger: http://127.0.0.1:4318): spans exported too
