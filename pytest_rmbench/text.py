"""Small text helpers shared by the whole package: one line of an exception, URL credentials
out of names and messages, and one text clipper.

A leaf module: it imports nothing from pytest_rmbench, so any module may use it.
"""

from __future__ import annotations

import math
import re
from urllib.parse import urlsplit, urlunsplit

REDACTED = "<redacted>"
_USERINFO = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://)[^/@\s'\"]+@")
_AUTH = re.compile(r"(?i)\b(bearer|basic)(\s+)[^\s'\",;]+")


def one_line(exc: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def redact_url(url: str, mask: str | None = None) -> str:
    """The URL without its credentials.

    mask=None drops the user and the password (for names and reports: ``https://host/v1``);
    a mask keeps the user and replaces the password by it (for messages about a store:
    ``postgresql://u:***@h/db``). A URL that cannot be parsed has anything that looks like
    credentials replaced by <redacted>.
    """
    try:
        parts = urlsplit(url)
        password = parts.password if mask is not None else None
    except ValueError:
        return _AUTH.sub(rf"\1\2{REDACTED}", _USERINFO.sub(rf"\1{REDACTED}@", url))
    if "@" not in parts.netloc:
        return url
    userinfo, _, host = parts.netloc.rpartition("@")
    if mask is None:
        netloc = host
    elif password is None:
        return url
    else:
        netloc = f"{userinfo.split(':', 1)[0]}:{mask}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def strip_credentials(url: str) -> str:
    """The URL without user and password (for names, messages and reports)."""
    return redact_url(url)


def clip(text, limit: int, *, squash: bool = False, marker: str = "…", within: bool = False) -> str:
    """`text` cut to `limit` characters with `marker` after the cut; unchanged when it fits.

    squash: whitespace runs become one space first (one line of text). within: the marker
    counts toward `limit` (at least one character is kept). The marker may name {more}, the
    number of characters cut (e.g. "[... {more:,} more characters]").
    """
    text = " ".join(str(text).split()) if squash else str(text)
    if len(text) <= limit:
        return text
    keep = max(1, limit - len(marker)) if within else limit
    return text[:keep] + marker.format(more=len(text) - keep)


def json_safe(value):
    """NaN and infinities become null: the report must be valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value
