"""RewardBench 2 (HF `allenai/reward-bench-2`, split `test`).

One item per prompt. Ordinary subsets are best-of-4: the official script scores
`chosen + rejected` in that order and credits the prompt 1 / (answers tied at the top)
when the FIRST answer (chosen[0]) has the top score. Any further chosen answer therefore
competes like a rejected one, and that is how the item is built. Ties prompts compare
all correct answers against all incorrect ones; the subset score is a formula over
pairs of prompts (`ref:N` with `tied:N`), see `ties_score`.

Local copies (--rm-data-dir): the dataset's `data/test-*.parquet`, or any parquet /
JSON / JSONL file whose name starts with "test" and that has the dataset's columns,
num_correct included (a file of that name without them belongs to some other benchmark
and is skipped).
"""

from __future__ import annotations

import math
import os
import re
from collections import defaultdict
from typing import Iterator

from ..items import ERROR, BestOfNItem, Item, ItemProblem, Section, TiesItem
from .base import (DATA_SUFFIXES, DataSource, NodeNames, RowError, Rows, SuiteResult, check_columns, data_files,
                   items_from_rows, mean, nothing_found, row_id, slug, text, texts)

DATASET = "allenai/reward-bench-2"
SPLIT = "test"
COLUMNS = ("id", "prompt", "chosen", "rejected", "subset")
# a local file called test*.parquet is taken for RewardBench 2's only with these columns:
# num_correct sets it apart from other benchmarks' test splits of prompt / chosen / rejected
SIGNATURE = COLUMNS + ("num_correct",)
SUBSETS = ("Factuality", "Precise IF", "Math", "Safety", "Focus", "Ties")
LOCAL_PATTERNS = tuple(f"test*{suffix}" for suffix in DATA_SUFFIXES)
TIES_ID = re.compile(r"^(ref|tied):(\d+)$")
TIES_RESULT_ID = re.compile(r"(?:^|/)(ref|tied):(\d+)$")


# -- the Ties formula ---------------------------------------------------------------------
def _margin_term(smallest_gap: float, spread: float) -> float:
    """tanh(gap / spread - 1) with numpy's float semantics, as the official script computes
    it: x/0 is +-inf (tanh +-1) and 0/0 is NaN, which nan_to_num turns into 0."""
    if spread == 0:
        return 0.0 if smallest_gap == 0 else math.copysign(1.0, smallest_gap)
    return math.tanh(smallest_gap / spread - 1)


def ties_score(results: list[SuiteResult]) -> float | None:
    """RewardBench 2's Ties score from the Ties items' results.

    Accuracies run over every scored ref (resp. tied) prompt; the margin terms over the
    prompt numbers N present as both ref:N and tied:N (an inner join). With no such pair
    the official script's mean of an empty array is NaN: None here. Errored prompts are
    left out. The value can fall slightly outside [0, 1] (the 0.01 tanh term), as the
    official one does.
    """
    ref: dict[int, dict] = {}
    tied: dict[int, dict] = {}
    for result in results:
        if result.outcome == ERROR or not result.details:
            continue
        match = TIES_RESULT_ID.search(result.id)
        if match:
            (ref if match.group(1) == "ref" else tied).setdefault(int(match.group(2)), result.details)
    shared = sorted(set(ref) & set(tied))
    if not shared:
        return None
    ref_accuracy = mean(bool(d["accurate"]) for d in ref.values())
    tied_accuracy = mean(bool(d["accurate"]) for d in tied.values())
    preferred, preferred_hard, margins = [], [], []
    for n in shared:
        spread = tied[n]["diff_corr_margin"]
        gap_tied = tied[n]["corr_incorrect_margin"]
        gap = min(ref[n]["corr_incorrect_margin"], gap_tied)
        preferred.append(gap_tied > spread)
        preferred_hard.append(gap > spread)
        margins.append(_margin_term(gap, spread))
    return (0.30 * tied_accuracy + 0.30 * ref_accuracy + 0.20 * mean(preferred)
            + 0.20 * mean(preferred_hard) + 0.01 * mean(margins))


# -- the suite ----------------------------------------------------------------------------
class RewardBench2:
    name = "rewardbench2"
    headline = "final"
    datasets = (DATASET,)

    def _parts(self, source: DataSource) -> list[tuple[str, Rows]]:
        if not source.data_dir:
            return [(DATASET, source.hub(DATASET, None, SPLIT, part=SPLIT))]
        paths, skipped = data_files(source, LOCAL_PATTERNS, SIGNATURE)
        if not paths:
            raise nothing_found(source, "RewardBench 2's data/test-*.parquet (or a test*.jsonl / test*.json file) "
                                        f"with the columns {', '.join(SIGNATURE)}", skipped)
        parts = [(os.path.basename(p), source.read_file(p, part=SPLIT)) for p in paths]
        source.check_lfs()
        return parts

    def load(self, source: DataSource) -> Iterator[Item | ItemProblem]:
        nodes = NodeNames()
        offset = 0
        for where, rows in self._parts(source):
            check_columns(rows, where, COLUMNS)

            def make(row: dict, index: int, where=where, offset=offset) -> Item:
                return self._item(row, where, index, offset + index, nodes)

            yield from items_from_rows(rows, where, make, offset)
            offset += len(rows)

    @staticmethod
    def _item(row: dict, where: str, index: int, order: int, nodes: NodeNames) -> Item:
        item_id = row_id(row)
        subset = text(row, "subset")
        prompt = text(row, "prompt")
        chosen, rejected = texts(row, "chosen"), texts(row, "rejected")
        common = dict(id=item_id, subset=subset, source=f"{where}#{index}", order=order,
                      node=f"{slug(subset)}/{item_id}")
        if subset.lower() == "ties":  # the official script's test
            if not TIES_ID.match(item_id):
                raise RowError("id", f"a Ties row's id must look like ref:N or tied:N, got {item_id!r}")
            answers = chosen + rejected
            correct = row.get("num_correct")
            correct = len(chosen) if correct is None else correct
            # the official script marks the first num_correct of chosen + rejected as correct
            if isinstance(correct, bool) or not isinstance(correct, int) or not 1 <= correct < len(answers):
                raise RowError("num_correct", f"must be an integer from 1 to {len(answers) - 1}, got {correct!r}")
            item = TiesItem(prompt=prompt, chosen=answers[:correct], rejected=answers[correct:], **common)
        else:
            item = BestOfNItem(prompt=prompt, chosen=chosen[:1], rejected=chosen[1:] + rejected,
                               rule="fractional", **common)
        nodes.claim(common["node"], common["source"])
        return item

    def sections(self, subsets: set[str]) -> dict[str, Section]:
        # the final score is a plain mean of subset scores, one of which (Ties) is not an
        # accuracy: score() computes it; there are no weighted sections
        return {}

    def score(self, results: list[SuiteResult]) -> dict | None:
        if not results:
            return None
        by_subset: dict[str, list[SuiteResult]] = defaultdict(list)
        for result in results:  # errored items (bad rows among them, with no id) only count as errors
            if result.outcome != ERROR and result.credit is not None:
                by_subset[result.subset].append(result)
        ordered = [s for s in SUBSETS if s in by_subset] + sorted(s for s in by_subset if s not in SUBSETS)
        subsets: dict[str, float | None] = {}
        for name in ordered:
            group = by_subset[name]
            subsets[name] = ties_score(group) if name.lower() == "ties" else mean(r.credit for r in group)
        present = [v for v in subsets.values() if v is not None]
        return {"final": mean(present), "subsets": subsets, "errors": sum(r.outcome == ERROR for r in results)}


REWARDBENCH2 = RewardBench2()
