"""Models compared across the run store: benchmark agreement and a leaderboard (`runs agreement`,
`runs leaderboard`).

The table they share: for each model name, its latest complete run of each benchmark file or
suite (a -k / --lf / crashed run is passed over), and that run's item outcomes there: correct
counts 1, incorrect 0, anything else (error, skipped, bad item) is left out. With `by="subset"`
each subset of a benchmark is a benchmark of its own.

- Agreement (BenchBench): Kendall tau-b between two benchmarks' rankings of the models they
  share (at least `min_models`, 5 by default; fewer than 10 is flagged, as BenchBench advises),
  with a percentile interval from resampling those models; and each benchmark against the mean
  win rate of all the OTHER benchmarks (leave-one-out, so a benchmark never agrees with
  itself), with its z-score against the other benchmarks' values.
- Leaderboard: mean win rate over the chosen benchmarks and a Bradley-Terry fit over item
  outcomes (ONEBench: on an item, every model that passed beats every model that failed), with
  intervals and each model's rank interval from resampling items within each benchmark (the
  same resamples for every model).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, field

from .report.comparison import columns as _columns
from .report.comparison import correlation_lines as _correlation_lines
from .report.comparison import pair_lines
from .report.comparison import span as _span
from .report.format import fmt as _num
from .report.ranking import (SMOOTHING, bradley_terry, holm, interval, iqm, kendall_tau_b, mean_win_rates, pearson,
                             probability_of_improvement, ranks, spearman, z_score)

OUTCOME_VALUE = {"correct": 1, "incorrect": 0}
ADVISED_MODELS = 10  # BenchBench: at least 10 models for a trustworthy agreement


@dataclass
class Benchmark:
    """One benchmark's items, grouped into prompt clusters (items sharing a prompt hash; an item
    without one is its own cluster) and kept as outcome patterns: a cluster's signature is the
    sorted tuple of its items' patterns (model -> 0/1, models without the item left out), and
    `patterns` counts the clusters sharing a signature. Resampling prompts is resampling these
    counts, the same draw for every model."""

    name: str
    models: set = field(default_factory=set)
    patterns: Counter = field(default_factory=Counter)
    records: dict = field(default_factory=dict)  # nodeid -> {"cluster", "outcomes", "scores"}

    def accuracies(self, counts: Counter | None = None) -> dict[str, float]:
        counts = self.patterns if counts is None else counts
        right: Counter = Counter()
        seen: Counter = Counter()
        for cluster, n in counts.items():
            for pattern in cluster:
                for model, value in pattern:
                    right[model] += value * n
                    seen[model] += n
        return {m: right[m] / seen[m] for m in self.models if seen[m]}

    def resample(self, rng: random.Random) -> Counter:
        keys = list(self.patterns)
        total = sum(self.patterns.values())
        return Counter(rng.choices(keys, weights=[self.patterns[k] for k in keys], k=total))

    @property
    def items(self) -> int:
        return sum(len(cluster) * n for cluster, n in self.patterns.items())

    @property
    def clusters(self) -> int:
        return sum(self.patterns.values())


def outcome_table(store, *, by: str = "suite", models: list[str] | None = None,
                  benchmarks: list[str] | None = None) -> dict[str, Benchmark]:
    """name -> Benchmark from the store's latest complete run of each (model, benchmark file)."""
    picked: dict[tuple[str, str], int] = {}
    for run in store.run_files():
        if run["partial"] or not run["model"] or (models and run["model"] not in models):
            continue
        for name in run["suites"]:
            picked.setdefault((run["model"], name), run["id"])
    records: dict[str, dict[str, dict]] = {}
    for run_id in sorted(set(picked.values())):
        files = {name for (model, name), rid in picked.items() if rid == run_id}
        model = next(m for (m, _), rid in picked.items() if rid == run_id)
        for nodeid, subset, outcome, prompt_hash, chosen, rejected in store.item_outcomes(run_id):
            file = nodeid.split("::", 1)[0]
            if file not in files or outcome not in OUTCOME_VALUE:
                continue
            name = f"{file}::{subset}" if by == "subset" else file
            record = records.setdefault(name, {}).setdefault(
                nodeid, {"cluster": prompt_hash or nodeid, "outcomes": {}, "scores": {}})
            record["outcomes"][model] = OUTCOME_VALUE[outcome]
            if chosen is not None and rejected is not None:
                record["scores"][model] = (chosen, rejected)
    return {name: _benchmark(name, items) for name, items in sorted(records.items())
            if not benchmarks or _chosen(name, benchmarks)}


