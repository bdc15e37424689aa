"""Auth in domain terms: users, refresh tokens in families, the login throttle's rules, and the
signed-in customer's cart priced from the catalogue."""

from __future__ import annotations

import hashlib
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from email_validator import EmailNotValidError, validate_email

from retail.kernel.money import line_tax_cents
from retail.kernel.pagination import Page as Page  # one Page for every service
from retail.kernel.security import Role

MIN_PASSWORD_CHARS = 8
# bcrypt reads at most 72 bytes; a longer password would be silently truncated, so refuse it.
MAX_PASSWORD_BYTES = 72
MAX_NAME_CHARS = 100
MAX_EMAIL_CHARS = 254
# The orders service's limits (MAX_QUANTITY, MAX_LINES in orders/domain.py), so a full cart
# is always one order it accepts. 50 lines also stay within the products lookup's 100 ids.
MAX_CART_QUANTITY = 100
MAX_CART_LINES = 50
MAX_PRODUCT_ID_CHARS = 64


@dataclass(slots=True)
class User:
    id: str
    email: str
    name: str
    role: Role
    password_hash: str
    created_at: datetime
    updated_at: datetime
    # A deactivated account cannot sign in and its tokens are refused; its orders stay.
    is_active: bool = True
    # Raised by every change of role or standing; access tokens carry it (`ver`), and every
    # service refuses one older than the latest `user.changed` event.
    token_version: int = 0

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def is_active_admin(self) -> bool:
        return self.is_admin and self.is_active


@dataclass(slots=True)
class RefreshToken:
    """One link of a family: each refresh uses it up and adds the next link.

    Only the SHA-256 of the token is kept; the token itself exists only in the client.
    """

    id: str
    family_id: str
    user_id: str
    token_hash: str
    issued_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    revoked_at: datetime | None = None

    def is_expired(self, now: datetime) -> bool:
        return now >= self.expires_at


@dataclass(frozen=True, slots=True)
class Session:
    """What a successful login or refresh hands the client."""

    user: User
    access_token: str
    refresh_token: str
    expires_in: int


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    free_failures: int
    window: timedelta
    max_lock: timedelta

    def lock_after(self, failures: int) -> timedelta:
        """How long a key stays locked once it has counted `failures`."""
        over = failures - self.free_failures
        if over <= 0:
            return timedelta(0)
        # Past this exponent the cap applies anyway; do not build huge integers.
        seconds = 2 ** min(over, 40)
        return min(timedelta(seconds=seconds), self.max_lock)


@dataclass(frozen=True, slots=True)
class AuthPolicy:
    """From the settings: how long a refresh token lives, and the two login throttles."""

    refresh_ttl: timedelta
    account: ThrottlePolicy
    address: ThrottlePolicy


@dataclass(frozen=True, slots=True)
class ThrottleKey:
    """One counter of login failures: `account:<sha256 of the email>` or
    `address:<sha256 of the address>`. Hashed, so the throttle table holds no personal
    data and every key has the same length whatever a client sends."""

    key: str
    policy: ThrottlePolicy


@dataclass(frozen=True, slots=True)
class LoginKeys:
    """The counters one sign-in attempt is charged to: its account and its client address."""

    email: str
    account: ThrottleKey
    address: ThrottleKey

    @classmethod
    def of(
        cls, email: str, address: str, account: ThrottlePolicy, by_address: ThrottlePolicy
    ) -> LoginKeys:
        return cls(
            email,
            ThrottleKey(f"account:{_digest(email)}", account),
            ThrottleKey(f"address:{_digest(address)}", by_address),
        )


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def normalize_email(email: str) -> str:
    """The one spelling an address is stored and looked up under: NFKC (so full-width and
    other compatibility look-alikes fold into their plain letters) and case-folded, then
    NFKC again (case folding can undo a normalisation). Unique under this spelling."""
    folded = unicodedata.normalize("NFKC", email.strip()).casefold()
    return unicodedata.normalize("NFKC", folded)


def email_problem(email: str) -> str | None:
    """Why an address is refused, or None. Syntax only: no DNS lookups on the request path.
    `test_environment` admits *.test addresses, which the demo data and tests use."""
    normal = normalize_email(email)  # the spelling stored is the one checked
    try:
        validate_email(normal, check_deliverability=False, test_environment=True)
    except EmailNotValidError as exc:
        return str(exc)
    if len(normal) > MAX_EMAIL_CHARS:  # folding can lengthen a string
        return f"must be at most {MAX_EMAIL_CHARS} characters"
    return None


def password_problem(password: str) -> str | None:
    """Why a new password is refused, or None. Never quotes the password."""
    if len(password) < MIN_PASSWORD_CHARS:
        return f"must be at least {MIN_PASSWORD_CHARS} characters"
    if password.isspace():
        return "must contain a character other than spaces"
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        return f"must be at most {MAX_PASSWORD_BYTES} bytes in UTF-8"
    return None


def name_problem(name: str) -> str | None:
    if not 1 <= len(name) <= MAX_NAME_CHARS:
        return f"must be 1 to {MAX_NAME_CHARS} characters"
    return None


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def hash_refresh_token(token: str) -> str:
    # A plain hash suffices (no salt, no stretching): the token has 256 random bits.
    return hashlib.sha256(token.encode()).hexdigest()


# --- the cart ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CartLine:
    """What the cart stores: which product, how many, since when. Nothing about the product
    itself, which is looked up from the catalogue each time the cart is shown."""

    user_id: str
    product_id: str
    quantity: int
    added_at: datetime


@dataclass(frozen=True, slots=True)
class CatalogProduct:
    """A product as the catalogue has it now (products' internal lookup)."""

    id: str
    title: str
    price_cents: int
    tax_bp: int
    stock: int
    image_url: str | None


@dataclass(frozen=True, slots=True)
class PricedLine:
    line: CartLine
    product: CatalogProduct

    @property
    def subtotal_cents(self) -> int:
        return self.product.price_cents * self.line.quantity

    @property
    def tax_cents(self) -> int:
        return line_tax_cents(self.product.price_cents, self.line.quantity, self.product.tax_bp)

    @property
    def total_cents(self) -> int:
        return self.subtotal_cents + self.tax_cents


@dataclass(frozen=True, slots=True)
class CartView:
    """The cart as the customer sees it: lines priced at today's catalogue, and the lines
    whose product has left the catalogue (dropped from the cart as they are reported)."""

    lines: list[PricedLine]
    unavailable: list[CartLine]

    @classmethod
    def of(cls, lines: list[CartLine], products: dict[str, CatalogProduct]) -> CartView:
        priced = [
            PricedLine(line, products[line.product_id])
            for line in lines
            if line.product_id in products
        ]
        gone = [line for line in lines if line.product_id not in products]
        return cls(priced, gone)

    @property
    def total_items(self) -> int:
        return sum(priced.line.quantity for priced in self.lines)

    @property
    def subtotal_cents(self) -> int:
        return sum(priced.subtotal_cents for priced in self.lines)

    @property
    def tax_cents(self) -> int:
        """One half-up rounding per line, then summed, as the order will be."""
        return sum(priced.tax_cents for priced in self.lines)

    @property
    def total_cents(self) -> int:
        return self.subtotal_cents + self.tax_cents
