"""Items/s and peak memory of a vision-language reward model on image items, CPU.

    python bench/vl_scale.py [--items 5000] [--subset 400] [--repeats 2] [--max-pixels 12544] [--threads 1] [--out FILE]

Builds the tiny random Qwen2-VL with a trl value head of tests/vlmodels.py (vision depth 1,
text 2 layers of width 32) and --items pair items, each with its own PNG (random sizes
48-200 px, random rectangles, seeded; resized by the model's image processor to at most
--max-pixels pixels: up to 64 patches, 16 image tokens). Then, in one run:

1. the whole suite through pytest in a subprocess
   (`python -m pytest ITEMS --rm-model=M --rm-no-cache --rm-no-store -q --rm-report=R`):
   wall seconds, items/s over the wall, and the child's peak RSS (os.wait4), beside a
   `--collect-only` run of the same file (what collection alone holds);
2. in this process, on the first --subset items, the adapter as the plugin drives it:
   (a) batched: chunks of 128 items, engine.score_requests with the default limits, the
   images decoded and preprocessed in `prepare` (the CPU default);
   (b) batched as (a) with the images made in the adapter's background thread while the model
   runs (VisionInputs.overlap = True, the default on a GPU);
   (c) one item at a time: each item's two requests prepared and scored alone (batch 1);
   alternating a, b, c, a, b, c ... and taking each one's median; prepare (image header reads,
   tokenizing, and without the thread the decoding and preprocessing) and model seconds are
   timed apart (with the thread, the model seconds include waiting for images), and the scores
   of all three are compared.
--hidden, --layers, --vision-dim and --depth make the model larger (default: the tests' size).

Writes a JSON (default bench/results/vl-scale-2cpu.json) and prints the figures. The default
run takes a few minutes on 2 CPUs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "tests"))  # vlmodels: the tiny Qwen2-VL builder the tests use

WORDS = ("the a image is red blue green square cat dog sits on mat runs in park what colour picture describe "
         "it one two three four yes no maybe").split()


def make_images(folder: Path, count: int, seed: int = 0) -> list[Path]:
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        size = (rng.randint(48, 200), rng.randint(48, 200))
        image = Image.new("RGB", size, tuple(rng.randrange(256) for _ in range(3)))
        draw = ImageDraw.Draw(image)
        for _ in range(4):
            x, y = rng.randrange(size[0]), rng.randrange(size[1])
            draw.rectangle([x, y, x + rng.randint(5, 40), y + rng.randint(5, 40)], fill=tuple(rng.randrange(256) for _ in range(3)))
        path = folder / f"{i:05d}.png"
        image.save(path)
        paths.append(path)
    return paths


def write_items(path: Path, images: list[Path], seed: int = 0) -> None:
    rng = random.Random(seed)

    def text(lo: int, hi: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))

    with open(path, "w", encoding="utf-8") as fh:
        for i, image in enumerate(images):
            row = {"id": f"v{i:05d}", "subset": ("colour", "shape", "scene")[i % 3], "prompt": text(4, 12),
                   "chosen": text(3, 30), "rejected": text(3, 30), "images": [f"images/{image.name}"]}
            fh.write(json.dumps(row) + "\n")


THREADS = [1]  # torch threads here and in the pytest child (--threads)


def child_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS=str(THREADS[0]))
    return env


def run_child(cmd: list[str], cwd: Path, log: Path) -> dict:
    """Wall seconds, exit code and this child's own peak RSS (os.wait4)."""
    print("$", " ".join("python" if c == sys.executable else c for c in cmd), flush=True)
    with open(log, "w", encoding="utf-8") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=child_env(), stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    rc = os.waitstatus_to_exitcode(status)
    tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-1:]
    if rc not in (0, 1):
        raise SystemExit(f"exit code {rc}: {log.read_text()[-4000:]}")
    print(f"   {wall:.1f} s, peak RSS {usage.ru_maxrss / 1024:.0f} MiB, exit code {rc}", flush=True)
    return {"wall_seconds": wall, "rc": rc, "peak_rss_bytes": usage.ru_maxrss * 1024, "last_line": tail[0] if tail else ""}


