#!/usr/bin/env python3
"""GPU throughput check of pytest-rmbench: a ~1B random-init Llama reward model, bf16, one GPU.

    python3 bench/gpu_check.py               # the real check (needs CUDA); < ~4 min on an H100
    python3 bench/gpu_check.py --skip-n0     # without the `-n 0` comparison run
    python3 bench/gpu_check.py --tiny        # CPU smoke test: tiny model, 60 pairs, float32

Steps:
1. versions (torch, transformers), the GPU's name, `nvidia-smi -L`;
2. in a child process: build a random-init LlamaForSequenceClassification (num_labels=1;
   hidden 2048, 16 layers, 16 heads, 8 kv heads, intermediate 5632, vocab 32000), seeded,
   constructed directly on the GPU in bfloat16, saved as safetensors next to a word-level
   tokenizer made on the spot (no download);
3. a seeded JSONL benchmark: 3000 pairs of ~500-token sequences, 4 subsets;
4. `python3 -m pytest [-p pytest_rmbench.plugin] FILE --rm-model=DIR -n 1 --rm-dtype bf16
   --rm-no-cache --rm-max-batch-tokens 131072 --rm-batch-size 256 --rm-report=R.json -q
   -p no:cacheprovider`, timed as a whole; figures from R.json;
5. in a child process: an 8192^3 bf16 matmul (3 warm-ups, mean of 10), the reference for the
   model's achieved FLOP/s;
6. the same pytest command with `-n 0` (unless --skip-n0 or too little time is left);
7. a figures table on stdout, and the same figures in $OUT/gpu_figures.json when OUT is set.

The package need not be installed: pytest runs with PYTHONPATH=<repo root>. `-p
pytest_rmbench.plugin` is passed only when pytest would not load the plugin by itself (no
`pytest11` entry point of pytest_rmbench visible to that interpreter, or plugin autoloading
disabled): passing it next to the entry point makes pytest stop with "Plugin already
registered under a different name".

The parent process never initialises CUDA (model building and the matmul run in child
processes), so the pytest runs get the GPU to themselves, even in exclusive-process mode.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SEED = 1234
SUBSETS = ("chat", "reasoning", "safety", "code")
SPECIAL_TOKENS = ("<s>", "</s>", "<pad>", "<unk>")
VOCAB_SIZE = 32000
WORDS = [f"w{i}" for i in range(VOCAB_SIZE - len(SPECIAL_TOKENS))]  # w0 .. w31995
# One BOS, then each message's content followed by EOS (no role markers: they are not in the vocab).
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ message['content'] + ' ' + eos_token + ' ' }}"
    "{% endfor %}"
)

FULL = {
    "model": dict(hidden_size=2048, num_hidden_layers=16, num_attention_heads=16, num_key_value_heads=8,
                  intermediate_size=5632, max_position_embeddings=2048),
    "pairs": 3000, "dtype": "bf16", "batch_size": 256, "max_batch_tokens": 131072,
    "prompt_words": (140, 160), "answer_words": (330, 370),
}
TINY = {
    "model": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                  intermediate_size=128, max_position_embeddings=2048),
    "pairs": 60, "dtype": "float32", "batch_size": 64, "max_batch_tokens": 16384,
    "prompt_words": (140, 160), "answer_words": (330, 370),
}


# ---------------------------------------------------------------------------------------
# child phases (these import torch; the parent does not)
# ---------------------------------------------------------------------------------------
def build_tokenizer(folder: Path):
    """A WordLevel tokenizer over a vocab built here: 4 special tokens + w0..w31995."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for word in WORDS:
        vocab[word] = len(vocab)
    assert len(vocab) == VOCAB_SIZE
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.add_special_tokens(list(SPECIAL_TOKENS))  # matched whole, before pre-tokenization
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    # Like Llama: add_special_tokens=True puts one <s> in front (the chat template path does not).
    core.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", vocab["<s>"])]
    )
    core.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with spaces
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        model_max_length=2048,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(str(folder))
    return tokenizer


