"""The tables every view shows, as rows: the subsets/sections/overall table, the gate checks
and the baseline comparison. The terminal, the Markdown and HTML pages and the `runs` command
line render these rows (each with its own escaping and layout).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .format import fmt, fmt_count, fmt_interval
from .schema import Change, Check, Figures, Report, SectionFigures

MAX_SUBSET_ROWS = 40  # beyond this (e.g. M-RewardBench's 529), subsets inside sections are folded
HEADER = ("subset", "n", "correct", "accuracy", "95% CI", "margin", "errors")


@dataclass
class Row:
    """One line of the summary table. kind: subset, folded (the count of subsets folded into
    their sections), section or overall."""
    kind: str
    name: str
    block: Figures | SectionFigures | None = None
    folded: int = 0

    @property
    def label(self) -> str:
        if self.kind == "section":
            return f"[{self.name}]"
        if self.kind == "folded":
            return f"(+{self.folded} in sections, -v)"
        return self.name

    def cells(self, count_spec: str = ".4g", unsummed: str = "-") -> tuple[str, ...]:
        """n, correct, accuracy, 95% CI, mean margin, errors ("-" for what is missing). A section
        (a weighted mean) has no correct or errors count: `unsummed` stands for them."""
        if self.kind == "folded":
            return ("",) * 6
        b = self.block if self.block is not None else Figures()
        section = self.kind == "section"
        return (fmt_count(b.get("n")), unsummed if section else fmt_count(b.get("correct"), count_spec),
                fmt(b.get("accuracy")), fmt_interval(b.get("ci_low"), b.get("ci_high")),
                fmt(b.get("mean_margin"), "+.3g"), unsummed if section else fmt_count(b.get("errors")))


@dataclass
class SummaryTable:
    subsets: list[Row]  # with the folded row last, if any
    sections: list[Row]
    overall: Row

    @property
    def rows(self) -> list[Row]:
        return [*self.subsets, *self.sections, self.overall]


def summary_table(report: Report, *, order: Callable = sorted, fold: bool = False, verbose: int = 0) -> SummaryTable:
    """Subsets (in `order`), sections, overall. fold: with more than MAX_SUBSET_ROWS subsets and
    sections defined (and not -v), subsets that belong to a section become one count row."""
    subsets = report.subsets or {}
    sections = report.sections or {}
    names = list(order(subsets))
    folded = 0
    if fold and len(names) > MAX_SUBSET_ROWS and sections and verbose <= 0:
        in_sections = {m for b in sections.values() for m in (getattr(b, "subsets", None) or ())}
        kept = [name for name in names if name not in in_sections]
        folded, names = len(names) - len(kept), kept
    rows = [Row("subset", str(name), subsets[name]) for name in names]
    if folded:
        rows.append(Row("folded", "", folded=folded))
    return SummaryTable(rows, [Row("section", str(name), b) for name, b in sections.items()],
                        Row("overall", "overall", report.overall))


def text_rows(table: SummaryTable, count_spec: str = ".4g", unsummed: str = "") -> tuple[list[tuple[str, ...]], tuple[int, ...]]:
    """(rows with the header first, the indexes a rule line goes before) for a text table."""
    rows = [HEADER] + [(r.label, *r.cells(count_spec, unsummed)) for r in table.rows]
    first_section = 1 + len(table.subsets)
    return rows, (1, first_section, len(rows) - 1)


def section_members(section: SectionFigures, name: Callable = str) -> list[str]:
    """"name (weight)" per member subset; "(n)" for a weight of its item count."""
    weights = section.weights or {}
    out = []
    for sub in section.subsets or list(weights):
        w = weights.get(sub)
        out.append(name(sub) + (" (n)" if w is None else f" ({fmt(w, 'g')})"))
    return out


# -- gate checks ---------------------------------------------------------------------------------

def checks(report: Report) -> list[Check]:
    return [c for c in (report.gate.checks or []) if isinstance(c, Check)]


def check_status(check) -> str:
    """The check's status; from `passed` for a check without one."""
    return check.get("status") or {True: "pass", False: "fail"}.get(check.get("passed"), "not run")


def check_number(check, key: str) -> str:
    value = check.get(key)
    if check.get("kind") == "errors":
        return fmt_count(value)
    if check.get("kind") == "baseline":
        return fmt(value, "+.3f")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return fmt(value)


def check_interval(check) -> str:
    low = check.get("low", check.get("ci_low"))
    high = check.get("high", check.get("ci_high"))
    return fmt_interval(low, high, "+.3f" if check.get("kind") == "baseline" else ".3f")


# -- the baseline comparison ------------------------------------------------------------------------

def baseline_rows(report: Report, order: Callable = sorted) -> list[tuple[str, Change]]:
    """(name, change) per subset in `order`, then overall; [] without a baseline."""
    baseline = report.baseline
    if not baseline:
        return []
    subsets = baseline.subsets or {}
    return [(str(n), subsets[n]) for n in order(subsets)] + [("overall", baseline.overall)]
