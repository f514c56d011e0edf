"""Image tables. Deleted images keep their row (status `deleted`) so an image id is never reused."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, joinedload, mapped_column, relationship

from pocketstack.common.db import make_base

Base = make_base()

ID = String(64)


class Image(Base):
    __tablename__ = "images"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)
    status: Mapped[str] = mapped_column(String(30), index=True)
    visibility: Mapped[str] = mapped_column(String(20), index=True)
    protected: Mapped[bool] = mapped_column(Boolean, default=False)
    os_hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    owner: Mapped[str | None] = mapped_column(ID, nullable=True, index=True)
    disk_format: Mapped[str | None] = mapped_column(String(20), nullable=True)
    container_format: Mapped[str | None] = mapped_column(String(20), nullable=True)
    size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    virtual_size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    checksum: Mapped[str | None] = mapped_column(String(32), nullable=True)
    os_hash_algo: Mapped[str | None] = mapped_column(String(64), nullable=True)
    os_hash_value: Mapped[str | None] = mapped_column(String(128), nullable=True)
    min_disk: Mapped[int] = mapped_column(Integer, default=0)
    min_ram: Mapped[int] = mapped_column(Integer, default=0)
    location: Mapped[str | None] = mapped_column(Text, nullable=True)  # store URI of the data, e.g. file://...
    staging_location: Mapped[str | None] = mapped_column(Text, nullable=True)  # data staged for an import
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    properties: Mapped[list[ImageProperty]] = relationship(
        back_populates="image", cascade="all, delete-orphan", lazy="selectin")
    tags: Mapped[list[ImageTag]] = relationship(
        back_populates="image", cascade="all, delete-orphan", lazy="selectin")


class ImageProperty(Base):
    """A custom (non-core) image property; every value is a string, as in Glance."""

    __tablename__ = "image_properties"
    image_id: Mapped[str] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    image: Mapped[Image] = relationship(back_populates="properties")


class ImageTag(Base):
    __tablename__ = "image_tags"
    image_id: Mapped[str] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), primary_key=True)
    value: Mapped[str] = mapped_column(String(255), primary_key=True, index=True)
    image: Mapped[Image] = relationship(back_populates="tags")


class ImageMember(Base):
    """A project an image is shared with; the member project accepts or rejects it."""

    __tablename__ = "image_members"
    image_id: Mapped[str] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), primary_key=True)
    member: Mapped[str] = mapped_column(ID, primary_key=True, index=True)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


# one-image reads load properties and tags in the same query (joined): cheaper than a SELECT per collection
IMAGE_LOAD = (joinedload(Image.properties), joinedload(Image.tags))
