"""Numbers and texts as every view prints them: one place for "-" on a missing number.

Any number may be None, NaN or infinite (a hand-written or older report, a model that
returned nan): it prints as "-". Used by the terminal summary, the Markdown and HTML pages
and the `runs` command line.
"""

from __future__ import annotations

import math

from ..items.images import record_images
from ..text import clip  # noqa: F401  (the one text clipper, re-exported for the views)


def finite(value) -> float | None:
    """A real number, or None for None, NaN, infinities and anything that is not a number."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        value = float(value)
        return value if math.isfinite(value) else None
    return None


def fmt(value, spec: str = ".3f") -> str:
    """A number with a format spec (".3f", "+.3g", ",.1f", ...); "-" when there is none."""
    v = finite(value)
    return "-" if v is None else format(v, spec)


def fmt_signed(value, spec: str = "+.3f") -> str:
    """A margin or a change, always with its sign: +0.125, -0.020."""
    return fmt(value, spec)


def fmt_count(value, spec: str = ".3g") -> str:
    """A count: an int as it is; a sum of fractional credits with `spec` (3.0 -> "3");
    a list or dict as its length; "-" when there is none."""
    if isinstance(value, bool) or value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (list, tuple, dict)):
        return str(len(value))
    v = finite(value)
    return "-" if v is None else (str(int(v)) if v == int(v) else format(v, spec))


def fmt_interval(low, high, spec: str = ".3f") -> str:
    """[low, high], or "-" when either end is missing."""
    if finite(low) is None or finite(high) is None:
        return "-"
    return f"[{fmt(low, spec)}, {fmt(high, spec)}]"


def fmt_p(value, spec: str = ".3g", floor: float | None = 0.001) -> str:
    """A p-value: "<0.001" below `floor` (None: no floor)."""
    v = finite(value)
    if v is None:
        return "-"
    return f"<{floor:g}" if floor is not None and v < floor else format(v, spec)


def fmt_mib(n) -> str:
    """Bytes as MiB: "1,024 MiB"."""
    return "-" if n is None else f"{n / 2**20:,.0f} MiB"


def accuracy_of(value) -> float | None:
    """A baseline's before/after: a fraction, or a block with an accuracy."""
    if isinstance(value, dict):
        return finite(value.get("accuracy"))
    accuracy = getattr(value, "accuracy", None)
    if accuracy is not None:
        return finite(accuracy)
    return finite(value)


def text_table(rows: list[tuple], rules=(), left: int = 1, strip: bool = False) -> list[str]:
    """Rows of cells as aligned text: the first `left` columns left-aligned, the others
    right-aligned, two spaces apart; a rule line of dashes before each row index in `rules`."""
    rows = [tuple(str(c) for c in r) for r in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for i, r in enumerate(rows):
        if i in rules:
            lines.append("-" * (sum(widths) + 2 * (len(widths) - 1)))
        line = "  ".join(c.ljust(w) if j < left else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths)))
        lines.append(line.rstrip() if strip else line)
    return lines


def image_mark(record) -> str:
    """" [1 image]" / " [3 images]" after an item with images in a list of items; "" without."""
    count = record_images(record)[0]
    return f" [{count} image{'s' if count > 1 else ''}]" if count else ""
