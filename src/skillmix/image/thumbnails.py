"""Thumbnails for pages: a stored image, downscaled and embedded as a `data:` URL.

A page carries its images inside itself (it makes no network request), so their size is
most of the page's size. The budget of one thumbnail: its longer side at most
`THUMBNAIL_PX` (256) pixels, and at most `THUMBNAIL_BYTES` (24 kB) of image data, which
is 32 kB once written in base64. It is encoded as PNG and as JPEG and the smaller is
kept (flat drawings are smaller as PNG, photographs as JPEG); a JPEG over the budget is
encoded again at lower quality, and an image that still does not fit is scaled down
further. A page of 40 images thus holds at most about 1.3 MB of thumbnails.

Pillow does the work; it is imported when a thumbnail is made (`pillow_available` says
whether it can be).
"""

from __future__ import annotations

import base64
import importlib.util
import io
from dataclasses import dataclass
from typing import Any

THUMBNAIL_PX = 256  # the longer side, in pixels
THUMBNAIL_BYTES = 24_000  # encoded image bytes (base64 adds a third)
JPEG_QUALITIES = (85, 70, 55, 40)
SMALLEST_PX = 32  # below this, a thumbnail shows nothing worth its bytes


class ThumbnailError(ValueError):
    """Bytes that Pillow cannot read as an image."""


@dataclass(frozen=True)
class Thumbnail:
    """A downscaled image as a `data:` URL, with its size in pixels and encoded bytes."""

    data_url: str
    mime: str
    width: int
    height: int
    bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "src": self.data_url,
            "mime": self.mime,
            "width": self.width,
            "height": self.height,
            "bytes": self.bytes,
        }


def pillow_available() -> bool:
    """Whether Pillow is installed (thumbnails need it)."""
    return importlib.util.find_spec("PIL") is not None


def make_thumbnail(
    data: bytes, *, px: int = THUMBNAIL_PX, budget: int = THUMBNAIL_BYTES
) -> Thumbnail:
    """The thumbnail of image bytes (PNG, JPEG, WebP or GIF: its first frame) within
    `px` pixels and `budget` bytes; `ThumbnailError` for bytes that are no image."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as opened:
            opened.seek(0)
            image = _flattened(opened)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as err:
        raise ThumbnailError(f"not an image Pillow can read: {err}") from err
    side = px
    while True:
        small = image.copy()
        small.thumbnail((side, side), Image.Resampling.LANCZOS)
        mime, encoded = _smallest_encoding(small, budget)
        if len(encoded) <= budget or side // 2 < SMALLEST_PX:
            break
        side //= 2
    url = f"data:{mime};base64,{base64.b64encode(encoded).decode('ascii')}"
    return Thumbnail(url, mime, small.width, small.height, len(encoded))


def _flattened(image: Any) -> Any:
    """An RGB copy of `image`, transparent parts on white (JPEG has no transparency)."""
    from PIL import Image

    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return image.convert("RGB")


def _smallest_encoding(image: Any, budget: int) -> tuple[str, bytes]:
    """(mime, bytes): the PNG, or the best JPEG within `budget`, whichever is smaller."""
    png = io.BytesIO()
    image.save(png, format="PNG", optimize=True)
    best = ("image/png", png.getvalue())
    for quality in JPEG_QUALITIES:
        jpeg = io.BytesIO()
        image.save(jpeg, format="JPEG", quality=quality, optimize=True)
        if len(jpeg.getvalue()) < len(best[1]):
            best = ("image/jpeg", jpeg.getvalue())
        if len(best[1]) <= budget:
            break
    return best
