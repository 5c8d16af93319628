"""Multimodal RewardBench (facebookresearch/multimodal_rewardbench): an image, a prompt (`Text`)
and two outputs per row; `Better` ("Output1" or "Output2") names the chosen one.

Scores as its scripts/2_get_accuracy.py computes them: accuracy per category and pooled over
every row (`overall`, the script's `all`). The category is `Meta.Category`, with two split
by the row's `ID` prefix: safety becomes safety/bias (`pairs...`) or safety/toxicity, and
reasoning becomes reasoning/math (`math...`) or reasoning/coding. The script gives an
output without a verdict a random A/B; a reward model always gives two scores, so no row
is filled at random here (an item that errors is left out of the accuracies and counted).

Local files (--rm-data-dir): the repository's `data/all_data.json`, written by its
scripts/0_download_data.py, with the images it downloads (`Image` is a path relative to
`data/`). The benchmark is not on the Hugging Face Hub (its images belong to third-party
datasets); a Hub copy with the same columns (images embedded or as paths) loads with
`--rm-suite-option dataset=ORG/NAME` (and `split=NAME`, `test` by default).
"""

from __future__ import annotations

from typing import Iterator

from ..items import Item, ItemProblem, PairItem, Section
from .base import (DataSource, NodeNames, RowError, Rows, SuiteDataError, SuiteResult, accuracy, check_columns,
                   clean_name, data_files, data_patterns, error_count, items_from_rows, nothing_found, row_id, text)
from .vl_base import accuracies_by, image_folders, image_refs

REPOSITORY = "https://github.com/facebookresearch/multimodal_rewardbench"
REQUIRED = ("ID", "Text", "Image", "Output1", "Output2", "Better")
SPLITS = {"safety": ("pairs", "safety/bias", "safety/toxicity"), "reasoning": ("math", "reasoning/math", "reasoning/coding")}


def category_of(row: dict, item_id: str) -> str:
    """The script's category: Meta.Category, safety and reasoning split by the ID's prefix."""
    meta = row.get("Meta")
    value = meta.get("Category") if isinstance(meta, dict) else row.get("Meta.Category", row.get("Category"))
    if value is None:
        raise RowError("Meta", "missing: the row has no Meta.Category")
    category = clean_name({"Meta.Category": value}, "Meta.Category")
    if category in SPLITS:
        prefix, yes, no = SPLITS[category]
        return yes if item_id.lower().startswith(prefix) else no
    return category


def chosen_rejected(row: dict) -> tuple[str, str]:
    first, second = text(row, "Output1", empty=True), text(row, "Output2", empty=True)
    better = row.get("Better")
    if better == "Output1":
        return first, second
    if better == "Output2":
        return second, first
    raise RowError("Better", f"must be 'Output1' or 'Output2', got {better!r}")


class MultimodalRewardBench:
    name = "multimodal-rewardbench"
    headline = "overall"
    datasets = ()

    def parts(self, source: DataSource) -> list[tuple[str | None, str, Rows]]:
        """(the local file or None, where, rows)."""
        if not source.data_dir:
            dataset = source.option("dataset")
            if not dataset:
                raise SuiteDataError(
                    "Multimodal RewardBench is not on the Hugging Face Hub (its images come from third-party datasets): "
                    f"clone {REPOSITORY}, run python scripts/0_download_data.py there, and pass --rm-data-dir with its "
                    "data/ folder (or --rm-suite-option dataset=ORG/NAME for a Hub copy with the same columns)")
            split = source.option("split", "test")
            return [(None, f"{dataset}:{split}", source.hub(dataset, split=split, part=split))]
        files, skipped = data_files(source, data_patterns("all_data"), required=REQUIRED)
        if not files:
            raise nothing_found(source, f"all_data.json (written by scripts/0_download_data.py of {REPOSITORY}, "
                                "next to its images/ folder)", skipped)
        parts = [(path, path, source.read_file(path)) for path in files]
        source.check_lfs()
        return parts

    def load(self, source: DataSource) -> Iterator[Item | ItemProblem]:
        names = NodeNames()
        offset = 0
        for path, where, rows in self.parts(source):
            check_columns(rows, where, REQUIRED)
            folders = image_folders(path, source.data_dir, [source.option("images_dir")])
            yield from items_from_rows(rows, where, self._maker(where, folders, offset, names), offset, "ID")
            offset += len(rows)

    def _maker(self, where: str, folders: list[str], offset: int, names: NodeNames):
        def make(row: dict, index: int) -> Item:
            item_id = row_id(row, "ID")
            category = category_of(row, item_id)
            prompt = text(row, "Text")
            chosen, rejected = chosen_rejected(row)
            images = image_refs(row.get("Image"), "Image", folders)
            node = f"{category}/{item_id}"
            names.claim(node, f"row {offset + index}", "ID")
            return PairItem(id=item_id, subset=category, prompt=prompt, chosen=chosen, rejected=rejected, images=images,
                            source=f"{where}#{index}", order=offset + index, node=node)
        return make

    def sections(self, subsets: set[str]) -> dict[str, Section]:
        return {}

    def score(self, results: list[SuiteResult]) -> dict | None:
        if not results:
            return None
        return {"overall": accuracy(results), "categories": accuracies_by(results, lambda r: r.subset),
                "errors": error_count(results)}


MULTIMODAL_REWARDBENCH = MultimodalRewardBench()
