"""The span store: one row per recorded hop, keyed by the global request id."""

from __future__ import annotations

from sqlalchemy import Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from pocketstack.common.db import make_base

Base = make_base()


class SpanRow(Base):
    __tablename__ = "spans"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(String(64), index=True)
    source: Mapped[str] = mapped_column(String(128))
    target: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(8))
    operation: Mapped[str] = mapped_column(String(255))
    step: Mapped[str | None] = mapped_column(String(16), nullable=True)
    start: Mapped[float] = mapped_column(Float, index=True)
    duration: Mapped[float] = mapped_column(Float)
    outcome: Mapped[str] = mapped_column(Text)
    audit_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    process: Mapped[str | None] = mapped_column(String(128), nullable=True)
    span_id: Mapped[str | None] = mapped_column(String(16), nullable=True)
    parent_id: Mapped[str | None] = mapped_column(String(16), nullable=True)
