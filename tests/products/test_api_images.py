"""Image upload through the real app: content sniffed with Pillow, size and pixel caps,
metadata stripped, stored locally (served by products) or in S3 (moto)."""

from __future__ import annotations

import os
from io import BytesIO
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from PIL import Image
from starlette.types import ASGIApp

from tests.products.pictures import (
    animated_gif,
    exif_of,
    format_of,
    image_bytes,
    jpeg_with_exif,
    png_declaring,
    png_header_then_garbage,
    truncated_png,
)
from tests.products.shop import ADMIN, Json, Shop, open_shop
from tests.support import assert_error, bearer, service_headers

MIB = 1024 * 1024
CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}


async def upload(
    shop: Shop,
    product_id: str,
    data: bytes,
    name: str = "upload.bin",
    content_type: str = "application/octet-stream",
    headers: dict[str, str] | None = None,
) -> Any:
    return await shop.client.post(
        f"/api/products/{product_id}/upload-image",
        files={"file": (name, data, content_type)},
        headers=ADMIN if headers is None else headers,
    )


async def uploaded(shop: Shop, product_id: str, data: bytes) -> Json:
    response = await upload(shop, product_id, data)
    assert response.status_code == 200, response.text
    body: Json = response.json()
    return body


def stored_files(shop: Shop) -> list[str]:
    return sorted(os.listdir(shop.media_root)) if shop.media_root.exists() else []


@pytest.mark.parametrize("image_format", list(CONTENT_TYPES))
async def test_real_images_are_accepted_and_served(shop: Shop, image_format: str) -> None:
    made = await shop.product()
    # The name and Content-Type lie on purpose: only the bytes decide.
    response = await upload(shop, made["id"], image_bytes(image_format), "x.txt", "text/plain")
    assert response.status_code == 200, response.text
    product = response.json()
    assert product == made | {"image_url": product["image_url"]}
    url = product["image_url"]
    # Relative without PUBLIC_BASE_URL: never built from the Host header.
    assert url.startswith("/media/products/")
    assert made["id"] in url
    served = await shop.client.get(url)
    assert served.status_code == 200
    assert served.headers["content-type"] == CONTENT_TYPES[image_format]
    assert served.headers["x-content-type-options"] == "nosniff"
    assert "immutable" in served.headers["cache-control"]
    assert format_of(served.content) == image_format
    assert await shop.get(made["id"]) == product


async def test_exif_and_comments_are_stripped(shop: Shop) -> None:
    original = jpeg_with_exif()
    assert exif_of(original)
    made = await shop.product()
    served = await shop.client.get((await uploaded(shop, made["id"], original))["image_url"])
    assert exif_of(served.content) == {}
    assert b"SpyCam" not in served.content
    assert b"secret comment" not in served.content


async def test_an_animated_gif_keeps_its_frames(shop: Shop) -> None:
    made = await shop.product()
    served = await shop.client.get((await uploaded(shop, made["id"], animated_gif(3)))["image_url"])
    with Image.open(BytesIO(served.content)) as image:
        assert getattr(image, "n_frames", 1) == 3


async def test_an_image_of_almost_5_mb_fits_the_default_body_cap(shop: Shop) -> None:
    noise = Image.frombytes("RGB", (1270, 1270), os.urandom(1270 * 1270 * 3))
    out = BytesIO()
    noise.save(out, format="PNG")
    assert 4.5 * MIB < len(out.getvalue()) < 5 * MIB
    made = await shop.product()
    assert (await upload(shop, made["id"], out.getvalue())).status_code == 200


@pytest.mark.parametrize(
    ("data", "name", "status", "code"),
    [
        (b"just some text\n" * 10, "notes.png", 415, "UNSUPPORTED_MEDIA_TYPE"),
        (b"", "empty.png", 415, "UNSUPPORTED_MEDIA_TYPE"),
        (png_header_then_garbage(), "broken.png", 415, "UNSUPPORTED_MEDIA_TYPE"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "x.svg", 415, "UNSUPPORTED_MEDIA_TYPE"),
        (image_bytes("BMP"), "x.bmp", 415, "UNSUPPORTED_MEDIA_TYPE"),
        (image_bytes("TIFF"), "x.tiff", 415, "UNSUPPORTED_MEDIA_TYPE"),
        (truncated_png(), "cut.png", 422, "INVALID_IMAGE"),
        (png_declaring(20000, 20000), "bomb.png", 422, "IMAGE_TOO_LARGE"),
        (png_declaring(8000, 6000), "48mp.png", 422, "IMAGE_TOO_LARGE"),
        (b"\x00" * (5 * MIB + 1), "big.png", 413, "PAYLOAD_TOO_LARGE"),
        (b"\x00" * (7 * MIB), "bigger.png", 413, "PAYLOAD_TOO_LARGE"),
    ],
    ids=[
        "text",
        "empty",
        "png-garbage",
        "svg",
        "bmp",
        "tiff",
        "truncated",
        "pixel-bomb",
        "over-40mp",
        "over-5mb",
        "over-body-cap",
    ],
)
async def test_refused_uploads_change_nothing(
    shop: Shop, data: bytes, name: str, status: int, code: str
) -> None:
    made = await shop.product()
    first = await uploaded(shop, made["id"], image_bytes("PNG"))
    before = stored_files(shop)
    response = await upload(shop, made["id"], data, name, "image/png")
    assert_error(response, status, code)
    assert stored_files(shop) == before
    assert await shop.get(made["id"]) == first
    events = (await shop.client.get("/internal/events", headers=service_headers())).json()
    assert len(events["events"]) == 2  # created, first image


