"""One settings object for the whole product, read from the environment and ``.env``.

Neo4j connection settings use the names every Neo4j tool knows (``NEO4J_URI``,
``NEO4J_USER``, ``NEO4J_PASSWORD``, ``NEO4J_DATABASE``); everything else is prefixed
``SPOTIFY_ENGINE_``. The password has no default: when it is not given, the password that
``spotify-engine neo4j install`` generated for the local server is read from its 0600 file.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from spotify_engine.errors import ConfigError

NEO4J_VERSION = "5.26.30"
NEO4J_BROWSER_VERSION = "5.24.0"


def _default_home() -> Path:
    return Path.home() / ".spotify-engine"


class Settings(BaseSettings):
    """Settings for the database, the local server, training and the API."""

    model_config = SettingsConfigDict(
        env_prefix="SPOTIFY_ENGINE_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    neo4j_uri: str | None = Field(
        default=None, validation_alias=AliasChoices("NEO4J_URI", "SPOTIFY_ENGINE_NEO4J_URI")
    )
    neo4j_user: str = Field(
        default="neo4j", validation_alias=AliasChoices("NEO4J_USER", "SPOTIFY_ENGINE_NEO4J_USER")
    )
    neo4j_password: str | None = Field(
        default=None,
        validation_alias=AliasChoices("NEO4J_PASSWORD", "SPOTIFY_ENGINE_NEO4J_PASSWORD"),
        repr=False,
    )
    neo4j_database: str = Field(
        default="neo4j",
        validation_alias=AliasChoices("NEO4J_DATABASE", "SPOTIFY_ENGINE_NEO4J_DATABASE"),
    )

    home: Path = Field(default_factory=_default_home)
    neo4j_home: Path | None = None
    cache_dir: Path = Field(default_factory=lambda: Path.home() / ".cache" / "spotify-engine")
    neo4j_version: str = NEO4J_VERSION
    browser_version: str = NEO4J_BROWSER_VERSION
    bolt_port: int = Field(default=7687, ge=1, le=65535)
    http_port: int = Field(default=7474, ge=1, le=65535)
    listen_address: str = "127.0.0.1"
    heap_size: str = "2g"
    pagecache_size: str = "1g"
    start_timeout_s: float = Field(default=120.0, gt=0)
    java_home: Path | None = None
    query_timeout_s: float = Field(default=600.0, gt=0)
    batch_size: int = Field(default=10_000, ge=1, le=1_000_000)
    runs_dir: Path = Path("runs")
    #: ``spotify-engine train``'s user-task selection aims to end within this many seconds:
    #: the GNN candidates train in what the others leave (``gnn.users.train_and_select``);
    #: 0: no budget.
    train_budget_s: float = Field(default=300.0, ge=0)
    api_key: str | None = Field(default=None, repr=False)
    cors_origins: list[str] = Field(default_factory=list)
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    api_workers: int = Field(default=1, ge=1, le=64)
    api_cache_ttl_s: float = Field(default=30.0, ge=0)
    #: Users of the active run whose precomputed rows (and live rankings) the API reads into
    #: its cache when it starts, so the first requests after a start do not queue on Neo4j
    #: reads; 0: none (see ``api.services.recommendations.warm``).
    api_warm_users: int = Field(default=5000, ge=0)
    api_retry_after_s: int = Field(default=5, ge=1, le=3600)
    api_query_timeout_s: float = Field(default=10.0, gt=0)
    api_live_explain: bool = False
    torch_threads: int = Field(default=2, ge=1, le=256)
    guide_host: str = "localhost"
    guide_port: int | None = Field(default=None, ge=1, le=65535)
    #: Where the demo gets Neo4j when NEO4J_URI is unset: Docker if it answers, else local.
    neo4j_backend: Literal["auto", "local", "docker"] = "auto"

    @field_validator("neo4j_password")
    @classmethod
    def _refuse_default_password(cls, v: str | None) -> str | None:
        if v is not None and v == "neo4j":
            raise ValueError("the default Neo4j password 'neo4j' is refused; choose another")
        return v

    @field_validator("heap_size", "pagecache_size")
    @classmethod
    def _memory_size(cls, v: str) -> str:
        v = v.strip().lower()
        if not v or not v[:-1].isdigit() or v[-1] not in "kmg":
            raise ValueError(f"memory sizes look like 512m or 2g (got {v!r})")
        return v

    def train_budget(self, override: float | None = None) -> float | None:
        """The user-task selection's time budget in seconds: ``override`` when given, else
        ``train_budget_s``; None when it is 0 (no budget)."""
        budget = self.train_budget_s if override is None else override
        return budget or None

    @property
    def local_home(self) -> Path:
        """Folder of the locally managed server instance (conf, data, logs, password)."""
        return (self.neo4j_home or self.home / "neo4j").expanduser()

    @property
    def distribution_dir(self) -> Path:
        """Where the assembled Neo4j jars are cached, shared by every local instance."""
        return (self.cache_dir / f"neo4j-{self.neo4j_version}").expanduser()

    @property
    def password_file(self) -> Path:
        return self.local_home / "password"

    @property
    def uri(self) -> str:
        return self.neo4j_uri or f"bolt://{self.listen_address}:{self.bolt_port}"

    @property
    def uses_local_server(self) -> bool:
        return self.neo4j_uri is None

    def password(self) -> str:
        """The password: given explicitly, else the local server's generated one."""
        if self.neo4j_password:
            return self.neo4j_password
        if self.password_file.exists():
            return self.password_file.read_text(encoding="utf-8").strip()
        raise ConfigError(
            "no Neo4j password: set NEO4J_PASSWORD, or run `spotify-engine neo4j install` "
            "to provision the local server"
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (tests build their own ``Settings`` instead)."""
    return Settings()
