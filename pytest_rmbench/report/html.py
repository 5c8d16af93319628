"""The JSON report -> one self-contained HTML page (inline CSS, SVG drawn here, a little JS).

Nothing on the page is fetched: no fonts, images, scripts or styles from anywhere. A
Content-Security-Policy allows only the page's own style and its one script (by hash), so
even a name that slipped past escaping could not run. Every text from the benchmark goes
through html.escape. The script only sorts and filters the items table; the page reads
fine without it.

Each item row expands (its "#" button, or a click on the row) to a row below it with the
prompt and the answers, when the report's item carries them under "texts" (see item_texts),
each clipped to TEXT_CLIP characters with the whole text behind a "show all" <details>; the
scores, margin, credit and any error are shown too. Subset names sort naturally (s2 before s10).

Items with images: when any item has images, the items table gains an "images" column (after the
node id): the item's first image as a thumbnail (`<img src="data:image/jpeg;...">`, the
small JPEG the worker put in its texts under --rm-html, items/images.thumbnail) plus "+N more",
or a label ("2 images, no preview") when there is no thumbnail; "-" for a text item. Only data:
URIs are ever used as an image source (the policy's img-src allows nothing else).

Charts carry data-chart="subset-accuracy" | "baseline-delta" | "margins" | "length-bias".
"""

from __future__ import annotations

import base64
import hashlib
import html
import math
import re

from ..items.images import record_images
from ..text import clip as _clip
from .aggregate import official_figures
from .format import accuracy_of, finite, fmt, fmt_count, fmt_interval, fmt_p
from .markdown import gate_state
from .schema import Block, Report
from .tables import check_interval, check_number, check_status, section_members

WIDTH = 700
ROW = 26
CHAR_W = 7.0  # average width of a 13px system-ui character, for label layout

BLUE = "#0969da"
SECTION = "#8250df"
DARK = "#1f2328"
GREEN = "#1a7f37"
RED = "#cf222e"
AMBER = "#9a6700"
GRAY = "#6e7781"
GRID = "#d0d7de"
ORANGE = "#bc4c00"
STATUS_COLOR = {"pass": GREEN, "fail": RED, "inconclusive": AMBER, "not run": GRAY}


def esc(value) -> str:
    return html.escape("-" if value is None else str(value), quote=True)


def num(value) -> str:
    """A coordinate, short and deterministic."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


def natural_key(name) -> tuple:
    """Sort key putting s2 before s10: digit runs compare as numbers, the rest without case."""
    text = str(name)
    parts = re.split(r"([0-9]+)", text)
    return tuple(int(p) if i % 2 else p.casefold() for i, p in enumerate(parts)), text


def natural(names) -> list:
    return sorted(names, key=natural_key)


def clip(text: str, chars: int) -> str:
    """One line of `text` in at most `chars` characters, "…" marking a cut."""
    return _clip(text, chars, squash=True, marker="…", within=True)


def nice_step(span: float, target: int) -> float:
    """A 1/2/2.5/5 x 10^k step giving about `target` intervals over span."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / max(1, target)
    power = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * power >= raw:
            return m * power
    return 10 * power


def tick_label(value: float, step: float) -> str:
    if abs(value) < step * 1e-6:
        return "0"
    decimals = max(0, -math.floor(math.log10(step)) + (1 if step / 10 ** math.floor(math.log10(step)) == 2.5 else 0))
    return f"{value:.{min(decimals, 6)}f}"


def svg_open(chart: str, height: float, title: str, desc: str = "") -> list[str]:
    ident = f"chart-{chart}"
    parts = [f'<svg data-chart="{chart}" class="chart" viewBox="0 0 {WIDTH} {num(height)}" width="100%" '
             f'role="img" aria-labelledby="{ident}-title" preserveAspectRatio="xMinYMin meet">',
             f'<title id="{ident}-title">{esc(title)}</title>']
    if desc:
        parts.append(f"<desc>{esc(desc)}</desc>")
    return parts


def text(x, y, content, anchor="start", cls="", fill=None, tip=None) -> str:
    attrs = f' x="{num(x)}" y="{num(y)}"'
    if anchor != "start":
        attrs += f' text-anchor="{anchor}"'
    if cls:
        attrs += f' class="{cls}"'
    if fill:
        attrs += f' fill="{fill}"'
    inner = esc(content) + (f"<title>{esc(tip)}</title>" if tip else "")
    return f"<text{attrs}>{inner}</text>"


def line(x1, y1, x2, y2, stroke, width=1.0, dash=None, tip=None) -> str:
    extra = f' stroke-dasharray="{dash}"' if dash else ""
    head = (f'<line x1="{num(x1)}" y1="{num(y1)}" x2="{num(x2)}" y2="{num(y2)}" stroke="{stroke}" '
            f'stroke-width="{num(width)}"{extra}')
    return head + (f"><title>{esc(tip)}</title></line>" if tip else "/>")


def rect(x, y, w, h, fill, tip=None, cls="") -> str:
    c = f' class="{cls}"' if cls else ""
    head = f'<rect x="{num(x)}" y="{num(y)}" width="{num(max(0.0, w))}" height="{num(max(0.0, h))}" fill="{fill}"{c}'
    return head + (f"><title>{esc(tip)}</title></rect>" if tip else "/>")


def label_width(labels: list[str]) -> float:
    longest = max((len(label) for label in labels), default=8)
    return min(240.0, max(96.0, longest * CHAR_W + 14))


def unit_axis(parts: list[str], x, top: float, bottom: float) -> None:
    """Grid and labels for a 0..1 axis."""
    for v in (0.0, 0.25, 0.5, 0.75, 1.0):
        parts.append(line(x(v), top, x(v), bottom, GRID, 1, None if v in (0.0, 1.0) else "3 3"))
        parts.append(text(x(v), bottom + 14, f"{v:g}", "middle", "axis"))


# -- chart 1: accuracy per subset ------------------------------------------------------------------

