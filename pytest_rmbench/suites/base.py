"""What a benchmark suite is, and where its rows come from.

A suite turns the rows of a published dataset into items (one per official unit) and
turns the item results back into the benchmark's official scores. It never touches
pytest or torch: the plugin collects its items as tests and hands it plain results.

Rows come from a `DataSource`: the Hugging Face `datasets` cache (honouring
HF_HUB_OFFLINE), or files under --rm-data-dir named as the benchmark's own repository
names them. Every dataset read is recorded for the report's "datasets" block.
"""

from __future__ import annotations

import fnmatch
import gzip
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Protocol

from ..items import Item
from ..parse import ItemProblem, Section

DATA_SUFFIXES = (".parquet", ".jsonl", ".jsonl.gz", ".json", ".json.gz")


class SuiteDataError(Exception):
    """The suite's data cannot be had; the message names the dataset and how to get it."""


class RowError(Exception):
    """A row that does not fit the schema: becomes an error item naming the row and field."""

    def __init__(self, field: str, message: str):
        super().__init__(f"field {field!r}: {message}")
        self.field, self.message = field, message


@dataclass
class SuiteResult:
    """One item's result as a suite's scorer sees it: plain data, no pytest."""

    id: str
    subset: str  # the suite's own subset name (the report prefixes it with the suite name)
    outcome: str  # correct / incorrect / error
    credit: float | None  # None when it errored
    details: dict = field(default_factory=dict)


class Suite(Protocol):
    """A published benchmark. `name` starts every node id; `headline` is the key of
    `score()`'s dict that a gate threshold named after the suite checks."""

    name: str
    headline: str

    def load(self, source: "DataSource") -> Iterable[Item | ItemProblem]: ...

    def sections(self, subsets: set[str]) -> dict[str, Section]: ...

    def score(self, results: list[SuiteResult]) -> dict | None: ...


# -- reading rows ---------------------------------------------------------------------------
@dataclass
class DataSource:
    """Where a suite's rows come from in this run, and the record of what was read."""

    suite: str
    data_dir: str | None = None
    revision: str | None = None
    options: dict = field(default_factory=dict)
    used: list[dict] = field(default_factory=list)  # the report's "datasets"
    not_run: list[dict] = field(default_factory=list)  # parts that were absent

    def option(self, name: str, default: Any = None) -> Any:
        value = self.options.get(name)
        return default if value in (None, "", []) else value

    # local copies ----------------------------------------------------------------------
    def local_files(self, *patterns: str) -> list[str]:
        """Files under --rm-data-dir whose base name matches a pattern (fnmatch), sorted.

        Files that match none are ignored: a folder may hold other benchmarks too.
        """
        if not self.data_dir:
            return []
        found = []
        for folder, _, names in os.walk(self.data_dir):
            for name in names:
                if any(fnmatch.fnmatch(name, p) for p in patterns):
                    found.append(os.path.join(folder, name))
        return sorted(found)

    def read_file(self, path: str, part: str | None = None) -> "Rows":
        """Rows of a local parquet / JSON / JSONL (optionally gzipped) file."""
        rows = read_rows(path)
        self.used.append({"name": os.path.basename(path), "path": os.path.abspath(path), "part": part,
                          "revision": None, "rows": len(rows)})
        return rows

    def absent(self, part: str, reason: str) -> None:
        self.not_run.append({"part": part, "reason": reason})

    # the Hub / the datasets cache -------------------------------------------------------
    def hub(self, dataset: str, config: str | None = None, split: str | None = None, part: str | None = None) -> "Rows":
        """Rows of a Hugging Face dataset through `datasets.load_dataset` (local cache first
        when HF_HUB_OFFLINE=1). A failure says what is missing and how to fetch it."""
        try:
            import datasets
        except ImportError:
            raise SuiteDataError(
                f"the suite {self.suite!r} reads {dataset!r} through the 'datasets' package, which is not installed: "
                "pip install datasets (or give --rm-data-dir with local files)"
            ) from None
        kwargs = {"split": split} if split else {}
        if self.revision:
            kwargs["revision"] = self.revision
        try:
            loaded = datasets.load_dataset(dataset, config, **kwargs)
        except Exception as exc:  # offline, not cached, no such config/split, ...
            raise SuiteDataError(unavailable_message(dataset, config, split, exc)) from None
        if not split:  # a DatasetDict: every split, in order
            pieces = [loaded[name] for name in loaded]
        else:
            pieces = [loaded]
        rows = Rows.from_datasets(pieces)
        self.used.append({"name": dataset, "config": config, "split": split, "part": part,
                          "revision": self.revision or cached_revision(pieces), "rows": len(rows)})
        return rows


def unavailable_message(dataset: str, config: str | None, split: str | None, exc: BaseException) -> str:
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes") or \
        os.environ.get("HF_DATASETS_OFFLINE", "").lower() in ("1", "true", "yes")
    where = "is not in the local cache and HF_HUB_OFFLINE is set" if offline else \
        "could not be loaded (not in the local cache, and the Hub is unreachable or refused)"
    call = ", ".join(repr(a) for a in (dataset, config) if a is not None) + (f", split={split!r}" if split else "")
    reason = " ".join(str(exc).split())
    if len(reason) > 300:
        reason = reason[:300] + "..."
    return (
        f"dataset {dataset!r}{f' (config {config!r})' if config else ''} {where}: {type(exc).__name__}: {reason}. "
        f"On a machine with internet, run: python -c \"import datasets; datasets.load_dataset({call})\" "
        "and copy ~/.cache/huggingface here, or download the dataset's files and pass --rm-data-dir DIR"
    )


