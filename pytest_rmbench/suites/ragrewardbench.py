"""RAG-RewardBench (jinzhuoran/RAG-RewardBench): preference pairs in retrieval-augmented
generation, six subsets: reason, citation, abstain, conflict, helpful, harmless.

No official scoring script states the field names; loaders in the wild read `question`,
`prompt` (the retrieved references), `chosen` and `reject` (not `rejected`), with `id`,
`subset`, `chosen_model`, `reject_model`. This loader checks for them and accepts
`rejected` for `reject` and `references` for `prompt`; what it used is written into the
dataset record ("fields").

The prompt scored with each answer:
- references (a string, or a list of strings numbered [1], [2], ...) and a question:
  "{references}\n\nQuestion: {question}", unless the references text already contains
  the question verbatim, in which case it is used as it is (no duplicated question);
- only a question, or only references: that text.

Subsets: on the Hub the six files are one `train` split, so the subset comes from the
`subset` column, taken as it is (whether it holds the six names is not confirmed); locally
(--rm-data-dir) it is the file name (`Dataset/reason.jsonl`, ...), which is certain.
Score: accuracy over all pairs ("overall", the headline), per subset, and the unweighted
mean of the subsets ("mean_subsets").
"""

from __future__ import annotations

from typing import Any, Iterator

from ..items import Item, ItemProblem, PairItem, Section
from .base import (DataSource, NodeNames, RowError, Rows, SuiteDataError, SuiteResult, accuracy, clean_name,
                   data_files, data_patterns, error_count, items_from_rows, mean, nothing_found, row_id, subset_accuracies, text)

DATASET = "jinzhuoran/RAG-RewardBench"
SPLIT = "train"
SUBSETS = ("reason", "citation", "abstain", "conflict", "helpful", "harmless")
REJECTED_COLUMNS = ("reject", "rejected")
REFERENCE_COLUMNS = ("prompt", "references")


def references_text(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, (list, tuple)):
        docs = []
        for i, doc in enumerate(value):
            if isinstance(doc, dict):  # {"title": ..., "text": ...} as retrievers emit
                doc = "\n".join(str(doc[k]) for k in ("title", "text", "content") if doc.get(k))
            if not isinstance(doc, str):
                raise RowError(field, f"reference {i} must be a string")
            docs.append(f"[{i + 1}] {doc.strip()}")
        return "\n\n".join(docs) if docs else None
    raise RowError(field, f"must be a string or a list of references, got {type(value).__name__}")


def build_prompt(question: str | None, references: str | None) -> str:
    if question and references:
        if question.strip() in references:
            return references
        return f"{references.rstrip()}\n\nQuestion: {question.strip()}"
    return question or references


class Fields:
    """Which columns of this copy hold what."""

    def __init__(self, rows: Rows, where: str):
        columns = rows.columns
        self.question = "question" if "question" in columns else None
        self.references = next((c for c in REFERENCE_COLUMNS if c in columns), None)
        self.rejected = next((c for c in REJECTED_COLUMNS if c in columns), None)
        missing = []
        if "chosen" not in columns:
            missing.append("'chosen'")
        if self.rejected is None:
            missing.append("'reject' (or 'rejected')")
        if self.question is None and self.references is None:
            missing.append("'question' and/or 'prompt' (the references)")
        if missing and len(rows):
            raise SuiteDataError(
                f"{where}: column(s) {', '.join(missing)} not found; the dataset has "
                f"{', '.join(map(repr, columns)) or 'no columns'}; expected RAG-RewardBench's 'question', 'prompt' "
                "(references), 'chosen', 'reject', and 'id', 'subset'"
            )

    def record(self) -> dict:
        return {"question": self.question, "references": self.references, "chosen": "chosen",
                "rejected": self.rejected}


class RagRewardBench:
    name = "rag-rewardbench"
    headline = "overall"
    datasets = (DATASET,)

    def parts(self, source: DataSource) -> list[tuple[str | None, str, Rows, Fields]]:
        """(subset from the file name, or None: read the column; where; rows; fields)."""
        if not source.data_dir:
            return [(None, DATASET, *self._read(source, DATASET, lambda: source.hub(DATASET, split=SPLIT, part=SPLIT)))]
        # one file per subset name: two copies of reason.jsonl would score every pair twice
        paths = {subset: data_files(source, data_patterns(subset))[0] for subset in SUBSETS}
        if not any(paths.values()):
            raise nothing_found(source, ", ".join(f"{s}.jsonl" for s in SUBSETS) + f" (from {DATASET}'s Dataset/ folder)")
        found = []
        for subset in SUBSETS:
            if not paths[subset]:
                source.absent(subset, f"no {subset}.jsonl under {source.data_dir}")
            for path in paths[subset]:
                found.append((subset, path, *self._read(source, path, lambda: source.read_file(path, part=subset))))
        source.check_lfs()
        return found

    @staticmethod
    def _read(source: DataSource, where: str, read) -> tuple[Rows, Fields]:
        read_before = len(source.used)
        rows = read()
        fields = Fields(rows, where)
        if len(source.used) > read_before:  # the field names are not confirmed: say which were read
            source.used[-1]["fields"] = fields.record()
        return rows, fields

    def load(self, source: DataSource) -> Iterator[Item | ItemProblem]:
        names = NodeNames()
        offset = 0
        for subset, where, rows, fields in self.parts(source):
            if subset is None and "subset" not in rows.columns and len(rows):
                raise SuiteDataError(f"{where}: no 'subset' column (the dataset has {', '.join(map(repr, rows.columns))}), "
                                     "so the six subsets cannot be told apart; download the six files of the dataset's "
                                     "Dataset/ folder and pass --rm-data-dir")
            yield from items_from_rows(rows, where, self._maker(subset, fields, where, offset, names), offset)
            offset += len(rows)

    def _maker(self, file_subset: str | None, fields: Fields, where: str, offset: int, names: NodeNames):
        def make(row: dict, index: int) -> Item:
            item_id = row_id(row, fallback=index)
            subset = file_subset or clean_name(row, "subset")
            question = row.get(fields.question) if fields.question else None
            if question is not None and not isinstance(question, str):
                raise RowError(fields.question, f"must be a string, got {type(question).__name__}")
            references = references_text(row.get(fields.references), fields.references) if fields.references else None
            prompt = build_prompt(question if question and question.strip() else None, references)
            if not prompt:
                raise RowError(fields.question or fields.references, "no question and no references")
            chosen, rejected = text(row, "chosen", empty=True), text(row, fields.rejected, empty=True)
            # ids are not known to be unique within a subset: a repeated one gets a suffix
            node = names.unique(f"{subset}/{item_id}", offset + index)
            item_id = node[len(subset) + 1:]
            return PairItem(id=item_id, subset=subset, prompt=prompt, chosen=chosen, rejected=rejected,
                            source=f"{where}#{index}", order=offset + index, node=node)
        return make

    def sections(self, subsets: set[str]) -> dict[str, Section]:
        return {}

    def score(self, results: list[SuiteResult]) -> dict | None:
        if not results:
            return None
        subsets = subset_accuracies(results)
        return {"overall": accuracy(results), "subsets": subsets, "mean_subsets": mean(subsets.values()),
                "errors": error_count(results)}


RAG_REWARDBENCH = RagRewardBench()
