"""Any preference dataset as a suite: --rm-dataset NAME_OR_PATH [--rm-columns ...].

Rows need a chosen and a rejected answer and a prompt. Each may be a plain string or a
chat-message list ({role, content}, or ShareGPT's {from, value}): a message-list answer
is its last message, which must be an assistant's; when no prompt column is mapped and
the dataset has no `prompt` column, the earlier messages of the chosen conversation are
the prompt (the rejected one must agree), as many Hub preference sets store them.
Subset defaults to "default", id to the row's position in the dataset.

The module also holds the small helpers the built-in pair suites share.
"""

from __future__ import annotations

import os
import re
from typing import Any, Callable, Iterable, Iterator

from ..items import Item, PairItem, freeze_prompt
from ..parse import ItemProblem, Section
from .base import DATA_SUFFIXES, DataSource, RowError, Rows, SuiteDataError, SuiteResult, items_from_rows, row_id

COLUMN_KEYS = ("prompt", "chosen", "rejected", "subset", "id")
DEFAULT_COLUMNS = {"prompt": "prompt", "chosen": "chosen", "rejected": "rejected"}

ROLE_NAMES = {"user": "user", "human": "user", "assistant": "assistant", "gpt": "assistant", "bot": "assistant",
              "model": "assistant", "system": "system"}


# -- helpers shared by the suites ---------------------------------------------------------
def data_patterns(*stems: str) -> tuple[str, ...]:
    """Base-name patterns for a data file named after `stem`: `stem.jsonl`, `stem-00000-of-00001.parquet`, ..."""
    return tuple(p for stem in stems for suffix in DATA_SUFFIXES for p in (f"{stem}{suffix}", f"{stem}-*{suffix}"))


def all_data_files(source: DataSource) -> list[str]:
    return source.local_files(*(f"*{suffix}" for suffix in DATA_SUFFIXES))


def relative_parts(source: DataSource, path: str) -> list[str]:
    """The path's components below --rm-data-dir."""
    return os.path.relpath(path, source.data_dir).replace("\\", "/").split("/")


def strip_data_suffix(name: str) -> str:
    lowered = name.lower()
    for suffix in sorted(DATA_SUFFIXES, key=len, reverse=True):
        if lowered.endswith(suffix):
            return name[: -len(suffix)]
    return name


def nothing_found(source: DataSource, suite: str, expected: str) -> SuiteDataError:
    return SuiteDataError(
        f"{suite}: no data file for this suite under --rm-data-dir {source.data_dir!r}; expected {expected} "
        f"(parquet, JSON or JSONL, optionally gzipped)"
    )


def clean_name(value: Any, field: str) -> str:
    """A subset name as it may appear in a node id."""
    if value is None:
        raise RowError(field, "missing")
    if not isinstance(value, str):
        raise RowError(field, f"must be a string, got {type(value).__name__}")
    value = value.strip()
    if not value:
        raise RowError(field, "is empty")
    if "::" in value or "\n" in value or "\r" in value:
        raise RowError(field, "must not contain '::' or a newline")
    return value


def answer(row: dict, name: str) -> str:
    """A response column: must be a string. Empty answers are kept, as the official scripts
    score them too (an empty string is a valid, if bad, response)."""
    value = row.get(name)
    if value is None:
        raise RowError(name, "missing")
    if not isinstance(value, str):
        raise RowError(name, f"must be a string, got {type(value).__name__}")
    return value


def prompt_text(row: dict, name: str) -> str:
    value = row.get(name)
    if value is None:
        raise RowError(name, "missing")
    if not isinstance(value, str):
        raise RowError(name, f"must be a string, got {type(value).__name__}")
    if not value.strip():
        raise RowError(name, "is empty")
    return value


class NodeNames:
    """Node names must be unique within a suite: the first row keeps a name, a later one
    is an error (or gets a suffix, for datasets whose id column is not unique)."""

    def __init__(self):
        self.first: dict[str, int] = {}

    def claim(self, node: str, index: int, what: str = "id") -> None:
        if node in self.first:
            raise RowError(what, f"duplicate: {node!r} is already used by row {self.first[node]}")
        self.first[node] = index

    def unique(self, node: str, index: int) -> str:
        if node not in self.first:
            self.first[node] = index
            return node
        candidate = f"{node}-row{index}"
        self.first[candidate] = index
        return candidate


def safe_id(value: str) -> str:
    """An id assembled from free text (model names ...): no '::', no whitespace runs, no '/'."""
    return re.sub(r"\s+", "_", value.replace("::", ":").replace("/", "_")).strip("_") or "_"


