"""Peak memory and time of collecting a 66,000-row suite in one process.

    python bench/suite_memory.py [--rows-per-language 2869] [--answer-chars 900] [--keep]

Writes M-RewardBench-shaped parquet files (23 languages x --rows-per-language rows, the
real suite's size is 23 x 2,869 = 65,987 rows; prompts of about 300 characters and
answers of about --answer-chars characters, seeded) under a temporary folder, then runs

    python -m pytest --collect-only -q --rm-bench m-rewardbench --rm-data-dir DIR

in a subprocess and reports its wall seconds and peak resident memory (from os.wait4 on
that child alone), beside the size of the data on disk and in memory as plain strings.
Target (issue "Benchmark library"): peak under 1.5 GB.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

SUBSETS = ("alpacaeval-easy", "mt-bench-hard", "llmbar-natural", "refusals-dangerous", "xstest-should-respond",
           "donotanswer", "math-prm", "hep-python")


def write_data(folder: str, rows_per_language: int, answer_chars: int, seed: int = 0) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from pytest_rmbench.suites.mrewardbench import LANGUAGES

    rng = random.Random(seed)
    words = ["lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit", "sed", "do"]

    def text(chars: int) -> str:
        out, n = [], 0
        while n < chars:
            w = rng.choice(words)
            out.append(w)
            n += len(w) + 1
        return " ".join(out)

    string_bytes = 0
    for lang in LANGUAGES:
        rows = {"id": [], "language": [], "prompt": [], "chosen": [], "rejected": [], "chosen_model": [],
                "rejected_model": [], "source": []}
        for i in range(rows_per_language):
            prompt, chosen, rejected = text(300), text(answer_chars), text(int(answer_chars * 0.8))
            string_bytes += len(prompt) + len(chosen) + len(rejected)
            for key, value in (("id", i), ("language", lang), ("prompt", prompt), ("chosen", chosen),
                               ("rejected", rejected), ("chosen_model", "m1"), ("rejected_model", "m2"),
                               ("source", SUBSETS[i % len(SUBSETS)])):
                rows[key].append(value)
        os.makedirs(os.path.join(folder, lang), exist_ok=True)
        pq.write_table(pa.table(rows), os.path.join(folder, lang, "test-00000-of-00001.parquet"))
    return string_bytes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows-per-language", type=int, default=2869)
    parser.add_argument("--answer-chars", type=int, default=900)
    parser.add_argument("--keep", action="store_true", help="keep the generated folder")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="rmbench-suite-memory-")
    try:
        data = os.path.join(work, "data")
        string_bytes = write_data(data, args.rows_per_language, args.answer_chars)
        on_disk = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(data) for f in fs)
        env = dict(os.environ, HF_HUB_OFFLINE="1")
        env.pop("PYTEST_ADDOPTS", None)
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
             "--rm-bench", "m-rewardbench", f"--rm-data-dir={data}"],
            cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        output = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        lines = output.decode(errors="replace").splitlines()
        collected = sum(1 for line in lines if line.startswith("m-rewardbench::"))
        rows = 23 * args.rows_per_language
        print(f"rows: {rows:,} ({collected:,} collected as tests)")
        print(f"data: {on_disk / 2**20:.1f} MiB of parquet, {string_bytes / 2**20:.1f} MiB of text")
        print(f"collection: {seconds:.1f} s wall, peak RSS {usage.ru_maxrss / 2**20:.2f} GiB (target < 1.5 GB)")
        if os.waitstatus_to_exitcode(status) != 0 or collected != rows:
            print("\n".join(lines[-20:]))
            return 2
        return 0
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
