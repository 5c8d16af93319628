"""Item records -> subset, section and overall figures; the terminal table; the JSON file.

Runs on the controller (or the single process). Records are plain dicts sent by the
workers on their test reports, so nothing here knows about models or torch.
"""

from __future__ import annotations

import json
from typing import Iterable

from ..items import CORRECT, ERROR, INCORRECT
from ..storage.outputs import write_text
from ..text import clip as clip_text, json_safe
from ..items.files import Section
from .stats import wilson_interval

ITEM_KEYS = ("nodeid", "file", "id", "subset", "kind", "group", "outcome", "credit", "chosen_score", "rejected_score", "margin",
             "truncated", "chosen_longer", "content_hash", "prompt_hash", "verdicts", "details", "error", "texts")


def credit(record: dict) -> float:
    """An item's credit in [0, 1]: 1 or 0 for a pair, a fraction for best-of-n and style matrices."""
    value = record.get("credit")
    if value is None:
        return 1.0 if record["outcome"] == CORRECT else 0.0
    return value


def block(records: list[dict]) -> dict:
    """n, correct (the sum of credits), accuracy (mean credit; errored items left out),
    Wilson 95% interval, mean margin, errors, and how many items passed outright."""
    scored = [r for r in records if r["outcome"] != ERROR]
    n = len(scored)
    correct = sum(credit(r) for r in scored)
    correct = int(correct) if float(correct).is_integer() else correct
    low, high = wilson_interval(correct, n)
    margins = [r["margin"] for r in scored if r["margin"] is not None]
    return {
        "n": n,
        "correct": correct,
        "passed": sum(r["outcome"] == CORRECT for r in scored),
        "accuracy": correct / n if n else None,
        "ci_low": low,
        "ci_high": high,
        "mean_margin": sum(margins) / len(margins) if margins else None,
        "errors": len(records) - n,
    }


def _accuracy(records: list[dict]) -> dict:
    b = block(records)
    return {"n": b["n"], "accuracy": b["accuracy"]}


def _judge_block(records: list[dict]) -> dict | None:
    """Position consistency of a pairwise judge: does its preference survive swapping A and B?"""
    judged = [r["verdicts"] for r in records if r.get("verdicts")]
    if not judged:
        return None
    swapped = {"A>B": "B>A", "B>A": "A>B", "tie": "tie"}
    inconsistent = sum(second != swapped[first] for first, second in judged)
    return {"n": len(judged), "inconsistent": inconsistent, "inconsistency": inconsistent / len(judged)}


def section_block(section: Section, subsets: dict[str, dict]) -> dict:
    """Weighted mean of subset accuracies; a weight of None means the subset's item count."""
    total_weight = weighted = 0.0
    n = 0
    for name, weight in section.weights.items():
        sub = subsets.get(name)
        if not sub or not sub["n"]:
            continue
        w = sub["n"] if weight is None else weight
        total_weight += w
        weighted += w * sub["accuracy"]
        n += sub["n"]
    return {
        "n": n,
        "accuracy": weighted / total_weight if total_weight else None,
        "subsets": list(section.weights),
        "weights": {k: v for k, v in section.weights.items()},
    }


def _heads_block(records: list[dict]) -> dict | None:
    """A multi-objective model's outputs judged one at a time: accuracy per head, overall and per subset."""
    judged = [r for r in records if r["outcome"] != ERROR and (r.get("details") or {}).get("heads")]
    if not judged:
        return None

    def accuracies(rs: list[dict]) -> list[float | None]:
        width = max(len(r["details"]["heads"]) for r in rs)
        columns = [[r["details"]["heads"][h] for r in rs if len(r["details"]["heads"]) > h] for h in range(width)]
        return [sum(c) / len(c) if c else None for c in columns]

    by_subset: dict[str, list[dict]] = {}
    for r in judged:
        by_subset.setdefault(r["subset"], []).append(r)
    return {"n": len(judged), "overall": accuracies(judged),
            "subsets": {name: accuracies(rs) for name, rs in sorted(by_subset.items())}}


def kind_blocks(records: list[dict]) -> dict[str, dict | None]:
    """Each item kind's own block (ProcessBench F1 for `steps`, ...), over its records, keyed by
    the kind's REPORT_BLOCK; a kind from the registry, so a new kind brings its block along."""
    from ..items import ITEM_KINDS

    by_kind: dict[str, list[dict]] = {}
    for r in records:
        if r.get("kind"):
            by_kind.setdefault(r["kind"], []).append(r)
    blocks = {}
    for kind, rs in sorted(by_kind.items()):
        cls = ITEM_KINDS.get(kind) if kind in ITEM_KINDS else None
        block = cls.report_block(rs) if cls is not None and cls.REPORT_BLOCK else None
        if block is not None:  # a kind's key appears only when it has something to say
            blocks[cls.REPORT_BLOCK] = block
    return blocks


