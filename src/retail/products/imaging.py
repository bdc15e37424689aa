"""Is it really an image? Decided from the bytes with Pillow, never from a name or a header.

`sanitize_image` is synchronous and CPU-bound: callers run it in a worker thread. It refuses
anything but JPEG, PNG, WebP and GIF (only those decoders are even tried), checks the pixel
count before a single pixel is decoded (a 1 KB file may declare a 20000 x 20000 canvas),
verifies, decodes fully (catching truncation), and re-encodes in the same format from the
pixels alone, so EXIF, XMP, ICC profiles, comments and text chunks are all dropped.
"""

from __future__ import annotations

import hashlib
from io import BytesIO
from typing import Any

from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from retail.products.domain import IMAGE_FORMATS, CleanImage
from retail.products.exceptions import ImageDimensionsTooLarge, InvalidImage, UnsupportedImage

# What a re-encode may carry over: how the pixels are shown, nothing about their origin.
_KEEP_INFO: dict[str, tuple[str, ...]] = {
    "JPEG": (),
    "PNG": ("transparency",),
    "WEBP": ("duration", "loop", "background"),
    "GIF": ("transparency", "duration", "loop", "background"),
}
_SAVE_OPTIONS: dict[str, dict[str, Any]] = {
    "JPEG": {"quality": 90},
    "PNG": {},
    "WEBP": {"quality": 90},
    "GIF": {},
}
_BROKEN = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError)


def sanitize_image(data: bytes, *, max_pixels: int) -> CleanImage:
    image_format = _identify(data, max_pixels)
    try:
        with Image.open(BytesIO(data), formats=[image_format]) as image:
            frames = _decoded_frames(image)
        encoded = _encode([_scrubbed(f, image_format) for f in frames], image_format)
    except _BROKEN as exc:
        raise InvalidImage() from exc
    content_type, extension = IMAGE_FORMATS[image_format]
    return CleanImage(encoded, content_type, extension, hashlib.sha256(encoded).hexdigest())


def _identify(data: bytes, max_pixels: int) -> str:
    """The format, once the header is sane, the pixel budget holds and `verify` passes."""
    try:
        with Image.open(BytesIO(data), formats=list(IMAGE_FORMATS)) as image:
            width, height = image.size
            frames = getattr(image, "n_frames", 1)
            if width * height * frames > max_pixels:
                raise ImageDimensionsTooLarge(
                    details={"width": width, "height": height, "frames": frames}
                )
            image_format = str(image.format)
            image.verify()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own guard fires at open for canvases far beyond ours.
        raise ImageDimensionsTooLarge() from exc
    except UnidentifiedImageError as exc:
        raise UnsupportedImage() from exc
    except _BROKEN as exc:
        raise InvalidImage() from exc
    return image_format


def _decoded_frames(image: Image.Image) -> list[Image.Image]:
    if getattr(image, "n_frames", 1) == 1:
        image.load()
        return [_upright(image)]
    return [frame.copy() for frame in ImageSequence.Iterator(image)]


def _upright(image: Image.Image) -> Image.Image:
    # The EXIF orientation goes away with the EXIF, so apply it to the pixels first.
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # an unreadable orientation is no reason to refuse the image
        return image.copy()


def _scrubbed(frame: Image.Image, image_format: str) -> Image.Image:
    if image_format == "JPEG" and frame.mode not in ("L", "RGB", "CMYK"):
        frame = frame.convert("RGB")
    elif image_format == "WEBP" and frame.mode not in ("RGB", "RGBA"):
        frame = frame.convert("RGBA")
    clean = frame.copy()
    clean.info = {k: frame.info[k] for k in _KEEP_INFO[image_format] if k in frame.info}
    return clean


def _encode(frames: list[Image.Image], image_format: str) -> bytes:
    first, rest = frames[0], frames[1:]
    options = dict(_SAVE_OPTIONS[image_format])
    if rest:
        options.update(
            save_all=True,
            append_images=rest,
            duration=[int(f.info.get("duration", 100)) for f in frames],
            loop=int(first.info.get("loop", 0)),
        )
    out = BytesIO()
    first.save(out, format=image_format, **options)
    return out.getvalue()
