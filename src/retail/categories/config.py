from typing import ClassVar

from pydantic import Field

from retail.kernel.settings import Settings


class CategoriesSettings(Settings):
    service_name: ClassVar[str] = "categories"
    service_database_url: str | None = Field(None, validation_alias="CATEGORIES_DATABASE_URL")
