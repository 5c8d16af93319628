"""Any preference dataset as a suite: --rm-dataset NAME_OR_PATH [--rm-columns ...].

Rows need a chosen and a rejected answer and a prompt. Each may be a plain string or a
chat-message list ({role, content}, or ShareGPT's {from, value}): a message-list answer
is its last message, which must be an assistant's; when no prompt column is mapped and
the dataset has no `prompt` column, the earlier messages of the chosen conversation are
the prompt (the rejected one must agree), as many Hub preference sets store them.
Subset defaults to "default", id to the row's position in the dataset.
"""

from __future__ import annotations

import os
from typing import Any, Iterator

from ..items import Item, ItemProblem, PairItem, Section
from .base import (DATA_SUFFIXES, DataSource, NodeNames, RowError, Rows, SuiteDataError, SuiteResult, chat_prompt,
                   clean_name, items_from_rows, pair_score, prompt_value, row_id, strip_data_suffix, to_messages)

COLUMN_KEYS = ("prompt", "chosen", "rejected", "subset", "id")
DEFAULT_COLUMNS = {"prompt": "prompt", "chosen": "chosen", "rejected": "rejected"}


# -- answers ------------------------------------------------------------------------------
def answer_value(value: Any, field: str) -> tuple[str, list[dict] | None]:
    """(the answer, the messages before it) for a string or a conversation."""
    if value is None:
        raise RowError(field, "missing")
    if isinstance(value, str):
        return value, None
    messages = to_messages(value, field)
    if messages[-1]["role"] != "assistant":
        raise RowError(field, "the conversation must end with the assistant's answer")
    return messages[-1]["content"], messages[:-1]


# -- --rm-columns ---------------------------------------------------------------------------
def parse_columns(text: str) -> dict[str, str]:
    """`prompt=question,chosen=good,rejected=bad,subset=category,id=uid` -> {key: column}."""
    mapping: dict[str, str] = {}
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, column = part.partition("=")
        key, column = key.strip(), column.strip()
        if not sep or not key or not column:
            raise ValueError(f"expected KEY=COLUMN, got {part!r} (keys: {', '.join(COLUMN_KEYS)})")
        if key not in COLUMN_KEYS:
            raise ValueError(f"unknown key {key!r} in {part!r}; the keys are {', '.join(COLUMN_KEYS)}")
        if key in mapping:
            raise ValueError(f"key {key!r} is given twice")
        mapping[key] = column
    return mapping


def suite_name_for(target: str) -> str:
    """The suite's name: the dataset's name for a Hub id (`org/name` -> `name`), the base
    name without its data suffix for a local file or folder."""
    if looks_local(target):
        base = os.path.basename(os.path.normpath(os.path.expanduser(target)))
        return strip_data_suffix(base) or base
    return target.rstrip("/").rsplit("/", 1)[-1]


def looks_local(target: str) -> bool:
    return (os.path.exists(os.path.expanduser(target)) or target.startswith((".", "/", "~", "\\"))
            or target.lower().endswith(DATA_SUFFIXES) or os.path.isabs(target))


