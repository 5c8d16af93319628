"""What a benchmark suite is, and where its rows come from.

A suite turns the rows of a published dataset into items (one per official unit) and
turns the item results back into the benchmark's official scores. It never touches
pytest or torch: the plugin collects its items as tests and hands it plain results.

Rows come from a `DataSource`: the Hugging Face `datasets` cache (honouring
HF_HUB_OFFLINE), or files under --rm-data-dir named as the benchmark's own repository
names them. Every dataset read is recorded for the report's "datasets" block.

It also holds the helpers the built-in suites share: finding local files, rows to items,
node names, chat messages and accuracy scores.
"""

from __future__ import annotations

import fnmatch
import gzip
import json
import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Protocol

from ..items import ERROR, Item, ItemProblem, Section, fields
from ..items.fields import FieldError, chat_prompt, name_error, prompt_value  # noqa: F401 (re-exported)
from ..items.lfs import is_pointer, pointer_message, pointers_message
from ..requires import require

DATA_SUFFIXES = (".parquet", ".jsonl", ".jsonl.gz", ".json", ".json.gz")


class SuiteDataError(Exception):
    """The suite's data cannot be had; the message names the dataset and how to get it."""


# A row that does not fit the schema: becomes an error item naming the row and field. The
# same class as items.fields.FieldError, so suites, users' suites and the field validators
# raise and catch one type.
RowError = FieldError


@dataclass
class SuiteResult:
    """One item's result as a suite's scorer sees it: plain data, no pytest."""

    id: str
    subset: str  # the suite's own subset name (the report prefixes it with the suite name)
    outcome: str  # correct / incorrect / error
    credit: float | None  # None when it errored
    details: dict = field(default_factory=dict)
    group: str = ""  # the item's `group`


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
    lfs_pointers: list[str] = field(default_factory=list)  # local files that were Git LFS pointers

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
        """Rows of a local parquet / JSON / JSONL (optionally gzipped) file.

        A Git LFS pointer in place of the file (a clone made without git-lfs) gives no rows:
        its part is recorded as not run, with the fix, and the suite's other files still
        run; `check_lfs` makes it one error when every file was a pointer."""
        if is_pointer(path):
            self.lfs_pointers.append(path)
            self.absent(part or os.path.basename(path), pointer_message(path))
            return Rows.from_list([])
        rows = read_rows(path)
        self.used.append({"name": os.path.basename(path), "path": os.path.abspath(path), "part": part,
                          "revision": None, "rows": len(rows)})
        return rows

    def absent(self, part: str, reason: str) -> None:
        self.not_run.append({"part": part, "reason": reason})

    def check_lfs(self) -> None:
        """Suites call this once they have read their files: when every file read was a Git
        LFS pointer, the suite has nothing to run, and errors with the one message."""
        if self.lfs_pointers and not self.used:
            raise SuiteDataError(pointers_message(self.lfs_pointers, self.data_dir))

    # the Hub / the datasets cache -------------------------------------------------------
    def hub(self, dataset: str, config: str | None = None, split: str | None = None, part: str | None = None,
            data_dir: str | None = None) -> "Rows":
        """Rows of a Hugging Face dataset through `datasets.load_dataset` (local cache first
        when HF_HUB_OFFLINE=1); `data_dir` reads one folder of the dataset's repository (a
        part that the dataset's default configuration would merge into one split). A
        failure says what is missing and how to fetch it."""
        require("datasets", what=f"the suite {self.suite!r} (it reads {dataset!r} from the Hub)", error=SuiteDataError,
                hint="or give --rm-data-dir with local files")
        import datasets
        kwargs = {"split": split} if split else {}
        if data_dir:
            kwargs["data_dir"] = data_dir
        if self.revision:
            kwargs["revision"] = self.revision
        try:
            loaded = datasets.load_dataset(dataset, config, **kwargs)
        except Exception as exc:  # offline, not cached, no such config/split, ...
            raise SuiteDataError(unavailable_message(dataset, config, split, exc, data_dir)) from None
        if not split:  # a DatasetDict: every split, in order
            pieces = [loaded[name] for name in loaded]
        else:
            pieces = [loaded]
        pieces = [undecoded_images(piece) for piece in pieces]
        rows = Rows.from_datasets(pieces)
        record = {"name": dataset, "config": config, "split": split, "part": part,
                  "revision": self.revision or cached_revision(pieces), "rows": len(rows)}
        if data_dir:
            record["data_dir"] = data_dir
        self.used.append(record)
        return rows


