"""The content-addressed image store that sits next to a run store.

Images are files named by the SHA-256 of their bytes, in a folder beside the run store:
for `skillmix.sqlite` that is `skillmix.sqlite.images/`, and an image is
`skillmix.sqlite.images/ab/cdef0123….png` (the first two hex digits name a subfolder, the
extension comes from the bytes: png, jpg, webp or gif). A PostgreSQL store keeps its images
on each machine, under the same cache folder as its side file (`Store.path` + `.images`).

The store only ever adds files, each written to a temporary name and renamed, so a
process killed mid-write leaves no partial image. The `calls` table holds the link: an
image generation call's response is the hash of the image it produced, so a re-run finds
its images by the calls it already has and sends nothing.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

from skillmix.errors import StoreError
from skillmix.store import Store

# Leading bytes of each image format we keep, and its file extension and MIME type.
FORMATS: tuple[tuple[bytes, str, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "png", "image/png"),
    (b"\xff\xd8\xff", "jpg", "image/jpeg"),
    (b"GIF8", "gif", "image/gif"),
)
EXTENSIONS = ("png", "jpg", "webp", "gif")
REF_PREFIX = "sha256:"  # how a request refers to a stored image (see `vision`)


class NotAnImage(ValueError):
    """Bytes that are none of the image formats the store keeps."""


@dataclass(frozen=True)
class ImageInfo:
    """What the store knows of one image: its hash, format and, for PNG, its size."""

    sha256: str
    extension: str
    mime: str
    bytes: int
    width: int | None
    height: int | None

    def to_dict(self) -> dict[str, object]:
        return {
            "sha256": self.sha256,
            "file": relative_path(self.sha256, self.extension),
            "mime": self.mime,
            "bytes": self.bytes,
            "width": self.width,
            "height": self.height,
        }


def image_format(data: bytes) -> tuple[str, str]:
    """(extension, MIME type) of image bytes, or `NotAnImage`."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp", "image/webp"
    for magic, extension, mime in FORMATS:
        if data.startswith(magic):
            return extension, mime
    raise NotAnImage(f"not a PNG, JPEG, WebP or GIF image (starts with {data[:12]!r})")


def png_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG's header; None for any other format."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n") or len(data) < 24 or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def relative_path(digest: str, extension: str) -> str:
    """Where an image lives inside the image folder: `ab/cdef….png`."""
    return f"{digest[:2]}/{digest[2:]}.{extension}"


def image_ref(digest: str) -> str:
    """How a stored request refers to an image: `sha256:<hex>` (resolved when sent)."""
    return REF_PREFIX + digest


def images_folder(store: Store) -> Path:
    """The image folder of a run store: its path (for PostgreSQL, its side-file base in
    the user's cache folder) with `.images` added."""
    return Path(f"{store.path}.images")


class ImageStore:
    """Image files by SHA-256 under `root` (see the module docstring)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    @classmethod
    def beside(cls, store: Store) -> ImageStore:
        """The image store of a run store (nothing is created until an image is added)."""
        return cls(images_folder(store))

    def put(self, data: bytes) -> ImageInfo:
        """Add image bytes (`NotAnImage` if they are not one); return what was stored."""
        extension, mime = image_format(data)
        digest = hashlib.sha256(data).hexdigest()
        path = self.root / relative_path(digest, extension)
        if not path.exists():
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                os.replace(temporary, path)
            except OSError as err:
                raise StoreError(
                    f"cannot write image {digest[:12]} to {self.root}: {err.strerror or err}"
                ) from err
        return _info(digest, extension, mime, data)

    def find(self, digest: str) -> Path | None:
        """The file of image `digest`, or None when the store does not have it."""
        if len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
            return None
        for extension in EXTENSIONS:
            path = self.root / relative_path(digest, extension)
            if path.is_file():
                return path
        return None

    def read(self, digest: str) -> bytes:
        """The bytes of image `digest`; a `StoreError` that says what to do if it is gone."""
        path = self.find(digest)
        if path is None:
            raise StoreError(
                f"image {digest[:12]} is not in {self.root}",
                hint="the image folder beside the store was moved or deleted: put it back "
                "(copy it along with the store), or run with a new --store",
            )
        return path.read_bytes()

    def info(self, digest: str) -> ImageInfo:
        data = self.read(digest)
        extension, mime = image_format(data)
        return _info(digest, extension, mime, data)

    def data_url(self, digest: str) -> str:
        """The image as a `data:` URL, as the OpenAI-compatible chat API takes it."""
        data = self.read(digest)
        _, mime = image_format(data)
        return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _info(digest: str, extension: str, mime: str, data: bytes) -> ImageInfo:
    size = png_size(data)
    return ImageInfo(
        sha256=digest,
        extension=extension,
        mime=mime,
        bytes=len(data),
        width=size[0] if size else None,
        height=size[1] if size else None,
    )
