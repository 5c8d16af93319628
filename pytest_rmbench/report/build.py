"""The run's facts -> the typed Report (report/schema.py), as the JSON report has it.

Plain inputs only (item records, the catalog, worker figures, the gate's result, the
baseline comparison, run facts): no pytest config, no plugin state, so it can be called
from the plugin, a test or a tool.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import platform
import time
from types import SimpleNamespace
from typing import Iterable

from ..items import ERROR
from .aggregate import aggregate
from .schema import Report


def suite_versions(records: Iterable[dict]) -> dict:
    """Per benchmark file: how many of its items ran, and a version that changes with any item's text."""
    by_file: dict[str, list[str]] = {}
    for r in records:
        by_file.setdefault(r["file"], []).append(r.get("content_hash") or "")
    return {
        name: {"items": len(hashes), "version": hashlib.sha256("\n".join(sorted(hashes)).encode()).hexdigest()[:16]}
        for name, hashes in sorted(by_file.items())
    }


def versions(workers: Iterable[dict]) -> dict:
    """python, pytest and pytest-rmbench, then the libraries the model ran on, as its workers saw them."""
    from importlib.metadata import version  # the report knows nothing of the pytest process it runs in

    from .. import __version__

    out = {"python": platform.python_version(), "pytest": version("pytest"), "pytest-rmbench": __version__}
    for worker in workers:
        out.update(worker.get("versions") or {})
    return out


def build_report(
    records: Iterable[dict],
    *,
    catalog: dict,
    workers: list[dict],
    gate: dict,
    model: str,
    kind: str | None,
    dtype: str | None,
    device: str | None,
    seed: int | None,
    started: float,
    selection: dict | None = None,
    scores: dict | None = None,
    datasets: dict | None = None,
    recovered: Iterable[str] = (),
    baseline: dict | None = None,
    summary: dict | None = None,
    sections: dict | None = None,
    finished: float | None = None,
) -> Report:
    """The run's report.

    records: the item records (one dict per node id, as the workers sent them); catalog: the
    collected items ({"items": [...], ...}: its length is `run.collected`); workers: each
    worker's figures (the plugin's worker_figures()); gate: evaluate()'s result; baseline: the
    --rm-baseline comparison block or None; model: the model's name without credentials;
    kind/dtype/device/seed: the model spec's, used where no worker describes the model;
    started/finished: time.time() values (finished defaults to now); selection: the
    "selection" block; scores/datasets: the suites' official scores and datasets; recovered:
    node ids rescored after an xdist worker died; summary: aggregate(records, sections) when
    the caller already has it (the gate needs it first), else it is computed from `sections`
    (name -> items.files.Section).
    """
    records = list(records)
    if summary is None:
        summary = aggregate(records, sections or {})
    finished = time.time() if finished is None else finished
    report = {"run": _run_block(records, catalog, workers, model=model, kind=kind, dtype=dtype, device=device,
                                seed=seed, started=started, finished=finished)}
    report.update(summary)
    report.pop("strict", None)
    report.pop("headlines", None)
    _default_blocks(report, scores=scores, datasets=datasets, selection=selection)
    report["workers"] = sorted(workers, key=lambda w: str(w["worker"]))
    report["recovered"] = list(recovered)
    report["gate"] = gate
    report["baseline"] = baseline
    return Report.from_dict(report)


def _run_block(records: list[dict], catalog: dict, workers: list[dict], *, model: str, kind: str | None,
               dtype: str | None, device: str | None, seed: int | None, started: float, finished: float) -> dict:
    """The "run" block: the model (as its workers describe it), timing, throughput, versions, counts."""
    # the model ran in the workers (or the cache holds its scores): describe it from their figures
    described = next((SimpleNamespace(**w) for w in workers if w.get("kind")), None)
    scored = [r for r in records if r["outcome"] != ERROR]
    starts = [r["start"] for r in scored if r.get("start")]
    stops = [r["stop"] for r in scored if r.get("stop")]
    busy = (max(stops) - min(starts)) if starts and stops else None
    return {
        "model": model,
        "kind": getattr(described, "kind", None) or kind,
        "dtype": getattr(described, "dtype", None) or dtype,
        "device": getattr(described, "device", None) or device,
        "seed": seed,
        "versions": versions(workers),
        "started": _dt.datetime.fromtimestamp(started, _dt.timezone.utc).isoformat(),
        "seconds": finished - started,
        "pairs_per_second": len(scored) / busy if busy else None,
        "scores_from_cache": bool(described is not None and described.from_cache),
        "load_seconds": next((w["load_seconds"] for w in workers if w.get("load_seconds")), None),
        "load_error": next((w["load_error"] for w in workers if w.get("load_error")), None),
        "collected": len(catalog["items"]),
        "ran": len(records),
        "suites": suite_versions(records),
    }


def _default_blocks(report: dict, *, scores: dict | None, datasets: dict | None, selection: dict | None) -> None:
    """The "scores", "datasets" and "selection" blocks: the caller's, else the summary's, else empty."""
    for key, value in (("scores", scores), ("datasets", datasets), ("selection", selection)):
        if value is not None or key not in report:
            report[key] = value if value is not None else ({} if key != "selection" else {"files": [], "partial": False, "why": []})