class DatasetSuite:
    """A preference dataset from the Hub or from local files, mapped by --rm-columns."""

    headline = "overall"

    def __init__(self, name: str, target: str, columns: dict[str, str] | None = None,
                 split: str | None = None, config: str | None = None):
        self.name, self.target, self.split, self.config = name, target, split, config
        self.explicit = dict(columns or {})
        self.columns = {**DEFAULT_COLUMNS, **self.explicit}
        self.datasets = (target,)

    @classmethod
    def for_target(cls, target: str, columns: dict[str, str] | None = None,
                   split: str | None = None, config: str | None = None) -> "DatasetSuite":
        return cls(suite_name_for(target), target, columns, split=split, config=config)

    def expected(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.columns.items())

    # -- reading ---------------------------------------------------------------------------
    def _local_path(self, source: DataSource) -> str | None:
        path = os.path.expanduser(self.target)
        if os.path.exists(path):
            return path
        if source.data_dir and not os.path.isabs(path) and os.path.exists(os.path.join(source.data_dir, path)):
            return os.path.join(source.data_dir, path)
        if looks_local(self.target):
            raise SuiteDataError(f"{self.name}: no such file or folder: {self.target!r}")
        return None

    def _files(self, folder: str) -> list[str]:
        found = []
        for root, _, names in os.walk(folder):
            for name in names:
                if name.lower().endswith(DATA_SUFFIXES):
                    found.append(os.path.join(root, name))
        found.sort()
        if self.split:
            # a Hub snapshot keeps splits as `test-0000.parquet`, `test.jsonl` or a `test/` folder
            wanted = [p for p in found if strip_data_suffix(os.path.basename(p)).split("-")[0] == self.split
                      or self.split in os.path.relpath(p, folder).replace("\\", "/").split("/")[:-1]]
            if not wanted:
                raise SuiteDataError(f"{self.name}: no data file of split {self.split!r} in {folder!r} "
                                     f"(found {', '.join(os.path.relpath(p, folder) for p in found) or 'none'})")
            found = wanted
        if not found:
            raise SuiteDataError(f"{self.name}: no data files ({', '.join(DATA_SUFFIXES)}) in {folder!r}")
        return found

    def _parts(self, source: DataSource) -> list[tuple[str, Rows]]:
        path = self._local_path(source)
        if path is None:
            return [(self.target, source.hub(self.target, self.config, self.split, part=self.split))]
        if os.path.isdir(path):
            parts = [(p, source.read_file(p, part=os.path.relpath(p, path))) for p in self._files(path)]
        else:
            parts = [(path, source.read_file(path))]
        source.check_lfs()
        return parts

    def load(self, source: DataSource) -> Iterator[Item | ItemProblem]:
        parts = self._parts(source)
        offset = 0
        names = NodeNames()
        for where, rows in parts:
            prompt_column = self._check(rows, where)
            yield from items_from_rows(rows, where, self._maker(where, offset, prompt_column, names), offset,
                                       self.columns.get("id"))
            offset += len(rows)

    def _check(self, rows: Rows, where: str) -> str | None:
        """The prompt column to read, or None when prompts come from the conversations."""
        if not len(rows):
            return None
        required = [self.columns[k] for k in ("chosen", "rejected")]
        required += [self.columns[k] for k in ("prompt", "subset", "id") if k in self.explicit]
        missing = [c for c in required if c not in rows.columns]
        prompt_column = self.columns["prompt"] if self.columns["prompt"] in rows.columns else None
        if not missing and prompt_column is None:
            first = next(iter(rows))
            if isinstance(first, dict) and isinstance(first.get(self.columns["chosen"]), str):
                missing = [self.columns["prompt"]]
        if missing:
            raise SuiteDataError(
                f"{self.name}: {where}: column(s) {', '.join(map(repr, missing))} not found; the dataset has "
                f"{', '.join(map(repr, rows.columns)) or 'no columns'}; expected columns {self.expected()} "
                "(map them with --rm-columns prompt=COL,chosen=COL,rejected=COL[,subset=COL][,id=COL]; a prompt "
                "column may be left out when chosen/rejected are chat conversations)"
            )
        return prompt_column

    def _maker(self, where: str, offset: int, prompt_column: str | None, names: NodeNames):
        cols = self.columns

        def make(row: dict, index: int) -> Item:
            position = offset + index
            item_id = row_id(row, cols["id"]) if "id" in cols else str(position)
            subset = clean_name(row, cols["subset"]) if "subset" in cols else "default"
            chosen, chosen_before = answer_value(row.get(cols["chosen"]), cols["chosen"])
            rejected, rejected_before = answer_value(row.get(cols["rejected"]), cols["rejected"])
            if prompt_column is not None:
                prompt = prompt_value(row.get(prompt_column), prompt_column)
            else:
                if chosen_before is None:
                    raise RowError(cols["chosen"], "no prompt column, and the answer is not a conversation")
                if rejected_before is not None and rejected_before != chosen_before:
                    raise RowError(cols["rejected"], "the chosen and rejected conversations differ before the final answer")
                prompt = chat_prompt(chosen_before, cols["chosen"])
            node = f"{subset}/{item_id}"
            names.claim(node, f"row {position}", cols.get("id", "id"))
            return PairItem(id=item_id, subset=subset, prompt=prompt, chosen=chosen, rejected=rejected,
                            source=f"{where}#{index}", order=position, node=node)

        return make

    def sections(self, subsets: set[str]) -> dict[str, Section]:
        return {}

    def score(self, results: list[SuiteResult]) -> dict | None:
        return pair_score(results)