def phase_build(work: Path, tiny: bool, layers: int | None = None) -> int:
    import torch
    import transformers
    from transformers import LlamaConfig, LlamaForSequenceClassification

    cuda = torch.cuda.is_available()
    info = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "transformers": transformers.__version__,
        "cuda_available": cuda,
        "gpu_name": torch.cuda.get_device_name(0) if cuda else None,
        "gpu_count": torch.cuda.device_count() if cuda else 0,
        "gpu_total_memory_bytes": torch.cuda.get_device_properties(0).total_memory if cuda else None,
    }
    print(f"[build] torch {info['torch']} (CUDA {info['torch_cuda']}), transformers {info['transformers']}, "
          f"GPU: {info['gpu_name'] or 'none'}", flush=True)
    if not tiny and not cuda:
        print("[build] the full check needs a CUDA GPU (use --tiny on a CPU)", file=sys.stderr)
        return 3
    shape = TINY if tiny else FULL
    model_shape = dict(shape["model"], **({"num_hidden_layers": layers} if layers else {}))
    # --tiny builds on the CPU in float32; the full model is made directly on the GPU in bf16
    device, dtype = ("cpu", torch.float32) if tiny else ("cuda", torch.bfloat16)
    folder = work / "model"
    start = time.perf_counter()
    tokenizer = build_tokenizer(folder)
    config = LlamaConfig(
        vocab_size=VOCAB_SIZE,
        **model_shape,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        num_labels=1,
        tie_word_embeddings=False,
    )
    torch.manual_seed(SEED)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = LlamaForSequenceClassification(config).eval()
    finally:
        torch.set_default_dtype(previous)
    if cuda and device == "cuda":
        torch.cuda.synchronize()
    built = time.perf_counter() - start
    params = sum(p.numel() for p in model.parameters())
    embedding = model.get_input_embeddings().weight.numel()
    model.save_pretrained(str(folder))  # safetensors (transformers 5 always writes them)
    saved = time.perf_counter() - start - built
    weights = sorted(p.name for p in folder.glob("*.safetensors"))
    if not weights:
        print(f"[build] no .safetensors file was written in {folder}", file=sys.stderr)
        return 4
    info.update({
        "model_dir": str(folder),
        "model_device_at_build": str(next(model.parameters()).device),
        "model_dtype": str(next(model.parameters()).dtype).replace("torch.", ""),
        "params": params,
        "non_embedding_params": params - embedding,
        "config": model_shape,
        "weights": weights,
        "weights_bytes": sum((folder / w).stat().st_size for w in weights),
        "build_seconds": built,
        "save_seconds": saved,
    })
    print(f"[build] {params:,} parameters ({params - embedding:,} without the embedding), "
          f"{info['model_dtype']} on {info['model_device_at_build']}; built in {built:.1f}s, saved in {saved:.1f}s "
          f"({info['weights_bytes'] / 2**30:.2f} GiB: {', '.join(weights)})", flush=True)
    (work / "build.json").write_text(json.dumps(info, indent=2))
    return 0


def phase_matmul(work: Path, size: int = 8192, warmups: int = 3, reps: int = 10) -> int:
    import torch

    out = work / "matmul.json"
    if not torch.cuda.is_available():
        out.write_text(json.dumps({"skipped": "no CUDA"}))
        print("[matmul] skipped: no CUDA", flush=True)
        return 0
    gen = torch.Generator(device="cuda").manual_seed(SEED)
    a = torch.randn(size, size, device="cuda", dtype=torch.bfloat16, generator=gen)
    b = torch.randn(size, size, device="cuda", dtype=torch.bfloat16, generator=gen)
    c = torch.empty(size, size, device="cuda", dtype=torch.bfloat16)
    for _ in range(warmups):
        torch.matmul(a, b, out=c)
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        torch.matmul(a, b, out=c)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    flop = 2 * size**3
    mean = sum(times) / len(times)
    result = {
        "size": size, "dtype": "bfloat16", "warmups": warmups, "reps": reps,
        "mean_seconds": mean, "best_seconds": min(times),
        "flops_mean": flop / mean, "flops_best": flop / min(times),
        "finite": bool(torch.isfinite(c).all().item()),
    }
    out.write_text(json.dumps(result, indent=2))
    print(f"[matmul] {size}^3 bf16: mean {mean * 1e3:.3f} ms -> {flop / mean / 1e12:.1f} TFLOP/s "
          f"(best {flop / min(times) / 1e12:.1f})", flush=True)
    return 0


