"""MM-RLHF-RewardBench (yifanzhang114/MM-RLHF-RewardBench, split `train`): a prompt with an image
(or a video), a chosen and a rejected answer per row; one `id` may have several rows.

Scores as the official llava/eval/cal_performance_mmreweard_bench.py computes them: `acc`,
the share of rows where the chosen answer scores higher, and `acc_plus` (ACC+), the share
of ids whose rows are all correct; both per category too. A row's category is the first of
mcq, long, short, safety, video found in its media path (`other` when none is). An id's ACC+
counts in the first category any of its rows has; the category's ACC+ divides by the ids
with a row of that category. An id with a row that errored is left out of ACC+.

Video rows are not run until items take video: they are not items, not scored and not
counted, and the report's datasets block lists them under `not_run` (part `video`).

Local files (--rm-data-dir): the dataset repository's `mm_reward_bench.jsonl` (or its
`train-*.parquet`), images by path relative to the file's folder (or an `images/` folder
there). The Hub's rows name image files that `datasets` does not download: give their
folder with --rm-suite-option images_dir=DIR, or download the repository and use --rm-data-dir.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Iterator

from ..items import Item, ItemProblem, PairItem, Section
from .base import (DataSource, NodeNames, Rows, SuiteDataError, SuiteResult, accuracy, check_columns,
                   data_files, data_patterns, error_count, items_from_rows, mean, nothing_found, row_id, text)
from .vl_base import accuracies_by, image_folders, image_refs

DATASET = "yifanzhang114/MM-RLHF-RewardBench"
SPLIT = "train"
REQUIRED = ("id", "prompt", "chosen", "rejected")
KEYWORDS = ("mcq", "long", "short", "safety", "video")
OTHER = "other"


def media_path(row: dict) -> str:
    """The path the official script reads the category from: the image's, else the video's."""
    image, video = row.get("image"), row.get("video")
    if isinstance(image, (list, tuple)):  # several images: the first one's path
        image = image[0] if image else None
    if isinstance(image, dict):
        image = image.get("path")
    return (image if isinstance(image, str) else "") or (video if isinstance(video, str) else "")


def category_of(path: str) -> str:
    return next((k for k in KEYWORDS if k in path), OTHER)


def is_video(row: dict) -> bool:
    return not row.get("image") and bool(row.get("video"))


def needs_folder(rows: Rows) -> bool:
    """Whether the rows name image files by a relative path (the Hub's rows do)."""
    return any(isinstance(r.get("image"), str) and r["image"] and not r["image"].startswith(("data:", "/"))
               for r in rows if isinstance(r, dict))


class MMRLHFRewardBench:
    name = "mm-rlhf-rewardbench"
    headline = "acc"
    datasets = (DATASET,)

    def parts(self, source: DataSource) -> list[tuple[str | None, str, Rows]]:
        if not source.data_dir:
            split = source.option("split", SPLIT)
            rows = source.hub(DATASET, split=split, part=split)
            if not source.option("images_dir") and needs_folder(rows):
                raise SuiteDataError(
                    f"dataset {DATASET!r}: its rows name image files that datasets.load_dataset does not download: run "
                    f"huggingface-cli download {DATASET} --repo-type dataset --local-dir DIR and pass --rm-data-dir DIR "
                    "(or --rm-suite-option images_dir=DIR with the images/ folder)")
            return [(None, f"{DATASET}:{split}", rows)]
        files, skipped = data_files(source, data_patterns("mm_reward_bench", SPLIT), required=REQUIRED)
        if not files:
            raise nothing_found(source, f"mm_reward_bench.jsonl or train-*.parquet (from {DATASET}), "
                                "next to its images/ folder", skipped)
        parts = [(path, path, source.read_file(path)) for path in files]
        source.check_lfs()
        return parts

    def load(self, source: DataSource) -> Iterator[Item | ItemProblem]:
        names, seen, videos = NodeNames(), defaultdict(int), []
        offset = 0
        for path, where, rows in self.parts(source):
            check_columns(rows, where, REQUIRED)
            folders = image_folders(path, source.data_dir, [source.option("images_dir")])
            make = self._maker(where, folders, offset, names, seen, videos)
            yield from items_from_rows(rows, where, make, offset)
            offset += len(rows)
        if videos:
            source.absent("video", f"{len(videos)} video row(s) not run (ids {', '.join(sorted(set(videos)))}): "
                          "items do not take video yet; they are neither scored nor counted in acc and acc_plus")

    def _maker(self, where: str, folders: list[str], offset: int, names: NodeNames, seen: dict, videos: list):
        def make(row: dict, index: int) -> Item | None:
            bench_id = row_id(row)
            if is_video(row):
                videos.append(bench_id)
                return None
            category = category_of(media_path(row))
            prompt = text(row, "prompt")
            chosen, rejected = text(row, "chosen", empty=True), text(row, "rejected", empty=True)
            images = image_refs(row.get("image"), "image", folders)
            k = seen[bench_id]
            seen[bench_id] += 1
            node = f"{category}/{bench_id}/{k}"
            names.claim(node, f"row {offset + index}")
            return PairItem(id=f"{bench_id}/{k}", subset=category, prompt=prompt, chosen=chosen, rejected=rejected,
                            images=images, source=f"{where}#{index}", order=offset + index, node=node, group=bench_id)
        return make

    def sections(self, subsets: set[str]) -> dict[str, Section]:
        return {}

    def score(self, results: list[SuiteResult]) -> dict | None:
        if not results:
            return None
        by_id: dict[str, list[SuiteResult]] = defaultdict(list)
        for r in results:
            by_id[r.group or r.id].append(r)
        complete = {i: rows for i, rows in by_id.items() if not error_count(rows)}
        all_correct = {i: all(r.credit == 1.0 for r in rows) for i, rows in complete.items()}
        categories = {}
        for category, acc in accuracies_by(results, lambda r: r.subset).items():
            having = [i for i, rows in complete.items() if any(r.subset == category for r in rows)]
            first = [i for i in having if first_category(complete[i]) == category]
            categories[category] = {"acc": acc, "acc_plus": sum(all_correct[i] for i in first) / len(having)
                                    if having else None}
        return {"acc": accuracy(results), "acc_plus": mean(float(v) for v in all_correct.values()),
                "categories": categories, "ids": len(complete), "errors": error_count(results)}


def first_category(rows: list[SuiteResult]) -> str:
    present = {r.subset for r in rows}
    return next((k for k in (*KEYWORDS, OTHER) if k in present), OTHER)


MM_RLHF_REWARDBENCH = MMRLHFRewardBench()
