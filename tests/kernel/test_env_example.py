"""`.env.example` documents every setting that any service reads, so an operator never has
to read the code to find a knob."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from pydantic.fields import FieldInfo

from retail.kernel.settings import SERVICE_PORTS, Settings

ENV_EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"
# Named in .env.example by their pattern rather than one by one.
PER_SERVICE = ("service_database_url",)


def _env_name(name: str, field: FieldInfo) -> str:
    alias = field.validation_alias
    return (alias if isinstance(alias, str) else name).upper()


def _settings_classes() -> list[type[Settings]]:
    classes: list[type[Settings]] = [Settings]
    for service in SERVICE_PORTS:
        module = importlib.import_module(f"retail.{service}.config")
        classes += [
            value
            for value in vars(module).values()
            if isinstance(value, type) and issubclass(value, Settings) and value is not Settings
        ]
    return classes


def test_every_setting_is_in_env_example() -> None:
    documented = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", ENV_EXAMPLE.read_text(), re.M))
    missing = {
        _env_name(name, field)
        for cls in _settings_classes()
        for name, field in cls.model_fields.items()
        if name not in PER_SERVICE
    } - documented
    assert not missing, f"not in .env.example: {sorted(missing)}"


def test_per_service_database_urls_are_documented() -> None:
    text = ENV_EXAMPLE.read_text()
    for service in SERVICE_PORTS:
        if service != "search":  # search keeps no database: its index is derived data
            assert f"{service.upper()}_DATABASE_URL=" in text
