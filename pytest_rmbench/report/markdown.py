"""The JSON report -> GitHub-flavoured Markdown (for $GITHUB_STEP_SUMMARY or --rm-markdown).

Pure and deterministic: the same report gives the same text. Every name that comes from
the benchmark (subsets, sections, node ids, the model) is escaped, so a `|` cannot break a
table and a `<script>` stays text. Any number may be None (or NaN): it prints as "-".
"""

from __future__ import annotations

import re

from ..items.images import count_with_images
from .aggregate import official_figures
from .format import accuracy_of, finite, fmt, fmt_count, fmt_interval, fmt_p, image_mark  # noqa: F401  (re-exported)
from .schema import Block, Report
from .tables import check_interval, check_status, section_members
from .tables import check_number as fmt_check_number

MAX_LISTED = 20  # regressed / incorrect node ids listed before "and N more"

DECISION_MARK = {"pass": "✅ pass", "fail": "❌ fail", "inconclusive": "⚠️ inconclusive", "not run": "⏭️ not run"}

# CommonMark lets a backslash escape any ASCII punctuation; these are the ones that can
# start emphasis, links, code, HTML, tables, strikethrough, math, entities, issue
# references or mentions.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~&$@])")


def escape_md(text) -> str:
    """One line of literal text: Markdown, HTML and table syntax neutralised."""
    if text is None:
        return "-"
    text = str(text)
    text = re.sub(r"[\r\n\t\f\v]+", " ", text)
    text = "".join(ch if ch.isprintable() or ch == " " else "\ufffd" for ch in text)
    text = _MD_SPECIAL.sub(r"\\\1", text)
    # "@name" would mention a user and "#12" link an issue in some contexts; the backslash
    # above keeps both literal. A leading space run would become a code block: strip it.
    return text.strip() or "-"


def gate_state(report: dict) -> str:
    """'PASSED', 'FAILED' or 'no gate'."""
    gate = report.get("gate") or {}
    if not gate:
        return "no gate"
    if gate.get("passed") is False:
        return "FAILED"
    if not gate.get("configured"):
        return "no gate"
    return "PASSED"


def check_rule(check: dict) -> str:
    rule = check.get("rule")
    source = check.get("source")
    text = "-" if rule is None else str(rule)
    if source and check.get("kind") == "accuracy":
        text += f" (from {source})"
    return text


def run_line(run: dict) -> list[str]:
    model = escape_md(run.get("model"))
    details = [escape_md(run.get(k)) for k in ("kind", "dtype", "device") if run.get(k) is not None]
    parts = [f"**model** {model}" + (f" ({', '.join(details)})" if details else "")]
    ran, collected = run.get("ran"), run.get("collected")
    if ran is not None or collected is not None:
        parts.append(f"**items** {fmt_count(ran)} ran of {fmt_count(collected)} collected")
    if run.get("seed") is not None:
        parts.append(f"**seed** {escape_md(run.get('seed'))}")
    if finite(run.get("seconds")) is not None:
        parts.append(f"{fmt(run.get('seconds'), '.1f')} s")
    if finite(run.get("pairs_per_second")) is not None:
        parts.append(f"{fmt(run.get('pairs_per_second'), ',.1f')} pairs/s")
    if run.get("started"):
        parts.append(f"started {escape_md(run.get('started'))}")
    return [" · ".join(parts)]


def render_markdown(report: Report | dict) -> str:
    """GitHub-flavoured Markdown of a pytest-rmbench report (a Report or its dict; see README, "Reading the report")."""
    report = Report.of(report or {})
    out: list[str] = []
    for section in (_title_section, _models_section, _regressions_section, _subsets_section, _sections_section,
                    _official_section, _gate_section, _length_section, _incorrect_section):
        out.extend(section(report))
    return "\n".join(out).rstrip("\n") + "\n"


def _checks(report: Report) -> list:
    gate = report.get("gate") or {}
    return [c for c in gate.get("checks") or [] if isinstance(c, (dict, Block))]


def _title_section(report: Report) -> list[str]:
    """The headline, the run line, a partial-run note and the failed checks."""
    run = report.get("run") or {}
    state = gate_state(report)
    icon = {"PASSED": "✅", "FAILED": "❌"}.get(state, "ℹ️")
    acc = fmt((report.get("overall") or {}).get("accuracy"))
    models = report.get("models") or {}
    if models:  # several models: each one's overall accuracy, not the first model's alone
        acc = ", ".join(f"{escape_md(name)} {fmt((block.get('overall') or {}).get('accuracy'))}" for name, block in models.items())
    title = "no gate" if state == "no gate" else f"gate {state}"
    out = [f"## {icon} rmbench: {title} · overall accuracy {acc}", ""]
    out.extend(run_line(run))
    out.append("")
    ran, collected = run.get("ran"), run.get("collected")
    if isinstance(ran, int) and isinstance(collected, int) and ran < collected:
        out.append(f"> **Partial run:** the gate covers {ran} of {collected} collected items.")
        out.append("")
    failed = [c for c in _checks(report) if c.get("passed") is False]
    if failed:
        names = ", ".join(escape_md(c.get("name")) for c in failed)
        out.append(f"**Failed checks:** {names}")
        out.append("")
    return out


