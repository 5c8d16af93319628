"""Start-up cost of this checkout against another commit, measured in the same run.

    python bench/startup.py [--against REV] [--items 100000] [--repeat 5] [--json PATH]

Two figures, each timed for both trees, alternating (A, B, A, B, ...) so that load on the
machine hits both alike; the median wall seconds and the ratio this/against are printed:

1. `python -m pytest FILE --collect-only -q` on a JSONL file of --items small items.
2. `python -m pytest benchmarks/core.rmbench.yaml --rm-model=builtin:length` (the bundled
   suite, no store, no cache): what a user's first command costs.

The other commit is checked out with `git worktree` into a temporary folder and imported
through PYTHONPATH (the installed package is this checkout, so the subprocess for the other
tree puts it first). Exit status 0 when both ran; the ratio is information, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def items_file(folder: str, count: int) -> str:
    path = os.path.join(folder, "many.rmbench.jsonl")
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(count):
            fh.write(json.dumps({"id": i, "subset": f"s{i % 20}", "prompt": f"question {i}",
                                 "chosen": f"a good answer {i}", "rejected": f"bad {i}"}) + "\n")
    return path


def timed(tree: str, args: list[str], cwd: str) -> float:
    env = dict(os.environ, PYTHONPATH=tree)  # byte code cached, as a user has it (pytest rewrites plugin asserts)
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=cwd, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seconds = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        sys.exit(f"pytest failed in {tree} (exit {proc.returncode}):\n{proc.stdout[-3000:]}")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", default="HEAD", help="the commit to compare with (default HEAD)")
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", help="write the figures here too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        other = os.path.join(tmp, "other")
        subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", "-q", other, args.against], check=True)
        try:
            work = os.path.join(tmp, "work")
            os.mkdir(work)
            big = items_file(work, args.items)
            core = os.path.join(ROOT, "benchmarks", "core.rmbench.yaml")
            runs = {
                "collect": ["--collect-only", "-q", big],
                "core-length": [core, "-q", "--rm-model=builtin:length", "--rm-no-store", "--rm-no-cache",
                                f"--rootdir={work}"],
            }
            figures = {}
            for name, run_args in runs.items():
                times = {"this": [], "against": []}
                for _ in range(args.repeat):
                    times["this"].append(timed(ROOT, run_args, work))
                    times["against"].append(timed(other, run_args, work))
                this, against = statistics.median(times["this"]), statistics.median(times["against"])
                figures[name] = {"this_s": this, "against_s": against, "ratio": this / against, "runs": times}
                print(f"{name:12s} this {this:7.2f} s   {args.against} {against:7.2f} s   ratio {this / against:.3f}")
        finally:
            subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force", other], check=False)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"against": args.against, "items": args.items, "figures": figures}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