def items_of(rows: Iterable[dict], where: str, make: Callable[[dict, int], Item | None],
             offset: int = 0, id_column: str | None = "id") -> Iterator[Item | ItemProblem]:
    """`items_from_rows` for one part of a suite with several parts: the row number in a
    message counts within the part; the problem's index counts within the suite, so error
    tests of different parts get different names. A problem names the row's `id_column`
    (None: the suite numbers its items itself, so a problem names no id)."""
    last: dict = {}

    def feed():
        for row in rows:
            last["row"] = row
            yield row

    for entry in items_from_rows(feed(), where, make):
        if isinstance(entry, ItemProblem):
            found = entry.id
            if id_column != "id":
                row = last.get("row")
                value = row.get(id_column) if isinstance(row, dict) and id_column else None
                found = None if value is None else str(value)
            if offset or found != entry.id:
                entry = ItemProblem(entry.index + offset, entry.line, entry.field, entry.message, found,
                                    entry.subset, entry.path)
        yield entry


def graded(results: Iterable[SuiteResult]) -> list[SuiteResult]:
    return [r for r in results if r.outcome != "error" and r.credit is not None]


def error_count(results: Iterable[SuiteResult]) -> int:
    return sum(1 for r in results if r.outcome == "error" or r.credit is None)


def accuracy(results: Iterable[SuiteResult]) -> float | None:
    """Mean credit over the items that did not error; None when there are none."""
    done = graded(results)
    return sum(r.credit for r in done) / len(done) if done else None


def subset_accuracies(results: Iterable[SuiteResult]) -> dict[str, float]:
    by_subset: dict[str, list[SuiteResult]] = {}
    for r in graded(results):
        by_subset.setdefault(r.subset, []).append(r)
    return {name: sum(r.credit for r in found) / len(found) for name, found in sorted(by_subset.items())}


def mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def pair_score(results: list[SuiteResult]) -> dict | None:
    """{"overall": accuracy over every pair, "subsets": {...}, "errors": n}."""
    if not results:
        return None
    return {"overall": accuracy(results), "subsets": subset_accuracies(results), "errors": error_count(results)}


# -- chat messages ------------------------------------------------------------------------
def to_messages(value: Any, field: str) -> list[dict]:
    """A list of chat messages with roles user / assistant / system (ShareGPT's from/value
    and human/gpt are read too)."""
    if isinstance(value, tuple):
        value = list(value)
    if not isinstance(value, list) or not value:
        raise RowError(field, f"must be a non-empty list of chat messages, got {type(value).__name__}")
    messages = []
    for i, message in enumerate(value):
        if isinstance(message, (list, tuple)) and len(message) == 2:
            role, content = message
        elif isinstance(message, dict):
            role = message.get("role", message.get("from"))
            content = message.get("content", message.get("value"))
        else:
            raise RowError(field, f"message {i} must be a mapping with 'role' and 'content'")
        role = ROLE_NAMES.get(role.lower()) if isinstance(role, str) else None
        if role is None:
            raise RowError(field, f"message {i} has no known role (user, assistant or system)")
        if not isinstance(content, str):
            raise RowError(field, f"message {i} content must be a string")
        messages.append({"role": role, "content": content})
    return messages


def chat_prompt(messages: list[dict], field: str):
    """Messages as an item prompt: they must end with the user's turn."""
    if not messages:
        raise RowError(field, "no messages before the answer")
    if messages[-1]["role"] != "user":
        raise RowError(field, "the prompt's messages must end with a user message")
    if len(messages) == 1:
        return messages[0]["content"]  # one user turn: the same prompt as the plain string
    return freeze_prompt(messages)


def prompt_value(value: Any, field: str):
    if value is None:
        raise RowError(field, "missing")
    if isinstance(value, str):
        if not value.strip():
            raise RowError(field, "is empty")
        return value
    return chat_prompt(to_messages(value, field), field)


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
            return [(p, source.read_file(p, part=os.path.relpath(p, path))) for p in self._files(path)]
        return [(path, source.read_file(path))]

    def load(self, source: DataSource) -> Iterator[Item | ItemProblem]:
        parts = self._parts(source)
        offset = 0
        names = NodeNames()
        for where, rows in parts:
            prompt_column = self._check(rows, where)
            yield from items_of(rows, where, self._maker(where, offset, prompt_column, names), offset,
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
            subset = clean_name(row.get(cols["subset"]), cols["subset"]) if "subset" in cols else "default"
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
            names.claim(node, position, cols.get("id", "id"))
            return PairItem(id=item_id, subset=subset, prompt=prompt, chosen=chosen, rejected=rejected,
                            source=f"{where}#{index}", order=position, node=node)

        return make

    def sections(self, subsets: set[str]) -> dict[str, Section]:
        return {}

    def score(self, results: list[SuiteResult]) -> dict | None:
        return pair_score(results)
