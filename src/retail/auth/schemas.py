"""Wire models. Shapes are fixed by DESIGN.md: the user is `{id, email, name, role,
created_at}`; login and refresh answer `{access_token, refresh_token, token_type, user}`; the
cart is `{items: [{product_id, name, price, tax_percent, quantity, image_url}], total_items,
subtotal, tax, total}` (`line_total` and `unavailable_items` are additions). Money goes out
as JSON numbers with at most two decimals, as products and orders answer it.

Validation messages never quote a password (the kernel's handler never echoes values)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from retail.auth.domain import (
    MAX_CART_QUANTITY,
    MAX_PRODUCT_ID_CHARS,
    CartLine,
    CartView,
    PricedLine,
    Session,
    User,
    email_problem,
    name_problem,
    normalize_email,
    password_problem,
)
from retail.kernel.errors import NotNull
from retail.kernel.money import WholeNumber, from_cents, percent_from_basis_points
from retail.kernel.security import Role


def _rule(problem: Callable[[str], str | None]) -> Callable[[str], str]:
    def check(value: str) -> str:
        found = problem(value)
        if found:
            raise ValueError(found)
        return value

    return check


def _valid_email(value: str) -> str:
    return normalize_email(_rule(email_problem)(value))


def _valid_name(value: str) -> str:
    return _rule(name_problem)(value.strip())


# Bounds first, so a megabyte of "email" is refused before any parsing.
Email = Annotated[str, Field(max_length=320), AfterValidator(_valid_email)]
Name = Annotated[str, Field(max_length=1000), AfterValidator(_valid_name)]
NewPassword = Annotated[str, Field(max_length=1000), AfterValidator(_rule(password_problem))]
# Any string may be tried at login; the rules are for new passwords only.
GivenPassword = Annotated[str, Field(min_length=1, max_length=1000)]
OpaqueToken = Annotated[str, Field(min_length=1, max_length=512)]


class RegisterRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    name: Name
    password: NewPassword


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Annotated[str, Field(min_length=1, max_length=320)]
    password: GivenPassword


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: OpaqueToken


class LogoutRequest(RefreshRequest):
    pass


class AccountUpdate(BaseModel):
    """Partial update of the signed-in account: only the fields sent are applied."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    password: NewPassword | None = None
    current_password: GivenPassword | None = None

    @model_validator(mode="after")
    def _consistent(self) -> AccountUpdate:
        sent = self.model_fields_set
        if not sent & {"name", "password"}:
            raise ValueError("send name and/or password")
        if "name" in sent and self.name is None:
            raise ValueError("name cannot be null")
        if "password" in sent and self.password is None:
            raise ValueError("password cannot be null")
        if self.password is not None and self.current_password is None:
            raise ValueError("changing the password needs current_password")
        return self


class UserAccessUpdate(BaseModel):
    """An admin's change of a user: `role` and/or `is_active`, each optional, never null."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    role: Role | NotNull = None
    is_active: Annotated[bool, Field(strict=True)] | NotNull = None

    @model_validator(mode="after")
    def _something_to_change(self) -> UserAccessUpdate:
        if not self.model_fields_set:
            raise ValueError("send role and/or is_active")
        for name in self.model_fields_set:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class UserSummary(BaseModel):
    id: str
    email: str
    name: str
    role: Role

    @classmethod
    def of(cls, user: User) -> UserSummary:
        return cls(id=user.id, email=user.email, name=user.name, role=user.role)


class UserRead(UserSummary):
    created_at: datetime
    is_active: bool = Field(description="False once an admin deactivated the account")

    @classmethod
    def of(cls, user: User) -> UserRead:
        return cls(
            id=user.id,
            email=user.email,
            name=user.name,
            role=user.role,
            created_at=user.created_at,
            is_active=user.is_active,
        )


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the scheme's name, not a secret
    expires_in: int = Field(description="Seconds until the access token expires")
    user: UserSummary

    @classmethod
    def of(cls, session: Session) -> TokenPair:
        return cls(
            access_token=session.access_token,
            refresh_token=session.refresh_token,
            expires_in=session.expires_in,
            user=UserSummary.of(session.user),
        )


class UserList(BaseModel):
    users: list[UserRead]
    total: int
    page: int
    limit: int
    total_pages: int


# --- the cart ---------------------------------------------------------------------------

ProductId = Annotated[str, Field(min_length=1, max_length=MAX_PRODUCT_ID_CHARS)]
# Strict: a JSON integer only (true is not 1, "3" is not 3).
Quantity = Annotated[int, Field(ge=1, le=MAX_CART_QUANTITY), WholeNumber]


class CartItemCreate(BaseModel):
    """Adds to the product's line if it is in the cart already."""

    model_config = ConfigDict(extra="forbid")

    product_id: ProductId
    quantity: Quantity = 1


class CartItemUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quantity: Quantity


class CartItemRead(BaseModel):
    product_id: str
    name: str
    price: float = Field(description="Unit price today")
    tax_percent: float
    quantity: int
    image_url: str | None
    line_total: float = Field(description="price x quantity plus this line's tax")

    @classmethod
    def of(cls, priced: PricedLine) -> CartItemRead:
        return cls(
            product_id=priced.product.id,
            name=priced.product.title,
            price=from_cents(priced.product.price_cents),
            tax_percent=percent_from_basis_points(priced.product.tax_bp),
            quantity=priced.line.quantity,
            image_url=priced.product.image_url,
            line_total=from_cents(priced.total_cents),
        )


class UnavailableItemRead(BaseModel):
    product_id: str
    quantity: int
    reason: Literal["product_removed"] = "product_removed"

    @classmethod
    def of(cls, line: CartLine) -> UnavailableItemRead:
        return cls(product_id=line.product_id, quantity=line.quantity)


class CartRead(BaseModel):
    items: list[CartItemRead]
    total_items: int = Field(description="The sum of the quantities")
    subtotal: float
    tax: float = Field(description="Rounded half-up once per line, then summed")
    total: float
    unavailable_items: list[UnavailableItemRead] = Field(
        description="Lines whose product has left the catalogue; they are dropped from the cart"
    )

    @classmethod
    def of(cls, view: CartView) -> CartRead:
        return cls(
            items=[CartItemRead.of(priced) for priced in view.lines],
            total_items=view.total_items,
            subtotal=from_cents(view.subtotal_cents),
            tax=from_cents(view.tax_cents),
            total=from_cents(view.total_cents),
            unavailable_items=[UnavailableItemRead.of(line) for line in view.unavailable],
        )
