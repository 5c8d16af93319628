"""Several models of one run, side by side: the report's "models" and "comparison" blocks
(lineup.py) as terminal lines, Markdown and HTML.

- a matrix of accuracies: one row per subset (and section, suite headline, overall), one
  column per model;
- leaderboards: per board (overall, each file or suite, each subset), each model's accuracy
  with its 95% interval and its rank with the 2.5-97.5% range of its rank, from prompt
  resamples shared by every model; the terminal shows overall and the files unless -v, or
  when there are few boards;
- pairs of models (A only / B only, A - B with its paired bootstrap interval, Holm p) and the
  reward correlations; --rm-compare decisions are gate checks and show with the gate.

Plain data in, text out; the table helpers are shared with `runs leaderboard` (standings.py).
"""

from __future__ import annotations

from .format import fmt, fmt_p
from .html import esc

TERMINAL_BOARDS = 8  # more boards than this: the terminal shows overall and the files (all with -v)


def columns(rows: list[tuple]) -> list[str]:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]


def span(pair, spec: str = ".3f") -> str:
    return f"[{fmt(pair[0], spec)}, {fmt(pair[1], spec)}]"


def pair_lines(pairs: list[dict]) -> list[str]:
    if not pairs:
        return []
    rows = [("A", "B", "items", "A only", "B only", "A - B", "95% interval", "McNemar p", "Holm p")]
    rows += [(p["a"], p["b"], str(p["items"]), str(p["a_only"]), str(p["b_only"]), fmt(p["delta"], "+.3f"),
              span((p["low"], p["high"]), "+.3f"), fmt(p["mcnemar_p"], ".3g"), fmt(p["holm_p"], ".3g")) for p in pairs]
    return ["", "pairs of models on the items both scored (A only: items A got right and B wrong; paired"
            " bootstrap over prompts; Holm across these pairs)"] + columns(rows)


def correlation_lines(pairs: list[dict]) -> list[str]:
    rows = [("A", "B", "answers", "Spearman", "centred Pearson")]
    rows += [(p["a"], p["b"], str(p["answers"]), fmt(p["spearman"]), fmt(p["centred_pearson"])) for p in pairs]
    if len(rows) == 1:
        return ["no two models scored the same answers (a model's scores are stored with its items)"]
    return ["reward correlations over the answers both models scored (Spearman: ranks of raw scores;"
            " centred Pearson: each item's scores minus their mean)"] + columns(rows)


# -- the accuracy matrix ------------------------------------------------------------------------
def accuracy_rows(report: dict) -> tuple[list[str], list[tuple[str, list]]]:
    """(model names, [(row label, [accuracy per model])]): subsets, sections, suite headlines, overall."""
    models = report["models"]
    names = list(models)
    subsets = sorted({s for m in models.values() for s in (m.get("subsets") or {})})
    sections = sorted({s for m in models.values() for s in (m.get("sections") or {})})
    suites = sorted({s for m in models.values() for s, v in (m.get("scores") or {}).items() if v})
    rows = [(s, [((models[n].get("subsets") or {}).get(s) or {}).get("accuracy") for n in names]) for s in subsets]
    rows += [(f"section {s}", [((models[n].get("sections") or {}).get(s) or {}).get("accuracy") for n in names])
             for s in sections]
    for suite in suites:
        headline = ((report.get("datasets") or {}).get(suite) or {}).get("headline")
        rows.append((f"{suite} {headline or 'score'}",
                     [(((models[n].get("scores") or {}).get(suite)) or {}).get(headline) for n in names]))
    rows.append(("overall", [(models[n].get("overall") or {}).get("accuracy") for n in names]))
    return names, rows


def _shown_boards(comparison: dict, verbose: int) -> list[dict]:
    boards = comparison.get("boards") or []
    if verbose > 0 or len(boards) <= TERMINAL_BOARDS:
        return boards
    return [b for b in boards if b["kind"] != "subset"]


def text_lines(report: dict, verbose: int = 0) -> list[str]:
    """The terminal's view of several models."""
    names, rows = accuracy_rows(report)
    lines = columns([("accuracy", *names)] + [(label, *(fmt(v) for v in values)) for label, values in rows])
    comparison = report.get("comparison") or {}
    boards = _shown_boards(comparison, verbose)
    if boards:
        lines += ["", f"leaderboard (95% intervals and rank ranges from {comparison['reps']} prompt resamples, the same"
                      f" for every model; seed {comparison['seed']})"]
        official = any("official" in r for b in boards for r in b["models"])  # a suite's headline score
        table = [("board", "rank", "model", "n", "accuracy", "95% interval", "rank 95%") + (("official",) if official else ())]
        for board in boards:
            for i, r in enumerate(board["models"]):
                table.append((board["name"] if i == 0 else "", fmt(r["rank"], "g"), r["model"], str(r["n"]),
                              fmt(r["accuracy"]), span((r["ci_low"], r["ci_high"])), span((r["rank_low"], r["rank_high"]), "g"))
                             + ((fmt(r["official"]) if "official" in r else "",) if official else ()))
        lines += columns(table)
        hidden = len(comparison.get("boards") or []) - len(boards)
        if hidden:
            lines.append(f"  ({hidden} subset boards more with -v, and in --rm-markdown / --rm-html)")
    lines += pair_lines(comparison.get("pairs") or [])
    if comparison.get("correlations"):
        lines += [""] + correlation_lines(comparison["correlations"])
    return lines


