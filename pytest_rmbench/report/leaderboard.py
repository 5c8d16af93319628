"""A leaderboard of several models (standings.leaderboard's result) as Markdown and as one
self-contained HTML page: the table, a forest plot of each model's intervals, and the matrix
of pairwise accuracy differences.

The page fetches nothing and runs no script (its policy allows none); every name goes through
html.escape. Charts carry data-chart="forest-win-rate" | "forest-bradley-terry".
"""

from __future__ import annotations

import math

from .format import fmt, fmt_p
from .html import BLUE, DARK, GRAY, GREEN, GRID, RED, STYLE, WIDTH, esc, label_width, line, num, svg_open, text

ROW = 24


def _finite(*values) -> bool:
    return all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)


# -- Markdown -----------------------------------------------------------------------------------
def leaderboard_markdown(result: dict) -> str:
    out = [f"## Leaderboard: {len(result['models'])} models over {len(result['benchmarks'])} benchmarks", "",
           f"{result['items']:,} items, {result['prompts']:,} prompts; 95% intervals from {result['reps']} prompt"
           f" resamples within each benchmark (seed {result['seed']}).", "",
           "| rank | model | benchmarks | mean win rate | 95% interval | Bradley-Terry | 95% interval | rank 95% |",
           "|---:|---|---:|---:|---|---:|---|---|"]
    for r in result["models"]:
        wl, wh = r["mean_win_rate_interval"]
        bl, bh = r["bradley_terry_interval"]
        rl, rh = r["rank_interval"]
        out.append(f"| {fmt(r['rank'], 'g')} | {_md(r['model'])} | {r['benchmarks']} | {fmt(r['mean_win_rate'])} |"
                   f" [{fmt(wl)}, {fmt(wh)}] | {fmt(r['bradley_terry'], '+.3f')} | [{fmt(bl, '+.3f')}, {fmt(bh, '+.3f')}]"
                   f" | [{fmt(rl, 'g')}, {fmt(rh, 'g')}] |")
    if result.get("smoothed"):
        out += ["", "Bradley-Terry: some model never lost or never won; every compared pair got 0.5 extra wins each way."]
    if result.get("pairs"):
        out += ["", "### Pairs of models", "", "Accuracy of A minus B on the items both scored, 95% paired bootstrap"
                " over prompts; McNemar's exact p with Holm's correction across these pairs.", "",
                "| A | B | items | A only | B only | A - B | 95% interval | Holm p |", "|---|---|---:|---:|---:|---:|---|---:|"]
        for p in result["pairs"]:
            out.append(f"| {_md(p['a'])} | {_md(p['b'])} | {p['items']} | {p['a_only']} | {p['b_only']} |"
                       f" {fmt(p['delta'], '+.3f')} | [{fmt(p['low'], '+.3f')}, {fmt(p['high'], '+.3f')}] |"
                       f" {fmt_p(p['holm_p'])} |")
    return "\n".join(out) + "\n"


def _md(name: str) -> str:
    return str(name).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|").replace("\n", " ")


# -- HTML ---------------------------------------------------------------------------------------
def leaderboard_html(result: dict) -> str:
    csp = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
    title = f"rmbench leaderboard: {len(result['models'])} models"
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           f'<meta http-equiv="Content-Security-Policy" content="{esc(csp)}">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">', f"<title>{esc(title)}</title>",
           f"<style>\n{STYLE}\n</style>", "</head>", "<body>", "<main>", f"<h1>{esc(title)}</h1>",
           f"<p>{result['items']:,} items, {result['prompts']:,} prompts over {esc(', '.join(result['benchmarks']))};"
           f" 95% intervals from {result['reps']} prompt resamples (seed {result['seed']}).</p>"]
    out += [_table(result), "<h2>Intervals</h2>",
            forest(result, "mean_win_rate", "forest-win-rate", "mean win rate", (0.0, 1.0)),
            forest(result, "bradley_terry", "forest-bradley-terry", "Bradley-Terry strength (log)", None)]
    if result.get("pairs"):
        out += ["<h2>Pairs of models</h2>", "<p>Accuracy of the row's model minus the column's on the items both"
                " scored, with the 95% paired bootstrap interval and Holm's p; green or red where the interval"
                " excludes 0.</p>", matrix(result)]
    out += ["</main>", "</body>", "</html>"]
    return "\n".join(out) + "\n"


