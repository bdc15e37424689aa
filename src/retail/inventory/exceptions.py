from retail.kernel.errors import Conflict, NotFound, ValidationFailed


class ProductNotFound(NotFound):
    error_code = "PRODUCT_NOT_FOUND"
    message = "No stock level for this product"


class StockChanged(Conflict):
    """Compare-and-set lost: details carry `expected` and `actual`."""

    error_code = "STOCK_CHANGED"
    message = "The stock changed since it was read"


class InsufficientStock(Conflict):
    """Details carry `product_id`, `requested` and `available`."""

    error_code = "INSUFFICIENT_STOCK"
    message = "Not enough stock"


class UnknownProduct(ValidationFailed):
    error_code = "UNKNOWN_PRODUCT"
    message = "A line names a product that inventory does not know"


class ReservationReleased(Conflict):
    error_code = "RESERVATION_RELEASED"
    message = "This order's reservation was already released"


class ReservationExists(Conflict):
    """A concurrent call inserted the same order_id first. Use cases catch it and answer
    as a repeat; it only reaches a client if something is badly wrong."""

    error_code = "RESERVATION_EXISTS"
    message = "This order is being reserved by another request"
