"""The end of a run of several models (repeated --rm-model): one report per model, and them compared.

finish.finish_models turns each model's item records back into a one-model run (model_records:
node ids without [NAME]) and puts it through the steps of a one-model run (figures, official
scores, gate, one run in the store per model, so `runs leaderboard` and baselines read them
like any other run). Then `compared` makes:

- the combined report: the first model's blocks at the top level (a tool that reads one-model
  reports reads the first model), every model's items (real node ids, with "model"), every
  model's blocks under "models", and "comparison": per overall / file or suite / subset, each
  model's accuracy with a 95% interval and rank interval from prompt resamples shared by all
  models, every pair of models (regressions, fixes, McNemar with Holm, paired bootstrap), and
  reward correlations;
- the gate: each model's checks, named `MODEL:NAME`, and one non-inferiority check per subset
  and overall for each --rm-compare CAND=BASE (the --rm-baseline rule, BASE as the baseline).
"""

from __future__ import annotations

from .engine import one_line
from .report import baseline as baseline_mod
from .report.schema import Report

PER_MODEL_LEFT_OUT = ("items", "workers", "datasets", "recovered")  # said once, at the top level
REPS = 1000  # prompt resamples per leaderboard
PAIR_RESAMPLES = 2000


def model_records(run, name: str) -> tuple[list[dict], dict[str, str]]:
    """One model's item records as a one-model run has them (node ids without [NAME], no
    "model"), and node id without [NAME] -> the test's node id."""
    records, real_ids = [], {}
    for record in run.state.records.values():
        if record.get("model") == name:
            base = run.base_nodeid(record["nodeid"])
            real_ids[base] = record["nodeid"]
            records.append({k: v for k, v in record.items() if k != "model"} | {"nodeid": base})
    return records, real_ids


def compared(run, reports: dict[str, dict], real_ids: dict, inconclusive: str) -> Report:
    """The combined report of the models' reports (finish.finish_models made them)."""
    compare_checks, blocks = compare_pairs(run, reports, inconclusive)
    comparison = {"models": list(reports), "compare": blocks}
    try:
        comparison.update(compare_models(reports, run.catalog.suites, seed=run.spec.seed))
    except Exception as exc:  # numpy missing, or a bug: the comparison is lost, not the reports or the gate
        run.state.warnings.append(f"the models could not be compared: {one_line(exc)}")
    return combined_report(reports, real_ids, run.state.workers, compare_checks, comparison)


def compare_pairs(run, reports: dict[str, dict], inconclusive: str) -> tuple[list[dict], list[dict]]:
    """--rm-compare CAND=BASE: BASE's items as the baseline of CAND's (the same pairing and rule)."""
    checks, blocks = [], []
    for cand, base in run.settings.compare:
        comparison = baseline_mod.compare(reports[cand]["items"], reports[base]["items"], run.settings.max_regression,
                                          seed=run.spec.seed)
        blocks.append({"candidate": cand, "base": base, **comparison})
        if not comparison["shared"]:
            found = [baseline_mod.inconclusive_check(f"{cand} and {base} share no scored item", inconclusive)]
        else:
            found = baseline_mod.checks(comparison, inconclusive)
        for check in found:
            subset = check["name"].partition(":")[2] or "overall"
            checks.append(dict(check, name=f"{cand} vs {base}:{subset}", kind="compare", source="--rm-compare"))
    return checks, blocks


def compare_models(reports: dict[str, dict], suites: dict, *, seed: int = 0, reps: int = REPS) -> dict:
    """Leaderboards (overall, per file or suite when there are several, per subset), pairs of
    models and reward correlations, from the models' report items."""
    from .standings import accuracy_board, correlations, items_table, pairwise

    names = list(reports)
    items = [dict(item, model=name) for name, report in reports.items() for item in report["items"]]
    files = sorted({item["file"] for item in items})

    def boards(item) -> list[str]:  # subsets by the report's names (a suite's are "suite/Subset")
        return ["overall", item["file"], item["subset"]] if len(files) > 1 else ["overall", item["subset"]]

    table = items_table(items, boards, credit=True)  # accuracies as the report counts them
    order = ["overall"] + [f for f in files if f in table] + sorted(n for n in table if n != "overall" and n not in files)
    out = []
    for name in order:
        kind = "overall" if name == "overall" else "file" if name in files else "subset"
        rows = accuracy_board(table[name], names, reps=reps, seed=seed)
        if kind == "file" and name in suites:  # a suite's board also shows its official headline score
            kind, headline = "suite", suites[name].get("headline")
            for row in rows:
                row["official"] = ((reports[row["model"]].get("scores") or {}).get(name) or {}).get(headline)
        out.append({"name": name, "kind": kind, "items": table[name].items, "prompts": table[name].clusters,
                    "models": rows})
    overall = items_table(items, lambda item: ["overall"])  # right or wrong: McNemar's pairs
    # 2,000 paired resamples per pair (runs leaderboard: 10,000): 0.13 s a pair on 5,000 prompts, so
    # ten models' 45 pairs add seconds, not half a minute, to the end of the run
    return {"reps": reps, "seed": seed, "boards": out, "pairs": pairwise(overall, names, seed, resamples=PAIR_RESAMPLES),
            "correlations": correlations(overall, names)["pairs"]}


def combined_report(reports: dict[str, dict], real_ids: dict, workers: list[dict], compare_checks: list[dict],
                    comparison: dict) -> Report:
    """The first model's report at the top level, with every model's items, blocks and checks."""
    names = list(reports)
    top = dict(reports[names[0]])
    top["items"] = [dict(item, nodeid=real_ids[name].get(item["nodeid"], item["nodeid"]), model=name)
                    for name, report in reports.items() for item in report["items"]]
    top["workers"] = sorted(workers, key=lambda w: (str(w.get("worker")), str(w.get("model"))))
    checks = [dict(check, name=f"{name}:{check['name']}", model=name)
              for name, report in reports.items() for check in report["gate"]["checks"]] + compare_checks
    top["gate"] = {"configured": any(r["gate"]["configured"] for r in reports.values()) or bool(compare_checks),
                   "passed": all(c["passed"] is not False for c in checks), "checks": checks}
    top["models"] = {name: {k: v for k, v in report.items() if k not in PER_MODEL_LEFT_OUT}
                     for name, report in reports.items()}
    top["comparison"] = comparison
    return Report.from_dict(top)