async def test_upload_needs_an_admin_a_product_and_a_file(shop: Shop) -> None:
    made = await shop.product()
    png = image_bytes("PNG")
    assert_error(await upload(shop, made["id"], png, headers={}), 401)
    assert_error(await upload(shop, made["id"], png, headers=bearer("c1", "customer")), 403)
    assert_error(await upload(shop, "ghost", png), 404, "PRODUCT_NOT_FOUND")
    missing = await shop.client.post(
        f"/api/products/{made['id']}/upload-image", data={"other": "x"}, headers=ADMIN
    )
    assert_error(missing, 422, "VALIDATION_ERROR")
    assert stored_files(shop) == []


async def test_replacing_deletes_the_old_file_and_records_an_event(shop: Shop) -> None:
    made = await shop.product()
    first = await uploaded(shop, made["id"], image_bytes("PNG"))
    second = await uploaded(shop, made["id"], image_bytes("JPEG"))
    assert stored_files(shop) == [second["image_url"].rsplit("/", 1)[1]]
    assert_error(await shop.client.get(first["image_url"]), 404)
    assert (await shop.client.get(second["image_url"])).status_code == 200
    events = (await shop.client.get("/internal/events", headers=service_headers())).json()
    image_events = [e["data"]["image_url"] for e in events["events"][1:]]
    assert image_events == [first["image_url"], second["image_url"]]


async def test_deleting_a_product_deletes_its_image(shop: Shop) -> None:
    made = await shop.product()
    url = (await uploaded(shop, made["id"], image_bytes("WEBP")))["image_url"]
    assert (
        await shop.client.delete(f"/api/products/{made['id']}", headers=ADMIN)
    ).status_code == 204
    assert stored_files(shop) == []
    assert_error(await shop.client.get(url), 404)


@pytest.mark.parametrize(
    "name",
    [
        "nothing-here.png",
        "..%2Fproducts.db",
        "..%2F..%2F.jwt_secret",
        "%2e%2e",
        "x.svg",
        "x.png.html",
        ".upload-x.png",
    ],
)
async def test_media_route_serves_only_our_images(shop: Shop, name: str) -> None:
    made = await shop.product()
    await uploaded(shop, made["id"], image_bytes("PNG"))
    response = await shop.client.get(f"/media/products/{name}")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"


async def test_image_urls_use_public_base_url_when_set(
    tmp_path: Path, categories_app: ASGIApp
) -> None:
    async with open_shop(tmp_path, categories_app, public_base_url="https://shop.example/") as shop:
        made = await shop.product()
        product = await uploaded(shop, made["id"], image_bytes("GIF"))
        assert product["image_url"].startswith("https://shop.example/media/products/")


async def test_s3_storage(tmp_path: Path, categories_app: ASGIApp) -> None:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="media")
        async with open_shop(
            tmp_path,
            categories_app,
            s3_bucket="media",
            s3_region="us-east-1",
            s3_public_base_url="https://cdn.example",
        ) as shop:
            assert (await shop.client.get("/ready")).json()["checks"]["images"] == "ok"
            made = await shop.product()
            first = await uploaded(shop, made["id"], jpeg_with_exif())
            assert first["image_url"].startswith("https://cdn.example/products/")
            key = first["image_url"].removeprefix("https://cdn.example/")
            stored = s3.get_object(Bucket="media", Key=key)
            assert stored["ContentType"] == "image/jpeg"
            assert "immutable" in stored["CacheControl"]
            assert exif_of(stored["Body"].read()) == {}
            second = await uploaded(shop, made["id"], image_bytes("PNG"))
            keys = [o["Key"] for o in s3.list_objects_v2(Bucket="media").get("Contents", [])]
            assert keys == [second["image_url"].removeprefix("https://cdn.example/")]
            await shop.client.delete(f"/api/products/{made['id']}", headers=ADMIN)
            assert s3.list_objects_v2(Bucket="media").get("KeyCount") == 0
            assert stored_files(shop) == []
