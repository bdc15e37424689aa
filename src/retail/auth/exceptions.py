from retail.kernel.errors import (
    Conflict,
    Forbidden,
    NotFound,
    TooManyRequests,
    Unauthorized,
    ValidationFailed,
)


class EmailTaken(Conflict):
    error_code = "EMAIL_TAKEN"
    message = "An account with this email already exists"


class InvalidCredentials(Unauthorized):
    """The same answer for an unknown email and a wrong password."""

    error_code = "INVALID_CREDENTIALS"
    message = "Invalid email or password"


class InvalidRefreshToken(Unauthorized):
    """Unknown, expired, revoked: the client cannot tell which, and need not."""

    error_code = "INVALID_REFRESH_TOKEN"
    message = "Invalid or expired refresh token"


class TokenReused(Unauthorized):
    error_code = "TOKEN_REUSED"
    message = "This refresh token was already used; the session is revoked, sign in again"


class AccountGone(Unauthorized):
    """A valid access token for a user that no longer exists."""

    error_code = "ACCOUNT_NOT_FOUND"
    message = "The account of this token no longer exists"


class CurrentPasswordIncorrect(ValidationFailed):
    """422, not 401: the access token is fine, and clients treat a 401 as "sign in again"."""

    error_code = "CURRENT_PASSWORD_INCORRECT"
    message = "current_password is not the account's password"


class LoginThrottled(TooManyRequests):
    error_code = "TOO_MANY_ATTEMPTS"
    message = "Too many failed sign-in attempts; try again later"


class UserNotFound(NotFound):
    error_code = "USER_NOT_FOUND"
    message = "User not found"


class LastAdmin(Conflict):
    error_code = "LAST_ADMIN"
    message = "The last active admin cannot be demoted or deactivated"


class AccountDisabled(Forbidden):
    """Sign-in with the right password to an account an admin deactivated."""

    error_code = "ACCOUNT_DISABLED"
    message = "This account is deactivated"


class UnknownProduct(ValidationFailed):
    """422, as orders answers an unknown product: the request names something that does not
    exist. Details carry `product_id`."""

    error_code = "UNKNOWN_PRODUCT"
    message = "No product with this id exists"


class InsufficientStock(Conflict):
    """Details carry `product_id`, `requested` (the line's quantity it would have) and
    `available`."""

    error_code = "INSUFFICIENT_STOCK"
    message = "Not enough stock for this quantity"


class CartLineLimit(Conflict):
    """Details carry `product_id`, `requested` and `limit`."""

    error_code = "CART_QUANTITY_LIMIT"
    message = "A cart line cannot hold this many of one product"


class CartFull(Conflict):
    """Details carry `limit`."""

    error_code = "CART_FULL"
    message = "The cart holds as many different products as it can"


class CartItemNotFound(NotFound):
    error_code = "CART_ITEM_NOT_FOUND"
    message = "This product is not in the cart"