def thresholds_by_name(report: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for c in ((report.get("gate") or {}).get("checks") or []):
        if isinstance(c, (dict, Block)) and c.get("kind") == "accuracy" and finite(c.get("threshold")) is not None:
            out.setdefault(str(c.get("name")), []).append(c)
    return out


def _accuracy_legend(left: float) -> list[str]:
    """The accuracy chart's legend (about 510 units wide): aligned with the bars when it fits."""
    lx = min(left, WIDTH - 515)
    return [rect(lx, 10, 14, 10, BLUE),
            text(lx + 18, 19, "accuracy", cls="legend"),
            line(lx + 90, 15, lx + 118, 15, DARK, 1.5),
            line(lx + 90, 10, lx + 90, 20, DARK, 1.5),
            line(lx + 118, 10, lx + 118, 20, DARK, 1.5),
            text(lx + 124, 19, "Wilson 95% interval", cls="legend"),
            line(lx + 262, 8, lx + 262, 22, RED, 3),
            text(lx + 268, 19, "gate threshold (colour: check status)", cls="legend")]


def chart_subset_accuracy(report: dict) -> str:
    subsets = report.get("subsets") or {}
    sections = report.get("sections") or {}
    overall = report.get("overall") or {}
    thresholds = thresholds_by_name(report)
    rows = [(str(name), str(name), subsets[name] or {}, BLUE) for name in natural(subsets)]
    rows += [(f"[{name}]", str(name), s or {}, SECTION) for name, s in sections.items()]
    rows.append(("overall", "overall", overall, DARK))
    left = label_width([r[0] for r in rows])
    right = WIDTH - 150
    x = lambda v: left + (right - left) * min(1.0, max(0.0, v))  # noqa: E731
    top = 34
    height = top + ROW * len(rows) + 34
    parts = svg_open("subset-accuracy", height, "Accuracy per subset with Wilson 95% intervals",
                     "Bars: accuracy; whiskers: Wilson 95% interval; vertical marks: gate thresholds.")
    parts += _accuracy_legend(left)
    bottom = top + ROW * len(rows)
    unit_axis(parts, x, top, bottom)
    chars = int((left - 14) / CHAR_W)
    for i, (label, key, b, colour) in enumerate(rows):
        y = top + i * ROW
        if key == "overall" and i:
            parts.append(line(8, y, WIDTH - 8, y, GRID, 1))
        acc = finite(b.get("accuracy"))
        low, high = finite(b.get("ci_low")), finite(b.get("ci_high"))
        n = b.get("n")
        parts.append(text(left - 8, y + 17, clip(label, chars), "end", "label", tip=label))
        if acc is None:
            parts.append(text(left + 6, y + 17, "no scored items", cls="muted"))
        else:
            tip = f"{label}: accuracy {acc:.3f}, n={fmt_count(n)}"
            if low is not None and high is not None:
                tip += f", 95% CI [{low:.3f}, {high:.3f}]"
            parts.append(rect(left, y + 6, x(acc) - left, 14, colour, tip, "bar"))
            if low is not None and high is not None:
                parts.append(line(x(low), y + 13, x(high), y + 13, DARK, 1.5))
                parts.append(line(x(low), y + 8, x(low), y + 18, DARK, 1.5))
                parts.append(line(x(high), y + 8, x(high), y + 18, DARK, 1.5))
            value = f"{acc:.3f}  n={fmt_count(n)}"
            if low is not None and high is not None:
                value = f"{acc:.3f} [{low:.2f}, {high:.2f}]"
            parts.append(text(right + 8, y + 17, value, cls="value"))
        for c in thresholds.get(key, []):
            t = finite(c.get("threshold"))
            status = c.get("status") or "not run"
            parts.append(line(x(t), y + 2, x(t), y + ROW - 2, STATUS_COLOR.get(status, GRAY), 3,
                              tip=f"{key}: threshold {t:.3f} ({c.get('rule') or 'point'} rule): {status}"))
    parts.append("</svg>")
    return "\n".join(parts)


# -- chart 2: this run against the baseline ----------------------------------------------------------

def baseline_margins(report: dict) -> tuple[float | None, dict[str, float]]:
    """(the one non-inferiority margin, per-name margins) from the baseline block and gate checks."""
    baseline = report.get("baseline") or {}
    per: dict[str, float] = {}
    for c in ((report.get("gate") or {}).get("checks") or []):
        if not isinstance(c, (dict, Block)) or c.get("kind") != "baseline":
            continue
        if "non-inferiority" not in str(c.get("rule") or ""):
            continue
        t = finite(c.get("margin"))
        if t is None:
            t = finite(c.get("threshold"))
            t = None if t is None else abs(t)
        if t is None:
            continue
        name = str(c.get("subset") or c.get("name") or "")
        if name.startswith("baseline:"):
            name = name[len("baseline:"):]
        per[name] = t
    common = finite(baseline.get("margin"))
    if common is None and per and len(set(per.values())) == 1:
        common = next(iter(per.values()))
    return common, per


def chart_baseline_delta(report: dict) -> str:
    baseline = report.get("baseline") or {}
    blocks = baseline.get("subsets") or {}
    rows = [(str(name), blocks[name] or {}) for name in natural(blocks)]
    rows.append(("overall", baseline.get("overall") or {}))
    common, per = baseline_margins(report)
    left = label_width([r[0] for r in rows])
    x, span = _delta_scale(rows, [m for m in [common, *per.values()] if m is not None], left)
    top = 34
    bottom = top + ROW * len(rows)
    parts = svg_open("baseline-delta", bottom + 34,
                     f"Accuracy change against the baseline ({baseline.get('run') or '-'}) with its interval",
                     "Dots: this run's accuracy minus the baseline's on shared items; lines: the interval; "
                     "solid line: no change; dashed line: minus the non-inferiority margin.")
    parts += _delta_legend(left)
    parts += _delta_axis(x, span, top, bottom, common)
    chars = int((left - 14) / CHAR_W)
    for i, (name, b) in enumerate(rows):
        parts += _delta_row(x, i, top + i * ROW, name, b, left, chars, common, per.get(name))
    parts.append("</svg>")
    return "\n".join(parts)


DELTA_RIGHT = WIDTH - 205  # the delta chart's plot ends here; the figures are written right of it


def _delta_scale(rows: list[tuple[str, dict]], margins: list[float], left: float):
    """(x, span): x maps a change in accuracy to a coordinate, ±span spanning the plot."""
    extent = [abs(v) for _, b in rows for v in (finite(b.get("delta")), finite(b.get("delta_low")),
                                               finite(b.get("delta_high"))) if v is not None]
    span = max(extent + margins + [0.05]) * 1.15
    span = min(span, 1.0)
    centre = (left + DELTA_RIGHT) / 2
    half = (DELTA_RIGHT - left) / 2
    return (lambda v: centre + half * max(-1.0, min(1.0, v / span))), span


def _delta_legend(left: float) -> list[str]:
    lx = min(left, WIDTH - 505)  # the legend is about 500 units wide
    parts = [text(lx, 19, "Δ accuracy (this run − baseline); colour: decision", cls="legend")]
    for colour, word, offset in ((GREEN, "pass", 320), (AMBER, "inconclusive", 370), (RED, "fail", 470)):
        parts.append(f'<circle cx="{num(lx + offset)}" cy="15" r="5" fill="{colour}"/>')
        parts.append(text(lx + offset + 8, 19, word, cls="legend"))
    return parts


def _delta_axis(x, span: float, top: float, bottom: float, common: float | None) -> list[str]:
    """The grid and its labels, the no-change line and the common -margin line."""
    parts = []
    step = nice_step(2 * span, 6)
    k = math.floor(span / step)
    for j in range(-k, k + 1):
        v = j * step
        parts.append(line(x(v), top, x(v), bottom, GRID, 1, None if j == 0 else "3 3"))
        parts.append(text(x(v), bottom + 14, ("+" if v > 0 else "") + tick_label(v, step), "middle", "axis"))
    parts.append(line(x(0), top - 4, x(0), bottom, DARK, 1.5))
    if common is not None:
        parts.append(line(x(-common), top - 4, x(-common), bottom, RED, 1.5, "6 4",
                          tip=f"non-inferiority: the change must stay above −{common:.3f}"))
        parts.append(text(x(-common) - 4, bottom + 28, f"−margin {common:.3f}", "end", "axis", fill=RED))
    return parts


def _delta_row(x, i: int, y: float, name: str, b: dict, left: float, chars: int, common, own) -> list[str]:
    """One subset's (or overall's) change: its label, own margin, interval, dot and figures."""
    parts = []
    mid = y + 13
    if name == "overall" and i:
        parts.append(line(8, y, WIDTH - 8, y, GRID, 1))
    parts.append(text(left - 8, y + 17, clip(name, chars), "end", "label", tip=name))
    if own is not None and own != common:
        parts.append(line(x(-own), y + 3, x(-own), y + ROW - 3, RED, 2, "3 2", tip=f"−margin {own:.3f}"))
    delta = finite(b.get("delta"))
    if delta is None:
        parts.append(text(left + 6, y + 17, "no shared items", cls="muted"))
        return parts
    decision = str(b.get("decision") or "not run")
    colour = STATUS_COLOR.get(decision, GRAY)
    low, high = finite(b.get("delta_low")), finite(b.get("delta_high"))
    tip = (f"{name}: {fmt(accuracy_of(b.get('before')))} → {fmt(accuracy_of(b.get('after')))}, "
           f"Δ {delta:+.3f} {fmt_interval(low, high, '+.3f')}, regressions {fmt_count(b.get('regressions'))}, "
           f"fixes {fmt_count(b.get('fixes'))}, McNemar p {fmt_p(b.get('mcnemar_p'))}: {decision}")
    if low is not None and high is not None:
        parts.append(line(x(low), mid, x(high), mid, colour, 3))
        parts.append(line(x(low), mid - 5, x(low), mid + 5, colour, 1.5))
        parts.append(line(x(high), mid - 5, x(high), mid + 5, colour, 1.5))
    parts.append(f'<circle cx="{num(x(delta))}" cy="{num(mid)}" r="5.5" fill="{colour}" stroke="#fff" '
                 f'stroke-width="1.5"><title>{esc(tip)}</title></circle>')
    parts.append(text(DELTA_RIGHT + 10, y + 17,
                      f"{delta:+.3f}  p={fmt_p(b.get('mcnemar_p'))}  {decision}", cls="value", fill=colour))
    return parts


# -- chart 3: margins ----------------------------------------------------------------------------

def histogram(values: list[tuple[float, bool]], target: int = 24):
    """(start, width, [(correct, incorrect) per bin]); bins are (a, b], so a margin of 0 sits left of 0."""
    lo = min(0.0, min(v for v, _ in values))
    hi = max(0.0, max(v for v, _ in values))
    if hi - lo <= 0:
        lo, hi = -1.0, 1.0
    width = nice_step(hi - lo, target)
    start = math.floor(lo / width) * width
    if start >= lo:
        start -= width
    count = max(1, math.ceil((hi - start) / width - 1e-9))
    bins = [[0, 0] for _ in range(count)]
    for v, correct in values:
        i = min(count - 1, max(0, math.ceil((v - start) / width - 1e-9) - 1))
        bins[i][0 if correct else 1] += 1
    return start, width, bins


def chart_margins(report: dict) -> str:
    items = [i for i in report.get("items") or [] if isinstance(i, (dict, Block))]
    values = [(finite(i.get("margin")), i.get("outcome") == "correct") for i in items]
    values = [(v, c) for v, c in values if v is not None]
    left, right, top = 56, WIDTH - 20, 34
    bottom = 230
    height = bottom + 42
    parts = svg_open("margins", height, "Distribution of item margins (score chosen − score rejected)",
                     "Stacked histogram: correct items in green, incorrect in red; the dark line is a margin of 0.")
    n_correct = sum(c for _, c in values)
    parts.append(rect(left, 10, 12, 10, GREEN))
    parts.append(text(left + 16, 19, f"correct ({n_correct})", cls="legend"))
    parts.append(rect(left + 120, 10, 12, 10, RED))
    parts.append(text(left + 136, 19, f"incorrect ({len(values) - n_correct})", cls="legend"))
    if not values:
        parts.append(line(left, bottom, right, bottom, GRID, 1))
        parts.append(text((left + right) / 2, (top + bottom) / 2, "no item has a margin", "middle", "muted"))
        parts.append("</svg>")
        return "\n".join(parts)
    start, width, bins = histogram(values)
    stop = start + width * len(bins)
    x = lambda v: left + (right - left) * (v - start) / (stop - start)  # noqa: E731
    peak = max(a + b for a, b in bins) or 1
    ystep = max(1, int(nice_step(peak, 4)))
    ymax = math.ceil(peak / ystep) * ystep
    y = lambda c: bottom - (bottom - top) * c / ymax  # noqa: E731
    for c in range(0, ymax + 1, ystep):
        parts.append(line(left, y(c), right, y(c), GRID, 1, None if c == 0 else "3 3"))
        parts.append(text(left - 6, y(c) + 4, str(c), "end", "axis"))
    for i, (good, bad) in enumerate(bins):
        a, b = start + i * width, start + (i + 1) * width
        x0, x1 = x(a) + 1, x(b) - 1
        span = f"({a:.4g}, {b:.4g}]"
        if good:
            parts.append(rect(x0, y(good), x1 - x0, y(0) - y(good), GREEN, f"margin {span}: {good} correct"))
        if bad:
            parts.append(rect(x0, y(good + bad), x1 - x0, y(good) - y(good + bad), RED,
                              f"margin {span}: {bad} incorrect"))
    xstep = nice_step(stop - start, 8)
    first = math.ceil(start / xstep - 1e-9)
    last = math.floor(stop / xstep + 1e-9)
    for j in range(first, last + 1):
        v = j * xstep
        parts.append(line(x(v), bottom, x(v), bottom + 4, DARK, 1))
        parts.append(text(x(v), bottom + 16, tick_label(v, xstep), "middle", "axis"))
    parts.append(line(x(0), top - 6, x(0), bottom, DARK, 2, "5 3", tip="margin 0: below it the item is incorrect"))
    parts.append(text(x(0) + 4, top + 2, "0", cls="axis"))
    parts.append(text((left + right) / 2, bottom + 34, "margin = score(chosen) − score(rejected)", "middle", "axis"))
    parts.append("</svg>")
    return "\n".join(parts)


# -- chart 4: length bias ---------------------------------------------------------------------------

def chart_length_bias(report: dict) -> str:
    bias = report.get("length_bias") or {}
    longer, shorter = bias.get("chosen_longer") or {}, bias.get("chosen_shorter") or {}
    overall = report.get("overall") or {}
    length = report.get("length_baseline") or {}
    rows = [
        (f"model, chosen longer (n={fmt_count(longer.get('n'))})", finite(longer.get("accuracy")), BLUE),
        (f"model, chosen shorter (n={fmt_count(shorter.get('n'))})", finite(shorter.get("accuracy")), BLUE),
        (f"model, all items (n={fmt_count(overall.get('n'))})", finite(overall.get("accuracy")), DARK),
        ("length-only baseline", finite(length.get("accuracy")), ORANGE),
    ]
    left = label_width([r[0] for r in rows])
    right = WIDTH - 80
    x = lambda v: left + (right - left) * min(1.0, max(0.0, v))  # noqa: E731
    top = 34
    bottom = top + ROW * len(rows)
    parts = svg_open("length-bias", bottom + 34,
                     "Length bias: accuracy when the chosen answer is longer or shorter, and the length-only baseline",
                     "A model that mostly rewards length does much better when the chosen answer is longer.")
    parts.append(text(left, 19, "accuracy; dashed line: chance (0.5)", cls="legend"))
    unit_axis(parts, x, top, bottom)
    parts.append(line(x(0.5), top - 4, x(0.5), bottom, GRAY, 1.5, "6 4"))
    for i, (label, acc, colour) in enumerate(rows):
        y = top + i * ROW
        if i == 3:
            parts.append(line(8, y, WIDTH - 8, y, GRID, 1))
        parts.append(text(left - 8, y + 17, label, "end", "label"))
        if acc is None:
            parts.append(text(left + 6, y + 17, "no items", cls="muted"))
            continue
        parts.append(rect(left, y + 6, x(acc) - left, 14, colour, f"{label}: {acc:.3f}", "bar"))
        parts.append(text(right + 8, y + 17, f"{acc:.3f}", cls="value"))
    rule = length.get("rule")
    if rule:
        parts.append(text(left, bottom + 30, f"length-only rule: {rule}", cls="axis"))
    parts.append("</svg>")
    return "\n".join(parts)


# -- tables --------------------------------------------------------------------------------------------

_UNSORTED = object()


def td(value, sort=_UNSORTED, cls="") -> str:
    """A cell; `sort` (a number or None) becomes data-v, which the items table sorts on."""
    attrs = ""
    if sort is not _UNSORTED:
        v = finite(sort)
        attrs += f' data-v="{"" if v is None else repr(v)}"'
    if cls:
        attrs += f' class="{cls}"'
    return f"<td{attrs}>{esc(value)}</td>"


def status_cell(status) -> str:
    s = str(status or "not run")
    return f'<td><span class="pill {esc(s.replace(" ", "-"))}">{esc(s)}</span></td>'


def subsets_table(report: dict) -> str:
    subsets = report.get("subsets") or {}
    baseline = report.get("baseline") or None
    base = (baseline or {}).get("subsets") or {}
    head = ["subset", "n", "correct", "accuracy", "95% CI", "mean margin", "errors"]
    if baseline:
        head += ["baseline", "Δ accuracy", "interval", "regressions", "fixes", "McNemar p", "decision"]
    out = ['<table class="data"><thead><tr>' + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr></thead><tbody>"]

    def row(name, b, cmp, cls=""):
        cells = [f"<th scope=\"row\">{esc(name)}</th>", td(fmt_count(b.get("n")), cls="num"),
                 td(fmt_count(b.get("correct")), cls="num"), td(fmt(b.get("accuracy")), cls="num"),
                 td(fmt_interval(b.get("ci_low"), b.get("ci_high"))),
                 td(fmt(b.get("mean_margin"), "+.3g"), cls="num"), td(fmt_count(b.get("errors")), cls="num")]
        if baseline:
            cmp = cmp or {}
            cells += [td(fmt(accuracy_of(cmp.get("before"))), cls="num"), td(fmt(cmp.get("delta"), "+.3f"), cls="num"),
                      td(fmt_interval(cmp.get("delta_low"), cmp.get("delta_high"), "+.3f")),
                      td(fmt_count(cmp.get("regressions")), cls="num"), td(fmt_count(cmp.get("fixes")), cls="num"),
                      td(fmt_p(cmp.get("mcnemar_p")), cls="num"),
                      status_cell(cmp.get("decision")) if cmp else td("-")]
        return f'<tr class="{cls}">' + "".join(cells) + "</tr>" if cls else "<tr>" + "".join(cells) + "</tr>"

    for name in natural(subsets):
        out.append(row(name, subsets[name] or {}, base.get(name)))
    out.append(row("overall", report.get("overall") or {}, (baseline or {}).get("overall"), "total"))
    out.append("</tbody></table>")
    return "\n".join(out)


def sections_table(report: dict) -> str:
    sections = report.get("sections") or {}
    if not sections:
        return '<p class="muted">No sections are defined.</p>'
    out = ['<table class="data"><thead><tr><th>section</th><th>n</th><th>accuracy</th><th>subsets (weight)</th>'
           "</tr></thead><tbody>"]
    for name, s in sections.items():
        s = s or {}
        members = ", ".join(section_members(s) if isinstance(s, Block) else [])
        out.append(f'<tr><th scope="row">{esc(name)}</th>{td(fmt_count(s.get("n")), cls="num")}'
                   f'{td(fmt(s.get("accuracy")), cls="num")}{td(members or "-")}</tr>')
    out.append("</tbody></table>")
    return "\n".join(out)


def official_table(report: dict) -> str:
    rows = official_figures(report)
    out = ['<table class="data"><thead><tr><th>suite</th><th>score</th><th>value</th><th>more</th></tr></thead><tbody>']
    for name, headline, value, figures in rows:
        more = ", ".join(f"{k} {fmt(v)}" for k, v in figures)
        out.append(f'<tr><th scope="row">{esc(name)}</th>{td(headline or "-")}{td(fmt(value), cls="num")}{td(more or "-")}</tr>')
    out.append("</tbody></table>")
    return "\n".join(out)


def gate_table(report: dict) -> str:
    gate = report.get("gate") or {}
    checks = [c for c in gate.get("checks") or [] if isinstance(c, (dict, Block))]
    if not checks:
        return '<p class="muted">No gate checks: no thresholds were set.</p>'
    out = ['<table class="data"><thead><tr><th>check</th><th>kind</th><th>rule</th><th>threshold</th>'
           "<th>value</th><th>interval</th><th>status</th><th>details</th></tr></thead><tbody>"]
    for c in checks:
        status = check_status(c)
        details = []
        if c.get("source"):
            details.append(f"from {c['source']}")
        failed = c.get("failed")
        if isinstance(failed, list) and failed:
            details.append("failed: " + ", ".join(str(f) for f in failed[:10])
                           + (f" and {len(failed) - 10} more" if len(failed) > 10 else ""))
        out.append(f'<tr><th scope="row">{esc(c.get("name"))}</th>{td(c.get("kind"))}{td(c.get("rule"))}'
                   f'{td(check_number(c, "threshold"), cls="num")}{td(check_number(c, "value"), cls="num")}'
                   f'{td(check_interval(c))}'
                   f'{status_cell(status)}{td("; ".join(details) or "")}</tr>')
    out.append("</tbody></table>")
    return "\n".join(out)


def regressions_table(report: dict) -> str:
    baseline = report.get("baseline") or {}
    regressed = [str(r) for r in baseline.get("regressed") or []]
    if not regressed:
        return '<p class="muted">No regressions: no item the baseline got right is wrong now.</p>'
    by_id = {str(i.get("nodeid")): i for i in report.get("items") or [] if isinstance(i, (dict, Block))}
    out = [f"<p>{len(regressed)} item(s) the baseline got right are wrong now.</p>",
           '<table class="data"><thead><tr><th>node id</th><th>subset</th><th>outcome</th><th>margin</th>'
           "</tr></thead><tbody>"]
    for nodeid in regressed:
        item = by_id.get(nodeid, {})
        out.append(f'<tr><td class="id">{esc(nodeid)}</td>{td(item.get("subset"))}{td(item.get("outcome"))}'
                   f'{td(fmt(item.get("margin"), "+.4g"), cls="num")}</tr>')
    out.append("</tbody></table>")
    return "\n".join(out)


ITEM_COLUMNS = [("index", "#"), ("nodeid", "node id"), ("subset", "subset"), ("outcome", "outcome"),
                ("chosen", "chosen score"), ("rejected", "rejected score"), ("margin", "margin"),
                ("truncated", "truncated"), ("longer", "chosen longer")]


def yes_no(value) -> str:
    return "-" if value is None else ("yes" if value else "no")


TEXT_CLIP = 600  # characters of a prompt or an answer shown before its "show all"


def item_texts(item: dict) -> list[tuple[str, str, object]]:
    """(label, text, score) for the prompt and every answer of a report item, from its optional
    "texts" key: {"prompt": str or [{"role", "content"}, ...], "chosen": str or [str, ...],
    "rejected": str or [str, ...], "answers": [{"label", "text", "score"}, ...]} (all optional).
    A list kind's scores come from details.chosen_scores / rejected_scores, a pair's from
    chosen_score / rejected_score. [] when the item carries no texts."""
    texts = item.get("texts")
    if not isinstance(texts, dict):
        return []
    details = item.get("details") if isinstance(item.get("details"), dict) else {}
    out: list[tuple[str, str, object]] = []
    prompt = texts.get("prompt")
    if isinstance(prompt, (list, tuple)):
        turns = []
        for m in prompt:
            if isinstance(m, dict):
                turns.append(f"{m.get('role', '?')}: {m.get('content', '')}")
            elif isinstance(m, (list, tuple)) and len(m) == 2:
                turns.append(f"{m[0]}: {m[1]}")
            else:
                turns.append(str(m))
        prompt = "\n\n".join(turns)
    if prompt is not None:
        out.append(("prompt", str(prompt), None))
    for side in ("chosen", "rejected"):
        value = texts.get(side)
        if isinstance(value, (list, tuple)):
            scores = details.get(f"{side}_scores")
            scores = scores if isinstance(scores, (list, tuple)) else []
            for k, answer in enumerate(value):
                out.append((f"{side} {k + 1} of {len(value)}", str(answer), scores[k] if k < len(scores) else None))
        elif value is not None:
            out.append((side, str(value), item.get(f"{side}_score")))
    for k, answer in enumerate(texts.get("answers") or []):
        if isinstance(answer, dict):
            out.append((str(answer.get("label") or f"answer {k + 1}"), str(answer.get("text", "")), answer.get("score")))
        else:
            out.append((f"answer {k + 1}", str(answer), None))
    return out


def text_block(content: str, limit: int = TEXT_CLIP) -> str:
    """The text, escaped, clipped to `limit` characters; the whole of it behind a "show all"."""
    if len(content) <= limit:
        return f'<div class="t">{esc(content)}</div>'
    return (f'<div class="t">{esc(content[:limit])}…</div>'
            f'<details class="all"><summary>show all ({len(content):,} characters)</summary>'
            f'<div class="t">{esc(content)}</div></details>')


def item_more(item: dict) -> str:
    """What an expanded item row shows: figures, error, prompt and answers."""
    figures = [("kind", item.get("kind")), ("outcome", item.get("outcome")),
               ("chosen score", fmt(item.get("chosen_score"), ".6g")),
               ("rejected score", fmt(item.get("rejected_score"), ".6g")),
               ("margin", fmt(item.get("margin"), "+.6g"))]
    if item.get("credit") is not None:
        figures.append(("credit", fmt(item.get("credit"), ".4g")))
    if item.get("truncated"):
        figures.append(("truncated", "yes"))
    if item.get("verdicts"):
        figures.append(("verdicts", ", ".join(str(v) for v in item["verdicts"])))
    figures = [(k, v) for k, v in figures if v not in (None, "")]
    parts = ['<dl class="fig">' + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in figures) + "</dl>"]
    if item.get("error"):
        parts.append(f'<div class="err"><strong>error:</strong> {text_block(str(item["error"]))}</div>')
    parts += images_section(item)
    shown = item_texts(item)
    for label, content, score in shown:
        head = esc(label) + ("" if finite(score) is None else f' <span class="muted">score {esc(fmt(score, ".6g"))}</span>')
        cls = label.split(" ", 1)[0]
        parts.append(f'<section class="text {esc(cls)}"><h4>{head}</h4>{text_block(content)}</section>')
    if not shown:
        parts.append('<p class="muted">The report holds no prompt or answer texts for this item.</p>')
    return "".join(parts)


def image_cell(item) -> str:
    """The items table's images cell: a thumbnail and "+N more", a label without one, "-" without images."""
    count, uri, why = record_images(item)
    if not count:
        return '<td data-v="0" class="img">-</td>'
    more = f' <span class="muted">+{count - 1} more</span>' if count > 1 else ""
    if uri:
        alt = f"image 1 of {count}"
        return (f'<td data-v="{count}" class="img"><img class="thumb" src="{esc(uri)}" alt="{esc(alt)}" '
                f'title="{esc(alt)}">{more}</td>')
    label = f"{count} image{'s' if count > 1 else ''}" + (", no preview" if why else "")
    tip = f' title="{esc(why)}"' if why else ""
    return f'<td data-v="{count}" class="img"><span class="img-label"{tip}>{esc(label)}</span></td>'


def _has_images(items) -> bool:
    return any(record_images(i)[0] for i in items)


def images_section(item) -> list[str]:
    """An expanded item's images: each one's label (a path, a clipped data URI), and why there is no thumbnail."""
    texts = item.get("texts") if isinstance(item.get("texts"), (dict, Block)) else {}
    labels = texts.get("images") or []
    if not labels:
        return []
    why = texts.get("thumbnail_error")
    rows = "".join(f"<li>{esc(label)}</li>" for label in labels)
    note = f'<p class="muted">no thumbnail: {esc(why)}</p>' if why else ""
    return [f'<section class="text images"><h4>images ({len(labels)})</h4><ol class="images">{rows}</ol>{note}</section>']


def items_table(report: dict) -> str:
    items = [i for i in report.get("items") or [] if isinstance(i, (dict, Block))]
    images = _has_images(items)
    columns = ITEM_COLUMNS[:2] + [("images", "images")] + ITEM_COLUMNS[2:] if images else ITEM_COLUMNS
    outcomes = sorted({str(i.get("outcome")) for i in items})
    head = "".join(f'<th data-key="{key}" aria-sort="none"><button type="button">{esc(label)}</button></th>'
                   for key, label in columns)
    controls = ('<div class="controls"><label>Filter <input id="item-filter" type="search" '
                'placeholder="node id, subset, outcome, text…"></label> <label>Outcome <select id="item-outcome">'
                '<option value="">all</option>'
                + "".join(f'<option value="{esc(o)}">{esc(o)}</option>' for o in outcomes)
                + f'</select></label> <span id="item-count">{len(items)} items</span>'
                '<span class="muted">click a row for its prompt and answers</span></div>')
    out = [controls, f'<table class="data items" id="items"><thead><tr>{head}</tr></thead><tbody>']
    for n, i in enumerate(items, 1):
        outcome = str(i.get("outcome"))
        out.append(
            f'<tr data-outcome="{esc(outcome)}" class="o-{esc(outcome)}" data-item="{n}">'
            f'<td data-v="{n}" class="num"><button type="button" class="expand" aria-expanded="false" '
            f'aria-controls="item-{n}" title="prompt and answers">{n}</button></td>'
            f'<td class="id">{esc(i.get("nodeid"))}</td>{image_cell(i) if images else ""}'
            f'{td(i.get("subset"))}{td(outcome, cls="outcome")}'
            f'{td(fmt(i.get("chosen_score"), ".4g"), i.get("chosen_score"), "num")}'
            f'{td(fmt(i.get("rejected_score"), ".4g"), i.get("rejected_score"), "num")}'
            f'{td(fmt(i.get("margin"), "+.4g"), i.get("margin"), "num")}'
            f'{td(yes_no(i.get("truncated")))}{td(yes_no(i.get("chosen_longer")))}</tr>')
        out.append(f'<tr class="more" id="item-{n}" data-more="{n}"><td colspan="{len(columns)}">'
                   f'<div class="more-body">{item_more(i)}</div></td></tr>')
    if not items:
        out.append(f'<tr><td colspan="{len(columns)}" class="muted">No items ran.</td></tr>')
    out.append("</tbody></table>")
    return "\n".join(out)


# -- page ---------------------------------------------------------------------------------------------

SCRIPT = r"""
(function () {
  "use strict";
  var table = document.getElementById("items");
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.querySelectorAll("tr[data-outcome]"));
  var filter = document.getElementById("item-filter");
  var outcome = document.getElementById("item-outcome");
  var count = document.getElementById("item-count");
  var heads = Array.prototype.slice.call(table.tHead.rows[0].cells);
  var collator = new Intl.Collator(undefined, {numeric: true, sensitivity: "base"});
  rows.forEach(function (row, i) {
    row.rmIndex = i;
    row.rmOpen = false;
    row.rmMore = document.getElementById("item-" + row.getAttribute("data-item"));
    if (row.rmMore) { row.rmMore.hidden = true; }
  });

  function key(row, col) {
    var cell = row.cells[col];
    var v = cell.getAttribute("data-v");
    if (v !== null) { return v === "" ? null : parseFloat(v); }
    return cell.textContent;
  }
  function compare(x, y) {
    if (typeof x === "string" && typeof y === "string") { return collator.compare(x, y); }
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  function sortBy(col, dir) {
    rows.sort(function (a, b) {
      var x = key(a, col), y = key(b, col);
      if (x === null || y === null) {
        if (x === y) { return a.rmIndex - b.rmIndex; }
        return x === null ? 1 : -1;
      }
      return dir * compare(x, y) || a.rmIndex - b.rmIndex;
    });
    var frag = document.createDocumentFragment();
    rows.forEach(function (row) {
      frag.appendChild(row);
      if (row.rmMore) { frag.appendChild(row.rmMore); }
    });
    body.appendChild(frag);
    heads.forEach(function (th, i) {
      th.setAttribute("aria-sort", i === col ? (dir > 0 ? "ascending" : "descending") : "none");
    });
  }
  function show(row, open) {
    row.rmOpen = open;
    var button = row.querySelector("button.expand");
    if (button) { button.setAttribute("aria-expanded", open ? "true" : "false"); }
    if (row.rmMore) { row.rmMore.hidden = !open || row.hidden; }
  }
  function apply() {
    var q = filter.value.toLowerCase();
    var o = outcome.value;
    var shown = 0;
    rows.forEach(function (row) {
      var text = row.textContent + (row.rmMore ? " " + row.rmMore.textContent : "");
      var ok = (!o || row.getAttribute("data-outcome") === o) &&
               (!q || text.toLowerCase().indexOf(q) !== -1);
      row.hidden = !ok;
      show(row, row.rmOpen);
      if (ok) { shown += 1; }
    });
    count.textContent = shown + " of " + rows.length + " items";
  }
  heads.forEach(function (th, i) {
    th.querySelector("button").addEventListener("click", function () {
      sortBy(i, th.getAttribute("aria-sort") === "ascending" ? -1 : 1);
    });
  });
  body.addEventListener("click", function (event) {
    var row = event.target.closest ? event.target.closest("tr[data-outcome]") : null;
    if (!row || !row.rmMore) { return; }
    var onButton = event.target.closest("button.expand");
    var selection = window.getSelection ? String(window.getSelection()) : "";
    if (!onButton && selection) { return; }  // selecting text is not a click on the row
    show(row, !row.rmOpen);
  });
  filter.addEventListener("input", apply);
  outcome.addEventListener("change", apply);

  // The state can come from the address: #sort=margin&dir=desc&q=chat&outcome=incorrect&open=3
  var params = {};
  location.hash.replace(/^#/, "").split("&").forEach(function (pair) {
    var at = pair.indexOf("=");
    if (at < 1) { return; }
    try {
      params[decodeURIComponent(pair.slice(0, at))] = decodeURIComponent(pair.slice(at + 1));
    } catch (e) { /* a malformed fragment is ignored */ }
  });
  if (params.q) { filter.value = params.q; }
  if (params.outcome) { outcome.value = params.outcome; }
  heads.forEach(function (th, i) {
    if (params.sort && th.getAttribute("data-key") === params.sort) {
      sortBy(i, params.dir === "desc" ? -1 : 1);
    }
  });
  if (params.open) {
    params.open.split(",").forEach(function (n) {
      rows.forEach(function (row) { if (row.getAttribute("data-item") === n) { row.rmOpen = true; } });
    });
  }
  apply();
  document.documentElement.setAttribute("data-rmbench-js", "ok");
  console.log("rmbench-ok");
})();
""".strip()

STYLE = """
:root { color-scheme: light; --fg: #1f2328; --muted: #656d76; --line: #d0d7de; --bg: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
       background: #fff; }
main { max-width: 1280px; margin: 0 auto; padding: 0 20px 40px; }
header.top { padding: 18px 20px; border-bottom: 4px solid #6e7781; background: var(--bg); }
header.top.passed { border-color: #1a7f37; } header.top.failed { border-color: #cf222e; }
header.top h1 { margin: 0 0 4px; font-size: 22px; overflow-wrap: anywhere; }
.badge { display: inline-block; padding: 3px 12px; border-radius: 14px; font-weight: 700; color: #fff;
         background: #6e7781; margin-bottom: 8px; letter-spacing: .03em; }
.passed .badge { background: #1a7f37; } .failed .badge { background: #cf222e; }
.sub { color: var(--muted); margin: 0; overflow-wrap: anywhere; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(190px, 1fr)); gap: 12px; margin: 18px 0; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; }
.card .k { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.card .v { font-size: 22px; font-weight: 600; font-variant-numeric: tabular-nums; }
.card .s { color: var(--muted); font-size: 12px; overflow-wrap: anywhere; }
h2 { font-size: 18px; margin: 28px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(560px, 1fr)); gap: 16px; }
figure { margin: 0; border: 1px solid var(--line); border-radius: 8px; padding: 10px; }
figcaption { font-weight: 600; margin-bottom: 6px; }
svg.chart { display: block; max-width: 100%; height: auto; }
svg text { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; font-size: 13px; fill: #1f2328; }
svg text.axis, svg text.legend { font-size: 11.5px; fill: #57606a; }
svg text.muted { fill: #8c959f; font-style: italic; }
svg text.value { font-variant-numeric: tabular-nums; }
table.data { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
table.data th, table.data td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: left;
                               vertical-align: top; }
table.data thead th { background: var(--bg); position: sticky; top: 0; }
table.data td.num { text-align: right; white-space: nowrap; }
table.data tr.total { font-weight: 600; background: var(--bg); }
td.id { overflow-wrap: anywhere; } th[scope=row] { overflow-wrap: break-word; }
.items th button { all: unset; cursor: pointer; font-weight: 600; }
.items th[aria-sort=ascending] button::after { content: " ▲"; }
.items th[aria-sort=descending] button::after { content: " ▼"; }
.items tr.o-incorrect td.outcome { color: #cf222e; font-weight: 600; }
.items tr.o-error td.outcome { color: #9a6700; font-weight: 600; }
.items tr.o-correct td.outcome { color: #1a7f37; }
.items tr[data-item] { cursor: pointer; }
.items button.expand { font: inherit; border: 1px solid var(--line); border-radius: 4px; background: #fff;
                       padding: 0 5px; cursor: pointer; font-variant-numeric: tabular-nums; }
.items button.expand::before { content: "▸ "; color: var(--muted); }
.items button.expand[aria-expanded=true]::before { content: "▾ "; }
.items tr.more > td { background: var(--bg); padding: 8px 14px 12px; }
.items .more-body { contain: inline-size; width: 0; min-width: 100%; }  /* long texts do not widen the columns */
.items tr.more section.text { margin: 8px 0 0; }
.items tr.more h4 { margin: 0 0 2px; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.items tr.more h4 .muted { text-transform: none; letter-spacing: 0; font-weight: 400; }
.items tr.more .t:has(+ details.all[open]) { display: none; }
.items tr.more .t { white-space: pre-wrap; overflow-wrap: anywhere; background: #fff; border: 1px solid var(--line);
                    border-radius: 6px; padding: 6px 8px; font: 13px/1.45 ui-monospace, SFMono-Regular, Menlo, monospace; }
.items tr.more details.all > summary { cursor: pointer; color: #0969da; margin: 2px 0; }
.items tr.more .err { color: #9a6700; margin-top: 6px; }
.items tr.more section.chosen h4 { color: #1a7f37; } .items tr.more section.rejected h4 { color: #cf222e; }
dl.fig { display: flex; flex-wrap: wrap; gap: 2px 16px; margin: 0; }
dl.fig dt { color: var(--muted); } dl.fig dt::after { content: ":"; } dl.fig dd { margin: 0 0 0 -12px; }
.controls { margin: 6px 0 10px; display: flex; gap: 14px; align-items: center; flex-wrap: wrap; }
.controls input { width: 280px; }
.pill { display: inline-block; padding: 0 8px; border-radius: 10px; color: #fff; background: #6e7781; font-size: 12px; }
.pill.pass { background: #1a7f37; } .pill.fail { background: #cf222e; } .pill.inconclusive { background: #9a6700; }
.muted { color: var(--muted); }
dl.run { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 0; }
dl.run dt { color: var(--muted); } dl.run dd { margin: 0; overflow-wrap: anywhere; }
ul.failed { margin: 8px 0 0; padding-left: 20px; }
.items td.img { white-space: nowrap; }
.items img.thumb { display: inline-block; vertical-align: middle; max-width: 96px; max-height: 96px;
                   min-width: 24px; min-height: 24px; object-fit: contain; image-rendering: pixelated;
                   border: 1px solid var(--line); border-radius: 4px; background: #fff; }
.items .img-label { color: var(--muted); font-size: 12px; }
.items tr.more ol.images { margin: 0; padding-left: 22px; overflow-wrap: anywhere; }
""".strip()


def card(key: str, value: str, sub: str = "") -> str:
    return (f'<div class="card"><div class="k">{esc(key)}</div><div class="v">{esc(value)}</div>'
            + (f'<div class="s">{esc(sub)}</div>' if sub else "") + "</div>")


def run_info(report: dict) -> str:
    run = report.get("run") or {}
    rows = []
    for key in ("model", "kind", "dtype", "device", "seed", "started"):
        rows.append((key, run.get(key)))
    rows.append(("seconds", fmt(run.get("seconds"), ".1f")))
    rows.append(("pairs per second", fmt(run.get("pairs_per_second"), ",.1f")))
    rows.append(("items", f"{fmt_count(run.get('ran'))} ran of {fmt_count(run.get('collected'))} collected"))
    rows.append(("truncated items", fmt_count(report.get("truncated"))))
    workers = report.get("workers") or []
    if workers:
        rows.append(("workers", str(len(workers))))
    recovered = report.get("recovered") or []
    if recovered:
        rows.append(("rescored after a worker died", str(len(recovered))))
    versions = run.get("versions") or {}
    if isinstance(versions, dict) and versions:
        rows.append(("versions", ", ".join(f"{k} {v}" for k, v in sorted(versions.items(), key=lambda kv: str(kv[0])))))
    return '<dl class="run">' + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in rows) + "</dl>"


