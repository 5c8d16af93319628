"""PPE, Preference Proxy Evaluations (lmarena-ai/PPE-*): two suites.

ppe-human (lmarena-ai/PPE-Human-Preference-V1, split `test`): Chatbot Arena battles with
`question_id, prompt, response_1, response_2, model_a, model_b, winner`. One pair per
battle, the winner's response as chosen (response_1 is model_a's). Ties ("tie",
"tie (bothbad)") are dropped, as PPE's pairwise accuracy drops them: they make no item
and are not counted anywhere. The subset is the row's `language` (or `category`) when the
data has that column, else "human". Score: pairwise accuracy.

ppe-bestofk (the correctness sets, split `train`): each row is one prompt with K responses
`response_1..K` and `scores`, one bool per response (correct or not). One best-of-K item
per row with the correct responses as chosen and the others as rejected; its credit is the
expected correctness of the top-scored response when ties at the top are broken at random
(correct answers among the top scores / all answers tied at the top). Rows where every
response is correct, or none is, are skipped: every model earns the same credit on them
(1 or 0), so they only shift the accuracy by a constant; they make no item and are not
counted. Subsets: mmlu-pro, math, gpqa, ifeval, mbpp-plus (option `sets` picks some).
Score: mean credit, overall and per set.

Local files (--rm-data-dir): under a folder named as the Hub dataset (`PPE-MATH-Best-of-K/
data/train-*.parquet`, `PPE-Human-Preference-V1/data/test-*.parquet`), or a file named
`ppe-math.jsonl` / `math-best-of-k.jsonl` / `ppe-human.jsonl`.
"""

from __future__ import annotations

import re
from typing import Iterator

from ..items import BestOfNItem, Item, ItemProblem, PairItem, Section
from .base import (DataSource, NodeNames, RowError, Rows, SuiteDataError, SuiteResult, check_columns, chosen_names,
                   data_files, items_from_rows, nothing_found, pair_score, prompt_value, relative_parts, row_id,
                   strip_data_suffix, text)

HUMAN_DATASET = "lmarena-ai/PPE-Human-Preference-V1"
HUMAN_SPLIT = "test"
BESTOFK_SETS = {
    "mmlu-pro": "lmarena-ai/PPE-MMLU-Pro-Best-of-K",
    "math": "lmarena-ai/PPE-MATH-Best-of-K",
    "gpqa": "lmarena-ai/PPE-GPQA-Best-of-K",
    "ifeval": "lmarena-ai/PPE-IFEval-Best-of-K",
    "mbpp-plus": "lmarena-ai/PPE-MBPP-Plus-Best-of-K",
}
BESTOFK_SPLIT = "train"
RESPONSE = re.compile(r"^response_(\d+)$")
MODEL_COLUMNS = ("model_name", "model")


def matches(source: DataSource, path: str, dataset: str, stems: tuple[str, ...]) -> bool:
    """A local file belongs to `dataset` when a folder above it is named as the dataset
    (any case), or its base name starts with one of `stems`."""
    parts = [p.lower() for p in relative_parts(source, path)]
    if dataset.rsplit("/", 1)[-1].lower() in parts[:-1]:
        return True
    stem = strip_data_suffix(parts[-1])
    return any(stem == s or stem.startswith((f"{s}-", f"{s}_", f"{s}.")) for s in stems)


def safe_id(value: str) -> str:
    """An id assembled from free text (model names ...): no '::', no whitespace runs, no '/'."""
    return re.sub(r"\s+", "_", value.replace("::", ":").replace("/", "_")).strip("_") or "_"


class PPEHuman:
    name = "ppe-human"
    headline = "accuracy"
    datasets = (HUMAN_DATASET,)

    def parts(self, source: DataSource) -> list[tuple[str, Rows]]:
        if not source.data_dir:
            return [(HUMAN_DATASET, source.hub(HUMAN_DATASET, split=HUMAN_SPLIT, part=HUMAN_SPLIT))]
        files, _ = data_files(source, one_per_name=False)
        paths = [p for p in files
                 if matches(source, p, HUMAN_DATASET, ("ppe-human", "ppe_human", "human-preference", "human_preference"))]
        if not paths:
            raise nothing_found(source, "PPE-Human-Preference-V1/data/test-*.parquet or ppe-human.jsonl")
        parts = [(p, source.read_file(p, part=HUMAN_SPLIT)) for p in paths]
        source.check_lfs()
        return parts

    def load(self, source: DataSource) -> Iterator[Item | ItemProblem]:
        names = NodeNames()
        offset = 0
        for where, rows in self.parts(source):
            check_columns(rows, where, ("prompt", "response_1", "response_2", "winner"))
            subset_column = next((c for c in ("language", "category") if c in rows.columns), None)
            yield from items_from_rows(rows, where, self._maker(subset_column, where, offset, names), offset,
                                       "question_id")
            offset += len(rows)

    def _maker(self, subset_column: str | None, where: str, offset: int, names: NodeNames):
        def make(row: dict, index: int) -> Item | None:
            winner = row.get("winner")
            if not isinstance(winner, str):
                raise RowError("winner", "missing" if winner is None else f"must be a string, got {type(winner).__name__}")
            if winner.startswith("tie"):
                return None
            if winner not in ("model_a", "model_b"):
                raise RowError("winner", f"must be model_a, model_b or tie, got {winner!r}")
            first, second = text(row, "response_1", empty=True), text(row, "response_2", empty=True)
            chosen, rejected = (first, second) if winner == "model_a" else (second, first)
            prompt = prompt_value(row.get("prompt"), "prompt")
            subset = "human"
            if subset_column:
                value = row.get(subset_column)
                subset = safe_id(value.strip()) if isinstance(value, str) and value.strip() else "unknown"
            item_id = row_id(row, "question_id", fallback=offset + index)
            node = names.unique(f"{subset}/{item_id}", offset + index)  # a prompt may be battled more than once
            return PairItem(id=node[len(subset) + 1:], subset=subset, prompt=prompt, chosen=chosen, rejected=rejected,
                            source=f"{where}#{index}", order=offset + index, node=node)
        return make

    def sections(self, subsets: set[str]) -> dict[str, Section]:
        return {}

    def score(self, results: list[SuiteResult]) -> dict | None:
        return pair_score(results, "accuracy")


