"""Settings shared by every service: one pydantic-settings base, one subclass per service.

The seed's names are kept (`JWT_SECRET_KEY`, `JWT_ALGORITHM`, `ACCESS_TOKEN_EXPIRE_MINUTES`,
`REFRESH_TOKEN_EXPIRE_DAYS`, `MONGODB_URI`). Everything is validated at start-up.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import time
from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

SERVICE_PORTS: dict[str, int] = {
    "auth": 8001,
    "products": 8002,
    "categories": 8003,
    "inventory": 8004,
    "orders": 8005,
    "search": 8006,
}

# Secrets shorter than this are refused in production (HS256 wants >= 256 bits of key).
MIN_SECRET_LENGTH = 32
_SECRET_FILE = ".jwt_secret"  # noqa: S105 - a file name, not a secret


class SettingsError(RuntimeError):
    """Raised at start-up when the settings cannot run safely."""


class Settings(BaseSettings):
    """Settings every service reads. A service subclass adds its own and names itself."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    service_name: ClassVar[str] = ""

    retail_env: Literal["development", "test", "production"] = "development"
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"
    # One line per request (on), only for answers of 400 and above (errors), or none (off).
    access_log: Literal["on", "off", "errors"] = "on"
    # With ACCESS_LOG=on, the share of answers below 400 that get a line (errors always do).
    access_log_sample_rate: float = Field(1.0, ge=0, le=1)
    # /metrics (Prometheus). With METRICS_TOKEN set, a scrape must send it as a bearer token;
    # without, /metrics answers anyone who reaches the service port (docs/observability.md).
    metrics_enabled: bool = True
    metrics_token: SecretStr | None = None

    jwt_secret_key: SecretStr | None = None
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    access_token_expire_minutes: int = Field(30, ge=1, le=24 * 60)
    refresh_token_expire_days: int = Field(7, ge=1, le=365)
    service_token_expire_seconds: int = Field(300, ge=30, le=3600)

    data_dir: Path = Path("./data")
    database_url: str | None = None
    mongodb_uri: str | None = None
    # Set by each subclass through its own `<SERVICE>_DATABASE_URL` alias.
    service_database_url: str | None = None
    # On PostgreSQL each service keeps its tables in its own schema (prefix + service name),
    # so one DATABASE_URL can serve all six without their tables meeting.
    database_schema_prefix: str = Field("", pattern=r"^[a-z0-9_]{0,30}$")

    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Where clients reach the services (e.g. https://shop.example): the base of absolute
    # URLs the services hand out (image URLs). Unset, those URLs are relative. Never taken
    # from a request's Host header, which any client can write.
    public_base_url: str | None = Field(None, pattern=r"^https?://[^/?#\s]+(/[^?#\s]*)?$")
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    http_timeout_seconds: float = Field(5.0, gt=0)
    workers: int = Field(1, ge=1, le=64)
    # Memory per process for public catalogue answers kept until the database changes
    # (SQLite only; 0 turns it off). See kernel/cache.py.
    read_cache_bytes: int = Field(32 * 1024 * 1024, ge=0)
    # Follow auth's feed of revoked sessions (kernel/sessions.py); off only for a service
    # tested alone.
    follow_revocations: bool = True

    auth_port: int = SERVICE_PORTS["auth"]
    products_port: int = SERVICE_PORTS["products"]
    categories_port: int = SERVICE_PORTS["categories"]
    inventory_port: int = SERVICE_PORTS["inventory"]
    orders_port: int = SERVICE_PORTS["orders"]
    search_port: int = SERVICE_PORTS["search"]

    auth_url: str | None = None
    products_url: str | None = None
    categories_url: str | None = None
    inventory_url: str | None = None
    orders_url: str | None = None
    search_url: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _split_cors_origins(cls, data: object) -> object:
        if isinstance(data, dict):
            raw = data.get("cors_origins", data.get("CORS_ORIGINS"))
            if isinstance(raw, str):
                data = {k: v for k, v in data.items() if k.lower() != "cors_origins"}
                data["cors_origins"] = [o.strip() for o in raw.split(",") if o.strip()]
        return data

    @model_validator(mode="after")
    def _refuse_weak_secret_in_production(self) -> Settings:
        if self.retail_env != "production":
            return self
        secret = self.jwt_secret_key.get_secret_value() if self.jwt_secret_key else ""
        if len(secret) < MIN_SECRET_LENGTH or secret in {"changeme", "secret", "change-me"}:
            raise SettingsError(
                f"RETAIL_ENV=production needs JWT_SECRET_KEY of at least {MIN_SECRET_LENGTH} "
                "random characters, e.g. from `python -c 'import secrets; "
                "print(secrets.token_urlsafe(48))'`"
            )
        return self

    # --- derived values -------------------------------------------------------------------

    def port_of(self, service: str) -> int:
        return int(getattr(self, f"{service}_port"))

    def url_of(self, service: str) -> str:
        explicit = getattr(self, f"{service}_url")
        return str(explicit or f"http://127.0.0.1:{self.port_of(service)}").rstrip("/")

    def resolved_database_url(self) -> str:
        """Per-service override, then DATABASE_URL, then the seed's MONGODB_URI, then SQLite."""
        url = self.service_database_url or self.database_url or self.mongodb_uri
        if url:
            return url
        return f"sqlite+aiosqlite:///{(self.data_dir / f'{self.service_name}.db').as_posix()}"

    def database_schema(self) -> str:
        return f"{self.database_schema_prefix}{self.service_name}"

    def media_dir(self) -> Path:
        return self.data_dir / "media"

    def signing_secret(self) -> str:
        """The HS* key: explicit, or (outside production) one generated once per DATA_DIR."""
        if self.jwt_secret_key is not None:
            return self.jwt_secret_key.get_secret_value()
        return ensure_development_secret(self.data_dir)


def ensure_development_secret(data_dir: Path) -> str:
    """Create the shared development secret once; every process of every service reads it.

    O_EXCL makes creation race-free when six services start at the same moment.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / _SECRET_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # the creator may not have written yet
            value = path.read_text().strip()
            if value:
                return value
            time.sleep(0.02)
        raise SettingsError(f"{path} is empty; delete it to generate a new secret") from None
    value = secrets.token_urlsafe(48)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value


def fresh_metrics_dir(service: str, port: int) -> Path:
    """The PROMETHEUS_MULTIPROC_DIR of one service's workers (`retail serve --workers N`):
    a directory per service and port, under the one the environment names or the temp dir,
    emptied first, since files of an earlier run would be summed with this one's."""
    named = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    base = Path(named) if named else Path(tempfile.gettempdir()) / "retail-metrics"
    directory = base / f"{service}-{port}"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    return directory