def _models_section(report: Report) -> list[str]:
    """Several models: the accuracy matrix, the leaderboards, pairs and correlations; the
    sections after it are the first model's."""
    if not report.get("models"):
        return []
    from .comparison import markdown_lines

    first = next(iter(report["models"]))
    return markdown_lines(report) + [f"_The tables below are the first model's, {escape_md(first)}._", ""]


def _regressions_section(report: Report) -> list[str]:
    """Regressions first: the items the baseline got right that are wrong now."""
    baseline = report.get("baseline") or None
    if not baseline:
        return []
    regressed = [r for r in baseline.get("regressed") or []]
    out = [f"### Regressions against baseline {escape_md(baseline.get('run'))}", ""]
    summary = [f"{len(regressed)} item(s) the baseline got right are wrong now"]
    summary.append(f"{fmt_count(baseline.get('shared'))} shared item(s) compared")
    if baseline.get("edited"):
        summary.append(f"{fmt_count(baseline.get('edited'))} edited since the baseline (left out)")
    if finite(baseline.get("margin")) is not None:
        summary.append(f"non-inferiority margin {fmt(baseline.get('margin'))}")
    out.append("; ".join(summary) + ".")
    out.append("")
    by_node = {i.get("nodeid"): i for i in report.get("items") or [] if isinstance(i, (dict, Block))}
    for nodeid in regressed[:MAX_LISTED]:
        out.append(f"- {escape_md(nodeid)}{image_mark(by_node.get(nodeid) or {})}")
    if len(regressed) > MAX_LISTED:
        out.append(f"- … and {len(regressed) - MAX_LISTED} more")
    if regressed:
        out.append("")
    return out


def _subset_row(label: str, b: dict, cmp: dict | None, with_baseline: bool) -> str:
    cells = [label, fmt_count(b.get("n")), fmt_count(b.get("correct")), fmt(b.get("accuracy")),
             fmt_interval(b.get("ci_low"), b.get("ci_high")), fmt(b.get("mean_margin"), "+.3g"),
             fmt_count(b.get("errors"))]
    if with_baseline:
        if cmp:
            delta = fmt(cmp.get("delta"), "+.3f")
            interval = fmt_interval(cmp.get("delta_low"), cmp.get("delta_high"), "+.3f")
            cells += [fmt(accuracy_of(cmp.get("before"))),
                      delta + ("" if interval == "-" else f" {interval}"),
                      f"{fmt_count(cmp.get('regressions'))} / {fmt_count(cmp.get('fixes'))}",
                      fmt_p(cmp.get("mcnemar_p")),
                      DECISION_MARK.get(cmp.get("decision"), escape_md(cmp.get("decision")))]
        else:
            cells += ["-", "-", "-", "-", "-"]
    return "| " + " | ".join(cells) + " |"


