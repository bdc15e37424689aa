"""HTTP layer: parse, call a use case, shape the answer. No queries, no commits here."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from retail.auth import cart, service
from retail.auth.dependencies import ClientAddress, CurrentAccount, Deps
from retail.auth.schemas import (
    AccountUpdate,
    CartItemCreate,
    CartItemUpdate,
    CartRead,
    LoginRequest,
    LogoutRequest,
    RefreshRequest,
    RegisterRequest,
    TokenPair,
    UserAccessUpdate,
    UserList,
    UserRead,
)
from retail.kernel.pagination import Pagination, total_pages
from retail.kernel.security import AdminUser, CurrentUser

router = APIRouter(prefix="/api/auth", tags=["auth"])

_UNAUTHORIZED: dict[int | str, dict[str, Any]] = {401: {"description": "Not signed in"}}
_ADMIN_ONLY: dict[int | str, dict[str, Any]] = {
    **_UNAUTHORIZED,
    403: {"description": "Admins only"},
}
_CATALOGUE: dict[int | str, dict[str, Any]] = {
    **_UNAUTHORIZED,
    503: {"description": "SERVICE_UNAVAILABLE: the products service cannot answer"},
}
_STOCK: dict[int | str, dict[str, Any]] = {
    409: {
        "description": "INSUFFICIENT_STOCK (details: product_id, requested, available), "
        "CART_QUANTITY_LIMIT or CART_FULL"
    },
    422: {"description": "VALIDATION_ERROR, or UNKNOWN_PRODUCT (details: product_id)"},
}
_NOT_IN_CART: dict[int | str, dict[str, Any]] = {404: {"description": "CART_ITEM_NOT_FOUND"}}


@router.post(
    "/register",
    response_model=UserRead,
    status_code=status.HTTP_201_CREATED,
    responses={409: {"description": "EMAIL_TAKEN"}},
)
async def register(body: RegisterRequest, deps: Deps) -> UserRead:
    user = await service.register(deps, email=body.email, name=body.name, password=body.password)
    return UserRead.of(user)


@router.post(
    "/login",
    response_model=TokenPair,
    responses={
        401: {"description": "INVALID_CREDENTIALS"},
        403: {"description": "ACCOUNT_DISABLED: the password is right, the account deactivated"},
        429: {"description": "TOO_MANY_ATTEMPTS, with Retry-After"},
    },
)
async def login(body: LoginRequest, deps: Deps, address: ClientAddress) -> TokenPair:
    session = await service.login(deps, email=body.email, password=body.password, address=address)
    return TokenPair.of(session)


@router.post(
    "/refresh",
    response_model=TokenPair,
    responses={401: {"description": "INVALID_REFRESH_TOKEN or TOKEN_REUSED"}},
)
async def refresh(body: RefreshRequest, deps: Deps) -> TokenPair:
    return TokenPair.of(await service.refresh(deps, refresh_token=body.refresh_token))


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(body: LogoutRequest, deps: Deps) -> None:
    await service.logout(deps, refresh_token=body.refresh_token)


@router.get("/me", response_model=UserRead, responses=_UNAUTHORIZED)
async def read_me(account: CurrentAccount) -> UserRead:
    return UserRead.of(account)


@router.patch(
    "/me",
    response_model=UserRead,
    responses={
        **_UNAUTHORIZED,
        422: {"description": "VALIDATION_ERROR or CURRENT_PASSWORD_INCORRECT"},
        429: {"description": "TOO_MANY_ATTEMPTS (wrong current_password), with Retry-After"},
    },
)
async def update_me(
    body: AccountUpdate, principal: CurrentUser, deps: Deps, address: ClientAddress
) -> UserRead:
    user = await service.update_account(
        deps,
        user_id=principal.user_id,
        session_id=principal.session_id,
        address=address,
        name=body.name,
        password=body.password,
        current_password=body.current_password,
    )
    return UserRead.of(user)


@router.get("/users", response_model=UserList, responses=_ADMIN_ONLY)
async def list_users(deps: Deps, page: Pagination, _admin: AdminUser) -> UserList:
    found = await service.list_users(deps, offset=page.offset, limit=page.limit)
    return UserList(
        users=[UserRead.of(u) for u in found.items],
        total=found.total,
        page=page.page,
        limit=page.limit,
        total_pages=total_pages(found.total, page.limit),
    )


@router.patch(
    "/users/{user_id}",
    response_model=UserRead,
    responses={
        **_ADMIN_ONLY,
        404: {"description": "USER_NOT_FOUND"},
        409: {"description": "LAST_ADMIN: the last active admin would be demoted or deactivated"},
    },
)
async def change_user(
    user_id: str, body: UserAccessUpdate, deps: Deps, _admin: AdminUser
) -> UserRead:
    """Change a user's role and/or deactivate or reactivate the account. Their access tokens
    issued before are refused by every service within 2 s; a deactivated account cannot
    sign in and its refresh tokens are revoked."""
    user = await service.change_access(
        deps, user_id=user_id, role=body.role, is_active=body.is_active
    )
    return UserRead.of(user)


# --- the signed-in customer's cart --------------------------------------------------------


@router.get("/me/cart", response_model=CartRead, responses=_CATALOGUE)
async def read_cart(principal: CurrentUser, deps: Deps) -> CartRead:
    return CartRead.of(await cart.view_cart(deps, user_id=principal.user_id))


@router.post("/me/cart", response_model=CartRead, responses={**_CATALOGUE, **_STOCK})
async def add_to_cart(body: CartItemCreate, principal: CurrentUser, deps: Deps) -> CartRead:
    view = await cart.add_item(
        deps, user_id=principal.user_id, product_id=body.product_id, quantity=body.quantity
    )
    return CartRead.of(view)


@router.patch(
    "/me/cart/{product_id}",
    response_model=CartRead,
    responses={**_CATALOGUE, **_STOCK, **_NOT_IN_CART},
)
async def change_cart_quantity(
    product_id: str, body: CartItemUpdate, principal: CurrentUser, deps: Deps
) -> CartRead:
    view = await cart.set_quantity(
        deps, user_id=principal.user_id, product_id=product_id, quantity=body.quantity
    )
    return CartRead.of(view)


@router.delete(
    "/me/cart/{product_id}", response_model=CartRead, responses={**_CATALOGUE, **_NOT_IN_CART}
)
async def remove_from_cart(product_id: str, principal: CurrentUser, deps: Deps) -> CartRead:
    view = await cart.remove_item(deps, user_id=principal.user_id, product_id=product_id)
    return CartRead.of(view)


@router.delete("/me/cart", response_model=CartRead, responses=_UNAUTHORIZED)
async def empty_cart(principal: CurrentUser, deps: Deps) -> CartRead:
    return CartRead.of(await cart.clear_cart(deps, user_id=principal.user_id))