def _benchmark(name: str, records: dict[str, dict]) -> Benchmark:
    bench = Benchmark(name, records=records)
    clusters: dict[str, list] = {}
    for record in records.values():
        clusters.setdefault(record["cluster"], []).append(tuple(sorted(record["outcomes"].items())))
        bench.models.update(record["outcomes"])
    for patterns in clusters.values():
        bench.patterns[tuple(sorted(patterns))] += 1
    return bench


def _chosen(name: str, wanted: list[str]) -> bool:
    file = name.split("::", 1)[0]
    return any(w in (name, file) or file.endswith("/" + w) for w in wanted)


def items_table(items, boards, *, credit: bool = False) -> dict[str, Benchmark]:
    """name -> Benchmark from one run's items of several models (each item dict has "model",
    "nodeid" the same for every model, "outcome", "credit", "prompt_hash", the two scores);
    `boards(item)` names the benchmarks an item counts in (overall, its file, its subset).
    credit=True: an item counts its credit (a cycle's or a style matrix's share, as the
    report's accuracies do), else 1 when correct and 0 when incorrect (pairs of models)."""
    records: dict[str, dict[str, dict]] = {}
    for item in items:
        if item.get("outcome") not in OUTCOME_VALUE:
            continue
        model = item["model"]
        value = OUTCOME_VALUE[item["outcome"]]
        if credit and item.get("credit") is not None:
            value = item["credit"]
        for name in boards(item):
            record = records.setdefault(name, {}).setdefault(
                item["nodeid"], {"cluster": item.get("prompt_hash") or item["nodeid"], "outcomes": {}, "scores": {}})
            record["outcomes"][model] = value
            if item.get("chosen_score") is not None and item.get("rejected_score") is not None:
                record["scores"][model] = (item["chosen_score"], item["rejected_score"])
    return {name: _benchmark(name, recs) for name, recs in records.items()}


def accuracy_board(bench: Benchmark, models: list[str], *, reps: int = 1000, seed: int = 0) -> list[dict]:
    """Each model's accuracy on one benchmark with a 95% interval, and its rank (1 = best) with
    the 2.5-97.5% range of its rank, from `reps` resamples of the prompt clusters: one
    multinomial draw over the clusters' outcome patterns per resample, the same draw for every
    model (a paired, prompt-clustered bootstrap), so the rank intervals are coherent."""
    import numpy as np  # as report.stats.paired_bootstrap: numpy comes with transformers

    shown = [m for m in models if m in bench.models]
    if not shown:
        return []
    signatures = list(bench.patterns)
    right = np.zeros((len(signatures), len(shown)))
    seen = np.zeros_like(right)
    column = {m: j for j, m in enumerate(shown)}
    for i, cluster in enumerate(signatures):
        for pattern in cluster:
            for model, value in pattern:
                if model in column:
                    right[i, column[model]] += value
                    seen[i, column[model]] += 1
    weights = np.array([bench.patterns[k] for k in signatures], dtype=float)
    draws = np.random.default_rng(seed).multinomial(int(weights.sum()), weights / weights.sum(), size=reps)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = (draws @ right) / (draws @ seen)  # reps x models; nan where a draw has none of a model's items
        point = (weights @ right) / (weights @ seen)
    filled = np.nan_to_num(acc, nan=-1.0)  # a model without items in a draw ranks last there
    above = (filled[:, None, :] > filled[:, :, None]).sum(axis=2)
    tied = (filled[:, None, :] == filled[:, :, None]).sum(axis=2) - 1
    rank_draws = 1 + above + tied / 2
    point_rank = ranks({m: float(point[j]) for m, j in column.items()})
    rows = []
    for m, j in column.items():
        low, high = interval([float(v) for v in acc[:, j] if not math.isnan(v)])
        rank_low, rank_high = interval([float(v) for v in rank_draws[:, j]], between=False)
        rows.append({"model": m, "n": int(seen[:, j] @ weights), "accuracy": float(point[j]), "ci_low": low,
                     "ci_high": high, "rank": point_rank[m], "rank_low": rank_low, "rank_high": rank_high})
    rows.sort(key=lambda r: (r["rank"], r["model"]))
    return rows