def _subsets_section(report: Report) -> list[str]:
    """One row per subset, then overall; with a baseline, its comparison columns."""
    subsets = report.get("subsets") or {}
    baseline = report.get("baseline") or None
    base_subsets = (baseline or {}).get("subsets") or {}
    header = ["subset", "n", "correct", "accuracy", "95% CI", "mean margin", "errors"]
    align = ["---", "--:", "--:", "--:", ":-:", "--:", "--:"]
    if baseline:
        header += ["baseline", "Δ accuracy [interval]", "regressions / fixes", "McNemar p", "decision"]
        align += ["--:", ":-:", ":-:", "--:", ":-:"]
    out = ["### Subsets", "", "| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    for name in sorted(subsets, key=str):
        out.append(_subset_row(escape_md(name), subsets[name] or {}, base_subsets.get(name), bool(baseline)))
    out.append(_subset_row("**overall**", report.get("overall") or {}, (baseline or {}).get("overall"), bool(baseline)))
    out.append("")
    return out


def _sections_section(report: Report) -> list[str]:
    sections = report.get("sections") or {}
    if not sections:
        return []
    out = ["### Sections", "", "| section | n | accuracy | subsets (weight) |", "| --- | --: | --: | --- |"]
    for name, s in sections.items():
        members = section_members(s, escape_md) if isinstance(s, Block) else []
        out.append(f"| {escape_md(name)} | {fmt_count(s.get('n'))} | {fmt(s.get('accuracy'))} | "
                   f"{', '.join(members) or '-'} |")
    out.append("")
    return out


def _official_section(report: Report) -> list[str]:
    """The official scores of the published suites."""
    official = official_figures(report)
    if not official:
        return []
    out = ["### Official scores", "", "| suite | score | value | more |", "| --- | --- | --: | --- |"]
    for name, headline, value, figures in official:
        more = ", ".join(f"{escape_md(k)} {fmt(finite(v))}" for k, v in figures)
        sampled = ((report.get("datasets") or {}).get(name) or {}).get("estimate")
        if sampled:  # --rm-sample: the official score of a sample estimates the suite's
            more = f"estimate from {sampled['items']} of {sampled['of']} items (--rm-sample); " + (more or "")
        out.append(f"| {escape_md(name)} | {escape_md(headline or '-')} | {fmt(finite(value))} | {more or '-'} |")
    out.append("")
    return out


def _gate_section(report: Report) -> list[str]:
    checks = _checks(report)
    state = gate_state(report)
    out = ["### Gate", ""]
    if checks:
        out.append("| check | kind | rule | threshold | value | interval | status |")
        out.append("| --- | --- | --- | --: | --: | :-: | :-: |")
        for c in checks:
            status = check_status(c)
            out.append(
                f"| {escape_md(c.get('name'))} | {escape_md(c.get('kind'))} | {escape_md(check_rule(c))} | "
                f"{fmt_check_number(c, 'threshold')} | {fmt_check_number(c, 'value')} | "
                f"{check_interval(c)} | {DECISION_MARK.get(status, escape_md(status))} |")
            failed_items = c.get("failed") or []
            if failed_items and isinstance(failed_items, list):
                shown = ", ".join(escape_md(x) for x in failed_items[:5])
                more = f" and {len(failed_items) - 5} more" if len(failed_items) > 5 else ""
                out.append(f"| ↳ failed: {shown}{more} | | | | | | |")
        out.append("")
    if state == "no gate":
        out.append("No gate was set (add thresholds with `--rm-min-accuracy NAME=VALUE` or a file's `gate:`).")
    else:
        out.append(f"Gate **{state}**.")
    out.append("")
    return out


def _length_section(report: Report) -> list[str]:
    """Length bias: the length-only baseline, accuracy by which answer is longer, truncation."""
    acc = fmt((report.get("overall") or {}).get("accuracy"))
    length = report.get("length_baseline") or {}
    rule = length.get("rule")
    out = ["### Length bias", ""]
    out.append(f"- Length-only baseline accuracy: {fmt(length.get('accuracy'))}"
               + (f" ({escape_md(rule)})" if rule else "")
               + f"; this model: {acc}")
    bias = report.get("length_bias") or {}
    longer, shorter = bias.get("chosen_longer") or {}, bias.get("chosen_shorter") or {}
    if bias:
        out.append(f"- Model accuracy when the chosen answer is longer: {fmt(longer.get('accuracy'))} "
                   f"(n={fmt_count(longer.get('n'))}); shorter: {fmt(shorter.get('accuracy'))} "
                   f"(n={fmt_count(shorter.get('n'))})")
    out.append(f"- Truncated items: {fmt_count(report.get('truncated'))}")
    out.extend([f"- Items with images: {count_with_images(report.get('items'))}"] if count_with_images(report.get("items")) else [])
    out.append("")
    return out


def _wrong_key(i) -> tuple:
    m = finite(i.get("margin"))
    return (i.get("outcome") != "error", m if m is not None else 0.0, str(i.get("nodeid")))


def _incorrect_section(report: Report) -> list[str]:
    """The incorrect and errored items, errors first then worst margin first, collapsed."""
    items = [i for i in report.get("items") or [] if isinstance(i, (dict, Block))]
    wrong = sorted((i for i in items if i.get("outcome") in ("incorrect", "error")), key=_wrong_key)
    if not wrong:
        return []
    out = [f"<details><summary>Incorrect and errored items ({len(wrong)})</summary>", ""]
    for i in wrong[:MAX_LISTED]:
        what = "error" if i.get("outcome") == "error" else f"margin {fmt(i.get('margin'), '+.4g')}"
        out.append(f"- {escape_md(i.get('nodeid'))}: {what}{image_mark(i)}")
    if len(wrong) > MAX_LISTED:
        out.append(f"- … and {len(wrong) - MAX_LISTED} more")
    out += ["", "</details>", ""]
    return out