def response_columns(rows: Rows, where: str) -> list[str]:
    found = sorted((int(m.group(1)), c) for c in rows.columns if (m := RESPONSE.match(c)))
    if len(found) < 2 and len(rows):
        raise SuiteDataError(f"{where}: expected columns response_1 .. response_K (K >= 2) and 'scores'; "
                             f"the dataset has {', '.join(map(repr, rows.columns)) or 'no columns'}")
    return [c for _, c in found]


class PPEBestOfK:
    name = "ppe-bestofk"
    headline = "accuracy"
    datasets = tuple(BESTOFK_SETS.values())

    def parts(self, source: DataSource) -> Iterator[tuple[str, str, Rows]]:
        sets = chosen_names(source, "sets", BESTOFK_SETS, "set(s)", "sets")
        if not source.data_dir:
            for key in sets:
                yield key, BESTOFK_SETS[key], source.hub(BESTOFK_SETS[key], split=BESTOFK_SPLIT, part=key)
            return
        files, _ = data_files(source, one_per_name=False)  # one data/train-*.parquet per set
        found = {key: [p for p in files if matches(source, p, BESTOFK_SETS[key],
                                                   (f"ppe-{key}", f"ppe_{key}", f"{key}-best-of-k"))]
                 for key in sets}
        if not any(found.values()):
            raise nothing_found(source, ", ".join(f"{BESTOFK_SETS[k].split('/')[1]}/data/train-*.parquet"
                                                  for k in sets) + " (or ppe-SET.jsonl)")
        for key in sets:
            if not found[key]:
                source.absent(key, f"no {BESTOFK_SETS[key].split('/')[1]}/ folder or ppe-{key}.jsonl under {source.data_dir}")
            for path in found[key]:
                yield key, path, source.read_file(path, part=key)
        source.check_lfs()

    def load(self, source: DataSource) -> Iterator[Item | ItemProblem]:
        names = NodeNames()
        offset = 0
        for key, where, rows in self.parts(source):
            check_columns(rows, where, ("prompt", "scores"))
            responses = response_columns(rows, where)
            model_column = next((c for c in MODEL_COLUMNS if c in rows.columns), None)
            yield from items_from_rows(rows, where, self._maker(key, responses, model_column, where, offset, names),
                                       offset, "question_id")
            offset += len(rows)

    def _maker(self, key: str, responses: list[str], model_column: str | None, where: str, offset: int,
               names: NodeNames):
        def make(row: dict, index: int) -> Item | None:
            scores = row.get("scores")
            if isinstance(scores, tuple):
                scores = list(scores)
            if not isinstance(scores, list):
                raise RowError("scores", "missing" if scores is None else "must be a list of booleans")
            if len(scores) != len(responses):
                raise RowError("scores", f"has {len(scores)} entries for {len(responses)} responses")
            if not all(isinstance(s, bool) or s in (0, 1) for s in scores):
                raise RowError("scores", "entries must be true or false")
            texts = [text(row, column, empty=True) for column in responses]
            chosen = tuple(t for t, ok in zip(texts, scores) if ok)
            rejected = tuple(t for t, ok in zip(texts, scores) if not ok)
            if not chosen or not rejected:
                return None  # every model gets the same credit here
            prompt = prompt_value(row.get("prompt"), "prompt")
            item_id = row_id(row, "question_id", fallback=offset + index)
            model = row.get(model_column) if model_column else None
            if isinstance(model, str) and model.strip():
                item_id = f"{item_id}-{safe_id(model)}"  # one row per (question, answering model)
            node = names.unique(f"{key}/{item_id}", offset + index)
            return BestOfNItem(id=node[len(key) + 1:], subset=key, prompt=prompt, chosen=chosen, rejected=rejected,
                               rule="fractional", source=f"{where}#{index}", order=offset + index, node=node)
        return make

    def sections(self, subsets: set[str]) -> dict[str, Section]:
        return {}

    def score(self, results: list[SuiteResult]) -> dict | None:
        return pair_score(results, "accuracy")


PPE_HUMAN = PPEHuman()
PPE_BESTOFK = PPEBestOfK()
