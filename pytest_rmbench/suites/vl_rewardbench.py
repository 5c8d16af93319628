"""VL-RewardBench (MMInstruction/VL-RewardBench, split `test`): one image, a query and two
responses per row; the chosen response is the one `human_ranking` ranks 0 (nearly always the
first, never assumed).

Groups come from the id's prefix (the text before the first `_` or `-`): hallucination for
`hallucination` (the povid rows: hallucination since the official code's May 2025 change,
general before), `RLAIF` and `RLHF`; reasoning for `mathverse` and `mmmu`; general for
`wildvision` and any other prefix. Scores as the official cal.py computes them: `overall`
is the accuracy pooled over every row, `macro` the mean of the group accuracies (over the
groups present: the three in a full run), both unrounded fractions, with `groups`. Under the
grader's vl-rewardbench mode (the benchmark's own judge protocol) `protocol` is "judge" and the
items whose k verdicts had no majority are left out (`excluded`); otherwise it is "scores".

Local files (--rm-data-dir): `data.jsonl` of the GitHub repository (images by `image_path`,
relative to its folder: `images/povid/...`) or the Hub's `test-*.parquet` (images embedded).
"""

from __future__ import annotations

import re
from typing import Iterator

from ..items import Item, ItemProblem, PairItem, Section
from .base import (DataSource, NodeNames, RowError, Rows, SuiteResult, accuracy, check_columns, data_files,
                   data_patterns, error_count, items_from_rows, mean, nothing_found, row_id, text)
from .vl_base import accuracies_by, image_folders, image_refs

DATASET = "MMInstruction/VL-RewardBench"
SPLIT = "test"
REQUIRED = ("id", "query", "response", "human_ranking")
IMAGE_COLUMNS = ("image", "image_path")  # the Hub's embedded image, the GitHub copy's path
GROUPS = ("general", "hallucination", "reasoning")
GROUP_OF_PREFIX = {"hallucination": "hallucination", "povid": "hallucination", "rlaif": "hallucination",
                   "rlhf": "hallucination", "mathverse": "reasoning", "mmmu": "reasoning"}


def prefix_of(item_id: str) -> str:
    return re.split(r"[_-]", item_id, maxsplit=1)[0]


def group_of(item_id: str) -> str:
    """The official group of a row by its id's prefix; general when the prefix is none of the known ones."""
    return GROUP_OF_PREFIX.get(prefix_of(item_id).lower(), "general")


def ranked_pair(row: dict) -> tuple[str, str]:
    """(chosen, rejected): the response human_ranking ranks 0, and the other one."""
    responses, ranking = row.get("response"), row.get("human_ranking")
    if not isinstance(responses, (list, tuple)) or len(responses) != 2 or not all(isinstance(r, str) for r in responses):
        raise RowError("response", "must be a list of two response strings")
    if not isinstance(ranking, (list, tuple)) or sorted(ranking) != [0, 1] or any(isinstance(r, bool) for r in ranking):
        raise RowError("human_ranking", f"must rank the two responses 0 (preferred) and 1, got {ranking!r}")
    chosen = list(ranking).index(0)
    return responses[chosen], responses[1 - chosen]


def image_column(rows: Rows, where: str) -> str:
    for column in IMAGE_COLUMNS:
        if column in rows.columns:
            return column
    check_columns(rows, where, REQUIRED + ("image",))  # raises, listing the columns found
    return "image"


class VLRewardBench:
    name = "vl-rewardbench"
    headline = "overall"
    datasets = (DATASET,)

    def parts(self, source: DataSource) -> list[tuple[str | None, Rows]]:
        """(the local file or None for the Hub, its rows)."""
        if not source.data_dir:
            split = source.option("split", SPLIT)
            return [(None, source.hub(DATASET, split=split, part=split))]
        files, skipped = data_files(source, data_patterns("data", SPLIT), required=REQUIRED)
        if not files:
            raise nothing_found(source, f"data.jsonl (GitHub vl-rewardbench/VL_RewardBench, with its images/ "
                                "folder) or test-*.parquet (from " + DATASET + ")", skipped)
        parts = [(path, source.read_file(path, part=SPLIT)) for path in files]
        source.check_lfs()
        return parts

    def load(self, source: DataSource) -> Iterator[Item | ItemProblem]:
        names = NodeNames()
        offset = 0
        for path, rows in self.parts(source):
            where = path or f"{DATASET}:{SPLIT}"
            check_columns(rows, where, REQUIRED)
            column = image_column(rows, where) if len(rows) else "image"
            folders = image_folders(path, source.data_dir, [source.option("images_dir")])
            yield from items_from_rows(rows, where, self._maker(where, column, folders, offset, names), offset)
            offset += len(rows)

    def _maker(self, where: str, column: str, folders: list[str], offset: int, names: NodeNames):
        def make(row: dict, index: int) -> Item:
            item_id = row_id(row)
            group = group_of(item_id)
            prompt = text(row, "query")
            chosen, rejected = ranked_pair(row)
            images = image_refs(row.get(column), column, folders)
            node = f"{group}/{item_id}"
            names.claim(node, f"row {offset + index}")
            return PairItem(id=item_id, subset=group, prompt=prompt, chosen=chosen, rejected=rejected, images=images,
                            source=f"{where}#{index}", order=offset + index, node=node, group=prefix_of(item_id))
        return make

    def sections(self, subsets: set[str]) -> dict[str, Section]:
        return {}

    def score(self, results: list[SuiteResult]) -> dict | None:
        """`protocol` says which ran: "judge" when a voting grader scored the items (VL-RewardBench's
        own protocol, --rm-kind grader --rm-grader-mode vl-rewardbench: items without a majority
        are left out of every figure, as cal.py does, and counted in `excluded`), else "scores"."""
        if not results:
            return None
        voted = [r for r in results if (r.details or {}).get("votes")]
        kept = [r for r in results if not (r.details or {}).get("excluded")]
        groups = accuracies_by(kept, lambda r: r.subset)
        figures = {"overall": accuracy(kept), "macro": mean(groups.get(g) for g in GROUPS), "groups": groups,
                   "errors": error_count(results), "protocol": "judge" if voted else "scores"}
        if voted:
            figures.update(samples=voted[0].details["votes"].get("samples"), excluded=len(results) - len(kept))
        return figures


VL_REWARDBENCH = VLRewardBench()
