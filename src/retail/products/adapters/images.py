"""The two image stores behind `ImageStore`: a directory served by products itself, and
S3-compatible object storage. Both keep an image under its key and never change it: keys
are never reused, so anything serving them may cache them for good."""

from __future__ import annotations

import os
import re
import tempfile
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from anyio import to_thread

from retail.products.domain import IMAGE_FORMATS

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MEDIA_PATH = "/media/products"
CONTENT_TYPES = {extension: content_type for content_type, extension in IMAGE_FORMATS.values()}
IMMUTABLE = "public, max-age=31536000, immutable"
# One path segment, no dots but the extension's: nothing that could leave the directory.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,200}\.(jpg|png|webp|gif)$")


def is_image_name(name: str) -> bool:
    return _NAME.fullmatch(name) is not None


class LocalImageStore:
    """Files under `root` (DATA_DIR/media/products), served at `{base_url}/media/products/`."""

    def __init__(self, root: Path, base_url: str) -> None:
        self.root = root
        self._base_url = base_url.rstrip("/")

    def path_of(self, name: str) -> Path | None:
        """The file an image name stands for, or None if the name is not one of ours."""
        if not is_image_name(name):
            return None
        path = self.root / name
        return path if path.parent == self.root else None

    async def save(self, key: str, data: bytes, content_type: str) -> str:
        path = self.path_of(key)
        if path is None:
            raise ValueError(f"not an image name: {key!r}")
        await to_thread.run_sync(partial(_write_atomically, path, data))
        return f"{self._base_url}{MEDIA_PATH}/{key}"

    async def delete(self, key: str) -> None:
        path = self.path_of(key)
        if path is not None:
            await to_thread.run_sync(partial(path.unlink, missing_ok=True))


def _write_atomically(path: Path, data: bytes) -> None:
    # Readers never see half a file: write beside it, then rename over it.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class S3ImageStore:
    """Objects under `products/` in a bucket; their URLs start with `public_base_url`."""

    PREFIX = "products/"

    def __init__(self, client: S3Client, bucket: str, public_base_url: str) -> None:
        self._client = client
        self._bucket = bucket
        self._public_base_url = public_base_url.rstrip("/")

    async def save(self, key: str, data: bytes, content_type: str) -> str:
        put = partial(
            self._client.put_object,
            Bucket=self._bucket,
            Key=self.PREFIX + key,
            Body=data,
            ContentType=content_type,
            CacheControl=IMMUTABLE,
        )
        await to_thread.run_sync(put)
        return f"{self._public_base_url}/{self.PREFIX}{key}"

    async def delete(self, key: str) -> None:
        remove = partial(self._client.delete_object, Bucket=self._bucket, Key=self.PREFIX + key)
        await to_thread.run_sync(remove)

    async def ping(self) -> None:
        await to_thread.run_sync(partial(self._client.head_bucket, Bucket=self._bucket))


def s3_image_store(
    bucket: str,
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    public_base_url: str | None = None,
) -> S3ImageStore:
    import boto3  # here, not at the top: ~9 MiB that only a store on S3 needs

    client = boto3.client("s3", endpoint_url=endpoint_url, region_name=region)
    return S3ImageStore(
        client, bucket, public_base_url or _default_public_url(bucket, endpoint_url, region)
    )


def _default_public_url(bucket: str, endpoint_url: str | None, region: str | None) -> str:
    if endpoint_url:  # MinIO and friends: path-style
        return f"{endpoint_url.rstrip('/')}/{bucket}"
    if region:
        return f"https://{bucket}.s3.{region}.amazonaws.com"
    return f"https://{bucket}.s3.amazonaws.com"
