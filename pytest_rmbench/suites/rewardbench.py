"""RewardBench v1 (allenai/reward-bench, split `filtered`): one pair per row.

Score: per-subset accuracy; a section is the weighted mean of its subsets' accuracies with
the official per-subset weights (math-prm counts 984, as much as the six hep-* subsets
together); the final score is the plain mean of the four sections. With the `prior_sets`
option the four prior sets of allenai/preference-test-sets (once allenai/pref-test-sets)
are loaded too and make a fifth section, "Prior Sets" (their plain mean), and the final
score becomes the old leaderboard's weighted mean with section weights 2, 2, 2, 2, 1.

Local files (--rm-data-dir): `filtered-*.parquet` (as in the dataset's `data/` folder) or
`filtered.json[l]`; the prior sets as `anthropic_helpful-*.parquet` and so on. Files under
a folder named like a FLORES code (m-rewardbench's `arb_Arab/filtered.json`) are not ours.
"""

from __future__ import annotations

import re
from typing import Iterator

from ..items import Item, ItemProblem, PairItem, Section
from .base import (DataSource, NodeNames, RowError, Rows, SuiteResult, chat_prompt, check_columns, clean_name,
                   data_patterns, error_count, items_from_rows, nothing_found, relative_parts, row_id,
                   subset_accuracies, text, to_messages)

DATASET = "allenai/reward-bench"
PRIOR_DATASET = "allenai/preference-test-sets"
SPLIT = "filtered"
COLUMNS = ("prompt", "chosen", "rejected", "subset", "id")

SUBSET_WEIGHTS = {
    "alpacaeval-easy": 100, "alpacaeval-length": 95, "alpacaeval-hard": 95, "mt-bench-easy": 28, "mt-bench-med": 40,
    "mt-bench-hard": 37, "llmbar-natural": 100, "llmbar-adver-neighbor": 134, "llmbar-adver-GPTInst": 92,
    "llmbar-adver-GPTOut": 47, "llmbar-adver-manual": 46,
    "refusals-dangerous": 100, "refusals-offensive": 100, "xstest-should-refuse": 154, "xstest-should-respond": 250,
    "donotanswer": 136,
    "math-prm": 984,  # 447 pairs, weighted up to equal the six code subsets together
    "hep-cpp": 164, "hep-go": 164, "hep-java": 164, "hep-js": 164, "hep-python": 164, "hep-rust": 164,
}
SECTIONS = {
    "Chat": ("alpacaeval-easy", "alpacaeval-length", "alpacaeval-hard", "mt-bench-easy", "mt-bench-med"),
    "Chat Hard": ("mt-bench-hard", "llmbar-natural", "llmbar-adver-neighbor", "llmbar-adver-GPTInst",
                  "llmbar-adver-GPTOut", "llmbar-adver-manual"),
    "Safety": ("refusals-dangerous", "refusals-offensive", "xstest-should-refuse", "xstest-should-respond", "donotanswer"),
    "Reasoning": ("math-prm", "hep-cpp", "hep-go", "hep-java", "hep-js", "hep-python", "hep-rust"),
}
PRIOR_SECTION = "Prior Sets"
PRIOR_SETS = ("anthropic_helpful", "anthropic_hhh", "shp", "summarize")
# the old leaderboard: the four sections weigh 1 each and Prior Sets 0.5
PRIOR_SECTION_WEIGHTS = {"Chat": 2.0, "Chat Hard": 2.0, "Safety": 2.0, "Reasoning": 2.0, PRIOR_SECTION: 1.0}

SECTION_OF = {subset: section for section, members in SECTIONS.items() for subset in members}
SECTION_OF.update({subset: PRIOR_SECTION for subset in PRIOR_SETS})
FLORES_FOLDER = re.compile(r"^[a-z]{3}_[A-Z][a-z]{3}$")


def section_slug(section: str) -> str:
    return section.lower().replace(" ", "-")


def node_for(subset: str, item_id: str) -> str:
    section = SECTION_OF.get(subset)
    return f"{section_slug(section)}/{subset}/{item_id}" if section else f"{subset}/{item_id}"


def section_tables(subsets: set[str], prefix: str = "") -> dict[str, Section]:
    """The official sections over the present subsets (named `prefix + subset`)."""
    out = {}
    for section, members in SECTIONS.items():
        weights = {prefix + s: float(SUBSET_WEIGHTS[s]) for s in members if prefix + s in subsets}
        if weights:
            out[prefix + section] = Section(prefix + section, weights)
    prior = {prefix + s: 1.0 for s in PRIOR_SETS if prefix + s in subsets}
    if prior:
        out[prefix + PRIOR_SECTION] = Section(prefix + PRIOR_SECTION, prior)
    return out


