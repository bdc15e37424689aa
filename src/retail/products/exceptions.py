from retail.kernel.errors import (
    Conflict,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
)


class ProductNotFound(NotFound):
    error_code = "PRODUCT_NOT_FOUND"
    message = "Product not found"


class UnknownCategory(ValidationFailed):
    error_code = "UNKNOWN_CATEGORY"
    message = "category_id names no existing category"


class ImageTooLarge(PayloadTooLarge):
    message = "The image file is too large"


class UnsupportedImage(UnsupportedMediaType):
    message = "The file is not a JPEG, PNG, WebP or GIF image"


class InvalidImage(ValidationFailed):
    error_code = "INVALID_IMAGE"
    message = "The image is damaged or truncated"


class ImageDimensionsTooLarge(ValidationFailed):
    error_code = "IMAGE_TOO_LARGE"
    message = "The image has too many pixels"


class SkuTaken(Conflict):
    error_code = "SKU_TAKEN"
    message = "Another product has this sku"
