"""--rm-ray figures on this machine (#16): Ray actors against xdist workers, and the controller's own cost.

    python bench/ray_scale.py [--pairs 2000] [--instant-items 20000] [--repeats 1] [--json PATH]

1. The MiniLM reward model of bench/scale.py (figure 1) over the same --pairs generated pairs:
   `pytest -n 2` against `pytest --rm-ray local --rm-ray-actors 2` (two CPU actors), each a
   whole pytest process in a subprocess, wall clock (start-up, Ray's start, model loads included;
   with --repeats N they alternate and the medians count). Target: Ray / -n 2 within 1.15x.
   Outcomes are compared item by item.
2. The controller alone: builtin:length (a model that answers instantly) over --instant-items
   pairs, `-n 0` against `--rm-ray local --rm-ray-actors 2`, chunks of 128. The test loop (the
   first item's start to the last item's end, from a small timing plugin) gives the controller's
   items/s, and (Ray loop - -n 0 loop) / chunks its overhead per chunk; the Ray summary's "the
   controller's own work N ms per chunk" (cache look-ups, submitting, collecting) is kept too.

A table goes to stdout; the figures to --json PATH. Exit status 2 when a run failed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import scale  # noqa: E402  (bench/scale.py: the pairs, the model, the child runs)
import throughput  # noqa: E402

LOOP_CLOCK = '''
import json, os, time
T = {}
def pytest_runtest_logstart(nodeid, location):
    T.setdefault("first", time.perf_counter())
def pytest_runtest_logfinish(nodeid, location):
    T["last"] = time.perf_counter()
def pytest_sessionfinish(session):
    with open(os.environ["LOOP_CLOCK_OUT"], "w") as fh:
        json.dump({"loop_seconds": T.get("last", 0) - T.get("first", 0)}, fh)
'''


def timed_run(label: str, items: Path, model: str, work: Path, extra: list[str]) -> dict:
    """scale.pytest_run with the loop clock plugin: wall, report, and the test loop's seconds."""
    os.environ["LOOP_CLOCK_OUT"] = str(work / f"loop_{label}.json")
    os.environ["PYTHONPATH"] = str(work)  # scale.child_env puts the repo root in front
    run = scale.pytest_run(label, items, model, work, work, ["-p", "loop_clock", "-p", "no:randomly", *extra])
    run["loop_seconds"] = json.loads((work / f"loop_{label}.json").read_text())["loop_seconds"]
    own = re.search(r"the controller's own work ([0-9.]+) ms per chunk", (work / f"log_{label}.txt").read_text())
    run["controller_ms_per_chunk"] = float(own.group(1)) if own else None  # the Ray summary's figure
    run["workers"] = [{k: w.get(k) for k in ("worker", "items", "batches", "seconds", "chunks", "busy_seconds", "retried",
                                             "node", "device", "load_seconds")} for w in run["report"]["workers"]]
    return run


def changed(a: dict, b: dict) -> int:
    first, second = scale.outcomes(a["report"]), scale.outcomes(b["report"])
    return sum(first[k] != second.get(k) for k in first) + len(set(second) - set(first))


def actors_vs_workers(work: Path, pairs: int, repeats: int) -> dict:
    model_dir = work / "model"
    throughput.build_model(model_dir)
    items = work / "pairs.rmbench.jsonl"
    scale.write_jsonl(items, scale.make_pairs(pairs))
    runs: dict[str, list] = {"n2": [], "ray": []}
    for _ in range(repeats):
        runs["n2"].append(timed_run("n2", items, str(model_dir), work, ["-n", "2"]))
        runs["ray"].append(timed_run("ray", items, str(model_dir), work, ["--rm-ray", "local", "--rm-ray-actors", "2"]))
    n2, ray = (statistics.median(r["wall"] for r in runs[k]) for k in ("n2", "ray"))
    return {"pairs": pairs, "model": "MiniLM-L6 (bench/throughput.py build_model), float32, CPU",
            "n2_wall_seconds": [r["wall"] for r in runs["n2"]], "ray_wall_seconds": [r["wall"] for r in runs["ray"]],
            "ratio_ray/n2": ray / n2, "target": 1.15, "met": ray / n2 <= 1.15,
            "n2_loop_seconds": [r["loop_seconds"] for r in runs["n2"]],
            "ray_loop_seconds": [r["loop_seconds"] for r in runs["ray"]],
            "outcomes_changed_ray_vs_n2": changed(runs["n2"][-1], runs["ray"][-1]),
            "controller_own_ms_per_chunk": [r["controller_ms_per_chunk"] for r in runs["ray"]],
            "n2_workers": runs["n2"][-1]["workers"], "ray_workers": runs["ray"][-1]["workers"],
            "commands": [runs["n2"][-1]["command"], runs["ray"][-1]["command"]]}


