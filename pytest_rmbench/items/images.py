"""Images on items: the optional `images` field of the kinds that take a prompt (pair,
best_of_n, judged), checked at collection and decoded only when a chunk is scored.

- An entry is a path (relative to the item file, or absolute) or a `data:image/...;base64,`
  URI; a URL (http, https, ftp) is an item error: nothing is ever fetched.
- Collection checks that each file exists and hashes its bytes (sha256); it never decodes.
  The hash is the image's identity: part of the item's content hash, of the score cache key
  and of the requests' equality, only when an item has images (text items keep their hashes).
- `decode(ref)` (Pillow, the `[vision]` extra, imported here only) reads the bytes again,
  checks they still hash the same, and decodes them with Pillow's MAX_IMAGE_PIXELS guard on:
  an adapter calls it in `prepare`, per chunk, so one bad image errors its item only.

Video later: an entry may already be a mapping `{path: ...}` or `{data: ...}`; a video frame
can follow as `{video: PATH, frame: N}` normalised to `ImageRef("frame", "PATH#N", sha256)`
(sha256 of the video's bytes plus the frame index), with `decode` extracting that frame: the
request fields, keys and hashes stay as they are.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import contextvars
import hashlib
import io
import os
import re
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

KINDS = ("path", "data")  # later: "frame" (a video frame), see the module docstring
URL_SCHEMES = ("http://", "https://", "ftp://", "ftps://")
DATA_URI = re.compile(r"^data:(image/[A-Za-z0-9.+-]+);base64,(.*)$", re.DOTALL)
# formats a server takes as they are (the original bytes with their MIME type); others become PNG
PASS_THROUGH = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp"}
SHOWN = 60  # characters of a data URI shown in messages and reports

# the item file being parsed: relative paths resolve against its folder (the current
# directory when none is set, e.g. items built in Python)
ITEM_FILE: contextvars.ContextVar[str | None] = contextvars.ContextVar("rmbench_item_file", default=None)


class ImageError(Exception):
    """An image that cannot be used; the message names the image."""


@dataclass(frozen=True)
class ImageRef:
    """One image of an item: `kind` "path" (value: the path as written) or "data" (the URI).

    Equal images are equal by their bytes (kind and sha256); `value` is for people and
    `path` the resolved file, neither part of equality."""

    kind: str
    value: str = field(compare=False)
    sha256: str = ""
    path: str = field(default="", compare=False, repr=False)

    def label(self) -> str:
        """The image for messages and reports: the path as given, a data URI clipped."""
        if self.kind == "data" and len(self.value) > SHOWN:
            return f"{self.value[:SHOWN]}... ({len(self.value):,} characters)"
        return self.value

    def __repr__(self) -> str:  # never the whole base64
        return f"ImageRef({self.kind!r}, {self.label()!r}, sha256={self.sha256[:12]!r})"


@contextlib.contextmanager
def item_file(path: str | None) -> Iterator[None]:
    """Relative image paths resolve against this file's folder while parsing it."""
    token = ITEM_FILE.set(path)
    try:
        yield
    finally:
        ITEM_FILE.reset(token)


# -- collection: shape, existence, bytes hash; never decoding --------------------------------
def parse_ref(entry: Any, index: int) -> ImageRef:
    """One entry of `images` -> an ImageRef; raises ImageError naming the entry."""
    if isinstance(entry, Mapping):  # {path: ...} or {data: ...}; {video, frame} later
        keys = set(entry)
        if keys == {"path"} or keys == {"data"}:
            entry = entry.get("path", entry.get("data"))
        else:
            raise ImageError(f"image {index} must be a string or a mapping with 'path' or 'data', got keys {sorted(keys)}")
    if not isinstance(entry, str) or not entry.strip():
        raise ImageError(f"image {index} must be a non-empty string (a path or a data:image/... URI)")
    if entry.lower().startswith(URL_SCHEMES):
        raise ImageError(f"image {index} ({entry}) is a URL; URLs are never fetched: save the image and give its path")
    if entry.startswith("data:"):
        found = DATA_URI.match(entry)
        if not found:
            raise ImageError(f"image {index} is a data URI but not 'data:image/...;base64,...'")
        return ImageRef("data", entry, hashlib.sha256(_b64(found.group(2), index)).hexdigest())
    path = resolve(entry)
    try:
        return ImageRef("path", entry, file_sha256(path), path)
    except OSError as exc:
        why = "not found" if isinstance(exc, FileNotFoundError) else (exc.strerror or type(exc).__name__)
        raise ImageError(f"image {index} ({entry}): {why} (looked at {path})") from None