def unavailable_message(dataset: str, config: str | None, split: str | None, exc: BaseException,
                        data_dir: str | None = None) -> str:
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes") or \
        os.environ.get("HF_DATASETS_OFFLINE", "").lower() in ("1", "true", "yes")
    where = "is not in the local cache and HF_HUB_OFFLINE is set" if offline else \
        "could not be loaded (not in the local cache, and the Hub is unreachable or refused)"
    call = ", ".join(repr(a) for a in (dataset, config) if a is not None) + (f", split={split!r}" if split else "")
    call += f", data_dir={data_dir!r}" if data_dir else ""
    reason = " ".join(str(exc).split())
    if len(reason) > 300:
        reason = reason[:300] + "..."
    return (
        f"dataset {dataset!r}{f' (config {config!r})' if config else ''} {where}: {type(exc).__name__}: {reason}. "
        f"On a machine with internet, run: python -c \"import datasets; datasets.load_dataset({call})\" "
        "and copy ~/.cache/huggingface here, or download the dataset's files and pass --rm-data-dir DIR"
    )


def undecoded_images(piece):
    """The dataset with its Image columns (and lists of images) read as {bytes, path} instead
    of decoded PIL images: nothing decodes an image at collection (suites hash the bytes)."""
    import datasets

    for name, feature in (getattr(piece, "features", None) or {}).items():
        inner = getattr(feature, "feature", None)  # a list of images: Sequence(Image()) / List(Image())
        if isinstance(feature, datasets.Image) and feature.decode:
            piece = piece.cast_column(name, datasets.Image(decode=False))
        elif isinstance(inner, datasets.Image) and inner.decode:
            piece = piece.cast_column(name, type(feature)(datasets.Image(decode=False)))
    return piece


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


# -- local files ----------------------------------------------------------------------------
ANY_DATA_FILE = tuple(f"*{suffix}" for suffix in DATA_SUFFIXES)


def data_patterns(*stems: str) -> tuple[str, ...]:
    """Base-name patterns for a data file named after `stem`: `stem.jsonl`, `stem-00000-of-00001.parquet`, ..."""
    return tuple(p for stem in stems for suffix in DATA_SUFFIXES for p in (f"{stem}{suffix}", f"{stem}-*{suffix}"))


def data_files(source: DataSource, patterns: Iterable[str] = ANY_DATA_FILE, required: Iterable[str] = (),
               one_per_name: bool = True) -> tuple[list[str], list[str]]:
    """Files under --rm-data-dir named as `patterns`, and the names of those skipped.

    With `required`, a file is kept only when it has those columns: generic names such as
    test.json or math.json may well belong to another benchmark in the same folder. With
    `one_per_name`, two files of the same base name are an error: for a suite that names
    its parts by file name they would feed every row twice. Suites that tell parts apart
    by folder (one test-*.parquet per language, ...) pass False.
    """
    found = source.local_files(*patterns)
    if one_per_name:
        by_name: dict[str, list[str]] = defaultdict(list)
        for path in found:
            by_name[os.path.basename(path)].append(path)
        twice = {name: paths for name, paths in by_name.items() if len(paths) > 1}
        if twice:
            name, paths = next(iter(sorted(twice.items())))
            raise SuiteDataError(f"{source.suite}: {len(paths)} files named {name!r} under {source.data_dir} "
                                 f"({', '.join(paths)}): keep one copy")
    kept, skipped = [], []
    for path in found:
        if required and is_pointer(path):  # its columns are unknown: read_file reports it as not run
            kept.append(path)
            continue
        columns = file_columns(path) if required else []
        missing = [c for c in required if c not in columns]
        if missing:
            skipped.append(f"{os.path.basename(path)} (columns {', '.join(columns) or 'none'}; "
                           f"lacks {', '.join(missing)})")
        else:
            kept.append(path)
    return kept, skipped


