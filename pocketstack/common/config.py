"""The settings mechanism: `pocketstack.toml` + `POCKETSTACK_*` environment variables, and the sections shared by
every process (`[auth]`, `[rpc]`).

Each service declares its own section model next to its code (`pocketstack/<service>/settings.py`); the top-level
`pocketstack.settings.Settings` composes them. Precedence (highest first): explicit keyword arguments, environment
(`POCKETSTACK_IDENTITY__PORT=5001`), the TOML file (`POCKETSTACK_CONFIG` or `./pocketstack.toml`), then the
defaults, which serve the all-in-one case.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_DATA_DIR = Path.home() / ".local" / "share" / "pocketstack"


class ServiceSettings(BaseModel):
    """What every HTTP service has: where it listens and where its database is."""

    port: int
    database_url: str | None = None  # default: a SQLite file in the data dir
    workers: int = Field(1, ge=1, description="API worker processes of `pocketstack serve`")


class AuthSettings(BaseModel):
    """The token validation cache every consuming service keeps (keystonemiddleware + memcached)."""

    cache_ttl: float = 5.0
    cache_size: int = 10000
    cache_backend: Literal["memory", "redis"] = "memory"
    cache_url: str | None = None  # redis://host:6379/0 when cache_backend = "redis"


class RpcSettings(BaseModel):
    """The RPC bus between the processes of a service family (oslo.messaging's transport_url)."""

    transport_url: str = "local://"  # local:// (in-process, all-in-one) or amqp://user:pass@host:5672/vhost
    call_timeout: float = Field(60.0, gt=0, description="seconds a call waits for its reply")
    exchange: str = "pocketstack"  # the AMQP topic exchange (oslo's control_exchange)


class CoreSettings(BaseSettings):
    """The settings every process has, whatever services it runs; services' sections are added by subclassing.

    `service(name)` and the URL helpers find a section by the service's name, so common code reaches any
    service's port and database without knowing the services.
    """

    model_config = SettingsConfigDict(
        env_prefix="POCKETSTACK_", env_nested_delimiter="__", extra="ignore", validate_default=True
    )

    data_dir: Path = DEFAULT_DATA_DIR
    bind: str = "127.0.0.1"
    public_host: str | None = None  # host name put in catalog URLs; default: bind (127.0.0.1 for 0.0.0.0)
    port_offset: int = 0
    region: str = "RegionOne"
    log_level: str = "info"
    access_log: bool = True
    policy_file: Path | None = None  # YAML/JSON of rule overrides, as oslo.policy's policy.yaml

    auth: AuthSettings = AuthSettings()
    rpc: RpcSettings = RpcSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = Path(os.environ.get("POCKETSTACK_CONFIG", "pocketstack.toml"))
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=toml_file))

    def service(self, name: str) -> ServiceSettings:
        return getattr(self, name.replace("-", "_"))

    def port(self, name: str) -> int:
        return self.service(name).port + self.port_offset

    @property
    def host(self) -> str:
        if self.public_host:
            return self.public_host
        return "127.0.0.1" if self.bind in ("0.0.0.0", "::", "") else self.bind

    def base_url(self, name: str) -> str:
        """Root URL of a service as clients reach it, without a version path."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port(name)}"

    def database_url(self, name: str) -> str:
        url = self.service(name).database_url
        if url:
            return url
        return f"sqlite+aiosqlite:///{self.data_dir / (name.replace('-', '_') + '.db')}"