def render_html(report: Report | dict) -> str:
    """One self-contained HTML page of a pytest-rmbench report (a Report or its dict; see README, "Reading the report")."""
    report = Report.of(report or {})
    out = _head_section(report)
    out += _header_section(report)
    out.append("<main>")
    out.append(_cards_section(report))
    if report.get("models"):  # several models: compared first; the rest of the page is the first model's
        from .comparison import html_section

        out.append(html_section(report))
    out += _charts_section(report)
    out += _tables_section(report)
    out += ["</main>", f"<script>{SCRIPT}</script>", "</body>", "</html>"]
    return "\n".join(out) + "\n"


def _badge(state: str) -> str:
    return "no gate" if state == "no gate" else f"gate {state}"


def _head_section(report: Report) -> list[str]:
    """From the doctype to <body>: the Content-Security-Policy, the title and the style."""
    model = (report.get("run") or {}).get("model")
    script_hash = base64.b64encode(hashlib.sha256(SCRIPT.encode("utf-8")).digest()).decode("ascii")
    csp = (f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{script_hash}'; "
           "img-src data:; base-uri 'none'; form-action 'none'")
    return ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{esc(csp)}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>rmbench: {esc(_badge(gate_state(report)))} · {esc(model)}</title>",
            f"<style>\n{STYLE}\n</style>", "</head>", "<body>"]