def file_columns(path: str) -> list[str]:
    if path.lower().endswith(".parquet"):  # the schema alone, without reading the rows
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise SuiteDataError(f"{path}: reading parquet needs pyarrow (pip install pyarrow)") from None
        return list(pq.read_schema(path).names)
    return read_rows(path).columns


def relative_parts(source: DataSource, path: str) -> list[str]:
    """The path's components below --rm-data-dir."""
    return os.path.relpath(path, source.data_dir).replace("\\", "/").split("/")


def strip_data_suffix(name: str) -> str:
    lowered = name.lower()
    for suffix in sorted(DATA_SUFFIXES, key=len, reverse=True):
        if lowered.endswith(suffix):
            return name[: -len(suffix)]
    return name


def nothing_found(source: DataSource, expected: str, skipped: Iterable[str] = ()) -> SuiteDataError:
    also = f"; skipped (not this benchmark's columns): {'; '.join(skipped)}" if skipped else ""
    return SuiteDataError(f"{source.suite}: no data files found under {source.data_dir}: expected {expected}{also}")


def hub_splits(source: DataSource, dataset: str, splits: Iterable[str]) -> list[tuple[str, Rows, str]]:
    """(where, rows, split) for each split of `dataset` that can be loaded; one that cannot is
    recorded as not run, unless none can (then the first failure is raised)."""
    parts, failures = [], []
    for split in splits:
        try:
            parts.append((f"{dataset}:{split}", source.hub(dataset, None, split, part=split), split))
        except SuiteDataError as exc:
            failures.append((split, exc))
    if not parts:
        raise failures[0][1]
    for split, exc in failures:
        source.absent(split, str(exc))
    return parts


def chosen_names(source: DataSource, option: str, known: Iterable[str], unknown: str, all_of: str) -> list[str]:
    """The names an option picks (a list, or a comma-separated string) in order, once each; all
    of `known` when it is not given. `unknown` / `all_of` word the error: "language code(s)" / "languages"."""
    value = source.option(option)
    if value is None:
        return list(known)
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    wrong = [v for v in value if v not in known]
    if wrong:
        raise SuiteDataError(f"{source.suite}: unknown {unknown} {', '.join(map(repr, wrong))}; "
                             f"the {all_of} are {', '.join(known)}")
    return list(dict.fromkeys(value))


# -- rows -> items ---------------------------------------------------------------------------
def items_from_rows(rows: Iterable[dict], where: str, make: Callable[[dict, int], Item | None],
                    offset: int = 0, id_column: str | None = "id") -> Iterator[Item | ItemProblem]:
    """Apply `make(row, index)` to every row of one file or split; a RowError becomes an error
    item naming the row. `index` and the row number in messages count within `rows`; the
    error item's index adds `offset` (the rows of the suite's earlier parts), so error tests
    of different parts get different names. The error item names the row's `id_column`
    (None: the suite numbers its items itself, so it names no id)."""
    for index, row in enumerate(rows):
        try:
            if not isinstance(row, dict):
                raise RowError("(row)", f"expected a mapping of columns, got {type(row).__name__}")
            item = make(row, index)
        except RowError as exc:
            yield row_problem(exc, row, offset + index, f"{where} row {index}", id_column)
            continue
        if item is not None:
            yield item


def row_problem(exc: RowError, row: Any, index: int, path: str, id_column: str | None = "id") -> ItemProblem:
    value = row.get(id_column) if isinstance(row, dict) and id_column else None
    return ItemProblem(index, None, exc.field, exc.message, None if value is None else str(value), None, path)


def text(row: dict, name: str, empty: bool = False) -> str:
    """A required string column, non-empty unless `empty`: answers may be empty, as the
    official scripts score them too (an empty string is a valid, if bad, response)."""
    return fields.string(row, name, empty)