def controller_alone(work: Path, n: int) -> dict:
    items = work / "instant.rmbench.jsonl"
    scale.write_jsonl(items, [{"id": f"i{i:06d}", "subset": throughput.SUBSETS[i % len(throughput.SUBSETS)],
                               "prompt": f"question {i}", "chosen": "c" * (i % 13 + 1), "rejected": "r" * (i % 11 + 1)}
                              for i in range(n)])
    n0 = timed_run("instant_n0", items, "builtin:length", work, ["-n", "0"])
    ray = timed_run("instant_ray", items, "builtin:length", work, ["--rm-ray", "local", "--rm-ray-actors", "2"])
    chunks = sum(w.get("chunks") or 0 for w in ray["workers"])
    return {"items": n, "chunk_size": scale.CHUNK_SIZE, "chunks": chunks,
            "n0_wall_seconds": n0["wall"], "ray_wall_seconds": ray["wall"],
            "n0_loop_seconds": n0["loop_seconds"], "ray_loop_seconds": ray["loop_seconds"],
            "n0_items_per_second": n / n0["loop_seconds"], "ray_items_per_second": n / ray["loop_seconds"],
            "ray_overhead_per_chunk_ms": 1000 * (ray["loop_seconds"] - n0["loop_seconds"]) / max(1, chunks),
            "controller_own_ms_per_chunk": ray["controller_ms_per_chunk"],
            "ray_startup_seconds": (ray["wall"] - ray["loop_seconds"]) - (n0["wall"] - n0["loop_seconds"]),
            "outcomes_changed_ray_vs_n0": changed(n0, ray), "ray_workers": ray["workers"],
            "commands": [n0["command"], ray["command"]]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=2000)
    ap.add_argument("--instant-items", type=int, default=20000)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--skip-model", action="store_true", help="leave out figure 1")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    figures = {"environment": {"python": platform.python_version(), "cpus": len(os.sched_getaffinity(0)),
                               "load1_before": os.getloadavg()[0], "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}}
    with tempfile.TemporaryDirectory(prefix="rmbench-ray-") as tmp:
        work = Path(tmp)
        (work / "loop_clock.py").write_text(LOOP_CLOCK)
        try:
            figures["controller_alone"] = controller_alone(work, args.instant_items)
            if not args.skip_model:
                figures["actors_vs_workers"] = actors_vs_workers(work, args.pairs, args.repeats)
        except scale.RunFailed as exc:
            print(exc, file=sys.stderr)
            return 2
    figures["environment"]["load1_after"] = os.getloadavg()[0]
    table(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")
    return 0


def table(figures: dict) -> None:
    c = figures["controller_alone"]
    print(f"controller alone, builtin:length, {c['items']} items, {c['chunks']} chunks of {c['chunk_size']}:")
    print(f"  -n 0 test loop {c['n0_loop_seconds']:.2f}s ({c['n0_items_per_second']:.0f} items/s), --rm-ray local "
          f"{c['ray_loop_seconds']:.2f}s ({c['ray_items_per_second']:.0f} items/s); overhead per chunk "
          f"{c['ray_overhead_per_chunk_ms']:.1f} ms (the pool's own work {c['controller_own_ms_per_chunk']} ms); Ray start-up {c['ray_startup_seconds']:.1f}s; "
          f"outcomes changed {c['outcomes_changed_ray_vs_n0']}")
    a = figures.get("actors_vs_workers")
    if a:
        print(f"{a['pairs']} pairs, {a['model']}: -n 2 {statistics.median(a['n2_wall_seconds']):.1f}s, --rm-ray local "
              f"(2 actors) {statistics.median(a['ray_wall_seconds']):.1f}s: {a['ratio_ray/n2']:.2f}x (target "
              f"<= {a['target']}x: {'met' if a['met'] else 'missed'}); outcomes changed {a['outcomes_changed_ray_vs_n2']}")


if __name__ == "__main__":
    raise SystemExit(main())