def suite_runs(work: Path, model: Path, items_file: Path, count: int) -> dict:
    base = [sys.executable, "-m", "pytest", items_file.name, f"--rm-model={model}", "--rm-no-cache", "--rm-no-store",
            "-p", "no:cacheprovider", "-q"]
    collect = run_child(base + ["--collect-only"], work, work / "log_collect.txt")
    scored = run_child(base + ["--rm-report=report.json"], work, work / "log_run.txt")
    report = json.loads((work / "report.json").read_text())
    outcomes = [item["outcome"] for item in report["items"]]
    worker = report["workers"][0]
    return {
        "command": " ".join(["python"] + base[1:] + ["--rm-report=report.json"]).replace(str(work) + "/", ""),
        "items": count, "collect_only": collect, "run": scored,
        "items_per_second_wall": count / scored["wall_seconds"],
        "engine_seconds": worker.get("seconds"), "sequences": worker.get("sequences"), "batches": worker.get("batches"),
        "errors": outcomes.count("error"), "scored": len(outcomes) - outcomes.count("error"),
    }


class Timed:
    """The adapter with its prepare and score_batch seconds counted."""

    def __init__(self, model):
        self.model, self.prepare_seconds, self.model_seconds = model, 0.0, 0.0
        for name in ("name", "kind", "dtype", "device", "pairwise", "steps", "images", "versions"):
            setattr(self, name, getattr(model, name))

    def prepare(self, requests):
        start = time.perf_counter()
        try:
            return self.model.prepare(requests)
        finally:
            self.prepare_seconds += time.perf_counter() - start

    def score_batch(self, batch):
        start = time.perf_counter()
        try:
            return self.model.score_batch(batch)
        finally:
            self.model_seconds += time.perf_counter() - start


def in_process(model_dir: Path, items_file: Path, subset: int, repeats: int) -> dict:
    from pytest_rmbench import engine
    from pytest_rmbench.items import Rules
    from pytest_rmbench.items.files import validate_item
    from pytest_rmbench.items.images import item_file
    from pytest_rmbench.models import vision
    from pytest_rmbench.models.base import ModelSpec

    rows = [json.loads(line) for line in items_file.read_text().splitlines()[:subset]]
    with item_file(str(items_file)):
        items = [validate_item(row, i, 1, items_file.name) for i, row in enumerate(rows)]
    model = vision.build(ModelSpec(str(model_dir), kind="vision", device="cpu"))
    chunks = [items[i:i + 128] for i in range(0, len(items), 128)]

    def batched(overlap: bool):
        def run():
            model.inputs.overlap = overlap
            timed, found = Timed(model), {}
            for chunk in chunks:
                requests = [r for it in chunk for r in it.requests(Rules())]
                found.update(engine.score_requests(timed, requests, engine.BatchLimits()))
            return timed, found
        return run

    def single():
        model.inputs.overlap = False  # one item: nothing to overlap with
        timed, found = Timed(model), {}
        for it in items:
            found.update(engine.score_requests(timed, it.requests(Rules()), engine.BatchLimits(max_sequences=1)))
        return timed, found

    modes = {"batched": batched(False), "batched_thread": batched(True), "single": single}
    return compare(modes, len(items), repeats)