# -- agreement ----------------------------------------------------------------------------------
def agreement(table: dict[str, Benchmark], *, min_models: int = 5, reps: int = 1000, seed: int = 0) -> dict:
    """Pairs of benchmarks with tau-b and its model-bootstrap interval, and each benchmark against the others' aggregate."""
    rng = random.Random(seed)
    acc = {name: bench.accuracies() for name, bench in table.items()}
    pairs = []
    names = sorted(acc)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            shared = sorted(set(acc[a]) & set(acc[b]))
            if len(shared) < min_models:
                continue
            x, y = [acc[a][m] for m in shared], [acc[b][m] for m in shared]
            low, high = interval(_model_bootstrap(x, y, reps, rng))
            pairs.append({"a": a, "b": b, "models": len(shared), "tau": kendall_tau_b(x, y), "low": low,
                          "high": high, "few_models": len(shared) < ADVISED_MODELS})
    return {"pairs": pairs, "aggregate": _against_aggregate(acc, min_models), "min_models": min_models,
            "reps": reps, "seed": seed, "benchmarks": {n: {"models": len(acc[n]), "items": table[n].items} for n in names}}


def _model_bootstrap(x: list[float], y: list[float], reps: int, rng: random.Random) -> list[float]:
    n = len(x)
    out = []
    for _ in range(reps):
        idx = [rng.randrange(n) for _ in range(n)]
        out.append(kendall_tau_b([x[i] for i in idx], [y[i] for i in idx]))
    return out  # draws with a constant side give nan and are left out of the interval


def _against_aggregate(acc: dict[str, dict[str, float]], min_models: int) -> list[dict]:
    taus = {}
    shared_counts = {}
    for name in acc:
        others = {o: scores for o, scores in acc.items() if o != name}
        aggregate = mean_win_rates(others)
        shared = sorted(set(acc[name]) & set(aggregate))
        shared_counts[name] = len(shared)
        taus[name] = (kendall_tau_b([acc[name][m] for m in shared], [aggregate[m] for m in shared])
                      if len(shared) >= min_models else math.nan)
    return [{"benchmark": name, "models": shared_counts[name], "tau": taus[name],
             "z": z_score(taus[name], [t for o, t in taus.items() if o != name])} for name in sorted(acc)]


# -- leaderboard --------------------------------------------------------------------------------
def leaderboard(table: dict[str, Benchmark], *, reps: int = 1000, seed: int = 0) -> dict:
    """Models by mean win rate and by Bradley-Terry strength over the table's items, with item-bootstrap intervals."""
    used = {n: b for n, b in table.items() if len(b.models) >= 2}
    models = sorted(set().union(*(b.models for b in used.values()))) if used else []
    point_wr = mean_win_rates({n: b.accuracies() for n, b in used.items()})
    point_bt, smoothed = bradley_terry(models, _wins(used.values(), None))
    rng = random.Random(seed)
    draws = {m: {"wr": [], "bt": [], "rank": []} for m in models}
    for _ in range(reps if models else 0):
        counts = {n: b.resample(rng) for n, b in used.items()}
        wr = mean_win_rates({n: b.accuracies(counts[n]) for n, b in used.items()})
        bt, _ = bradley_terry(models, _wins(used.values(), counts), iterations=200, tolerance=1e-8)
        rank = ranks({m: wr.get(m, math.nan) for m in models})
        for m in models:
            draws[m]["wr"].append(wr.get(m, math.nan))
            draws[m]["bt"].append(bt[m])
            draws[m]["rank"].append(rank[m])
    point_rank = ranks({m: point_wr.get(m, math.nan) for m in models})
    rows = [{"model": m, "benchmarks": sum(m in b.models for b in used.values()),
             "mean_win_rate": point_wr.get(m, math.nan), "mean_win_rate_interval": interval(draws[m]["wr"]),
             "bradley_terry": point_bt[m], "bradley_terry_interval": interval(draws[m]["bt"]),
             "rank": point_rank[m], "rank_interval": interval(draws[m]["rank"], between=False)} for m in models]
    rows.sort(key=lambda r: (r["rank"], -r["bradley_terry"], r["model"]))
    return {"models": rows, "benchmarks": sorted(used), "items": sum(b.items for b in used.values()),
            "prompts": sum(b.clusters for b in used.values()), "pairs": pairwise(used, models, seed),
            "smoothed": smoothed, "reps": reps, "seed": seed,
            "left_out": sorted(n for n in table if n not in used)}


def _wins(benches, counts: dict | None) -> dict[tuple[str, str], float]:
    """ONEBench's pairs: on each item every model that passed beats every model that failed."""
    wins: Counter = Counter()
    for bench in benches:
        for cluster, n in (bench.patterns if counts is None else counts[bench.name]).items():
            for pattern in cluster:
                passed = [m for m, v in pattern if v]
                failed = [m for m, v in pattern if not v]
                for a in passed:
                    for b in failed:
                        wins[(a, b)] += n
    return wins


