"""Wire models. Shapes are fixed by DESIGN.md: `{id, name, logo, description, created_at}`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from retail.categories.domain import Category
from retail.kernel.errors import NotNull


def _not_blank(value: str) -> str:
    value = " ".join(value.split())
    if not value:
        raise ValueError("must not be blank")
    return value


Name = Annotated[
    str, Field(min_length=1, max_length=100, pattern=r"\S"), AfterValidator(_not_blank)
]
MEDIA_PREFIX = "/media/"


def _shown_url(url: str) -> str:
    """A URL the storefront puts into <img src>: an absolute http(s) URL without
    credentials, or a path on our own media route (`/media/...`). javascript:, data:,
    protocol-relative and other relative URLs are refused. "" means none."""
    if not url:
        return url
    if any(c.isspace() or not c.isprintable() or c == "\\" for c in url):
        raise ValueError("must not contain spaces, backslashes or control characters")
    if url.startswith(MEDIA_PREFIX):
        if ".." in url.split("/"):
            raise ValueError("must not contain '..' segments")
        return url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an absolute http or https URL, or a path under {MEDIA_PREFIX}")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry credentials")
    return url


# The same rule as `_shown_url`, published in the OpenAPI document (no backslash, no
# credentials, no '..' segment under /media/), so that clients can check it before sending.
LOGO_PATTERN = (
    r"^(https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?([/?#][!-\[\]-~]*)?"
    r"|/media/([A-Za-z0-9_-][A-Za-z0-9._-]*/)*[A-Za-z0-9_-][A-Za-z0-9._-]*)?$"
)
Logo = Annotated[str, Field(max_length=2048, pattern=LOGO_PATTERN), AfterValidator(_shown_url)]
Description = Annotated[str, Field(max_length=5000)]


class CategoryCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    logo: Logo | None = None
    description: Description = ""


class CategoryUpdate(BaseModel):
    """Partial update: only the fields sent are applied (`exclude_unset`)."""

    # NotNull: absent is "unchanged", but null is refused, so the schema does not offer it.
    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    name: Name | NotNull = None
    logo: Logo | None = None
    description: Description | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> CategoryUpdate:
        if not self.model_fields_set:
            raise ValueError("send at least one of name, logo, description")
        if "name" in self.model_fields_set and self.name is None:
            raise ValueError("name cannot be null")
        return self


class CategoryRead(BaseModel):
    id: str
    name: str
    logo: str | None
    description: str
    created_at: datetime

    @staticmethod
    def fields_of(category: Category) -> dict[str, object]:
        return {
            "id": category.id,
            "name": category.name,
            "logo": category.logo,
            "description": category.description,
            "created_at": category.created_at,
        }

    @classmethod
    def of(cls, category: Category) -> CategoryRead:
        return cls.model_validate(cls.fields_of(category))


class CategoryList(BaseModel):
    categories: list[CategoryRead]
    total: int

    @classmethod
    def of(cls, found: list[Category]) -> CategoryList:
        # One validation for the list, not one model per category.
        fields = [CategoryRead.fields_of(category) for category in found]
        return cls.model_validate({"categories": fields, "total": len(found)})