def resolve(value: str) -> str:
    base = ITEM_FILE.get()
    expanded = os.path.expanduser(value)
    if os.path.isabs(expanded):
        return expanded
    folder = os.path.dirname(os.path.abspath(base)) if base else os.getcwd()
    return os.path.normpath(os.path.join(folder, expanded))


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _b64(text: str, index: int) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ImageError(f"image {index} is a data URI whose base64 does not decode") from None


# -- identity ---------------------------------------------------------------------------------
def image_fields(obj) -> dict:
    """{"images": refs} when an item or request has images; {} otherwise."""
    images = getattr(obj, "images", ())
    return {"images": images} if images else {}


def image_parts(obj) -> list[str]:
    """The images as key parts: [] when there are none, so earlier keys and hashes stay as they were."""
    images = getattr(obj, "images", ())
    if not images:
        return []
    return ["\x00images", *(f"{ref.kind}:{ref.sha256}" for ref in images)]


def report_images(obj) -> dict:
    """{"images": [labels]} for the report's `texts`; {} without images."""
    images = getattr(obj, "images", ())
    return {"images": [ref.label() for ref in images]} if images else {}


def count_with_images(records) -> int:
    """How many report item records list images in their `texts` (the summaries' count)."""
    return sum(bool((r.get("texts") or {}).get("images")) for r in records or () if hasattr(r, "get"))


# -- scoring: decoding, per chunk -------------------------------------------------------------
def pillow():
    """PIL.Image, or one line naming the extra to install."""
    from ..requires import VISION_EXTRA, require

    require("PIL", what="items with images", error=ImageError, extra=VISION_EXTRA)
    from PIL import Image

    return Image


def decode(ref: ImageRef):
    """The image, decoded (a PIL image, fully loaded), with its bytes. Raises ImageError on a
    missing, changed, unreadable, truncated or too large (decompression bomb) image."""
    data = read_bytes(ref)
    Image = pillow()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)  # over MAX_IMAGE_PIXELS: refused
            image = Image.open(io.BytesIO(data))
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"image {ref.label()}: refused as a possible decompression bomb ({exc})") from None
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError... for broken files
        raise ImageError(f"image {ref.label()}: cannot be decoded ({type(exc).__name__}: {exc})") from None
    return image, data


def read_bytes(ref: ImageRef) -> bytes:
    if ref.kind == "data":
        data = base64.b64decode(DATA_URI.match(ref.value).group(2))
    else:
        try:
            with open(ref.path or resolve(ref.value), "rb") as f:
                data = f.read()
        except OSError as exc:
            raise ImageError(f"image {ref.label()}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    if ref.sha256 and hashlib.sha256(data).hexdigest() != ref.sha256:
        raise ImageError(f"image {ref.label()}: changed since collection (its bytes no longer match)")
    return data


def data_uri(ref: ImageRef) -> str:
    """The image as a data URI for a server: the original bytes when their format is one a
    server takes (PNG, JPEG, GIF, WebP), else re-encoded as PNG. Decodes it first."""
    image, data = decode(ref)
    mime = PASS_THROUGH.get(image.format or "")
    if mime is None:
        out = io.BytesIO()
        image.save(out, format="PNG")
        data, mime = out.getvalue(), "image/png"
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
