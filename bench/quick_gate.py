"""The quick gate's cost against its precision: --rm-sample N for several N against the full set.

    python bench/quick_gate.py [--items FILE] [--pairs 3000] [--sizes 200,500,1000] [--seeds 200]
                               [--model builtin:length] [--out bench/results/quick-gate-2cpu.json]

1. One full pytest run of the item file (by default a 3,000-pair length mix written by
   bench/make_length_mix.py, and the MiniLM reward model of bench/throughput.py), and one
   `--rm-sample N` run per size: wall time of the whole process, and the ratio to the full run.
2. Precision without rerunning: the sampled run's items are a function of the node ids and the
   seed only (pytest_rmbench.sample.choose), and the model's verdicts do not depend on which
   items share a batch, so every other seed's sample is read off the full run's verdicts: the
   mean interval width of the overall estimate, and how often the interval holds the full
   set's accuracy (coverage; nominal 95%). The seed-0 estimate computed that way is checked
   against the sampled run's own report.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from pytest_rmbench.sample import choose, fpc_interval  # noqa: E402


def run(items: Path, model: str, report: Path, cwd: Path, *extra: str) -> float:
    cmd = [sys.executable, "-m", "pytest", str(items), f"--rm-model={model}", "-q", "-p", "no:cacheprovider",
           "-p", "no:randomly", "--rm-no-cache", "--rm-no-store", f"--rm-report={report}", *extra]
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode not in (0, 1):
        sys.exit(f"pytest failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return wall


def precision(records: list[dict], size: int, seeds: int) -> dict:
    """Mean width and coverage of the overall interval over seeds, read off the full run's verdicts."""
    scored = [r for r in records if r["outcome"] in ("correct", "incorrect")]
    truth = sum(r["outcome"] == "correct" for r in scored) / len(scored)
    by_id = {r["nodeid"]: r["outcome"] == "correct" for r in scored}
    entries = [(r["nodeid"], (r["file"], r["subset"])) for r in scored]
    widths, hits, estimates = [], 0, []
    for seed in range(seeds):
        chosen = choose(entries, size, seed)
        correct = sum(by_id[n] for n in chosen)
        low, high = fpc_interval(correct, len(chosen), len(scored))
        widths.append(high - low)
        hits += low <= truth <= high
        estimates.append(correct / len(chosen))
    return {"full_accuracy": truth, "mean_width": sum(widths) / len(widths), "coverage": hits / seeds,
            "seed0_estimate": estimates[0], "seeds": seeds}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=Path, help="a *.rmbench.jsonl/yaml file (default: a length mix of --pairs pairs)")
    ap.add_argument("--pairs", type=int, default=3000, help="pairs of the generated length mix (default 3000)")
    ap.add_argument("--sizes", default="200,500,1000", help="sample sizes (default 200,500,1000)")
    ap.add_argument("--seeds", type=int, default=200, help="samples per size for width and coverage (default 200)")
    ap.add_argument("--model", help="--rm-model for the runs (default: the MiniLM reward model)")
    ap.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        items = args.items
        if items is None:
            items = work / "mix.rmbench.jsonl"
            subprocess.run([sys.executable, str(BENCH / "make_length_mix.py"), "--pairs", str(args.pairs),
                            "--out", str(items)], check=True)
        model = args.model
        if model is None:
            sys.path.insert(0, str(BENCH))
            from throughput import build_model

            build_model(work / "minilm")
            model = str(work / "minilm")
        full_wall = run(items.resolve(), model, work / "full.json", work)
        full = json.loads((work / "full.json").read_text())
        rows = []
        for size in sizes:
            wall = run(items.resolve(), model, work / f"s{size}.json", work, "--rm-sample", str(size))
            sampled = json.loads((work / f"s{size}.json").read_text())
            figures = precision(full["items"], size, args.seeds)
            overall = sampled["overall"]
            assert abs(overall["accuracy"] - figures["seed0_estimate"]) < 1e-12, "the sampled run's verdicts differ"
            rows.append({"size": size, "drawn": sampled["selection"]["sample"]["drawn"], "wall_s": wall,
                         "wall_ratio_to_full": wall / full_wall, "seed0_interval": [overall["ci_low"], overall["ci_high"]],
                         **figures})
    result = {"items": full["overall"]["n"], "model": model if args.model else "MiniLM-L6 reward model (bench/throughput.py)",
              "full_wall_s": full_wall, "full_accuracy": full["overall"]["accuracy"], "samples": rows}
    print(f"full set: {result['items']} items, accuracy {result['full_accuracy']:.4f}, {full_wall:.1f} s")
    print(f"{'N':>6} {'drawn':>6} {'wall s':>7} {'x full':>7} {'mean width':>11} {'coverage':>9}")
    for r in rows:
        print(f"{r['size']:>6} {r['drawn']:>6} {r['wall_s']:>7.1f} {r['wall_ratio_to_full']:>7.2f}"
              f" {r['mean_width']:>11.4f} {r['coverage']:>9.3f}")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
