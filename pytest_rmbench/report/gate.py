"""Thresholds and sections from the command line, ini and file headers -> one decision."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..items.files import Section
from .stats import wilson_decision

RULES = ("point", "wilson")
INCONCLUSIVE = ("pass", "fail")

OVERALL = "overall"


class GateConfigError(Exception):
    """A usage error: thresholds or sections that do not fit the collected items."""


@dataclass
class Threshold:
    name: str
    value: float
    source: str  # "command line", "ini", or the file that set it


@dataclass
class GateConfig:
    thresholds: dict[str, Threshold] = field(default_factory=dict)
    sections: dict[str, Section] = field(default_factory=dict)
    rule: str = "point"  # point: accuracy >= threshold; wilson: the 95% interval decides
    inconclusive: str = "pass"  # what an inconclusive decision does to the exit status
    maximums: dict[str, Threshold] = field(default_factory=dict)  # name in MAXIMUMS -> the most its figure may be


# max-threshold checks: name -> (the report block, its figure, what the figure is)
MAXIMUMS = {"null_answer": ("null_answer", "win_rate", "the null answer's win rate, both orders pooled")}


def merge_sections(layers: list[tuple[str, dict[str, Section]]]) -> dict[str, Section]:
    """Layers from lowest to highest precedence; two files defining one section differently is an error."""
    merged: dict[str, Section] = {}
    origin: dict[str, str] = {}
    for source, sections in layers:
        for name, section in sections.items():
            if name in merged and origin[name] != "ini" and source not in ("ini", "command line"):
                if merged[name].weights != section.weights:
                    raise GateConfigError(
                        f"section {name!r} is defined differently in {origin[name]} and {source}"
                    )
            merged[name] = section
            origin[name] = source
    return merged


def merge_thresholds(layers: list[tuple[str, dict[str, float]]]) -> dict[str, Threshold]:
    """Layers from lowest to highest precedence: file headers, then ini, then command line.

    Two file headers that disagree keep the stricter threshold.
    """
    merged: dict[str, Threshold] = {}
    for source, thresholds in layers:
        from_file = source not in ("ini", "command line")
        for name, value in thresholds.items():
            old = merged.get(name)
            if from_file and old is not None and old.source not in ("ini", "command line") and old.value >= value:
                continue
            merged[name] = Threshold(name, value, source)
    return merged


def split_model(name: str, models) -> tuple[str | None, str]:
    """`cand:chat` -> ("cand", "chat") when cand is a model of the run; else (None, name)."""
    model, sep, rest = name.partition(":")
    return (model, rest) if sep and rest and model in models else (None, name)


def for_model(config: GateConfig, model: str, models) -> GateConfig:
    """The gate of one model of several: thresholds without a model name apply to every model;
    `MODEL:NAME` applies to that model only and wins over NAME."""
    general: dict[str, Threshold] = {}
    own: dict[str, Threshold] = {}
    for key, threshold in config.thresholds.items():
        named, rest = split_model(key, models)
        if named is None:
            general[key] = threshold
        elif named == model:
            own[rest] = Threshold(rest, threshold.value, threshold.source)
    return GateConfig(thresholds={**general, **own}, sections=config.sections, rule=config.rule,
                      inconclusive=config.inconclusive, maximums=dict(config.maximums))


def validate(config: GateConfig, known_subsets: set[str], suites: set[str] = frozenset()) -> None:
    """Every name must match collected items; a name may not be both a section and a subset.

    A suite's name (rewardbench, rmbench, ...) names its official headline score.
    """
    sections = config.sections
    problems = []
    for name in sorted(set(sections) & known_subsets):
        problems.append(f"{name!r} is both a section and a subset")
    for section in sections.values():
        for subset in section.weights:
            if subset not in known_subsets:
                problems.append(f"section {section.name!r} lists subset {subset!r}, which no collected item has")
    for name, threshold in config.thresholds.items():
        if name != OVERALL and name not in sections and name not in known_subsets and name not in suites:
            problems.append(f"threshold {name!r} (from {threshold.source}) matches no subset or section")
    if problems:
        known = ", ".join([OVERALL] + [f"suite {s}" for s in sorted(suites)] + [f"section {s}" for s in sorted(sections)]
                          + sorted(known_subsets))
        raise GateConfigError("; ".join(problems) + f". Known names: {known}")


def threshold_check(config: GateConfig, threshold: Threshold, block: dict) -> dict:
    value = block.get("accuracy")
    check = {"name": threshold.name, "threshold": threshold.value, "value": value, "kind": "accuracy",
             "rule": config.rule, "source": threshold.source, "errors": block.get("errors") or 0}
    if value is None:
        return dict(check, passed=None, status="not run")
    if block.get("estimate"):  # --rm-sample: the interval for the full suite decides; undecided never passes
        low, high = block.get("ci_low"), block.get("ci_high")
        if low is None or high is None:  # an official score from a sample: no interval decides it
            return dict(check, rule="sample: an official score has no interval", passed=False, status="inconclusive")
        status = "pass" if low >= threshold.value else ("fail" if high < threshold.value else "inconclusive")
        return dict(check, rule="sample interval", low=low, high=high, passed=status == "pass", status=status)
    if config.rule == "wilson" and "correct" in block:
        status, low, high = wilson_decision(block["correct"], block["n"], threshold.value)
        check.update(low=low, high=high)
    else:  # point rule, and sections (a weighted mean has no binomial interval)
        status = "pass" if value >= threshold.value else "fail"
        if config.rule == "wilson":
            check["rule"] = "point (section)"
    passed = {"pass": True, "fail": False, "inconclusive": config.inconclusive == "pass"}[status]
    return dict(check, passed=passed, status=status)


def max_check(threshold: Threshold, summary: dict) -> dict:
    """A figure that may not exceed its threshold (--rm-max-null-win-rate): value <= threshold passes."""
    block, key, what = MAXIMUMS[threshold.name]
    value = (summary.get(block) or {}).get(key)
    check = {"name": threshold.name, "threshold": threshold.value, "value": value, "kind": "max",
             "rule": f"{what} <= threshold", "source": threshold.source}
    if value is None:
        return dict(check, passed=None, status="not run")
    passed = value <= threshold.value
    return dict(check, passed=passed, status="pass" if passed else "fail")


def evaluate(config: GateConfig, summary: dict, baseline_checks: list[dict] | None = None) -> dict:
    """The gate's checks: thresholds, errors, strict items, and baseline decisions."""
    checks = []
    for name, threshold in config.thresholds.items():
        if name == OVERALL:
            block = summary["overall"]
        elif name in config.sections:
            block = summary["sections"].get(name, {})
        elif name in (summary.get("headlines") or {}):
            block = summary["headlines"][name]  # an official score: the point rule; sampled: a dict, undecidable
            block = block if isinstance(block, dict) else {"accuracy": block}
        else:
            block = summary["subsets"].get(name, {})
        checks.append(threshold_check(config, threshold, block))
    checks.extend(max_check(threshold, summary) for threshold in config.maximums.values())
    checks.extend(baseline_checks or [])
    errors = summary["overall"]["errors"]
    if errors:
        checks.append({"name": "errors", "threshold": 0, "value": errors, "passed": False,
                       "kind": "errors", "rule": "no item may error", "status": "fail"})
    strict = summary["strict"]
    if strict["n"]:
        passed = strict["incorrect"] == 0
        checks.append({"name": "strict", "threshold": 1.0, "value": strict["correct"] / strict["n"], "passed": passed,
                       "kind": "strict", "rule": "every strict item must pass", "status": "pass" if passed else "fail",
                       "failed": strict["failed"]})
    return {
        "configured": bool(config.thresholds) or bool(strict["n"]) or bool(baseline_checks) or bool(config.maximums),
        "passed": all(c["passed"] is not False for c in checks),
        "checks": checks,
    }
