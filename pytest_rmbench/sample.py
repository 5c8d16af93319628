"""The quick gate (`--rm-sample N`): a stratified sample of the benchmark items, and accuracies
read as estimates of the full suite's.

- Allocation: every subset gets at least MIN_PER_SUBSET items (all of a smaller subset), the
  rest of N proportionally to subset size (largest remainders). With many subsets the sample
  can be larger than N; the report says how large it was.
- Which items: the first ones in the order of sha256(seed, node id) within each subset. It
  depends only on the node ids and the seed, so every model, every xdist worker and every
  later run with the same seed gets the same items (a sampled PR run against a sampled
  baseline compares like with like).
- Intervals: sampling without replacement from a finite subset, so the Wilson interval is taken
  at the effective size n (N - 1) / (N - n) (the finite-population correction); a subset run
  whole has no sampling error and its interval is the point.
"""

from __future__ import annotations

import hashlib
import math
from typing import Hashable, Iterable, Mapping

MIN_PER_SUBSET = 3
Z95 = 1.959963984540054


def allocate(sizes: Mapping[Hashable, int], n: int) -> dict:
    """How many items each stratum gets for a sample of about n."""
    total = sum(sizes.values())
    if n >= total:
        return dict(sizes)
    base = {s: min(size, MIN_PER_SUBSET) for s, size in sizes.items()}
    left = max(0, n - sum(base.values()))
    room = {s: sizes[s] - base[s] for s in sizes}
    spare = sum(room.values())
    quota = {s: left * room[s] / spare if spare else 0.0 for s in sizes}
    out = {s: base[s] + min(room[s], math.floor(quota[s])) for s in sizes}
    short = n - sum(out.values())
    for s in sorted(sizes, key=lambda s: (-(quota[s] - math.floor(quota[s])), str(s))):
        if short <= 0:
            break
        if out[s] < sizes[s]:
            out[s] += 1
            short -= 1
    return out


def draw_order(seed: int, nodeid: str) -> str:
    return hashlib.sha256(f"{seed}\x00{nodeid}".encode("utf-8")).hexdigest()


def choose(entries: Iterable[tuple[str, Hashable]], n: int, seed: int) -> set[str]:
    """The node ids of the sample: entries are (node id, stratum)."""
    strata: dict = {}
    for nodeid, stratum in entries:
        strata.setdefault(stratum, []).append(nodeid)
    counts = allocate({s: len(ids) for s, ids in strata.items()}, n)
    chosen = set()
    for stratum, ids in strata.items():
        chosen.update(sorted(ids, key=lambda i: draw_order(seed, i))[:counts[stratum]])
    return chosen


def fpc_interval(correct: float, n: int, population: int, z: float = Z95) -> tuple[float | None, float | None]:
    """Wilson's interval for correct/n drawn without replacement from `population` items."""
    if n <= 0:
        return None, None
    p = correct / n
    if n >= population:
        return p, p  # the whole subset ran: nothing was estimated
    size = n * (population - 1) / (population - n) if population > 1 else n
    z2 = z * z
    denom = 1 + z2 / size
    centre = (p + z2 / (2 * size)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / size + z2 / (4 * size * size))
    return max(0.0, centre - half), min(1.0, centre + half)


def as_estimates(summary: dict, population: Mapping[str, int], sections: Mapping) -> None:
    """Turn the summary's subset and overall blocks into estimates of the full suite: population
    and the corrected interval; sections get the weighted bounds of their subsets' intervals
    (conservative: the two ends as if every subset erred the same way)."""
    subsets = summary.get("subsets") or {}
    for name, block in subsets.items():
        _estimate(block, population.get(name, block.get("n") or 0))
    overall = summary.get("overall")
    if overall:
        _estimate(overall, sum(population.get(name, b.get("n") or 0) for name, b in subsets.items()))
    for name, section in (sections or {}).items():
        block = (summary.get("sections") or {}).get(name)
        if not block or block.get("accuracy") is None:
            continue
        parts = [(w, subsets.get(s) or {}) for s, w in section.weights.items()]
        parts = [(w, b) for w, b in parts if b.get("ci_low") is not None]
        weight = sum(w for w, _ in parts)
        if weight > 0:
            block["ci_low"] = sum(w * b["ci_low"] for w, b in parts) / weight
            block["ci_high"] = sum(w * b["ci_high"] for w, b in parts) / weight
            block["estimate"] = True


def _estimate(block: dict, population: int) -> None:
    if not block.get("n"):
        return
    block["ci_low"], block["ci_high"] = fpc_interval(block["correct"], block["n"], max(population, block["n"]))
    block["population"] = max(population, block["n"])
    block["estimate"] = True
