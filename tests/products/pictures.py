"""Real image bytes made with Pillow, and the broken and hostile ones the upload refuses."""

from __future__ import annotations

import struct
import zlib
from io import BytesIO

from PIL import Image

EXIF_ORIENTATION = 0x0112
EXIF_CAMERA_MAKE = 0x010F


def image_bytes(image_format: str, size: tuple[int, int] = (32, 24), **options: object) -> bytes:
    mode = "P" if image_format == "GIF" else "RGB"
    image = Image.new(mode, size, color=1 if mode == "P" else (200, 40, 40))
    out = BytesIO()
    image.save(out, format=image_format, **options)
    return out.getvalue()


def jpeg_with_exif() -> bytes:
    exif = Image.Exif()
    exif[EXIF_CAMERA_MAKE] = "SpyCam 3000"
    exif[EXIF_ORIENTATION] = 1
    return image_bytes("JPEG", exif=exif.tobytes(), comment=b"secret comment")


def animated_gif(frames: int = 3) -> bytes:
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
    images = [Image.new("RGB", (16, 16), colours[i % len(colours)]) for i in range(frames)]
    out = BytesIO()
    images[0].save(out, format="GIF", save_all=True, append_images=images[1:], duration=80)
    return out.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A tiny valid PNG whose header declares a huge canvas: a decompression bomb."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * 64)

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


def png_header_then_garbage() -> bytes:
    return b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


def truncated_png() -> bytes:
    whole = image_bytes("PNG", size=(256, 256))
    return whole[: len(whole) // 2]


def exif_of(data: bytes) -> dict[int, object]:
    with Image.open(BytesIO(data)) as image:
        return dict(image.getexif())


def format_of(data: bytes) -> str:
    with Image.open(BytesIO(data)) as image:
        return str(image.format)