def _table(result: dict) -> str:
    head = "".join(f"<th>{h}</th>" for h in ("rank", "model", "benchmarks", "mean win rate", "95% interval",
                                             "Bradley-Terry", "95% interval", "rank 95%"))
    rows = []
    for r in result["models"]:
        wl, wh = r["mean_win_rate_interval"]
        bl, bh = r["bradley_terry_interval"]
        rl, rh = r["rank_interval"]
        cells = (fmt(r["rank"], "g"), esc(r["model"]), str(r["benchmarks"]), fmt(r["mean_win_rate"]),
                 f"[{fmt(wl)}, {fmt(wh)}]", fmt(r["bradley_terry"], "+.3f"), f"[{fmt(bl, '+.3f')}, {fmt(bh, '+.3f')}]",
                 f"[{fmt(rl, 'g')}, {fmt(rh, 'g')}]")
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f'<table data-table="leaderboard"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def forest(result: dict, key: str, chart: str, title: str, bounds: tuple[float, float] | None) -> str:
    """One row per model: its point and its 95% interval on a common axis."""
    rows = [r for r in result["models"] if _finite(r[key], *r[f"{key}_interval"])]
    if not rows:
        return ""
    left = label_width([r["model"] for r in rows]) + 16
    low = bounds[0] if bounds else min(r[f"{key}_interval"][0] for r in rows)
    high = bounds[1] if bounds else max(r[f"{key}_interval"][1] for r in rows)
    span = (high - low) or 1.0
    width = WIDTH - left - 20

    def x(v: float) -> float:
        return left + (v - low) / span * width

    height = 30 + ROW * len(rows)
    parts = svg_open(chart, height, title, f"{title} with 95% intervals, one row per model")
    parts += [line(x(low), 10, x(low), height - 10, GRID), line(x(high), 10, x(high), height - 10, GRID),
              text(x(low), height - 2, fmt(low, ".2f"), "middle", fill=GRAY),
              text(x(high), height - 2, fmt(high, ".2f"), "middle", fill=GRAY)]
    for i, r in enumerate(rows):
        y = 20 + ROW * i
        lo, hi = r[f"{key}_interval"]
        tip = f"{r['model']}: {fmt(r[key])} [{fmt(lo)}, {fmt(hi)}]"
        parts += [text(left - 8, y + 4, r["model"], "end", fill=DARK),
                  line(x(lo), y, x(hi), y, BLUE, 2.0, tip=tip),
                  f'<circle cx="{num(x(r[key]))}" cy="{num(y)}" r="4" fill="{BLUE}"><title>{esc(tip)}</title></circle>']
    return "\n".join(parts + ["</svg>"])


def matrix(result: dict) -> str:
    models = [r["model"] for r in result["models"]]
    found = {}
    for p in result["pairs"]:
        found[(p["a"], p["b"])] = (p["delta"], p["low"], p["high"], p["holm_p"])
        found[(p["b"], p["a"])] = (-p["delta"], -p["high"], -p["low"], p["holm_p"])
    head = "<th></th>" + "".join(f"<th>{esc(m)}</th>" for m in models)
    rows = []
    for a in models:
        cells = [f"<th>{esc(a)}</th>"]
        for b in models:
            if a == b or (a, b) not in found:
                cells.append("<td>-</td>")
                continue
            delta, lo, hi, holm = found[(a, b)]
            colour = GREEN if _finite(lo) and lo > 0 else (RED if _finite(hi) and hi < 0 else DARK)
            cells.append(f'<td style="color:{colour}" title="95% [{fmt(lo, "+.3f")}, {fmt(hi, "+.3f")}],'
                         f' Holm p {fmt_p(holm)}">{fmt(delta, "+.3f")}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table data-table="pairs"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
