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

Images inside chat messages: a user message's `content` may be a list of parts, `{type: text,
text: ...}` and `{type: image, path: ...}` / `{type: image, data: "data:image/..."}` (items/fields.py).
The prompt keeps the text with PLACEHOLDER ("<image>") where each image sat; the images join
the item's `images` after the `images` field's entries, in order of appearance, as refs with
`inline=True`. `place(messages, images)` turns such messages back into parts for an adapter that
reads parts (http; `template_messages` for a processor's chat template): inline images where
their placeholders are, the `images` field's at the start of the last user message. A literal "<image>" in a prompt
without image parts is plain text.

Thumbnails: `thumbnail(ref)` makes a small JPEG data URI (longest side THUMB_SIDE, at most
THUMB_BYTES) for the HTML report, from the bytes, never fetched; `report_thumbnail(obj)` is the
item record's part of it (made on the worker, only with --rm-html).

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
BYTES_OBJECT = re.compile(r"<_io\.BytesIO object at 0x[0-9a-fA-F]+>")  # in Pillow's "cannot identify image file ..."
PLACEHOLDER = "<image>"  # where an image part sat in a message's text
THUMB_SIDE = 96  # a thumbnail's longest side, in pixels
THUMB_BYTES = 4_096  # a thumbnail's JPEG bytes at most (its data URI is about 4/3 of that)
THUMB_QUALITIES = (75, 50, 30)  # JPEG qualities tried in turn until the thumbnail fits THUMB_BYTES

# the item file being parsed: relative paths resolve against its folder (the current
# directory when none is set, e.g. items built in Python)
ITEM_FILE: contextvars.ContextVar[str | None] = contextvars.ContextVar("rmbench_item_file", default=None)


class ImageError(Exception):
    """An image that cannot be used; the message names the image."""


@dataclass(frozen=True)
class ImageRef:
    """One image of an item: `kind` "path" (value: the path as written) or "data" (the URI).

    Equal images are equal by their bytes (kind and sha256) and place (`inline`: it sat in a
    message's content parts, at a PLACEHOLDER); `value` is for people and `path` the resolved
    file, neither part of equality."""

    kind: str
    value: str = field(compare=False)
    sha256: str = ""
    path: str = field(default="", compare=False, repr=False)
    inline: bool = False

    def label(self) -> str:
        """The image for messages and reports: the path as given, a data URI clipped."""
        if self.kind == "data" and len(self.value) > SHOWN:
            return f"{self.value[:SHOWN]}... ({len(self.value):,} characters)"
        return self.value

    def __repr__(self) -> str:  # never the whole base64
        inline = ", inline=True" if self.inline else ""
        return f"ImageRef({self.kind!r}, {self.label()!r}, sha256={self.sha256[:12]!r}{inline})"


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
    return ["\x00images", *(f"{ref.kind}:{ref.sha256}" + (":inline" if ref.inline else "") for ref in images)]


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
    return _open(ref, data), data


def _open(ref: ImageRef, data: bytes, draft: tuple | None = None):
    """The bytes decoded with Pillow's MAX_IMAGE_PIXELS guard on; `draft` (w, h) lets a JPEG
    decode at a reduced scale (thumbnails). Raises ImageError naming the image."""
    Image = pillow()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)  # over MAX_IMAGE_PIXELS: refused
            image = Image.open(io.BytesIO(data))
            if draft:
                image.draft("RGB", draft)
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"image {ref.label()}: refused as a possible decompression bomb ({exc})") from None
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError... for broken files
        why = BYTES_OBJECT.sub("its bytes", str(exc))  # no memory address: the same image, the same message
        raise ImageError(f"image {ref.label()}: cannot be decoded ({type(exc).__name__}: {why})") from None
    return image


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


# -- images in messages: back to content parts, for adapters that read parts -----------------
def place(messages: list[dict], images) -> tuple[list[dict], list[ImageRef]]:
    """The messages with their images as content parts, and the images in the order the parts
    show them (a processor pairs its image tokens with images in that order).

    Inline refs (they sat in a message's content parts) replace the PLACEHOLDERs of the user
    messages, in order; the others (the `images` field) go at the start of the last user message,
    before its text. A message with an image becomes a list of `{"type": "image", "image": ref}`
    and `{"type": "text", "text": ...}` parts (empty texts between inline images left out); the
    others keep their string content. Raises ImageError when the placeholders and the inline
    images do not match (a request not built from a parsed item)."""
    inline = [ref for ref in images if ref.inline]
    leading = [ref for ref in images if not ref.inline]
    out, order, queue = [], [], list(inline)
    last = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=None)
    if last is None and images:
        raise ImageError("images need a user message to sit in")
    for i, message in enumerate(messages):
        parts = _inline_parts(message, queue) if inline and message["role"] == "user" else None
        if i == last and leading:
            parts = [{"type": "image", "image": ref} for ref in leading] + (
                parts if parts is not None else [{"type": "text", "text": message["content"]}])
        if parts is None:
            out.append(message)
            continue
        order.extend(p["image"] for p in parts if p["type"] == "image")
        out.append({**message, "content": parts})
    if queue:
        raise ImageError(f"{len(inline)} inline image(s) but {len(inline) - len(queue)} {PLACEHOLDER} placeholder(s) in the messages")
    return out, order


def template_messages(messages: list[dict], images) -> tuple[list[dict], list[ImageRef]]:
    """`place` for a processor's chat template: image parts are bare `{"type": "image"}` (the
    template writes the image tokens there); the refs come back in that order, to decode and
    hand to the processor with the text."""
    placed, order = place(messages, images)
    return [m if isinstance(m["content"], str) else {**m, "content": [
        {"type": "image"} if p["type"] == "image" else p for p in m["content"]]} for m in placed], order


def _inline_parts(message: dict, queue: list) -> list[dict] | None:
    """A user message's text split at its placeholders, each taking the next inline image;
    None when it has no placeholder."""
    pieces = message["content"].split(PLACEHOLDER)
    if len(pieces) == 1:
        return None
    if len(pieces) - 1 > len(queue):
        raise ImageError(f"more {PLACEHOLDER} placeholders in the messages than inline images")
    parts = []
    for k, piece in enumerate(pieces):
        if k:
            parts.append({"type": "image", "image": queue.pop(0)})
        if piece:
            parts.append({"type": "text", "text": piece})
    return parts


# -- thumbnails for the HTML report ------------------------------------------------------------
def thumbnail(ref: ImageRef, side: int = THUMB_SIDE, cap: int = THUMB_BYTES) -> str:
    """A small JPEG data URI of the image: longest side at most `side` pixels, at most `cap`
    bytes (lower qualities, then half the side, tried in turn). Made from the image's bytes
    (read and checked as `decode` does, the bomb guard on); raises ImageError when it cannot."""
    Image = pillow()
    image = _open(ref, read_bytes(ref), draft=(side, side))
    try:
        image = _flat_rgb(image, Image)
        for longest in (side, max(1, side // 2)):
            image.thumbnail((longest, longest))
            for quality in THUMB_QUALITIES:
                out = io.BytesIO()
                image.save(out, format="JPEG", quality=quality)
                if out.tell() <= cap:
                    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode("ascii")
    except Exception as exc:  # an odd mode or palette Pillow cannot turn into a JPEG
        raise ImageError(f"image {ref.label()}: no thumbnail ({type(exc).__name__}: {exc})") from None
    raise ImageError(f"image {ref.label()}: its thumbnail is over {cap:,} bytes")


def _flat_rgb(image, Image):
    """RGB for a JPEG: transparency laid on white, other modes converted."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image if image.mode == "RGB" else image.convert("RGB")


def report_thumbnail(obj) -> dict:
    """The report's thumbnail of an item's first image: {"thumbnail": data URI}, or
    {"thumbnail_error": why} when it cannot be made (no Pillow, an unreadable image); {} without
    images. Never raises: a thumbnail is worth less than the report."""
    images = getattr(obj, "images", ())
    if not images:
        return {}
    try:
        return {"thumbnail": thumbnail(images[0])}
    except ImageError as exc:
        return {"thumbnail_error": str(exc)}
    except Exception as exc:  # never the report's error
        return {"thumbnail_error": f"image {images[0].label()}: no thumbnail ({type(exc).__name__})"}


def record_images(record) -> tuple[int, str | None, str | None]:
    """(how many images, thumbnail data URI or None, why there is none or None) of a report item
    record (a dict or the report schema's Item), from its `texts`."""
    texts = (record.get("texts") if hasattr(record, "get") else None) or {}
    if not hasattr(texts, "get"):
        return 0, None, None
    labels = texts.get("images") or []
    uri = texts.get("thumbnail")
    uri = uri if isinstance(uri, str) and uri.startswith("data:image/") else None
    return len(labels) if isinstance(labels, (list, tuple)) else 0, uri, texts.get("thumbnail_error")