def clean_name(row: dict, name: str) -> str:
    """A required string column (a subset name) as it may appear in a node id, stripped."""
    return fields.check_name(fields.string(row, name).strip(), name)


def texts(row: dict, name: str, count: int | None = None) -> tuple:
    """A required list of non-empty strings (exactly `count` of them when given)."""
    return fields.strings(row, name, count)


def row_id(row: dict, name: str = "id", fallback: int | None = None) -> str:
    """The row's id as a string (`fallback` when the column is absent or empty); it must fit
    the node-id rule."""
    value = row.get(name)
    if value is None or value == "":
        if fallback is None:
            raise RowError(name, "missing")
        return str(fallback)
    return fields.check_name(str(value), name)


def check_columns(rows: Rows, where: str, expected: Iterable[str]) -> None:
    """A dataset whose columns do not fit: one error listing what was found and what was expected."""
    missing = [c for c in expected if c not in rows.columns]
    if missing and len(rows):
        raise SuiteDataError(
            f"{where}: column(s) {', '.join(map(repr, missing))} not found; the dataset has "
            f"{', '.join(map(repr, rows.columns)) or 'no columns'}; expected {', '.join(map(repr, expected))}"
        )


def slug(name: str) -> str:
    """A node-name part: lowercase, runs of anything but letters and digits become '-'."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "unnamed"


class NodeNames:
    """Node names must be unique within a suite: the first row keeps a name; a later one is an
    error item (`claim`) or gets a suffix (`unique`, for datasets whose ids are not unique)."""

    def __init__(self):
        self.first: dict[str, str] = {}  # node name -> the row that has it

    def claim(self, node: str, by: str, field: str = "id") -> None:
        error = name_error(node)
        if error:
            raise RowError(field, f"gives the node name {node!r}, which {error}")
        if node in self.first:
            raise RowError(field, f"duplicate: the node name {node!r} is already used by {self.first[node]}")
        self.first[node] = by

    def unique(self, node: str, index: int) -> str:
        if node not in self.first:
            self.first[node] = f"row {index}"
            return node
        candidate, n = f"{node}-row{index}", 1
        while candidate in self.first:  # a real id may already look like a made-up one
            n += 1
            candidate = f"{node}-row{index}-{n}"
        self.first[candidate] = f"row {index}"
        return candidate


# -- chat messages ------------------------------------------------------------------------
# A dataset's prompt: a string, or chat messages as the datasets spell them. The validators
# live in items/fields.py; suites (and users' suites) import them from here too.
ROLE_NAMES = fields.ROLE_NAMES
to_messages = fields.chat_messages


# -- results -> scores ----------------------------------------------------------------------
def mean(values: Iterable[float | None]) -> float | None:
    """The mean of the values that are not None; None when there are none."""
    present = [float(v) for v in values if v is not None]
    return sum(present) / len(present) if present else None


def graded(results: Iterable[SuiteResult]) -> list[SuiteResult]:
    return [r for r in results if r.outcome != ERROR and r.credit is not None]


def error_count(results: Iterable[SuiteResult]) -> int:
    return sum(1 for r in results if r.outcome == ERROR or r.credit is None)


def accuracy(results: Iterable[SuiteResult]) -> float | None:
    """Mean credit over the items that did not error; None when there are none."""
    return mean(r.credit for r in graded(results))


def subset_accuracies(results: Iterable[SuiteResult]) -> dict[str, float]:
    by_subset: dict[str, list[float]] = defaultdict(list)
    for r in graded(results):
        by_subset[r.subset].append(r.credit)
    return {name: mean(credits) for name, credits in sorted(by_subset.items())}


def pair_score(results: list[SuiteResult], headline: str = "overall") -> dict | None:
    """{headline: accuracy over every item, "subsets": {...}, "errors": n}."""
    if not results:
        return None
    return {headline: accuracy(results), "subsets": subset_accuracies(results), "errors": error_count(results)}