def cached_revision(pieces) -> str | None:
    """The commit the cached copy came from: datasets keeps it in the cache folder's path."""
    for piece in pieces:
        for cache_file in getattr(piece, "cache_files", None) or []:
            match = re.search(r"[/\\]([0-9a-f]{40})[/\\]", cache_file.get("filename", ""))
            if match:
                return match.group(1)
    return None


class Rows:
    """A sized, re-iterable sequence of row dicts that does not hold them all as Python objects."""

    def __init__(self, length: int, iterate: Callable[[], Iterator[dict]], columns: list[str]):
        self._length, self._iterate, self.columns = length, iterate, columns

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[dict]:
        return self._iterate()

    @classmethod
    def from_list(cls, rows: list[dict]) -> "Rows":
        columns = list(dict.fromkeys(k for r in rows[:100] if isinstance(r, dict) for k in r))
        return cls(len(rows), lambda: iter(rows), columns)

    @classmethod
    def from_datasets(cls, pieces: list) -> "Rows":
        def iterate():
            for piece in pieces:
                yield from piece  # arrow-backed: rows are made one at a time
        columns = list(dict.fromkeys(c for p in pieces for c in p.column_names))
        return cls(sum(len(p) for p in pieces), iterate, columns)


def read_rows(path: str) -> Rows:
    name = os.path.basename(path).lower()
    opener = gzip.open if name.endswith(".gz") else open
    if name.endswith(".parquet"):
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise SuiteDataError(f"{path}: reading parquet needs pyarrow (pip install pyarrow)") from None
        table = pq.read_table(path)

        def iterate():
            for batch in table.to_batches(max_chunksize=1024):
                yield from batch.to_pylist()
        return Rows(table.num_rows, iterate, table.column_names)
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            if ".jsonl" in name:
                rows = []
                for lineno, line in enumerate(fh, 1):
                    if line.strip():
                        try:
                            rows.append(json.loads(line))
                        except json.JSONDecodeError as exc:
                            raise SuiteDataError(f"{path}:{lineno}: invalid JSON: {exc}") from None
            else:
                try:
                    data = json.load(fh)
                except json.JSONDecodeError as exc:
                    raise SuiteDataError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from None
                rows = data.get("data", data.get("rows")) if isinstance(data, dict) else data
                if not isinstance(rows, list):
                    raise SuiteDataError(f"{path}: expected a JSON list of rows (or {{\"data\": [...]}})")
    except OSError as exc:
        raise SuiteDataError(f"{path}: cannot read: {exc}") from None
    except UnicodeDecodeError as exc:
        raise SuiteDataError(f"{path}: not valid UTF-8: {exc}") from None
    return Rows.from_list(rows)


# -- rows -> items ---------------------------------------------------------------------------
def items_from_rows(rows: Iterable[dict], where: str, make: Callable[[dict, int], Item | None],
                    start: int = 0) -> Iterator[Item | ItemProblem]:
    """Apply `make(row, index)` to every row; a RowError becomes an error item naming the row."""
    for index, row in enumerate(rows, start):
        try:
            if not isinstance(row, dict):
                raise RowError("(row)", f"expected a mapping of columns, got {type(row).__name__}")
            item = make(row, index)
        except RowError as exc:
            row_id = row.get("id") if isinstance(row, dict) else None
            yield ItemProblem(index, None, exc.field, exc.message, None if row_id is None else str(row_id),
                              None, f"{where} row {index}")
            continue
        if item is not None:
            yield item


def text(row: dict, name: str) -> str:
    """A required non-empty string column."""
    value = row.get(name)
    if value is None:
        raise RowError(name, "missing")
    if not isinstance(value, str):
        raise RowError(name, f"must be a string, got {type(value).__name__}")
    if not value.strip():
        raise RowError(name, "is empty")
    return value


def texts(row: dict, name: str, count: int | None = None) -> tuple:
    """A required list of non-empty strings (exactly `count` of them when given)."""
    value = row.get(name)
    if value is None:
        raise RowError(name, "missing")
    if isinstance(value, tuple):
        value = list(value)
    if not isinstance(value, list) or not value:
        raise RowError(name, f"must be a non-empty list of strings, got {type(value).__name__}")
    for i, v in enumerate(value):
        if not isinstance(v, str) or not v.strip():
            raise RowError(name, f"entry {i} must be a non-empty string")
    if count is not None and len(value) != count:
        raise RowError(name, f"must hold {count} answers, got {len(value)}")
    return tuple(value)


def row_id(row: dict, name: str = "id", fallback: int | None = None) -> str:
    value = row.get(name)
    if value is None or value == "":
        if fallback is None:
            raise RowError(name, "missing")
        return str(fallback)
    value = str(value)
    if "::" in value or "\n" in value:
        raise RowError(name, "must not contain '::' or a newline")
    return value


def check_columns(rows: Rows, where: str, expected: Iterable[str]) -> None:
    """A dataset whose columns do not fit: one error listing what was found and what was expected."""
    missing = [c for c in expected if c not in rows.columns]
    if missing and len(rows):
        raise SuiteDataError(
            f"{where}: column(s) {', '.join(map(repr, missing))} not found; the dataset has "
            f"{', '.join(map(repr, rows.columns)) or 'no columns'}; expected {', '.join(map(repr, expected))}"
        )