def _header_section(report: Report) -> list[str]:
    """The coloured header: the gate badge, the model, the run's facts and the failed checks."""
    run = report.get("run") or {}
    overall = report.get("overall") or {}
    gate = report.get("gate") or {}
    state = gate_state(report)
    checks = [c for c in gate.get("checks") or [] if isinstance(c, (dict, Block))]
    failed = [c for c in checks if c.get("passed") is False]
    cls = {"PASSED": "passed", "FAILED": "failed"}.get(state, "nogate")
    interval = fmt_interval(overall.get("ci_low"), overall.get("ci_high"))
    sub = [f"{fmt_count(run.get('ran'))} of {fmt_count(run.get('collected'))} items ran",
           f"overall accuracy {fmt(overall.get('accuracy'))}" + ("" if interval == "-" else f" {interval}")]
    for k in ("kind", "dtype", "device"):
        if run.get(k) is not None:
            sub.append(f"{k} {run.get(k)}")
    if run.get("started"):
        sub.append(f"started {run.get('started')}")
    title = run.get("model")
    models = report.get("models") or {}
    if models:  # several models: every one named; the page's sections after the comparison are the first's
        title = ", ".join(f"{name} ({(block.get('run') or {}).get('model')})" for name, block in models.items())
        sub[1] = f"the first model's overall accuracy {fmt(overall.get('accuracy'))}"
    out = [f'<header class="top {cls}" id="top"><div class="badge">{esc(_badge(state))}</div>'
           f"<h1>rmbench report: {esc(title)}</h1><p class=\"sub\">{esc(' · '.join(sub))}</p>"]
    ran, collected = run.get("ran"), run.get("collected")
    if isinstance(ran, int) and isinstance(collected, int) and ran < collected:
        out.append(f'<p class="sub"><strong>Partial run:</strong> the gate covers {ran} of {collected} items.</p>')
    if failed:
        out.append('<ul class="failed">' + "".join(
            f"<li>failed: {esc(c.get('name'))} ({esc(c.get('rule'))}): value {esc(check_number(c, 'value'))}, "
            f"threshold {esc(check_number(c, 'threshold'))}</li>" for c in failed) + "</ul>")
    elif state == "no gate":
        out.append('<p class="sub">No gate was set (add thresholds with --rm-min-accuracy NAME=VALUE '
                   "or a file's gate:).</p>")
    out.append("</header>")
    return out


