"""Seconds to fingerprint a local model whose weights are one large safetensors file.

    python bench/fingerprint.py [--sizes 1,16] [--dir DIR] [--keep]

For each size (GiB) a model folder (config.json and model.safetensors: a real file of
pseudo-random bytes, not a sparse one) is written to a temporary folder under --dir (default:
the system's temporary folder), and pytest_rmbench.models.fingerprint.local_model_fingerprint
is timed:

  cold, from disk:  hash cache empty, the file's pages dropped from the page cache first
                    (posix_fadvise DONTNEED after fsync; "n/a" where that is not available);
  cold, in memory:  hash cache empty again, the file now in the page cache (as right after a
                    download or a copy);
  warm:             the digest comes from the hash cache (best of 5).

A size that does not fit on the folder's disk (with 1 GiB to spare) is skipped with a note.
The hash cache is a file in the temporary folder, never the per-user one. Not part of the test
suite.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from pytest_rmbench.models import fingerprint as fp  # noqa: E402
from pytest_rmbench.models.base import ModelSpec  # noqa: E402

GiB = 2**30


def write_model(folder: str, size: int) -> str:
    os.makedirs(folder)
    with open(os.path.join(folder, "config.json"), "w") as fh:
        json.dump({"architectures": ["LlamaForSequenceClassification"]}, fh)
    header = json.dumps({"model.weight": {"dtype": "U8", "shape": [size], "data_offsets": [0, size]}}).encode()
    header += b" " * (-len(header) % 8)
    block = os.urandom(fp.BLOCK)  # repeated: real bytes on disk, without spending minutes in urandom
    weights = os.path.join(folder, "model.safetensors")
    with open(weights, "wb") as fh:
        fh.write(len(header).to_bytes(8, "little") + header)
        left = size
        while left:
            n = min(left, len(block))
            fh.write(block[:n])
            left -= n
        fh.flush()
        os.fsync(fh.fileno())
    return weights


def drop_from_page_cache(path: str) -> bool:
    if not hasattr(os, "posix_fadvise"):
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    return True


def timed(spec: ModelSpec, hash_cache: str) -> tuple[float, str]:
    start = time.perf_counter()
    value = fp.local_model_fingerprint(spec, "classifier", hash_cache=hash_cache)
    return time.perf_counter() - start, value


def bench(size_gib: float, parent: str, keep: bool) -> dict | None:
    size = int(size_gib * GiB)
    free = shutil.disk_usage(parent).free
    if size + GiB > free:
        print(f"{size_gib:g} GiB: skipped, {free / GiB:.1f} GiB free in {parent} (needs {size_gib + 1:g})")
        return None
    work = tempfile.mkdtemp(prefix="rmbench-fingerprint-", dir=parent)
    try:
        model = os.path.join(work, "model")
        start = time.perf_counter()
        weights = write_model(model, size)
        write_s = time.perf_counter() - start
        # a digest is remembered only for a file last changed RACY_NS before hashing began
        settle = os.stat(weights).st_ctime_ns + fp.RACY_NS - time.time_ns()
        if settle > 0:
            time.sleep(settle / 1e9 + 0.05)
        spec = ModelSpec(model=model, kind="classifier")
        hashes = os.path.join(work, "file-hashes.sqlite")
        dropped = drop_from_page_cache(weights)
        cold_disk, first = timed(spec, hashes) if dropped else (None, None)
        os.remove(hashes)
        cold_mem, second = timed(spec, hashes)
        warm_runs = [timed(spec, hashes) for _ in range(5)]
        assert all(value == second for _, value in warm_runs) and first in (None, second)
        warm = min(s for s, _ in warm_runs)
        row = {
            "size_gib": size_gib, "write_s": write_s, "cold_disk_s": cold_disk, "cold_memory_s": cold_mem,
            "warm_s": warm, "warm_median_s": statistics.median(s for s, _ in warm_runs),
        }
        disk = f"{cold_disk:.2f} s ({size / GiB / cold_disk:.2f} GiB/s)" if cold_disk else "n/a"
        print(
            f"{size_gib:g} GiB: written in {write_s:.1f} s; cold, from disk {disk}; "
            f"cold, in memory {cold_mem:.2f} s ({size / GiB / cold_mem:.2f} GiB/s); "
            f"warm {warm * 1e3:.2f} ms (median {row['warm_median_s'] * 1e3:.2f} ms); "
            f"cold/warm {cold_mem / warm:,.0f}x" + (f" (from disk {cold_disk / warm:,.0f}x)" if cold_disk else "")
        )
        return row
    finally:
        if keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1,16", help="GiB per file, comma-separated (default 1,16)")
    parser.add_argument("--dir", default=tempfile.gettempdir(), help="where the temporary model folders go")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--keep", action="store_true", help="keep the model folders")
    args = parser.parse_args(argv)
    sizes = [float(s) for s in args.sizes.split(",") if s.strip()]
    print(f"sha256 in {fp.BLOCK // 2**20} MiB blocks; python {sys.version.split()[0]}; {os.cpu_count()} CPUs; "
          f"load average {os.getloadavg()[0]:.2f}")
    rows = [row for row in (bench(size, args.dir, args.keep) for size in sizes) if row]
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
