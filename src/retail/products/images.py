"""Use cases of product images: validate and re-encode off the event loop, store, then
point the product at the stored image in one transaction.

Order matters for "no orphan, no half-change": the new image is stored first; if the
transaction then fails, the new image is removed; only after the commit is the replaced
image removed. Names are never reused (product id, content hash and a per-upload nonce),
so an image URL always serves the same bytes and can be cached for good.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import replace
from functools import partial

from anyio import CapacityLimiter, to_thread

from retail.products.domain import CleanImage, Product
from retail.products.exceptions import ProductNotFound
from retail.products.ports import ImageStore, ProductsDeps

logger = logging.getLogger("retail.products.images")


def image_key(product_id: str, image: CleanImage) -> str:
    return f"{product_id}-{image.digest[:32]}-{secrets.token_hex(4)}.{image.extension}"


async def upload_image(
    deps: ProductsDeps,
    *,
    product_id: str,
    data: bytes,
    max_pixels: int,
    limiter: CapacityLimiter | None = None,
) -> Product:
    """`limiter` bounds how many images are decoded at once (memory, not just CPU)."""
    # Pillow is loaded by the first upload, not at start: most processes never decode one.
    from retail.products.imaging import sanitize_image

    sanitize = partial(sanitize_image, data, max_pixels=max_pixels)
    clean = await to_thread.run_sync(sanitize, limiter=limiter)
    key = image_key(product_id, clean)
    url = await deps.images.save(key, clean.data, clean.content_type)
    try:
        product, replaced = await _attach_image(deps, product_id, key, url)
    except Exception:
        await discard_image(deps.images, key)
        raise
    if replaced:
        await discard_image(deps.images, replaced)
    return product


async def _attach_image(
    deps: ProductsDeps, product_id: str, key: str, url: str
) -> tuple[Product, str | None]:
    """Point the product at the new image; returns it and the key of the image replaced."""
    async with deps.units() as uow:
        current = await uow.products.get(product_id)
        if current is None:
            raise ProductNotFound()
        updated = replace(current, image_url=url, image_key=key, updated_at=deps.clock())
        await uow.products.update(updated)
        await uow.stock.product_updated(updated)
        await uow.commit()
    return updated, current.image_key


async def discard_image(images: ImageStore, key: str) -> None:
    """Remove an image nothing points at any more. A failure is logged, not raised: the
    change it followed is already settled, and a stray file harms nobody."""
    try:
        await images.delete(key)
    except Exception:
        logger.warning("could not delete image %s", key, exc_info=True)