def _cards_section(report: Report) -> str:
    """The figures at a glance: overall accuracy, items, margin, length baseline; the baseline's change."""
    overall = report.get("overall") or {}
    baseline = report.get("baseline") or None
    length = report.get("length_baseline") or {}
    cards = [card("overall accuracy", fmt(overall.get("accuracy")),
                  f"95% CI {fmt_interval(overall.get('ci_low'), overall.get('ci_high'))}"),
             card("items scored", fmt_count(overall.get("n")),
                  f"{fmt_count(overall.get('correct'))} correct, {fmt_count(overall.get('errors'))} errored"),
             card("mean margin", fmt(overall.get("mean_margin"), "+.3g"), "score(chosen) − score(rejected)"),
             card("length-only baseline", fmt(length.get("accuracy")), "the longer answer wins")]
    if baseline:
        b = baseline.get("overall") or {}
        cards.append(card("vs baseline", fmt(b.get("delta"), "+.3f"),
                          f"{b.get('decision') or '-'}; interval {fmt_interval(b.get('delta_low'), b.get('delta_high'), '+.3f')}"))
        cards.append(card("regressions", str(len(baseline.get("regressed") or [])),
                          f"baseline {baseline.get('run') or '-'}; {fmt_count(baseline.get('shared'))} shared items"))
    return '<section class="cards">' + "".join(cards) + "</section>"


