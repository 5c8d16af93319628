"""Several --rm-model in one pytest session against one session per model (#15): wall time and peak memory.

    python bench/multi_model.py [--items 5000] [--repeats 1] [--family llama|minilm] [--json PATH] [--keep]

--family minilm runs three MiniLM classifiers instead (tests/tinymodels.py build_minilm_classifier:
the packaged all-MiniLM-L6-v2 with seeded heads, 87 MiB of float32 weights each), where holding
one model at a time against all three shows in the peak memory. By default, three tiny random-init
reward models (tests/tinymodels.py build_tiny_llama: a 2-layer Llama
sequence classifier, hidden size 32, num_labels=1, saved with save_pretrained as safetensors
next to its word-level tokenizer), seeds 0, 1 and 2, so their outcomes differ. Their
max_position_embeddings is raised from 128 to 512 in config.json (rotary positions: no weight
depends on it), so no item of the file below is truncated. --items pairs (default 5,000) of
bench/scale.py's generator (make_pairs: varied lengths, prompts shared in groups, seeded) go
into one .rmbench.jsonl file.

Each mode is whole `python -m pytest FILE ... -p no:randomly -q --rm-no-cache --rm-no-store
--rm-report FILE` child processes in a temporary folder (bench/scale.py's pytest_run, which
adds -p no:cacheprovider):

1. separate: three sessions, one `--rm-model=DIR` each (the classic one-model report);
   wall = the sum of the three, peak memory = the largest of the three;
2. one session: `--rm-model=llama0=DIR0 --rm-model llama1=DIR1 --rm-model llama2=DIR2`
   (by default a process holds one model at a time and frees it before loading the next);
3. one session with `--rm-keep-models` (every model stays loaded).

Wall: seconds of the whole child process (start-up, collection, loads, scoring, reports).
Peak memory: the child's peak resident set size, ru_maxrss of the rusage that os.wait4 returns
for that one child (scale.run_child), so it is that process's own peak, not the cumulative
maximum over every child RUSAGE_CHILDREN would give. The report's workers[*].peak_memory_bytes
(the worker process's own ru_maxrss at the end of the run) and its per-model loads / freed /
load_seconds / seconds are kept beside it.

Every item's outcome and chosen / rejected scores in modes 2 and 3 are matched with mode 1's
(by model, and the node id without its [NAME] suffix); the number that differ (a different
outcome, a score off by more than 1e-5, or an item missing on one side) must be 0, and each
model's accuracy under "models" must equal its own session's.

With --repeats N the modes alternate (separate, one session, keep, N times) and the medians
are reported. The children get OMP_NUM_THREADS=--threads (default 1; 0 leaves it as it is):
with two torch threads on 2 shared CPUs the same scoring took from 0.2 s to 12 s in trials, which
drowned the figure being measured. A table with the ratios of this run (one session / separate wall, peak memory)
goes to stdout; the figures to --json PATH. Exit status 2 when a run failed or outcomes differ.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(REPO_ROOT / "tests"))  # tinymodels: the tiny models the tests build

import scale  # noqa: E402  (bench/scale.py: the pairs, the child runs and their rusage)
from pytest_rmbench.collect import one_model_nodeid as base_nodeid  # noqa: E402  (the one-model node id)
import tinymodels  # noqa: E402

SEEDS = (0, 1, 2)
MAX_POSITIONS = 512
SCORE_TOLERANCE = 1e-5
COMMON = ["-p", "no:randomly", "--rm-no-store"]  # pytest_run adds -q --rm-no-cache -p no:cacheprovider --rm-report
MODES = ("separate", "one", "keep")
TITLES = {"separate": "three separate sessions", "one": "one session (one model at a time)",
          "keep": "one session, --rm-keep-models"}


def build_models(work: Path, family: str) -> dict[str, Path]:
    """llama: the tests' tiny Llama (a few hundred kB: the models' memory cannot show); minilm: the
    packaged all-MiniLM-L6-v2 with a seeded head (22.7M parameters, 87 MiB in float32 each), where
    holding one model at a time against three shows in the peak memory."""
    folders = {}
    for seed in SEEDS:
        name = f"{family}{seed}"
        if family == "minilm":
            folders[name] = tinymodels.build_minilm_classifier(work / name, seed=seed)
            continue
        folder = tinymodels.build_tiny_llama(work / name, seed=seed)
        config = json.loads((folder / "config.json").read_text())
        config["max_position_embeddings"] = MAX_POSITIONS
        (folder / "config.json").write_text(json.dumps(config, indent=2))
        folders[name] = folder
    return folders


def run_separate(items: Path, folders: dict[str, Path], work: Path, r: int) -> dict:
    runs = {name: scale.pytest_run(f"separate_{name}_{r}", items, folder, work, work, COMMON) for name, folder in folders.items()}
    return {"wall": sum(run["wall"] for run in runs.values()), "maxrss_bytes": max(run["maxrss_bytes"] for run in runs.values()),
            "cpu": sum(run["cpu"] for run in runs.values()), "runs": runs}


def run_one(label: str, items: Path, folders: dict[str, Path], work: Path, extra: list[str]) -> dict:
    (first, path), *rest = folders.items()
    more = [arg for name, folder in rest for arg in ("--rm-model", f"{name}={folder}")]
    return scale.pytest_run(label, items, f"{first}={path}", work, work, [*more, *COMMON, *extra])


# -- checks ---------------------------------------------------------------------------------------
def records_separate(separate: dict) -> dict:
    out = {}
    for name, run in separate["runs"].items():
        for it in run["report"]["items"]:
            if "model" in it:
                raise scale.RunFailed(f"one-model report of {name} has a 'model' key on its items")
            out[(name, it["nodeid"])] = it
    return out


def records_multi(run: dict) -> dict:
    return {(it["model"], base_nodeid(it["nodeid"], it["model"])): it for it in run["report"]["items"]}


def score_diffs(a: dict, b: dict) -> list[float]:
    """|chosen difference|, |rejected difference|; inf when only one side has a score."""
    out = []
    for field in ("chosen_score", "rejected_score"):
        x, y = a.get(field), b.get(field)
        out.append(float("inf") if (x is None) != (y is None) else 0.0 if x is None else abs(x - y))
    return out


def differences(reference: dict, other: dict) -> dict:
    both = set(reference) & set(other)
    missing = len(set(reference) ^ set(other))
    outcome = score = differing = 0
    worst = 0.0
    for key in both:
        a, b = reference[key], other[key]
        diffs = score_diffs(a, b)
        worst = max(worst, *diffs)
        outcome += a["outcome"] != b["outcome"]
        score += any(d > SCORE_TOLERANCE for d in diffs)
        differing += a["outcome"] != b["outcome"] or any(d > SCORE_TOLERANCE for d in diffs)
    return {"compared": len(both), "missing": missing, "outcome_differs": outcome, "score_differs": score,
            "differing": differing + missing, "max_abs_score_diff": worst}


def outcome_counts(records: dict) -> dict:
    counts: dict[str, dict[str, int]] = {}
    for (model, _), it in records.items():
        per = counts.setdefault(model, {})
        per[it["outcome"]] = per.get(it["outcome"], 0) + 1
    return counts


def accuracies_differ(separate: dict, run: dict) -> list[str]:
    out = []
    for name, one in separate["runs"].items():
        alone = one["report"]["overall"]["accuracy"]
        together = run["report"].get("models", {}).get(name, {}).get("overall", {}).get("accuracy")
        if together is None or abs(alone - together) > 1e-12:
            out.append(f"{name}: alone {alone}, in one session {together}")
    return out


def workers(report: dict) -> list[dict]:
    keys = ("worker", "model", "items", "loads", "freed", "peak_memory_bytes", "seconds", "load_seconds", "load_error")
    return [{k: w.get(k) for k in keys} for w in report.get("workers", [])]


# -- main -----------------------------------------------------------------------------------------
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=5000, help="pair items in the file (default 5000)")
    ap.add_argument("--repeats", type=int, default=1, help="alternate the modes N times, report medians (default 1)")
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--threads", type=int, default=1,
                    help="OMP_NUM_THREADS of the pytest children (default 1: a 32-wide model gains nothing from a "
                         "second thread, and one thread keeps the figures steady on shared CPUs; 0 leaves it unset)")
    ap.add_argument("--family", choices=("llama", "minilm"), default="llama",
                    help="the three models: tiny Llamas (default) or MiniLM classifiers (87 MiB each: memory shows)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (models, items, reports, logs)")
    args = ap.parse_args(argv)
    if args.threads > 0:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # scale.child_env passes it on to every child
    env = {"python": platform.python_version(), "cpus": len(os.sched_getaffinity(0)), "machine": platform.machine(),
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load1_before": os.getloadavg()[0]}
    import subprocess

    revision = subprocess.run(["git", "-C", str(REPO_ROOT), "describe", "--always", "--dirty"], capture_output=True,
                              text=True).stdout.strip()
    env["revision"] = revision or None  # what was measured ("-dirty": with uncommitted changes)
    try:
        import torch
        import transformers
        env.update(torch=torch.__version__, transformers=transformers.__version__)
    except ImportError:
        pass

    work = Path(tempfile.mkdtemp(prefix="rmbench-multi-"))
    runs: dict[str, list] = {m: [] for m in MODES}
    checks: dict[str, dict] = {}
    try:
        folders = build_models(work, args.family)
        items = work / "pairs.rmbench.jsonl"
        scale.write_jsonl(items, scale.make_pairs(args.items))
        for r in range(args.repeats):
            runs["separate"].append(run_separate(items, folders, work, r))
            runs["one"].append(run_one(f"one_{r}", items, folders, work, []))
            runs["keep"].append(run_one(f"keep_{r}", items, folders, work, ["--rm-keep-models"]))
        reference = records_separate(runs["separate"][-1])
        expected = args.items * len(SEEDS)
        if len(reference) != expected:
            raise scale.RunFailed(f"the separate sessions reported {len(reference)} items, expected {expected}")
        checks["outcomes"] = {"separate": outcome_counts(reference)}
        for mode in ("one", "keep"):
            for r, run in enumerate(runs[mode]):
                other = records_multi(run)
                diff = differences(reference, other)
                diff["items"] = len(run["report"]["items"])
                diff["accuracy_differs"] = accuracies_differ(runs["separate"][-1], run)
                checks.setdefault(mode, []).append(diff)
            checks["outcomes"][mode] = outcome_counts(records_multi(runs[mode][-1]))
    except scale.RunFailed as exc:
        print(str(exc), file=sys.stderr)
        return 2
    finally:
        if args.keep:
            print(f"kept: {work}")
        else:
            import shutil
            shutil.rmtree(work, ignore_errors=True)
    env["load1_after"] = os.getloadavg()[0]

    def median(mode: str, key: str) -> float:
        return statistics.median(run[key] for run in runs[mode])

    def report_peak(run: dict, mode: str) -> int | None:
        peaks = [w.get("peak_memory_bytes") for r in (run["runs"].values() if mode == "separate" else [run])
                 for w in r["report"]["workers"] if w.get("peak_memory_bytes") is not None]
        return max(peaks) if peaks else None

    summary = {}
    for mode in MODES:
        peaks = [report_peak(run, mode) for run in runs[mode]]
        summary[mode] = {"wall_seconds": median(mode, "wall"), "peak_rss_bytes": median(mode, "maxrss_bytes"),
                         "cpu_seconds": median(mode, "cpu"),
                         "report_peak_memory_bytes": statistics.median(peaks) if None not in peaks else None,
                         "wall_seconds_each": [run["wall"] for run in runs[mode]],
                         "peak_rss_bytes_each": [run["maxrss_bytes"] for run in runs[mode]]}
    sep = summary["separate"]
    ratios = {f"{mode}/separate_{what}": summary[mode][key] / sep[key]
              for mode in ("one", "keep") for what, key in (("wall", "wall_seconds"), ("peak_rss", "peak_rss_bytes"))}
    ratios["keep/one_peak_rss"] = summary["keep"]["peak_rss_bytes"] / summary["one"]["peak_rss_bytes"]
    ratios["keep/one_wall"] = summary["keep"]["wall_seconds"] / summary["one"]["wall_seconds"]
    last = {"separate": {name: workers(run["report"]) for name, run in runs["separate"][-1]["runs"].items()},
            "one": workers(runs["one"][-1]["report"]), "keep": workers(runs["keep"][-1]["report"])}
    commands = {"separate": [run["command"] for run in runs["separate"][-1]["runs"].values()],
                "one": runs["one"][-1]["command"], "keep": runs["keep"][-1]["command"]}
    differing = sum(c["differing"] for mode in ("one", "keep") for c in checks[mode])
    accuracy_off = [line for mode in ("one", "keep") for c in checks[mode] for line in c["accuracy_differs"]]

    # -- output --------------------------------------------------------------------------------
    print()
    print(f"{args.items} pairs x {len(SEEDS)} {args.family} reward models ({', '.join(folders)}), CPU float32, "
          f"{env['cpus']} CPUs, OMP_NUM_THREADS {env['OMP_NUM_THREADS']}, repeats {args.repeats} (medians)")
    print(f"{'mode':<36} {'wall s':>8} {'CPU s':>8} {'peak RSS MB':>12} {'report peak MB':>15}  loads/freed per model")
    for mode in MODES:
        s = summary[mode]
        ws = last[mode]
        if mode == "separate":
            lf = "(one model per process)"
        else:
            lf = " ".join(f"{w['model']}:{w['loads']}/{w['freed']}" for w in ws)
        rp = "-" if s["report_peak_memory_bytes"] is None else f"{s['report_peak_memory_bytes'] / 1e6:.0f}"
        print(f"{TITLES[mode]:<36} {s['wall_seconds']:>8.1f} {s['cpu_seconds']:>8.1f} {s['peak_rss_bytes'] / 1e6:>12.0f} {rp:>15}  {lf}")
    print()
    print(f"one session / separate: wall {ratios['one/separate_wall']:.2f}x, peak RSS {ratios['one/separate_peak_rss']:.2f}x")
    print(f"keep models / separate: wall {ratios['keep/separate_wall']:.2f}x, peak RSS {ratios['keep/separate_peak_rss']:.2f}x")
    print(f"keep models / one session: wall {ratios['keep/one_wall']:.2f}x, peak RSS {ratios['keep/one_peak_rss']:.2f}x")
    for mode in ("one", "keep"):
        c = checks[mode][-1]
        print(f"{TITLES[mode]} vs separate: {c['compared']} items compared, {c['differing']} differ "
              f"(outcome {c['outcome_differs']}, score > {SCORE_TOLERANCE:g} {c['score_differs']}, missing {c['missing']}), "
              f"max |score diff| {c['max_abs_score_diff']:.2e}")
    for name, counts in checks["outcomes"]["separate"].items():
        print(f"outcomes {name}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    for line in accuracy_off:
        print(f"per-model accuracy differs: {line}")
    print(f"1-minute load average: before {env['load1_before']:.2f}, after {env['load1_after']:.2f} on {env['cpus']} CPUs")
    if args.json:
        figures = {"environment": env, "items": args.items, "repeats": args.repeats,
                   "models": {f"{args.family}{seed}": (f"tests/tinymodels.py build_minilm_classifier(seed={seed})"
                                                        if args.family == "minilm" else
                                                        f"tests/tinymodels.py build_tiny_llama(seed={seed}), "
                                                        f"max_position_embeddings {MAX_POSITIONS}") for seed in SEEDS},
                   "peak_memory_source": "ru_maxrss of os.wait4 on each child (its own peak RSS)",
                   "summary": summary, "ratios": ratios, "checks": checks, "workers": last, "commands": commands}
        args.json.write_text(json.dumps(figures, indent=1, default=str) + "\n", encoding="utf-8")
        print(f"figures written to {args.json}")
    return 2 if differing or accuracy_off else 0


if __name__ == "__main__":
    sys.exit(main())
