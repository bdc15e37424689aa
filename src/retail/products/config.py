from typing import ClassVar

from pydantic import Field, model_validator

from retail.kernel.settings import Settings, SettingsError

MIB = 1024 * 1024
# Room for the multipart framing and the other form fields around a largest allowed image.
MULTIPART_OVERHEAD = 256 * 1024


class ProductsSettings(Settings):
    service_name: ClassVar[str] = "products"
    service_database_url: str | None = Field(None, validation_alias="PRODUCTS_DATABASE_URL")

    # A 5 MiB image plus its multipart envelope must fit under the body cap.
    max_body_bytes: int = Field(6 * MIB, ge=1024)
    image_max_bytes: int = Field(5 * MIB, ge=1024)
    # Checked before any pixel is decoded: a tiny file may declare a huge canvas.
    image_max_pixels: int = Field(40_000_000, ge=1)
    # Images decoded at once per process; each may hold ~4 bytes per pixel while it is.
    image_workers: int = Field(2, ge=1, le=32)

    # S3-compatible object storage for images, used when a bucket is named. Credentials
    # come from the usual AWS variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, ...).
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    s3_public_base_url: str | None = None

    # Off in tests that drive the followers by hand through `app.state.followers[...]`.
    follow_feeds: bool = True
    feed_poll_seconds: float = Field(0.5, gt=0)

    @model_validator(mode="after")
    def _image_fits_in_a_body(self) -> "ProductsSettings":
        if self.max_body_bytes < self.image_max_bytes + MULTIPART_OVERHEAD:
            raise SettingsError(
                "MAX_BODY_BYTES must exceed IMAGE_MAX_BYTES by at least "
                f"{MULTIPART_OVERHEAD} bytes, or the largest allowed image cannot be uploaded"
            )
        return self