def compare(modes: dict, count: int, repeats: int) -> dict:
    """Each mode `repeats` times, alternating; medians, and the scores compared with the one-at-a-time run."""
    runs = {name: [] for name in modes}
    scores = {}
    for _ in range(repeats):
        for name, fn in modes.items():
            start = time.perf_counter()
            timed, found = fn()
            runs[name].append((time.perf_counter() - start, timed.prepare_seconds, timed.model_seconds))
            scores[name] = found
    out = {}
    for name, values in runs.items():
        wall, prep, model = (statistics.median(v[i] for v in values) for i in range(3))
        out[name] = {"seconds": values, "median_seconds": wall, "prepare_seconds": prep, "model_seconds": model,
                     "items_per_second": count / wall}
        print(f"   {name}: {count / wall:.1f} items/s (prepare {prep:.2f} s, model {model:.2f} s of {wall:.2f} s)", flush=True)
    diffs = [abs(scores[name][r].score - scores["single"][r].score) for name in modes for r in scores["single"]]
    out["ratio_batched_over_single"] = out["batched"]["items_per_second"] / out["single"]["items_per_second"]
    out["ratio_thread_over_no_thread"] = out["batched_thread"]["items_per_second"] / out["batched"]["items_per_second"]
    out["max_score_difference"] = max(diffs)
    out["items"] = count
    return out


def environment(threads: int) -> dict:
    import torch
    import transformers

    return {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
            "cpu_count": os.cpu_count(), "affinity": len(os.sched_getaffinity(0)), "torch_threads": threads,
            "loadavg_1min_start": os.getloadavg()[0]}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--subset", type=int, default=400, help="items of the in-process batched / one-at-a-time comparison")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--max-pixels", type=int, default=112 * 112)
    parser.add_argument("--hidden", type=int, default=32, help="text width (a multiple of 32)")
    parser.add_argument("--layers", type=int, default=2, help="text layers")
    parser.add_argument("--vision-dim", type=int, default=16, help="vision tower width")
    parser.add_argument("--depth", type=int, default=1, help="vision tower layers")
    parser.add_argument("--skip-suite", action="store_true", help="only the in-process comparison")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads, here and in the pytest child (OMP_NUM_THREADS); 1 leaves the other core "
                             "of 2 to the image thread, and a tiny model gains little from a second one")
    parser.add_argument("--out", default=str(REPO_ROOT / "bench" / "results" / "vl-scale-2cpu.json"))
    args = parser.parse_args(argv)
    import torch

    import vlmodels

    torch.set_num_threads(args.threads)
    THREADS[0] = args.threads
    with tempfile.TemporaryDirectory(prefix="rmbench-vl-") as tmp:
        work = Path(tmp)
        sizes = {"hidden": args.hidden, "layers": args.layers, "vision_dim": args.vision_dim, "depth": args.depth}
        model = vlmodels.build_tiny_qwen2_vl(work / "model", value_head=True, max_pixels=args.max_pixels, **sizes)
        items_file = work / "vl.rmbench.jsonl"
        write_items(items_file, make_images(work / "images", args.items))
        result = {"environment": environment(args.threads), "max_pixels": args.max_pixels, "model_sizes": sizes,
                  "image_bytes_on_disk": sum(p.stat().st_size for p in (work / "images").iterdir())}
        if not args.skip_suite:
            print(f"suite: {args.items} items, one PNG each", flush=True)
            result["suite"] = suite_runs(work, model, items_file, args.items)
        print(f"in process: the first {args.subset} items, batched and one at a time", flush=True)
        result["in_process"] = in_process(model, items_file, args.subset, args.repeats)
    result["environment"]["loadavg_1min_end"] = os.getloadavg()[0]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    s, p = result.get("suite"), result["in_process"]
    if s:
        print(f"{s['items']} items: {s['items_per_second_wall']:.1f} items/s over the whole pytest run "
              f"({s['run']['wall_seconds']:.1f} s), peak RSS {s['run']['peak_rss_bytes'] / 2**20:.0f} MiB "
              f"(collection alone {s['collect_only']['peak_rss_bytes'] / 2**20:.0f} MiB)")
    print(f"{p['items']} items in process: batched {p['batched']['items_per_second']:.1f} items/s; batched / one at a "
          f"time: {p['ratio_batched_over_single']:.2f}x; image thread / none: {p['ratio_thread_over_no_thread']:.2f}x; "
          f"written to {args.out}")
    return result


if __name__ == "__main__":
    main()