NULL_PREVIEW = 200  # characters of the null answer in the report's null_answer block


def null_block(records: list[dict], answer: str) -> dict:
    """--rm-null-answer: how often the constant null answer beat the chosen answer, shown as A
    and as B (a win: the model preferred the null answer in that order); items whose null
    comparison failed count as errors."""
    found = [(r.get("details") or {}).get("null") for r in records]
    found = [d for d in found if d]
    scored = [d for d in found if "error" not in d]
    n = len(scored)
    as_a, as_b = sum(bool(d["wins_as_a"]) for d in scored), sum(bool(d["wins_as_b"]) for d in scored)
    return {
        "answer": clip_text(answer, NULL_PREVIEW, marker="[... {more:,} more characters]"),
        "n": n,
        "wins_as_a": as_a,
        "wins_as_b": as_b,
        "win_rate_as_a": as_a / n if n else None,
        "win_rate_as_b": as_b / n if n else None,
        "win_rate": (as_a + as_b) / (2 * n) if n else None,
        "errors": len(found) - n,
    }


def aggregate(records: list[dict], sections: dict[str, Section], null_answer: str | None = None) -> dict:
    """The report's figures; `null_answer` (--rm-null-answer) adds the null_answer block."""
    records = sorted(records, key=lambda r: r["index"])
    by_subset: dict[str, list[dict]] = {}
    for r in records:
        by_subset.setdefault(r["subset"], []).append(r)
    subsets = {name: block(rs) for name, rs in by_subset.items()}
    strict = [r for r in records if r.get("strict") and r["outcome"] != ERROR]
    paired = [r for r in records if r.get("length_correct") is not None]
    blocks = kind_blocks(records)
    return {
        "items": [{k: r.get(k) for k in ITEM_KEYS} for r in records],
        "subsets": subsets,
        "sections": {name: section_block(s, subsets) for name, s in sections.items()},
        "overall": block(records),
        "length_baseline": {
            "n": len(paired),
            "accuracy": sum(bool(r["length_correct"]) for r in paired) / len(paired) if paired else None,
            "rule": "the longer answer in characters wins; equal lengths are wrong",
        },
        "length_bias": {
            "chosen_longer": _accuracy([r for r in paired if r.get("chosen_longer")]),
            "chosen_shorter": _accuracy([r for r in paired if r.get("chosen_longer") is False]),
        },
        "truncated": sum(bool(r["truncated"]) for r in records),
        "judge": _judge_block(records),
        "steps": blocks.pop("steps", None),  # always present (null without steps items): users read it
        "heads": _heads_block(records),
        **blocks,
        **({"null_answer": null_block(records, null_answer)} if null_answer is not None else {}),
        "strict": {
            "n": len(strict),
            "correct": sum(r["outcome"] == CORRECT for r in strict),
            "incorrect": sum(r["outcome"] == INCORRECT for r in strict),
            "failed": [r["nodeid"] for r in strict if r["outcome"] == INCORRECT],
        },
    }


def official_figures(report: dict, limit: int = 16) -> list[tuple[str, str | None, float | None, list]]:
    """Per suite: (name, headline key, headline value, [(dotted key, value), ...]) from
    `scores`, for the summaries people read; nested blocks are flattened one level deep."""
    out = []
    for name, scores in (report.get("scores") or {}).items():
        headline = ((report.get("datasets") or {}).get(name) or {}).get("headline")
        scores = scores if isinstance(scores, dict) else {}
        figures = []
        for key, value in scores.items():
            if key == headline:
                continue
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                figures.append((key, value))
            elif isinstance(value, dict):
                figures.extend((f"{key}.{k}", v) for k, v in value.items()
                               if isinstance(v, (int, float)) and not isinstance(v, bool))
        out.append((name, headline, scores.get(headline) if headline else None, figures[:limit]))
    return out


def write_json(report, path: str) -> None:
    """The report (a Report or its dict) as a JSON file."""
    if hasattr(report, "to_dict"):
        report = report.to_dict()
    write_text(path, json.dumps(json_safe(report), indent=2, allow_nan=False, ensure_ascii=False) + "\n")


from .tables import MAX_SUBSET_ROWS  # noqa: E402,F401  (re-exported)


def table_lines(report, verbose: int = 0) -> Iterable[str]:
    """The terminal's subsets / sections / overall table (report/tables.py makes its rows)."""
    from .terminal import table_lines as lines

    return lines(report, verbose)