# -- pairs of models ----------------------------------------------------------------------------
def pairwise(table: dict[str, Benchmark], models: list[str], seed: int = 0, resamples: int = 10_000) -> list[dict]:
    """Every pair of models on the items both scored: who fixed and who broke which item, exact
    McNemar p (Holm-adjusted across the pairs), and the accuracy difference with a two-sided 95%
    interval from a paired bootstrap over prompts."""
    from .report.stats import mcnemar_exact, paired_bootstrap

    rows = []
    for i, a in enumerate(models):
        for b in models[i + 1:]:
            shared = [(f"{bench.name}\x00{r['cluster']}", r["outcomes"][a], r["outcomes"][b])
                      for bench in table.values() for r in bench.records.values()
                      if a in r["outcomes"] and b in r["outcomes"]]
            if not shared:
                continue
            only_a = sum(x and not y for _, x, y in shared)
            only_b = sum(y and not x for _, x, y in shared)
            delta, low, high = paired_bootstrap([bool(y) for _, _, y in shared], [bool(x) for _, x, _ in shared],
                                                [c for c, _, _ in shared], resamples=resamples, seed=seed, alpha=0.025)
            rows.append({"a": a, "b": b, "items": len(shared), "a_only": only_a, "b_only": only_b,
                         "delta": delta, "low": low, "high": high, "mcnemar_p": mcnemar_exact(only_b, only_a)})
    for row, adjusted in zip(rows, holm([r["mcnemar_p"] for r in rows])):
        row["holm_p"] = adjusted
    return rows


def correlations(table: dict[str, Benchmark], models: list[str] | None = None) -> dict:
    """How alike the models' reward functions are, beyond accuracy: for every pair, Spearman's rho
    over the answers both scored (chosen and rejected scores as separate answers), and Pearson's r
    after centring each model's scores per item (removing what a per-prompt constant can shift,
    in the spirit of STARC's canonicalisation)."""
    models = models or sorted(set().union(*(b.models for b in table.values()))) if table else []
    rows = []
    for i, a in enumerate(models):
        for b in models[i + 1:]:
            xs, ys, cx, cy = [], [], [], []
            for bench in table.values():
                for r in bench.records.values():
                    if a in r["scores"] and b in r["scores"]:
                        (ca, ra), (cb, rb) = r["scores"][a], r["scores"][b]
                        xs += [ca, ra]
                        ys += [cb, rb]
                        cx += [(ca - ra) / 2, (ra - ca) / 2]
                        cy += [(cb - rb) / 2, (rb - cb) / 2]
            if xs:
                rows.append({"a": a, "b": b, "answers": len(xs), "spearman": spearman(xs, ys),
                             "centred_pearson": pearson(cx, cy)})
    return {"models": models, "pairs": rows, "benchmarks": sorted(table)}


# -- several runs of one model (seeds) ----------------------------------------------------------
def seed_runs(store, models: list[str] | None = None) -> tuple[dict[str, list[dict]], list[str]]:
    """model -> its complete runs' subset accuracies (oldest first), and the subsets (tasks) every
    one of those runs scored; models with a single run are kept (their interval has no width)."""
    runs: dict[str, list[dict]] = {}
    for run in reversed(store.run_files()):
        if run["partial"] or not run["model"] or (models and run["model"] not in models):
            continue
        runs.setdefault(run["model"], []).append({k: v for k, v in run["subsets"].items() if v is not None})
    tasks = set.intersection(*(set(r) for rs in runs.values() for r in rs)) if runs else set()
    return runs, sorted(tasks)


def seeds(runs: dict[str, list[dict]], tasks: list[str], *, reps: int = 1000, seed: int = 0) -> dict:
    """rliable's summaries over runs x tasks: each model's IQM with a stratified bootstrap interval
    (runs resampled within each task), and the probability of improvement for each pair of models."""
    rng = random.Random(seed)
    matrix = {m: [[r[t] for r in rs] for t in tasks] for m, rs in runs.items()}  # task -> the runs' scores
    draws = {m: [] for m in matrix}
    pair_draws: dict[tuple[str, str], list[float]] = {(a, b): [] for a in matrix for b in matrix if a < b}
    for _ in range(reps if tasks else 0):
        sample = {m: [[rng.choice(col) for _ in col] for col in cols] for m, cols in matrix.items()}
        for m, cols in sample.items():
            draws[m].append(iqm([v for col in cols for v in col]))
        for a, b in pair_draws:
            pair_draws[(a, b)].append(probability_of_improvement(sample[a], sample[b]))
    models = [{"model": m, "runs": len(runs[m]), "iqm": iqm([v for col in cols for v in col]) if tasks else math.nan,
               "interval": interval(draws[m]), "identical_runs": all(r == runs[m][0] for r in runs[m])}
              for m, cols in matrix.items()]
    models.sort(key=lambda r: (-r["iqm"] if not math.isnan(r["iqm"]) else math.inf, r["model"]))
    pairs = [{"a": a, "b": b, "p_improvement": probability_of_improvement(matrix[a], matrix[b]),
              "interval": interval(d)} for (a, b), d in pair_draws.items()]
    return {"tasks": tasks, "models": models, "pairs": pairs, "reps": reps, "seed": seed}