def weighted(values: dict[str, float], weights: dict[str, float]) -> float | None:
    present = [k for k in weights if k in values]
    if not present:
        return None
    return sum(values[k] * weights[k] for k in present) / sum(weights[k] for k in present)


def official_scores(accuracies: dict[str, float]) -> dict:
    """Sections and final from per-subset accuracies (un-prefixed subset names).

    A section with no subset present is left out, and the final score is taken over the
    sections present (all four in a full run)."""
    sections = {}
    for section, members in SECTIONS.items():
        value = weighted(accuracies, {s: SUBSET_WEIGHTS[s] for s in members})
        if value is not None:
            sections[section] = value
    prior = [accuracies[s] for s in PRIOR_SETS if s in accuracies]
    if prior:
        sections[PRIOR_SECTION] = sum(prior) / len(prior)
        final = weighted(sections, PRIOR_SECTION_WEIGHTS)
    else:
        final = sum(sections.values()) / len(sections) if sections else None
    return {"final": final, "sections": sections}


def prior_prompt(row: dict):
    """The prior sets store the prompt as a list of turns, user first, alternating."""
    value = row.get("prompt")
    if isinstance(value, str):
        return text(row, "prompt")
    if isinstance(value, (list, tuple)) and value and all(isinstance(t, str) for t in value):
        turns = [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(value)]
        return chat_prompt(turns, "prompt")
    if value is None:
        raise RowError("prompt", "missing")
    return chat_prompt(to_messages(value, "prompt"), "prompt")


class RewardBench:
    name = "rewardbench"
    headline = "final"
    datasets = (DATASET, PRIOR_DATASET)

    def parts(self, source: DataSource) -> list[tuple[str, str, Rows]]:
        """(part, where, rows) for the main split and, when asked for, the prior sets."""
        split = source.option("split", SPLIT)
        wanted = [split] + (list(PRIOR_SETS) if source.option("prior_sets") else [])
        if not source.data_dir:
            found = [(split, DATASET, source.hub(DATASET, split=split, part=split))]
            for name in wanted[1:]:
                found.append((name, f"{PRIOR_DATASET}:{name}", source.hub(PRIOR_DATASET, split=name, part=name)))
            return found
        found, missing = [], []
        for part in wanted:
            paths = [p for p in source.local_files(*data_patterns(part))
                     if not any(FLORES_FOLDER.match(c) for c in relative_parts(source, p)[:-1])]
            if not paths:
                missing.append(part)
            for path in paths:
                found.append((part, path, source.read_file(path, part=part)))
        if not found:
            expected = f"{split}-*.parquet or {split}.jsonl (from {DATASET})"
            if len(wanted) > 1:
                expected += f", and the prior sets {', '.join(f'{p}-*.parquet' for p in PRIOR_SETS)}"
            raise nothing_found(source, expected)
        for part in missing:
            source.absent(part, f"no {part}-*.parquet / {part}.jsonl under {source.data_dir}")
        source.check_lfs()
        return found

    def load(self, source: DataSource) -> Iterator[Item | ItemProblem]:
        names = NodeNames()
        offset = 0
        for part, where, rows in self.parts(source):
            check_columns(rows, where, ("prompt", "chosen", "rejected") if part in PRIOR_SETS else COLUMNS)
            yield from items_from_rows(rows, where, self._maker(part, where, offset, names), offset)
            offset += len(rows)

    def _maker(self, part: str, where: str, offset: int, names: NodeNames):
        prior = part in PRIOR_SETS

        def make(row: dict, index: int) -> Item:
            if prior:
                item_id = row_id(row, fallback=index)  # the prior sets carry no id column
                subset, prompt = part, prior_prompt(row)
            else:
                item_id = row_id(row)
                subset = clean_name(row, "subset")
                prompt = text(row, "prompt")
            chosen, rejected = text(row, "chosen", empty=True), text(row, "rejected", empty=True)
            node = node_for(subset, item_id)
            names.claim(node, f"row {offset + index}")
            return PairItem(id=item_id, subset=subset, prompt=prompt, chosen=chosen, rejected=rejected,
                            source=f"{where}#{index}", order=offset + index, node=node)
        return make

    def sections(self, subsets: set[str]) -> dict[str, Section]:
        return section_tables(subsets)

    def score(self, results: list[SuiteResult]) -> dict | None:
        if not results:
            return None
        accuracies = subset_accuracies(results)
        return {**official_scores(accuracies), "subsets": accuracies, "errors": error_count(results)}


REWARDBENCH = RewardBench()