# -- Markdown -----------------------------------------------------------------------------------
def _md(name) -> str:
    return str(name).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|").replace("\n", " ")


def markdown_lines(report: dict) -> list[str]:
    names, rows = accuracy_rows(report)
    out = ["## Models compared", "", "| accuracy | " + " | ".join(_md(n) for n in names) + " |",
           "|---|" + "---:|" * len(names)]
    out += [f"| {_md(label)} | " + " | ".join(fmt(v) for v in values) + " |" for label, values in rows]
    comparison = report.get("comparison") or {}
    if comparison.get("boards"):
        out += ["", "### Leaderboards", "", f"95% intervals and rank ranges from {comparison['reps']} prompt resamples,"
                f" the same for every model (seed {comparison['seed']}).", "",
                "| board | rank | model | n | accuracy | 95% interval | rank 95% | official |",
                "|---|---:|---|---:|---:|---|---|---:|"]
        for board in comparison["boards"]:
            for i, r in enumerate(board["models"]):
                out.append(f"| {_md(board['name']) if i == 0 else ''} | {fmt(r['rank'], 'g')} | {_md(r['model'])} |"
                           f" {r['n']} | {fmt(r['accuracy'])} | {span((r['ci_low'], r['ci_high']))} |"
                           f" {span((r['rank_low'], r['rank_high']), 'g')} | {fmt(r['official']) if 'official' in r else ''} |")
    if comparison.get("pairs"):
        out += ["", "### Pairs of models", "", "Accuracy of A minus B on the items both scored, 95% paired bootstrap"
                " over prompts; McNemar's exact p with Holm's correction across these pairs.", "",
                "| A | B | items | A only | B only | A - B | 95% interval | Holm p |", "|---|---|---:|---:|---:|---:|---|---:|"]
        out += [f"| {_md(p['a'])} | {_md(p['b'])} | {p['items']} | {p['a_only']} | {p['b_only']} | {fmt(p['delta'], '+.3f')}"
                f" | {span((p['low'], p['high']), '+.3f')} | {fmt_p(p['holm_p'])} |" for p in comparison["pairs"]]
    if comparison.get("correlations"):
        out += ["", "### Reward correlations", "", "| A | B | answers | Spearman | centred Pearson |", "|---|---|---:|---:|---:|"]
        out += [f"| {_md(p['a'])} | {_md(p['b'])} | {p['answers']} | {fmt(p['spearman'])} | {fmt(p['centred_pearson'])} |"
                for p in comparison["correlations"]]
    return out + [""]


# -- HTML ---------------------------------------------------------------------------------------
def html_section(report: dict) -> str:
    """The models' section of the HTML page: the matrix, a forest plot per board, the pairs matrix."""
    from .leaderboard import forest, matrix

    names, rows = accuracy_rows(report)
    head = "<th>accuracy</th>" + "".join(f"<th>{esc(n)}</th>" for n in names)
    body = "".join("<tr><td>" + esc(label) + "</td>" + "".join(f"<td>{fmt(v)}</td>" for v in values) + "</tr>"
                   for label, values in rows)
    out = ['<section data-section="models">', "<h2>Models compared</h2>",
           f'<table data-table="models"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>']
    comparison = report.get("comparison") or {}
    for board in comparison.get("boards") or ():
        result = {"models": [dict(r, accuracy_interval=(r["ci_low"], r["ci_high"])) for r in board["models"]]}
        ranks = ", ".join(f"{r['model']} {fmt(r['rank'], 'g')} [{fmt(r['rank_low'], 'g')}, {fmt(r['rank_high'], 'g')}]"
                          for r in board["models"])
        out += [f"<h3>{esc(board['name'])}</h3>", f"<p>{board['items']:,} items, {board['prompts']:,} prompts; rank"
                f" (95% range): {esc(ranks)}</p>",
                forest(result, "accuracy", f"forest-{board['kind']}", f"{board['name']}: accuracy", (0.0, 1.0))]
    if comparison.get("pairs"):
        out += ["<h3>Pairs of models</h3>", "<p>Accuracy of the row's model minus the column's on the items both"
                " scored, with the 95% paired bootstrap interval and Holm's p; green or red where the interval"
                " excludes 0.</p>", matrix({"models": [{"model": n} for n in names], "pairs": comparison["pairs"]})]
    return "\n".join(out + ["</section>"])
