"""Fernet tokens and their rotating key repository, as Keystone does it: no token table.

The key repository is a directory of key files named by index. `0` is the staged key (the next primary), the
highest index is the primary (it signs new tokens), the others are secondaries (they still validate tokens signed
before a rotation). Rotation promotes the staged key, stages a new one and drops the oldest beyond
`max_active_keys`.
"""

from __future__ import annotations

import base64
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import msgpack
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from pocketstack.common.errors import Unauthorized

PAYLOAD_VERSION = 1
METHOD_BITS = {"password": 1, "token": 2, "application_credential": 4}
SYSTEM_ALL = "all"


class KeyRepository:
    def __init__(self, path: Path, max_active_keys: int = 3) -> None:
        self.path = path
        self.max_active_keys = max_active_keys
        self._fernet: MultiFernet | None = None
        self._loaded_mtime: float | None = None
        self._checked_at = 0.0

    def _key_indexes(self) -> list[int]:
        return sorted(int(p.name) for p in self.path.iterdir() if p.name.isdigit())

    def _write_key(self, index: int) -> None:
        tmp = self.path / f".{index}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(Fernet.generate_key())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path / str(index))

    def initialize(self) -> None:
        """Create the repository with a staged and a primary key if it holds none."""
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.path, 0o700)
        indexes = self._key_indexes()
        if 0 not in indexes:
            self._write_key(0)
        if not [i for i in indexes if i > 0]:
            self._write_key(1)
        self._fernet = None

    def rotate(self) -> int:
        """Promote the staged key to primary, stage a new key, prune the oldest. Returns the new primary index."""
        self.initialize()
        indexes = self._key_indexes()
        new_primary = max(indexes) + 1
        os.replace(self.path / "0", self.path / str(new_primary))
        self._write_key(0)
        secondaries = [i for i in self._key_indexes() if 0 < i < new_primary]
        excess = len(secondaries) + 2 - self.max_active_keys
        for index in secondaries[:max(0, excess)]:
            (self.path / str(index)).unlink()
        self._fernet = None
        return new_primary

    def fernet(self) -> MultiFernet:
        """The keys, primary first; reloaded when another process rotates them (checked once a second)."""
        now = time.monotonic()
        if self._fernet is None or now - self._checked_at > 1.0:
            self._checked_at = now
            mtime = self.path.stat().st_mtime
            if self._fernet is None or mtime != self._loaded_mtime:
                indexes = self._key_indexes()
                ordered = [*sorted((i for i in indexes if i > 0), reverse=True), 0]
                keys = [Fernet((self.path / str(i)).read_bytes().strip()) for i in ordered if i in indexes]
                self._fernet = MultiFernet(keys)
                self._loaded_mtime = mtime
        return self._fernet


@dataclass
class TokenPayload:
    user_id: str
    methods: list[str]
    issued_at: float
    expires_at: float
    audit_ids: list[str]
    project_id: str | None = None
    domain_id: str | None = None
    application_credential_id: str | None = None
    system: str | None = None  # "all": a system-scoped token
    trust_id: str | None = None  # a trust-scoped token: the trust's roles on its project
    version: int = PAYLOAD_VERSION
    extra: dict = field(default_factory=dict)


def _pack_id(value: str | None) -> bytes | str | None:
    if value is not None and len(value) == 32:
        try:
            return bytes.fromhex(value)
        except ValueError:
            pass
    return value


def _unpack_id(value: bytes | str | None) -> str | None:
    return value.hex() if isinstance(value, bytes) else value


def new_audit_id() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


class TokenProvider:
    def __init__(self, keys: KeyRepository) -> None:
        self.keys = keys

    def encode(self, payload: TokenPayload) -> str:
        bits = 0
        for method in payload.methods:
            bits |= METHOD_BITS[method]
        packed = msgpack.packb([
            payload.version, _pack_id(payload.user_id), bits, payload.issued_at, payload.expires_at,
            payload.audit_ids, _pack_id(payload.project_id), _pack_id(payload.domain_id),
            _pack_id(payload.application_credential_id), payload.system, _pack_id(payload.trust_id),
        ])
        return self.keys.fernet().encrypt(packed).decode().rstrip("=")

    def decode(self, token: str) -> TokenPayload:
        """Decrypt and verify a token; Unauthorized when tampered, signed by an unknown key or malformed."""
        if not token or len(token) > 1024:
            raise Unauthorized("The token is malformed.")
        padded = token + "=" * (-len(token) % 4)
        try:
            raw = self.keys.fernet().decrypt(padded.encode())
            fields = msgpack.unpackb(raw)
            fields = [*fields, *[None] * (11 - len(fields))]  # tokens from before system and trust scope
            (version, user_id, bits, issued_at, expires_at, audit_ids, project_id, domain_id,
             app_cred_id, system, trust_id) = fields
        except (InvalidToken, ValueError, TypeError, msgpack.UnpackException):
            raise Unauthorized("The token is invalid.")
        if version != PAYLOAD_VERSION:
            raise Unauthorized("The token format is not supported.")
        methods = [name for name, bit in METHOD_BITS.items() if bits & bit]
        return TokenPayload(
            user_id=_unpack_id(user_id) or "", methods=methods, issued_at=issued_at, expires_at=expires_at,
            audit_ids=list(audit_ids), project_id=_unpack_id(project_id), domain_id=_unpack_id(domain_id),
            application_credential_id=_unpack_id(app_cred_id), system=system, trust_id=_unpack_id(trust_id),
        )