# -- text ---------------------------------------------------------------------------------------
def agreement_lines(result: dict) -> list[str]:
    rows = [("benchmark A", "benchmark B", "models", "tau-b", "95% interval", "")]
    for p in result["pairs"]:
        rows.append((p["a"], p["b"], str(p["models"]), _num(p["tau"]), _span((p["low"], p["high"])),
                     f"fewer than {ADVISED_MODELS} models" if p["few_models"] else ""))
    lines = [f"Kendall tau-b between benchmarks' model rankings (accuracy; pairs sharing >= {result['min_models']}"
             f" models; intervals from {result['reps']} model resamples, seed {result['seed']})"]
    lines += _columns(rows) if len(rows) > 1 else [f"  no two benchmarks share {result['min_models']} models"
                                                   f" (models per benchmark: {_counts(result)})"]
    agg = [("benchmark", "models", "tau-b vs others", "z")]
    agg += [(a["benchmark"], str(a["models"]), _num(a["tau"]), _num(a["z"], ".2f")) for a in result["aggregate"]]
    lines += ["", "each benchmark against the mean win rate of all the others (BenchBench; z against the"
              " other benchmarks' tau)"]
    return lines + _columns(agg)


def _counts(result: dict) -> str:
    return ", ".join(f"{n}: {b['models']}" for n, b in result["benchmarks"].items()) or "none"


def leaderboard_lines(result: dict) -> list[str]:
    rows = [("rank", "model", "benchmarks", "mean win rate", "95% interval", "Bradley-Terry", "95% interval",
             "rank 95%")]
    for r in result["models"]:
        rows.append((_num(r["rank"], "g"), r["model"], str(r["benchmarks"]), _num(r["mean_win_rate"]),
                     _span(r["mean_win_rate_interval"]), _num(r["bradley_terry"], "+.3f"),
                     _span(r["bradley_terry_interval"], "+.3f"), _span(r["rank_interval"], "g")))
    lines = [f"{len(result['models'])} models over {len(result['benchmarks'])} benchmarks ({result['items']:,} items,"
             f" {result['prompts']:,} prompts; intervals from {result['reps']} prompt resamples within each benchmark,"
             f" seed {result['seed']})"]
    lines += _columns(rows)
    if result["smoothed"]:
        lines.append(f"Bradley-Terry: some model never lost or never won, so every compared pair got {SMOOTHING}"
                     " extra wins each way")
    if result["left_out"]:
        lines.append(f"left out (fewer than 2 models): {', '.join(result['left_out'])}")
    return lines + pair_lines(result["pairs"])


def correlation_lines(result: dict) -> list[str]:
    return _correlation_lines(result["pairs"])


def seed_lines(result: dict) -> list[str]:
    if not result["tasks"]:
        return ["no subset was scored by every run of these models: nothing to summarise"]
    rows = [("model", "runs", "IQM", "95% interval")]
    rows += [(m["model"], str(m["runs"]), _num(m["iqm"]), _span(m["interval"])) for m in result["models"]]
    lines = [f"interquartile mean over runs x {len(result['tasks'])} subsets (rliable; stratified bootstrap of runs"
             f" within each subset, {result['reps']} resamples, seed {result['seed']})"] + _columns(rows)
    same = [m["model"] for m in result["models"] if m["identical_runs"]]
    if same:
        lines.append(f"identical runs, so no spread to resample: {', '.join(same)} (a deterministic model repeats"
                     " itself; vary --rm-seed or sampling, or use runs leaderboard's item resampling)")
    if result["pairs"]:
        pairs = [("A", "B", "P(A > B)", "95% interval")]
        pairs += [(p["a"], p["b"], _num(p["p_improvement"]), _span(p["interval"])) for p in result["pairs"]]
        lines += ["", "probability of improvement (per subset, Mann-Whitney U / (n_A n_B), averaged)"] + _columns(pairs)
    return lines


__all__ = ["Benchmark", "outcome_table", "items_table", "accuracy_board", "agreement", "leaderboard", "pairwise", "correlations", "seed_runs", "seeds",
           "agreement_lines", "leaderboard_lines", "correlation_lines", "seed_lines"]
