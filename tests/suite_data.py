"""Helpers of the suite tests: data files as the suites find them, and item results as the plugin reports them."""

import gzip
import json
import os

from pytest_rmbench.items import Rules, ScoreResult
from pytest_rmbench.suites import SuiteResult


def write_jsonl(path, rows):
    """One JSON object a line; gzipped when the name ends with .gz. Folders are made as needed."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def write_json(path, rows):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(rows, fh, ensure_ascii=False)


def write_parquet(path, rows):
    import pyarrow as pa
    import pyarrow.parquet as pq

    os.makedirs(os.path.dirname(path), exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)


def scored(item, scores, rules=None):
    """The item's SuiteResult when its requests (in order) get these scores."""
    rules = rules or Rules()
    requests = item.requests(rules)
    assert len(set(requests)) == len(scores)
    outcome = item.outcome({r: ScoreResult(s) for r, s in zip(requests, scores)}, rules)
    return SuiteResult(item.id, item.subset, outcome.outcome, outcome.credit, outcome.details, item.group)


def result(id, subset, ok):
    """A pair's result: ok 1 / 0, or None for an error."""
    return SuiteResult(str(id), subset, "error" if ok is None else ("correct" if ok else "incorrect"),
                       None if ok is None else float(ok))