def _charts_section(report: Report) -> list[str]:
    out = ['<h2 id="charts">Charts</h2><div class="charts">',
           f"<figure><figcaption>Accuracy per subset</figcaption>{chart_subset_accuracy(report)}</figure>"]
    if report.get("baseline"):
        out.append(f"<figure><figcaption>This run against the baseline</figcaption>"
                   f"{chart_baseline_delta(report)}</figure>")
    out.append(f"<figure><figcaption>Margins</figcaption>{chart_margins(report)}</figure>")
    out.append(f"<figure><figcaption>Length bias</figcaption>{chart_length_bias(report)}</figure>")
    out.append("</div>")
    return out


def _tables_section(report: Report) -> list[str]:
    """Regressions, subsets, sections, official scores, gate checks, the run and every item."""
    out = []
    baseline = report.get("baseline") or None
    if baseline:
        out.append(f'<h2 id="regressions">Regressions against baseline {esc(baseline.get("run"))}</h2>')
        out.append(regressions_table(report))
    out += ['<h2 id="subsets">Subsets</h2>', subsets_table(report),
            '<h2 id="sections">Sections</h2>', sections_table(report)]
    if report.get("scores"):
        out += ['<h2 id="official">Official scores</h2>', official_table(report)]
    out += ['<h2 id="gate">Gate checks</h2>', gate_table(report),
            '<h2 id="run">Run</h2>', run_info(report),
            '<h2 id="all-items">Items</h2>', items_table(report)]
    return out
