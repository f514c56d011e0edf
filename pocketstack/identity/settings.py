"""The identity service's settings section (`[identity]`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from pocketstack.common.config import ServiceSettings


class IdentitySettings(ServiceSettings):
    port: int = 5000
    token_expiration: int = Field(3600, description="token lifetime in seconds")
    bcrypt_rounds: int = Field(12, ge=4, le=31, description="bcrypt cost for passwords and secrets")
    max_active_keys: int = Field(3, ge=2, description="Fernet keys kept: staged + primary + secondaries")
    admin_password: str | None = None  # generated on first start when unset
    demo_password: str | None = None
    revocation_refresh: float = Field(1.0, description="seconds between reloads of revocation events")
    key_repository: Path | None = None  # default: DATA_DIR/fernet-keys
    credential_key_repository: Path | None = Field(
        None, description="Fernet keys that encrypt credential blobs at rest; default DATA_DIR/credential-keys")
