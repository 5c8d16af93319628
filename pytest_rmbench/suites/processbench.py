"""ProcessBench (HF `Qwen/ProcessBench`, splits gsm8k, math, olympiadbench, omnimath).

One steps item per row: the model must name the earliest wrong step exactly (label, or
-1 when every step is right); a process reward model predicts the first step scoring
under the threshold. Per split, acc_error is the accuracy on the rows with an error
(label != -1), acc_correct on the rows without, and F1 their harmonic mean; the headline
is the mean F1 over the splits present. A split with no rows of one kind has no such
accuracy and no F1 (None).

Local copies (--rm-data-dir): `<split>.json` / `.jsonl` / `.parquet` (or a
`<split>-*.parquet` shard), kept when they have the columns below: a file called
math.json may belong to another benchmark. A split with no file is reported as not run.
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Iterator

from ..items import CORRECT, ERROR, Item, ItemProblem, Section, StepsItem, fields
from .base import (DATA_SUFFIXES, DataSource, NodeNames, RowError, SuiteResult, check_columns, data_files, hub_splits,
                   items_from_rows, mean, nothing_found, row_id, text)

DATASET = "Qwen/ProcessBench"
SPLITS = ("gsm8k", "math", "olympiadbench", "omnimath")
COLUMNS = ("id", "problem", "steps", "label")


def split_patterns(split: str) -> list[str]:
    return [f"{split}{suffix}" for suffix in DATA_SUFFIXES] + [f"{split}-*.parquet"]


def steps_of(row: dict) -> tuple:
    return fields.steps(row, "steps")


def f1(acc_error: float | None, acc_correct: float | None) -> float | None:
    if acc_error is None or acc_correct is None:
        return None
    total = acc_error + acc_correct
    return 2 * acc_error * acc_correct / total if total else 0.0


class ProcessBench:
    name = "processbench"
    headline = "average_f1"
    datasets = (DATASET,)

    def _parts(self, source: DataSource) -> list[tuple[str, object, str]]:
        """(where, rows, split) per file or split read."""
        if not source.data_dir:
            return hub_splits(source, DATASET, SPLITS)
        parts, skipped_all = [], []
        for split in SPLITS:
            paths, skipped = data_files(source, split_patterns(split), COLUMNS)
            skipped_all += skipped
            if not paths:
                source.absent(split, f"no {split}.json / {split}.jsonl / {split}.parquet with the columns "
                                     f"{', '.join(COLUMNS)} under {source.data_dir}")
            parts += [(os.path.basename(p), source.read_file(p, part=split), split) for p in paths]
        if not parts:
            raise nothing_found(source, "ProcessBench's " + ", ".join(f"{s}.json" for s in SPLITS) +
                                f" (or .jsonl / .parquet), with the columns {', '.join(COLUMNS)}", skipped_all)
        source.check_lfs()
        return parts

    def load(self, source: DataSource) -> Iterator[Item | ItemProblem]:
        nodes = NodeNames()
        offset = 0
        for where, rows, split in self._parts(source):
            check_columns(rows, where, COLUMNS)

            def make(row: dict, index: int, where=where, offset=offset, split=split) -> Item:
                return self._item(row, where, index, offset + index, split, nodes)

            yield from items_from_rows(rows, where, make, offset)
            offset += len(rows)

    @staticmethod
    def _item(row: dict, where: str, index: int, order: int, split: str, nodes: NodeNames) -> Item:
        item_id = row_id(row)
        problem = text(row, "problem")
        steps = steps_of(row)
        label = row.get("label")
        if isinstance(label, bool) or not isinstance(label, int) or not -1 <= label < len(steps):
            raise RowError("label", f"must be an integer from -1 to {len(steps) - 1} (the earliest wrong step of "
                                    f"{len(steps)}, or -1), got {label!r}")
        node = f"{split}/{item_id}"
        source = f"{where}#{index}"
        nodes.claim(node, source)
        return StepsItem(id=node, subset=split, problem=problem, steps=steps, label=label, source=source,
                         order=order, node=node)

    def sections(self, subsets: set[str]) -> dict[str, Section]:
        return {}

    def score(self, results: list[SuiteResult]) -> dict | None:
        if not results:
            return None
        groups: dict[str, dict[str, list[bool]]] = defaultdict(lambda: {"error": [], "correct": []})
        for r in results:
            if r.outcome == ERROR or not r.details:
                continue
            groups[r.subset]["correct" if r.details["label"] == -1 else "error"].append(r.outcome == CORRECT)
        ordered = [s for s in SPLITS if s in groups] + sorted(s for s in groups if s not in SPLITS)
        splits = {}
        for name in ordered:
            acc_error, acc_correct = mean(groups[name]["error"]), mean(groups[name]["correct"])
            splits[name] = {"acc_error": acc_error, "acc_correct": acc_correct, "f1": f1(acc_error, acc_correct)}
        return {"average_f1": mean(s["f1"] for s in splits.values() if s["f1"] is not None), "splits": splits,
                "errors": sum(r.outcome == ERROR for r in results)}


PROCESSBENCH = ProcessBench()
