"""Categories in domain terms: what a category is, independent of storage and HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(slots=True)
class Category:
    id: str
    name: str
    logo: str | None
    description: str
    created_at: datetime
    updated_at: datetime

    def as_event_data(self) -> dict[str, str | None]:
        return {
            "id": self.id,
            "name": self.name,
            "logo": self.logo,
            "description": self.description,
            "created_at": self.created_at.isoformat(),
        }
