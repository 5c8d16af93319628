"""This run against a baseline run: paired per-item comparison and a non-inferiority decision.

Items are paired by node id (report/compare.py); an item whose content hash changed since
the baseline, or is missing in one of the two runs, is left out and counted as edited. Items that errored in either run are left out too (an
error fails the gate on its own). Pure functions over report items: no pytest, no store.
"""

from __future__ import annotations

from ..items import CORRECT
from .compare import EDITED, MATCHED, pair_items
from .stats import mcnemar_exact, non_inferiority, paired_bootstrap

OVERALL = "overall"


def compare(
    current: list[dict],
    baseline: list[dict],
    margin: float,
    resamples: int = 10_000,
    seed: int = 0,
) -> dict:
    """The JSON report's "baseline" block (without "run"), from two lists of report items."""
    shared: list[tuple[dict, dict]] = []
    edited = 0
    for _, old, new, kind in pair_items(baseline, current):
        if kind == EDITED:
            edited += 1
        elif kind == MATCHED:
            shared.append((old, new))

    def block(pairs: list[tuple[dict, dict]]) -> dict:
        before = [old["outcome"] == CORRECT for old, _ in pairs]
        after = [new["outcome"] == CORRECT for _, new in pairs]
        regressions = sum(b and not a for b, a in zip(before, after))
        fixes = sum(a and not b for b, a in zip(before, after))
        n = len(pairs)
        if n == 0:
            return {"n": 0, "regressions": 0, "fixes": 0, "before": None, "after": None, "delta": None,
                    "delta_low": None, "delta_high": None, "mcnemar_p": None, "decision": "not run"}
        clusters = [new.get("prompt_hash") or new["nodeid"] for _, new in pairs]
        delta, low, high = paired_bootstrap(before, after, clusters, resamples=resamples, seed=seed)
        return {
            "n": n,
            "regressions": regressions,
            "fixes": fixes,
            "before": sum(before) / n,
            "after": sum(after) / n,
            "delta": delta,
            "delta_low": low,
            "delta_high": high,
            "mcnemar_p": mcnemar_exact(regressions, fixes),
            "decision": non_inferiority(low, high, margin),
        }

    by_subset: dict[str, list[tuple[dict, dict]]] = {}
    for old, new in shared:
        by_subset.setdefault(new["subset"], []).append((old, new))
    return {
        "shared": len(shared),
        "edited": edited,
        "margin": margin,
        "subsets": {name: block(pairs) for name, pairs in sorted(by_subset.items())},
        OVERALL: block(shared),
        "regressed": [new["nodeid"] for old, new in shared if old["outcome"] == CORRECT and new["outcome"] != CORRECT],
    }


def checks(comparison: dict, inconclusive: str) -> list[dict]:
    """One gate check per subset and overall: `baseline:<name>`."""
    out = []
    blocks = [(name, b) for name, b in comparison["subsets"].items()] + [(OVERALL, comparison[OVERALL])]
    for name, b in blocks:
        decision = b["decision"]
        passed = {"pass": True, "fail": False, "inconclusive": inconclusive == "pass", "not run": None}[decision]
        out.append({
            "name": f"baseline:{name}", "threshold": -comparison["margin"], "value": b["delta"],
            "low": b["delta_low"], "high": b["delta_high"], "passed": passed, "status": decision,
            "kind": "baseline", "rule": "non-inferiority", "source": "baseline",
        })
    return out


def unusable_check(reason: str) -> dict:
    """A baseline the user named that cannot be used: it fails the gate (fail closed)."""
    return {"name": "baseline", "threshold": None, "value": None, "low": None, "high": None, "passed": False,
            "status": "fail", "kind": "baseline-missing", "rule": reason, "source": "baseline"}


def inconclusive_check(reason: str, inconclusive: str) -> dict:
    """A baseline with no item to compare: inconclusive, counted as --rm-inconclusive says."""
    return {"name": "baseline", "threshold": None, "value": None, "low": None, "high": None,
            "passed": inconclusive == "pass", "status": "inconclusive", "kind": "baseline-missing", "rule": reason,
            "source": "baseline"}
