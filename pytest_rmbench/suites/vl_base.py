"""What the vision-language suites share: a row's images as ImageRefs, and accuracy per group.

A benchmark stores an item's image in one of three ways, all handled here without decoding:
- a path (VL-RewardBench's GitHub `image_path`, Multimodal RewardBench's `Image`, MM-RLHF's
  `image`), relative to the data file's folder (or a folder above it, up to --rm-data-dir,
  or an `images/` folder in one of those): it becomes a path ImageRef with its bytes' sha256;
- embedded bytes (a parquet / `datasets` Image column: `{bytes, path}`): a data-URI ImageRef,
  the MIME type read from the bytes' signature, the sha256 of the bytes;
- a decoded PIL image (a `datasets` Image column read with decoding on): saved as PNG.

A missing or unusable image raises RowError: an error item for that row only.
"""

from __future__ import annotations

import base64
import hashlib
import io
import mimetypes
import os
from collections import defaultdict
from typing import Any, Iterable

from ..items.images import URL_SCHEMES, ImageError, ImageRef, file_sha256, parse_ref
from .base import RowError, SuiteResult, graded, mean

# leading bytes -> MIME type; a data URI needs one, decoding reads the bytes themselves
SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF87a", "image/gif"),
              (b"GIF89a", "image/gif"), (b"BM", "image/bmp"), (b"II*\x00", "image/tiff"), (b"MM\x00*", "image/tiff"))


def image_folders(data_file: str | None, data_dir: str | None, extra: Iterable[str] = ()) -> list[str]:
    """Where a relative image path may be: the data file's folder and each folder above it up
    to --rm-data-dir, then `extra` folders (a suite option), each also with `images/` below it."""
    folders: list[str] = []
    if data_file:
        folder = os.path.dirname(os.path.abspath(data_file))
        top = os.path.abspath(data_dir) if data_dir else folder
        while True:
            folders.append(folder)
            if folder == top or not folder.startswith(top) or os.path.dirname(folder) == folder:
                break
            folder = os.path.dirname(folder)
    folders += [os.path.abspath(os.path.expanduser(f)) for f in extra if f]
    out = []
    for folder in dict.fromkeys(folders):
        out += [folder, os.path.join(folder, "images")]
    return out


def image_refs(value: Any, field: str, folders: list[str]) -> tuple:
    """The row's images (one or a list) as ImageRefs; raises RowError naming the image."""
    if value is None or value == "" or value == []:
        raise RowError(field, "missing: the row has no image")
    entries = value if isinstance(value, (list, tuple)) else [value]
    return tuple(image_ref(entry, field, folders) for entry in entries)


def image_ref(entry: Any, field: str, folders: list[str]) -> ImageRef:
    if isinstance(entry, dict):  # a parquet / datasets Image column: {bytes, path}
        if entry.get("bytes"):
            return bytes_ref(bytes(entry["bytes"]), entry.get("path"))
        entry = entry.get("path")
        if not entry:
            raise RowError(field, "missing: the image has neither bytes nor a path")
    elif hasattr(entry, "save") and hasattr(entry, "mode"):  # a PIL image, decoded by datasets
        out = io.BytesIO()
        entry.save(out, format="PNG")
        return bytes_ref(out.getvalue(), None, "image/png")
    if not isinstance(entry, str):
        raise RowError(field, f"must be an image path or embedded image bytes, got {type(entry).__name__}")
    if entry.startswith("data:") or entry.lower().startswith(URL_SCHEMES):
        try:
            return parse_ref(entry, 0)
        except ImageError as exc:
            raise RowError(field, str(exc)) from None
    return path_ref(entry, field, folders)


def path_ref(value: str, field: str, folders: list[str]) -> ImageRef:
    expanded = os.path.expanduser(value)
    candidates = [expanded] if os.path.isabs(expanded) else [os.path.join(f, expanded) for f in folders]
    for path in candidates:
        if os.path.isfile(path):
            try:
                return ImageRef("path", value, file_sha256(path), os.path.normpath(path))
            except OSError as exc:
                raise RowError(field, f"image {value!r} cannot be read: {exc.strerror or exc}") from None
    where = candidates[0] if candidates else "no folder: the rows came without their image files"
    raise RowError(field, f"image {value!r} not found (looked at {where}"
                   + (f" and {len(candidates) - 1} other place(s))" if len(candidates) > 1 else ")"))


def bytes_ref(data: bytes, path: str | None = None, mime: str | None = None) -> ImageRef:
    """Embedded bytes as a data-URI ImageRef, without decoding them."""
    mime = mime or sniff(data) or (mimetypes.guess_type(path)[0] if path else None) or "image/x-unknown"
    if not mime.startswith("image/"):
        mime = "image/x-unknown"
    uri = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    return ImageRef("data", uri, hashlib.sha256(data).hexdigest())


def sniff(data: bytes) -> str | None:
    for signature, mime in SIGNATURES:
        if data.startswith(signature):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


# -- scores ---------------------------------------------------------------------------------
def accuracies_by(results: Iterable[SuiteResult], key) -> dict[str, float]:
    """Accuracy (mean credit over the items that did not error) per key(result), sorted by key."""
    by: dict[str, list[float]] = defaultdict(list)
    for r in graded(results):
        by[key(r)].append(r.credit)
    return {name: mean(credits) for name, credits in sorted(by.items())}
