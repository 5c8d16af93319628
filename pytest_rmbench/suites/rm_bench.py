"""RM-Bench (GitHub THU-KEG/RM-Bench; HF `THU-KEG/RM-Bench`, split `train`, which is its
total_dataset.json).

Each prompt has three chosen and three rejected answers in three styles (concise,
detailed plain, detailed markdown): one style-matrix item per prompt. Per domain,
hard / normal / easy are the means of the matrix's upper triangle / diagonal / lower
triangle over its items (RM-Bench's compute_accuracy averages the matrix over items
first, which gives the same numbers); the domain score is their mean and the overall
score the mean of the domain scores.

Domains: chat, code, math and safety, where safety pools the safety-refuse and
safety-response rows item by item (the official split_dataset_by_domain keeps rows whose
domain starts with "safety"). Ids are unique only within a file, so node names carry the
file's part: `chat/12`, `safety-refuse/3`, `safety-response/3`; the item's subset is the
pooled domain.

Local copies (--rm-data-dir): the repository's data/ files, chat_filtered.json,
code_filtered.json, math_filtered.json, safety-refuse_filtered.json and
safety-response_filtered.json (domain from the file name), or total_dataset.json (a
`domain` field per row). When total_dataset.json is there it is used alone: the
per-domain files hold the same rows.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from typing import Iterator

from ..items import ERROR, Item, ItemProblem, Section, StyleMatrixItem
from ..items.lfs import is_pointer
from .base import (DataSource, NodeNames, RowError, SuiteResult, check_columns, data_files, items_from_rows, mean,
                   nothing_found, row_id, text, texts)

DATASET = "THU-KEG/RM-Bench"
HUB_SPLIT = "train"
TOTAL_FILE = "total_dataset.json"
PART_FILES = {
    "chat": "chat_filtered.json",
    "code": "code_filtered.json",
    "math": "math_filtered.json",
    "safety-refuse": "safety-refuse_filtered.json",
    "safety-response": "safety-response_filtered.json",
}
DOMAINS = ("chat", "code", "math", "safety")
COLUMNS = ("id", "prompt", "chosen", "rejected")
STYLES = 3


def domain_of(part: str) -> str:
    return "safety" if part.startswith("safety") else part


class RMBench:
    name = "rmbench"
    headline = "overall"
    datasets = (DATASET,)

    def _parts(self, source: DataSource) -> list[tuple[str, object, str | None]]:
        """(where, rows, part) per file; part None: the rows carry their own `domain`."""
        if not source.data_dir:
            return [(DATASET, source.hub(DATASET, None, HUB_SPLIT, part="total_dataset"), None)]
        totals, _ = data_files(source, [TOTAL_FILE])
        if totals and is_pointer(totals[0]) and not all(map(is_pointer, data_files(source, PART_FILES.values())[0])):
            totals = []  # a Git LFS pointer in place of the whole set, but the parts are here: read them
        if totals:
            parts = [(TOTAL_FILE, source.read_file(totals[0], part="total_dataset"), None)]
            source.check_lfs()
            return parts
        found, _ = data_files(source, PART_FILES.values())
        by_name = {os.path.basename(p): p for p in found}
        parts = []
        for part, name in PART_FILES.items():
            if name in by_name:
                parts.append((name, source.read_file(by_name[name], part=part), part))
        if not parts:
            raise nothing_found(source, f"RM-Bench's {TOTAL_FILE} or {', '.join(PART_FILES.values())} "
                                        "(the data/ folder of github.com/THU-KEG/RM-Bench)")
        source.check_lfs()
        return parts

    def load(self, source: DataSource) -> Iterator[Item | ItemProblem]:
        nodes = NodeNames()
        seen_parts: Counter = Counter()
        parts = self._parts(source)
        offset = 0
        for where, rows, part in parts:
            check_columns(rows, where, COLUMNS + (("domain",) if part is None else ()))

            def make(row: dict, index: int, where=where, offset=offset, part=part) -> Item:
                item = self._item(row, where, index, offset + index, part, nodes)
                seen_parts[item.node.split("/", 1)[0]] += 1
                return item

            yield from items_from_rows(rows, where, make, offset)
            offset += len(rows)
        self._note_absent(source, parts, seen_parts)

    @staticmethod
    def _item(row: dict, where: str, index: int, order: int, part: str | None, nodes: NodeNames) -> Item:
        item_id = row_id(row)
        if part is None:
            part = row.get("domain")
            if part not in PART_FILES:
                raise RowError("domain", f"must be one of {', '.join(PART_FILES)}, got {part!r}")
        prompt = text(row, "prompt")
        chosen, rejected = texts(row, "chosen", STYLES), texts(row, "rejected", STYLES)
        node = f"{part}/{item_id}"
        source = f"{where}#{index}"
        nodes.claim(node, source)
        return StyleMatrixItem(id=node, subset=domain_of(part), prompt=prompt, chosen=chosen, rejected=rejected,
                               source=source, order=order, node=node)

    @staticmethod
    def _note_absent(source: DataSource, parts: list, seen_parts: Counter) -> None:
        read = {part for _, _, part in parts}
        noted = {entry["part"] for entry in source.not_run}  # a Git LFS pointer in place of its file
        for part, name in PART_FILES.items():
            if seen_parts[part] or part in noted:
                continue
            if None in read:  # rows carry their domain
                where = parts[0][0]
                reason = f"no usable rows with domain {part!r} in {where}"
            elif part in read:
                reason = f"{name} has no usable rows"
            else:
                reason = f"{name} not found under {source.data_dir}"
            if part.startswith("safety"):
                reason += "; the safety domain pools what the other safety part has"
            source.absent(part, reason)

    def sections(self, subsets: set[str]) -> dict[str, Section]:
        # domain scores are means of three triangle accuracies, not item accuracies: score() has them
        return {}

    def score(self, results: list[SuiteResult]) -> dict | None:
        if not results:
            return None
        by_domain: dict[str, list[dict]] = defaultdict(list)
        for result in results:
            if result.outcome != ERROR and result.details:
                by_domain[result.subset].append(result.details)
        ordered = [d for d in DOMAINS if d in by_domain] + sorted(d for d in by_domain if d not in DOMAINS)
        domains = {}
        for name in ordered:
            parts = {level: mean(d[level] for d in by_domain[name]) for level in ("hard", "normal", "easy")}
            domains[name] = {**parts, "score": mean(parts.values())}
        summary = {level: mean(d[level] for d in domains.values()) for level in ("hard", "normal", "easy")}
        return {"overall": mean(d["score"] for d in domains.values()), **summary, "domains": domains,
                "errors": sum(r.outcome == ERROR for r in results)}


RMBENCH = RMBench()
