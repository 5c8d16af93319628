"""RewardMATH (HF `RewardMATH/RewardMATH`; every split is read, the dataset has one).

Rows are solutions: problem, answer, eval_solution (a list of steps), solution_type
"chosen" / "rejected", subject, level, problem_id and id. The official unit is the
problem, so the rows are grouped by problem_id (all rows are read first; a problem's
rows may sit in different parquet shards) into one strict best-of-n item: every chosen
solution must score above every rejected one (one chosen and nine rejected per
problem). A solution's text is its steps joined with "\\n", as the official runner
formats them for classifier reward models.

A problem without a chosen or without a rejected solution, or with a bad row, becomes
one error item naming the problem. Subsets are the MATH subjects (node
`<subject>/<problem_id>`); score() gives the official figures over all problems
(accuracy, accuracy with ties, MRR with ties broken against the chosen solution) and
the accuracy per subject.

Local copies (--rm-data-dir): parquet / JSON / JSONL files named RewardMATH* or
rewardmath* (the GitHub repository's RewardMATH_direct.json) or test* (the dataset's
data/test-*.parquet), kept when they have the columns below.
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Iterator

from ..items import ERROR, BestOfNItem, Item, ItemProblem, Section, fields
from .base import (DATA_SUFFIXES, DataSource, NodeNames, RowError, SuiteResult, check_columns, data_files,
                   items_from_rows, mean, nothing_found, row_id, slug, text)

DATASET = "RewardMATH/RewardMATH"
COLUMNS = ("problem", "eval_solution", "solution_type", "problem_id")
LOCAL_PATTERNS = tuple(f"{stem}*{suffix}" for stem in ("RewardMATH", "rewardmath", "test") for suffix in DATA_SUFFIXES)
SOLUTION_TYPES = ("chosen", "rejected")
STEP_JOIN = "\n"
DEFAULT_SUBSET = "rewardmath"


def solution_text(row: dict) -> str:
    steps = fields.steps(row, "eval_solution")
    joined = STEP_JOIN.join(steps)
    if not joined.strip():
        raise RowError("eval_solution", "all steps are empty")
    return joined


class RewardMath:
    name = "rewardmath"
    headline = "accuracy"
    datasets = (DATASET,)

    def _parts(self, source: DataSource) -> list[tuple[str, object]]:
        if not source.data_dir:
            return [(DATASET, source.hub(DATASET, None, None, part="test"))]
        paths, skipped = data_files(source, LOCAL_PATTERNS, COLUMNS)
        if not paths:
            raise nothing_found(source, "RewardMATH's rows as RewardMATH*.json / .jsonl / .parquet or the dataset's "
                                        f"data/test-*.parquet, with the columns {', '.join(COLUMNS)}", skipped)
        parts = [(os.path.basename(p), source.read_file(p, part="test")) for p in paths]
        source.check_lfs()
        return parts

    def load(self, source: DataSource) -> Iterator[Item | ItemProblem]:
        groups: dict[str, list[tuple[int, str, int, dict]]] = {}  # problem_id -> (order, where, index, row)
        problems: list[tuple[int, ItemProblem]] = []
        offset = 0
        for where, rows in self._parts(source):
            check_columns(rows, where, COLUMNS)

            def join(row: dict, index: int, where=where, offset=offset) -> None:
                groups.setdefault(row_id(row, "problem_id"), []).append((offset + index, where, index, row))

            # join() makes no items: what comes back are the rows without a usable problem_id
            problems += [(p.index, p) for p in items_from_rows(rows, where, join, offset)]
            offset += len(rows)
        entries: list[tuple[int, Item | ItemProblem]] = list(problems)
        nodes = NodeNames()
        for problem_id, members in groups.items():
            first_order, where, index, _ = members[0]
            try:
                entries.append((first_order, self._item(problem_id, members, nodes)))
            except RowError as exc:
                entries.append((first_order, ItemProblem(first_order, None, exc.field, exc.message, problem_id, None,
                                                         f"{where} row {index} (problem {problem_id})")))
        entries.sort(key=lambda e: e[0])
        for _, entry in entries:
            yield entry

    @staticmethod
    def _item(problem_id: str, members: list, nodes: NodeNames) -> Item:
        chosen, rejected, seen_ids = [], [], {}
        for _, where, index, row in members:
            place = f"{where} row {index}"
            try:
                kind = row.get("solution_type")
                if kind not in SOLUTION_TYPES:
                    raise RowError("solution_type", f"must be 'chosen' or 'rejected', got {kind!r}")
                answer = solution_text(row)
                solution_id = row.get("id")
                if solution_id is not None:
                    key = str(solution_id)
                    if key in seen_ids:  # the same rows read twice (two copies of the dataset)
                        raise RowError("id", f"solution id {key!r} appears twice (also {seen_ids[key]})")
                    seen_ids[key] = place
            except RowError as exc:
                raise RowError(exc.field, f"problem {problem_id}: {place}: {exc.message}") from None
            (chosen if kind == "chosen" else rejected).append(answer)
        if not chosen or not rejected:
            raise RowError("solution_type", f"problem {problem_id} has {len(chosen)} chosen and {len(rejected)} "
                                            "rejected solutions; it needs at least one of each")
        first_order, where, index, first = members[0]
        prompt = text(first, "problem")
        subject = first.get("subject")
        subset = subject.strip() if isinstance(subject, str) and subject.strip() else DEFAULT_SUBSET
        node = f"{slug(subset)}/{problem_id}"
        source = f"{where}#{index}"
        nodes.claim(node, source, "problem_id")
        return BestOfNItem(id=problem_id, subset=subset, prompt=prompt, chosen=tuple(chosen), rejected=tuple(rejected),
                           rule="strict", source=source, order=first_order, node=node)

    def sections(self, subsets: set[str]) -> dict[str, Section]:
        # the official figures are over all problems; subjects are only a breakdown
        return {}

    def score(self, results: list[SuiteResult]) -> dict | None:
        if not results:
            return None
        scored = [r for r in results if r.outcome != ERROR and r.details]
        by_subject: dict[str, list[bool]] = defaultdict(list)
        for r in scored:
            by_subject[r.subset].append(bool(r.details["accurate"]))
        return {
            "accuracy": mean(bool(r.details["accurate"]) for r in scored),
            "accuracy_with_ties": mean(bool(r.details["accurate_with_ties"]) for r in scored),
            "mrr": mean(r.details["reciprocal_rank"] for r in scored),
            "subjects": {name: mean(values) for name, values in sorted(by_subject.items())},
            "errors": sum(r.outcome == ERROR for r in results),
        }


REWARDMATH = RewardMath()