# ---------------------------------------------------------------------------------------
# parent
# ---------------------------------------------------------------------------------------
def write_benchmark(path: Path, pairs: int, shape: dict) -> dict:
    rng = random.Random(SEED)
    lo_p, hi_p = shape["prompt_words"]
    lo_a, hi_a = shape["answer_words"]

    def text(lo: int, hi: int) -> str:
        return " ".join(rng.choices(WORDS, k=rng.randint(lo, hi)))

    words = 0
    with path.open("w", encoding="utf-8") as f:
        for i in range(pairs):
            prompt, chosen, rejected = text(lo_p, hi_p), text(lo_a, hi_a), text(lo_a, hi_a)
            words += 2 * len(prompt.split()) + len(chosen.split()) + len(rejected.split())
            f.write(json.dumps({"id": f"p{i:05d}", "subset": SUBSETS[i % len(SUBSETS)],
                                "prompt": prompt, "chosen": chosen, "rejected": rejected}) + "\n")
    # each sequence: <s> prompt </s> answer </s> -> words + 3 tokens
    return {"pairs": pairs, "sequences": 2 * pairs, "expected_tokens": words + 3 * 2 * pairs,
            "bytes": path.stat().st_size}


def child_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.setdefault("HF_HUB_OFFLINE", "1")  # nothing can be downloaded: never try
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env


PROBE = r"""
import importlib.metadata as md, importlib.util, json, os
eps = [f"{ep.name} = {ep.value}" for ep in md.entry_points(group="pytest11")
       if ep.value.split(":")[0].startswith("pytest_rmbench")]
spec = importlib.util.find_spec("pytest_rmbench")
print(json.dumps({"entry_points": eps,
                  "module_file": spec.origin if spec else None,
                  "xdist": importlib.util.find_spec("xdist") is not None,
                  "autoload_disabled": bool(os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"))}))
"""


def probe_plugin(env: dict) -> dict:
    """What the pytest subprocess will see: is pytest_rmbench an installed pytest11 plugin?"""
    proc = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise SystemExit(f"probe failed:\n{proc.stdout}\n{proc.stderr}")
    probe = json.loads(proc.stdout.strip().splitlines()[-1])
    probe["pass_p"] = not probe["entry_points"] or probe["autoload_disabled"]
    return probe


def pytest_command(bench: Path, model_dir: Path, report: Path, n: int | None, shape: dict, probe: dict, pass_p: bool) -> list[str]:
    cmd = [sys.executable, "-m", "pytest"]
    if pass_p:
        cmd += ["-p", "pytest_rmbench.plugin"]
        if probe["autoload_disabled"] and probe["xdist"] and n is not None:
            cmd += ["-p", "xdist.plugin"]
    cmd += [str(bench), f"--rm-model={model_dir}"]
    if n is not None and probe["xdist"]:
        cmd += ["-n", str(n)]
    cmd += ["--rm-dtype", shape["dtype"], "--rm-no-cache",
            "--rm-max-batch-tokens", str(shape["max_batch_tokens"]), "--rm-batch-size", str(shape["batch_size"]),
            f"--rm-report={report}", "-q", "-p", "no:cacheprovider"]
    return cmd


