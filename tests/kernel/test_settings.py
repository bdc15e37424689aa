from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest
from pydantic import Field, ValidationError

from retail.kernel.settings import Settings, SettingsError, ensure_development_secret


class ShopSettings(Settings):
    service_name: ClassVar[str] = "shop"
    service_database_url: str | None = Field(None, validation_alias="SHOP_DATABASE_URL")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in [
        "DATABASE_URL",
        "MONGODB_URI",
        "SHOP_DATABASE_URL",
        "JWT_SECRET_KEY",
        "RETAIL_ENV",
    ]:
        monkeypatch.delenv(name, raising=False)


def test_seed_names_and_defaults() -> None:
    settings = ShopSettings()
    assert settings.jwt_algorithm == "HS256"
    assert settings.access_token_expire_minutes == 30
    assert settings.refresh_token_expire_days == 7
    assert settings.port_of("auth") == 8001
    assert settings.url_of("search") == "http://127.0.0.1:8006"


def test_database_url_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ShopSettings().resolved_database_url() == "sqlite+aiosqlite:///data/shop.db"
    monkeypatch.setenv("MONGODB_URI", "mongodb://m:27017/shop")
    assert ShopSettings().resolved_database_url() == "mongodb://m:27017/shop"
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://db/shop")
    assert ShopSettings().resolved_database_url() == "postgresql+asyncpg://db/shop"
    monkeypatch.setenv("SHOP_DATABASE_URL", "sqlite+aiosqlite:///x.db")
    assert ShopSettings().resolved_database_url() == "sqlite+aiosqlite:///x.db"


def test_ports_urls_and_cors_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_PORT", "9101")
    monkeypatch.setenv("PRODUCTS_URL", "http://products.internal:80/")
    monkeypatch.setenv("CORS_ORIGINS", "https://shop.example, https://admin.example")
    settings = ShopSettings()
    assert settings.url_of("auth") == "http://127.0.0.1:9101"
    assert settings.url_of("products") == "http://products.internal:80"
    assert settings.cors_origins == ["https://shop.example", "https://admin.example"]


@pytest.mark.parametrize("secret", [None, "short", "changeme"])
def test_production_refuses_a_missing_or_weak_secret(
    monkeypatch: pytest.MonkeyPatch, secret: str | None
) -> None:
    monkeypatch.setenv("RETAIL_ENV", "production")
    if secret is not None:
        monkeypatch.setenv("JWT_SECRET_KEY", secret)
    with pytest.raises((SettingsError, ValidationError)):
        ShopSettings()


def test_production_accepts_a_strong_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETAIL_ENV", "production")
    monkeypatch.setenv("JWT_SECRET_KEY", "k" * 48)
    assert ShopSettings().signing_secret() == "k" * 48


def test_development_secret_is_generated_once_and_shared(tmp_path: Path) -> None:
    first = ensure_development_secret(tmp_path / "data")
    assert len(first) >= 48
    assert ensure_development_secret(tmp_path / "data") == first
    assert ShopSettings(data_dir=tmp_path / "data").signing_secret() == first
    assert (tmp_path / "data" / ".jwt_secret").stat().st_mode & 0o777 == 0o600
    assert ensure_development_secret(tmp_path / "other") != first
