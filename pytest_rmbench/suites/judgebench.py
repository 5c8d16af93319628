"""JudgeBench (GitHub ScalerLab/JudgeBench; HF `ScalerLab/JudgeBench`, splits `gpt` and
`claude`: the response pairs written by GPT-4o and by Claude-3.5-Sonnet).

One judged item per pair; the item applies the official rules (a pairwise judge sees
both orders and is right when the counter is positive; a scalar reward model reads A>B
only when score(A) > score(B)). Sources are scored by prefix: mmlu-pro (its sources are
"mmlu-pro-<category>"), livebench-reasoning, livebench-math and livecodebench.

Both response sets are loaded. JudgeBench reports each set on its own (the GPT-4o set
is the leaderboard's), so score() gives each set under "sets" as well as the figures
pooled over what was loaded; with one set loaded they coincide. Item ids are the
`pair_id` (original_id is often empty) and the item's group its response model; node
names are `<source prefix>/<pair_id>`, prefixed with the response model when both sets
are loaded.

Local copies (--rm-data-dir): the repository's data/ files,
`dataset=judgebench,response_model=<model>.jsonl`, one per response set.
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Iterator

from ..items import CORRECT, ERROR, LABELS, Item, ItemProblem, JudgedItem, Section
from .base import (DATA_SUFFIXES, DataSource, NodeNames, RowError, SuiteResult, check_columns, data_files, hub_splits,
                   items_from_rows, mean, nothing_found, row_id, strip_data_suffix, text)

DATASET = "ScalerLab/JudgeBench"
HUB_SPLITS = ("gpt", "claude")
FILE_PREFIX = "dataset=judgebench,response_model="
SOURCES = ("mmlu-pro", "livebench-reasoning", "livebench-math", "livecodebench")
COLUMNS = ("pair_id", "source", "question", "response_A", "response_B", "label")


def source_prefix(source: str) -> str | None:
    """The scored source group: the prefix itself, or the prefix followed by '-'."""
    for prefix in SOURCES:
        if source == prefix or source.startswith(prefix + "-"):
            return prefix
    return None


def model_label(name: str) -> str:
    # as JudgeBench names its output files: a model id's '/' would split the item id
    return name.strip().replace("/", "_")


def file_model(path: str) -> str:
    return strip_data_suffix(os.path.basename(path))[len(FILE_PREFIX):]


class JudgeBench:
    name = "judgebench"
    headline = "overall"
    datasets = (DATASET,)

    def _parts(self, source: DataSource) -> list[tuple[str, object, str]]:
        """(where, rows, set label) per response set."""
        if not source.data_dir:
            return hub_splits(source, DATASET, HUB_SPLITS)  # one set missing from the cache: run the other
        paths, _ = data_files(source, [FILE_PREFIX + "*" + s for s in DATA_SUFFIXES])
        # the repository's outputs/ hold judged copies named <data file>,judge_name=...,judge_model=...
        paths = [p for p in paths if "," not in file_model(p)]
        if not paths:
            raise nothing_found(source, f"JudgeBench's {FILE_PREFIX}gpt-4o-2024-05-13.jsonl and/or "
                                        f"{FILE_PREFIX}claude-3-5-sonnet-20240620.jsonl "
                                        "(the data/ folder of github.com/ScalerLab/JudgeBench)")
        parts = [(os.path.basename(p), source.read_file(p, part=file_model(p)), file_model(p)) for p in paths]
        source.check_lfs()
        return parts

    def load(self, source: DataSource) -> Iterator[Item | ItemProblem]:
        parts = self._parts(source)
        several = len(parts) > 1
        nodes = NodeNames()
        offset = 0
        for where, rows, label in parts:
            check_columns(rows, where, COLUMNS)

            def make(row: dict, index: int, where=where, offset=offset, label=label) -> Item:
                return self._item(row, where, index, offset + index, label, several, nodes)

            yield from items_from_rows(rows, where, make, offset)
            offset += len(rows)

    @staticmethod
    def _item(row: dict, where: str, index: int, order: int, part_label: str, several: bool,
              nodes: NodeNames) -> Item:
        pair_id = row_id(row, "pair_id")
        source_name = text(row, "source")
        subset = source_prefix(source_name)
        if subset is None:
            raise RowError("source", f"{source_name!r} starts with none of {', '.join(SOURCES)}")
        label = row.get("label")
        if label not in LABELS:
            raise RowError("label", f"must be 'A>B' or 'B>A', got {label!r}")
        question = text(row, "question")
        response_a, response_b = text(row, "response_A"), text(row, "response_B")
        # the row's own response model, so that the Hub's "gpt" and the file's
        # "gpt-4o-2024-05-13" give the same ids
        model = row.get("response_model")
        model = model_label(model if isinstance(model, str) and model.strip() else part_label)
        node = f"{model}/{subset}/{pair_id}" if several else f"{subset}/{pair_id}"
        source = f"{where}#{index}"
        nodes.claim(node, source, "pair_id")
        return JudgedItem(id=pair_id, subset=subset, question=question, response_a=response_a,
                          response_b=response_b, label=label, source=source, order=order, node=node, group=model)

    def sections(self, subsets: set[str]) -> dict[str, Section]:
        return {}

    @staticmethod
    def _accuracies(results: list[SuiteResult]) -> dict:
        scored = [r for r in results if r.outcome != ERROR]
        by_source: dict[str, list[bool]] = defaultdict(list)
        for r in scored:
            by_source[r.subset].append(r.outcome == CORRECT)
        ordered = [s for s in SOURCES if s in by_source] + sorted(s for s in by_source if s not in SOURCES)
        return {"overall": mean(r.outcome == CORRECT for r in scored),
                "sources": {s: mean(by_source[s]) for s in ordered}}

    def score(self, results: list[SuiteResult]) -> dict | None:
        if not results:
            return None
        by_set: dict[str, list[SuiteResult]] = defaultdict(list)
        for r in results:  # errored items (bad rows among them, with no id) only count as errors
            if r.outcome != ERROR:
                by_set[r.group].append(r)
        return {**self._accuracies(results),
                "sets": {name: self._accuracies(group) for name, group in sorted(by_set.items())},
                "errors": sum(r.outcome == ERROR for r in results)}


JUDGEBENCH = JudgeBench()