def run_pytest(label: str, work: Path, bench: Path, model_dir: Path, n: int, shape: dict, probe: dict,
               env: dict, timeout: float, params: int, non_embedding: int) -> dict:
    report = work / f"report_{label}.json"
    pass_p = probe["pass_p"]
    attempts = []
    for _ in range(2):
        report.unlink(missing_ok=True)
        cmd = pytest_command(bench, model_dir, report, n, shape, probe, pass_p)
        shown = " ".join(c if c != sys.executable else "python3" for c in cmd)
        print(f"[{label}] $ {shown}", flush=True)
        start = time.perf_counter()
        try:
            proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=timeout)
            rc, out = proc.returncode, proc.stdout + proc.stderr
        except subprocess.TimeoutExpired as exc:
            rc = "timeout"
            out = ((exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")) + \
                  ((exc.stderr or b"").decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or ""))
        wall = time.perf_counter() - start
        attempts.append({"command": shown, "exit_status": rc, "wall_seconds": wall})
        if rc != 0 and pass_p and "already registered" in out:
            print(f"[{label}] pytest loaded the plugin twice; retrying without -p", flush=True)
            pass_p = False
            continue
        break
    tail = out[-3000:]
    result = {"label": label, "n": n, "command": shown, "exit_status": rc, "wall_seconds": wall,
              "passed_p": pass_p, "attempts": attempts, "output_tail": tail}
    print(f"[{label}] exit status {rc}, {wall:.1f}s wall", flush=True)
    summary = [line for line in out.splitlines()
               if line.startswith(("worker ", "length baseline", "gate:", "warning:", "error:", "ERROR", "FAILED"))
               or line.startswith("=") and (" passed" in line or " failed" in line or " error" in line or "rmbench:" in line)
               or line.rstrip().endswith("s") and (" passed in " in line or " incorrect in " in line)]
    for line in summary[-12:]:
        print(f"[{label}]   {line}")
    if rc != 0 or not report.exists():
        print(f"[{label}] FAILED: exit status {rc}; output tail:\n{tail}", flush=True)
        result["ok"] = False
        return result
    data = json.loads(report.read_text())
    run, workers = data["run"], data["workers"]
    # With -n 1 there is one worker; should it have crashed and been replaced, the replacement
    # (which scored nothing) may be listed alone or next to it: use the one that scored most.
    w = max(workers, key=lambda x: (x.get("items") or 0, x.get("tokens") or 0)) if workers else {}
    seconds = w.get("seconds") or 0.0
    tokens = w.get("tokens") or 0
    padded = w.get("padded_tokens") or 0
    items = len(data.get("items") or [])
    outcomes = {}
    for it in data.get("items") or []:
        outcomes[it["outcome"]] = outcomes.get(it["outcome"], 0) + 1
    problems = []
    if "crashed worker" in out or "node down" in out:
        problems.append("an xdist worker crashed (see output_tail / the pytest output)")
    scored_items = sum(x.get("items") or 0 for x in workers)
    if scored_items < items:
        problems.append(f"the workers' figures cover {scored_items} of {items} items (worker figures lost?)")
    if not w.get("tokens"):
        problems.append("no tokens were scored according to the report's workers")
    if w.get("oom_halvings"):
        problems.append(f"{w['oom_halvings']} out-of-memory halving(s)")
    for problem in problems:
        print(f"[{label}] PROBLEM: {problem}", flush=True)
    if problems:
        crash = out.find("node down")
        if crash >= 0:
            result["crash_excerpt"] = out[crash:crash + 8000]
        import re

        errors = list(dict.fromkeys(m.group(0).strip() for m in re.finditer(r"^\s*[\w.]*(Error|Exception|Warning): .*$", out, re.M)))
        for line in errors[:8]:
            print(f"[{label}]   {line[:300]}", flush=True)
    result.update({
        "ok": True,
        "problems": problems,
        "worker_count": len(workers),
        "report_path": str(report),
        "items": items,
        "outcomes": outcomes,
        "overall_accuracy": (data.get("overall") or {}).get("accuracy"),
        "run_seconds": run.get("seconds"),
        "run_pairs_per_second": run.get("pairs_per_second"),
        "run_device": run.get("device"),
        "run_dtype": run.get("dtype"),
        "versions": run.get("versions"),
        "workers": workers,
        "worker": w.get("worker"),
        "worker_items": w.get("items"),
        "sequences": w.get("sequences"),
        "batches": w.get("batches"),
        "tokens": tokens,
        "padded_tokens": padded,
        "padding_efficiency": tokens / padded if padded else None,
        "scoring_seconds": seconds,
        "pairs_per_second_scoring": items / seconds if seconds else None,
        "pairs_per_second_wall": items / wall if wall else None,
        "tokens_per_second": tokens / seconds if seconds else None,
        "model_flops": 2 * params * tokens / seconds if seconds else None,
        "model_flops_non_embedding": 2 * non_embedding * tokens / seconds if seconds else None,
        "model_flops_padded": 2 * params * padded / seconds if seconds else None,
        "peak_memory_bytes": w.get("peak_memory_bytes"),
        "device": w.get("device"),
        "cuda_visible_devices": w.get("cuda_visible_devices"),
        "oom_halvings": w.get("oom_halvings"),
        "cached": w.get("cached"),
    })
    return result


def fmt(value, kind: str = "") -> str:
    if value is None:
        return "-"
    if kind == "tflops":
        return f"{value / 1e12:,.1f} TFLOP/s" if value >= 1e12 else f"{value / 1e9:,.2f} GFLOP/s"
    if kind == "gib":
        return f"{value / 2**30:,.2f} GiB"
    if kind == "pct":
        return f"{100 * value:.1f}%"
    if kind == "s":
        return f"{value:,.2f} s"
    if isinstance(value, dict):
        return ", ".join(f"{v} {k}" for k, v in sorted(value.items()))
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def table(runs: list[dict], matmul_flops: float | None) -> list[str]:
    rows = [
        ("pytest exit status", "exit_status", ""),
        ("wall seconds (whole pytest subprocess)", "wall_seconds", "s"),
        ("session seconds (run.seconds)", "run_seconds", "s"),
        ("scoring seconds (worker's seconds)", "scoring_seconds", "s"),
        ("items in the report", "items", ""),
        ("outcomes", "outcomes", ""),
        ("pairs/s, scoring (items / scoring s)", "pairs_per_second_scoring", ""),
        ("pairs/s, wall (items / wall s)", "pairs_per_second_wall", ""),
        ("pairs/s, plugin (run.pairs_per_second)", "run_pairs_per_second", ""),
        ("sequences / batches", None, ""),
        ("tokens (real) / padded tokens", None, ""),
        ("padding efficiency (tokens / padded)", "padding_efficiency", "pct"),
        ("tokens/s (tokens / scoring s)", "tokens_per_second", ""),
        ("model FLOP/s (2 x params x tokens / s)", "model_flops", "tflops"),
        ("  same, non-embedding params", "model_flops_non_embedding", "tflops"),
        ("  same, padded tokens", "model_flops_padded", "tflops"),
        ("model FLOP/s / matmul FLOP/s", None, ""),
        ("peak memory (worker)", "peak_memory_bytes", "gib"),
        ("device / dtype", None, ""),
        ("worker / CUDA_VISIBLE_DEVICES", None, ""),
        ("OOM halvings / cached", None, ""),
    ]
    cols = []
    for r in runs:
        col = []
        for label, key, kind in rows:
            if key is not None:
                col.append(fmt(r.get(key), kind))
            elif label.startswith("sequences"):
                col.append(f"{fmt(r.get('sequences'))} / {fmt(r.get('batches'))}")
            elif label.startswith("tokens (real)"):
                col.append(f"{fmt(r.get('tokens'))} / {fmt(r.get('padded_tokens'))}")
            elif label.startswith("model FLOP/s /"):
                mf = r.get("model_flops")
                col.append(fmt(mf / matmul_flops, "pct") if mf and matmul_flops else "-")
            elif label.startswith("device"):
                col.append(f"{r.get('device') or '-'} / {r.get('run_dtype') or '-'}")
            elif label.startswith("worker"):
                col.append(f"{r.get('worker') or '-'} / {r.get('cuda_visible_devices')!r}")
            else:
                col.append(f"{fmt(r.get('oom_halvings'))} / {fmt(r.get('cached'))}")
        cols.append(col)
    head = [f"-n {r['n']}" for r in runs]
    w0 = max(len(label) for label, _, _ in rows)
    widths = [max([len(h)] + [len(v) for v in col]) for h, col in zip(head, cols)]
    lines = [f"  {'':<{w0}}  " + "  ".join(f"{h:>{w}}" for h, w in zip(head, widths))]
    lines.append("  " + "-" * (w0 + sum(widths) + 2 * len(widths)))
    for i, (label, _, _) in enumerate(rows):
        lines.append(f"  {label:<{w0}}  " + "  ".join(f"{col[i]:>{w}}" for col, w in zip(cols, widths)))
    return lines


def save_figures(figures: dict, runs: list[dict]) -> None:
    """$OUT/gpu_figures.json (and the JSON reports) when OUT is set; also after a failure."""
    out = os.environ.get("OUT")
    if not out:
        return
    for r in runs:
        figures.setdefault(f"run_{r['label']}", r)
    try:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "gpu_figures.json").write_text(json.dumps(figures, indent=2, default=str))
        for r in runs:
            if r.get("report_path") and Path(r["report_path"]).exists():
                shutil.copy(r["report_path"], Path(out) / Path(r["report_path"]).name)
        print(f"figures written to {Path(out) / 'gpu_figures.json'}")
    except OSError as exc:
        print(f"could not write the figures to {out!r}: {exc}")


def run_child(phase: str, work: Path, tiny: bool, env: dict, timeout: float, extra: list[str] = ()) -> int:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--phase", phase, "--work", str(work)] + (["--tiny"] if tiny else []) + list(extra)
    try:
        return subprocess.run(cmd, env=env, timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        print(f"[{phase}] timed out after {timeout:.0f}s", flush=True)
        return 124


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="CPU smoke test: tiny model, 60 pairs, float32")
    ap.add_argument("--skip-n0", action="store_true", help="do not run the `-n 0` (no xdist) comparison")
    ap.add_argument("--layers", type=int, default=None, help="decoder layers of the full model (default 16: 0.82B params; 20: 1.01B)")
    ap.add_argument("--pairs", type=int, default=None, help="number of pairs (default 3000, --tiny 60)")
    ap.add_argument("--budget", type=float, default=420.0,
                    help="hard limit in seconds for the whole script: every step gets at most what is left, "
                         "and the -n 0 run is skipped when it would not fit (default 420)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder and print its path")
    ap.add_argument("--phase", choices=("build", "matmul"), help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.phase == "build":
        return phase_build(args.work, args.tiny, args.layers)
    if args.phase == "matmul":
        return phase_matmul(args.work)

    t0 = time.perf_counter()

    def remaining() -> float:
        return args.budget - (time.perf_counter() - t0)

    shape = TINY if args.tiny else FULL
    pairs = args.pairs or shape["pairs"]
    env = child_env()
    figures: dict = {"mode": "tiny" if args.tiny else "full", "repo_root": str(REPO_ROOT), "argv": sys.argv[1:],
                     "parent_cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}
    work = Path(tempfile.mkdtemp(prefix="rmbench-gpu-check-"))
    status = 0
    runs: list[dict] = []
    try:
        # 1. versions, GPU
        print(f"== pytest-rmbench GPU check ({figures['mode']} mode), repo {REPO_ROOT}, work dir {work}")
        print(f"python {sys.version.split()[0]} ({sys.executable}); CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r}")
        smi = shutil.which("nvidia-smi")
        if smi:
            proc = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=60)
            figures["nvidia_smi_L"] = [line for line in proc.stdout.splitlines() if line.strip()]
        else:
            figures["nvidia_smi_L"] = []
        print("nvidia-smi -L:" + ("".join(f"\n  {line}" for line in figures["nvidia_smi_L"]) or " (no nvidia-smi)"))
        probe = probe_plugin(env)
        figures["plugin_probe"] = probe
        print(f"pytest_rmbench imports from {probe['module_file']}; pytest11 entry points: {probe['entry_points'] or 'none'}; "
              f"xdist: {probe['xdist']} -> {'pass' if probe['pass_p'] else 'do not pass'} -p pytest_rmbench.plugin", flush=True)

        # 2. model + tokenizer
        rc = run_child("build", work, args.tiny, env, timeout=max(30.0, min(240.0, remaining() - 60)),
                       extra=["--layers", str(args.layers)] if args.layers else [])
        if rc != 0:
            print(f"model build failed (exit status {rc})")
            return 2
        build = json.loads((work / "build.json").read_text())
        figures["build"] = build
        params, non_embedding = build["params"], build["non_embedding_params"]

        # 3. benchmark file
        bench = work / "gpucheck.rmbench.jsonl"
        figures["benchmark"] = write_benchmark(bench, pairs, shape)
        print(f"benchmark: {pairs} pairs, {figures['benchmark']['sequences']} sequences, "
              f"~{figures['benchmark']['expected_tokens'] / figures['benchmark']['sequences']:.0f} tokens each "
              f"({figures['benchmark']['bytes'] / 2**20:.1f} MiB)", flush=True)

        # 4. pytest -n 1
        first = run_pytest("n1", work, bench, Path(build["model_dir"]), 1, shape, probe, env,
                           timeout=max(30.0, min(300.0, remaining() - 30)),
                           params=params, non_embedding=non_embedding)
        runs.append(first)
        if not first.get("ok"):
            status = 1
        else:
            cvd = first.get("cuda_visible_devices")
            preset = [d.strip() for d in (os.environ.get("CUDA_VISIBLE_DEVICES") or "").split(",") if d.strip()]
            if not build.get("cuda_available"):
                expect = None
            else:  # the plugin hands the worker the first visible GPU: "0", or the first preset entry
                expect = preset[0] if preset else "0"
            note = ("as expected" if cvd == expect else f"UNEXPECTED (expected {expect!r})") if expect else \
                   "(no GPU: not checked)"
            figures["n1_cuda_visible_devices_check"] = {"value": cvd, "expected": expect, "ok": (cvd == expect) if expect else None}
            if expect and cvd != expect:
                first.setdefault("problems", []).append(f"the -n 1 worker reported CUDA_VISIBLE_DEVICES={cvd!r}, expected {expect!r}")
            print(f"[n1] worker {first.get('worker')!r} reported cuda_visible_devices={cvd!r} {note}", flush=True)

        # 5. matmul reference
        rc = run_child("matmul", work, args.tiny, env, timeout=max(20.0, min(120.0, remaining())))
        matmul = json.loads((work / "matmul.json").read_text()) if (work / "matmul.json").exists() else {"error": f"exit status {rc}"}
        figures["matmul"] = matmul
        matmul_flops = matmul.get("flops_mean")

        # 6. pytest -n 0, if there is time
        need = 1.3 * first["wall_seconds"] + 15
        if args.skip_n0:
            figures["n0_skipped"] = "--skip-n0"
        elif need > remaining():  # (also run after a failed -n 1: it tells xdist problems from the rest)
            figures["n0_skipped"] = (f"not enough time: {args.budget - remaining():.0f}s used, ~{need:.0f}s needed, "
                                     f"budget {args.budget:.0f}s")
        else:
            second = run_pytest("n0", work, bench, Path(build["model_dir"]), 0, shape, probe, env,
                                timeout=max(30.0, remaining()), params=params, non_embedding=non_embedding)
            runs.append(second)
            if not second.get("ok"):
                status = 1
        if "n0_skipped" in figures:
            print(f"[n0] skipped: {figures['n0_skipped']}")

        # 7. figures
        for r in runs:
            figures[f"run_{r['label']}"] = r
        if matmul_flops:
            for r in runs:
                if r.get("model_flops"):
                    r["fraction_of_matmul"] = r["model_flops"] / matmul_flops
        figures["total_seconds"] = time.perf_counter() - t0

        print()
        print("=" * 100)
        print(f"FIGURES ({figures['mode']} mode)")
        print(f"  torch {build['torch']} (CUDA {build['torch_cuda']}), transformers {build['transformers']}, "
              f"python {build['python']}")
        print(f"  GPU: {build['gpu_name'] or 'none'}"
              + (f" ({build['gpu_total_memory_bytes'] / 2**30:.1f} GiB)" if build.get("gpu_total_memory_bytes") else ""))
        for line in figures["nvidia_smi_L"]:
            print(f"    {line}")
        print(f"  model: LlamaForSequenceClassification {build['config']}, vocab {VOCAB_SIZE}, {build['model_dtype']}")
        print(f"  params: {params:,} ({params / 1e9:.3f} B); non-embedding {non_embedding:,}")
        print(f"  benchmark: {pairs} pairs, {figures['benchmark']['sequences']} sequences, "
              f"batch limits: {shape['batch_size']} sequences / {shape['max_batch_tokens']} padded tokens, dtype {shape['dtype']}")
        if matmul_flops:
            print(f"  matmul 8192^3 bf16: mean {matmul['mean_seconds'] * 1e3:.3f} ms over {matmul['reps']} "
                  f"-> {fmt(matmul_flops, 'tflops')} (best {fmt(matmul['flops_best'], 'tflops')})")
        else:
            print(f"  matmul: {matmul.get('skipped') or matmul.get('error')}")
        check = figures.get("n1_cuda_visible_devices_check") or {}
        verdict = {True: "OK", False: f"UNEXPECTED, expected {check.get('expected')!r}", None: "not checked"}[check.get("ok")]
        print(f"  -n 1 worker CUDA_VISIBLE_DEVICES: {first.get('cuda_visible_devices')!r} ({verdict})")
        print()
        figures["table"] = table(runs, matmul_flops)
        for line in figures["table"]:
            print(line)
        if "n0_skipped" in figures:
            print(f"  (-n 0 not run: {figures['n0_skipped']})")
        print(f"  total script seconds: {figures['total_seconds']:.1f}")
        print("=" * 100)
        problems = [f"-n {r['n']}: {p}" for r in runs for p in r.get("problems") or []]
        problems += [f"-n {r['n']}: pytest exit status {r['exit_status']}" for r in runs if not r.get("ok")]
        figures["problems"] = problems
        if problems:
            status = 1
        print("RESULT:", "OK" if status == 0 else "FAILED")
        for problem in problems:
            print(f"  problem: {problem}")

        return status
    finally:
        save_figures(figures, runs)
        if args.keep:
            print(f"kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
