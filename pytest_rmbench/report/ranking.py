"""Statistics for ranking several models: Kendall's tau-b, win rates, a Bradley-Terry fit, and
the percentile bootstrap they share. Pure Python (the CLI runs without numpy or scipy).

- Kendall tau-b handles ties in either ranking (the form scipy.stats.kendalltau computes).
- A model's win rate on a benchmark is the share of the other models it beats strictly
  (BenchBench's aggregate); the mean win rate averages it over benchmarks.
- Bradley-Terry strengths come from pairwise win counts (ONEBench: on each item, every model
  that passed beats every model that failed), fitted by Hunter's MM iterations. When the
  comparison graph is not strongly connected (a model that never lost), the maximum-likelihood
  strengths are infinite; then every compared pair gets SMOOTHING extra wins each way, and the
  result says so.
"""

from __future__ import annotations

import math
import statistics
from typing import Mapping, Sequence

SMOOTHING = 0.5  # extra wins each way per compared pair, only when the plain fit has no finite answer


def kendall_tau_b(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b of two equally long sequences; nan when either is constant or n < 2."""
    if len(x) != len(y):
        raise ValueError("kendall_tau_b needs two sequences of the same length")
    concordant = discordant = ties_x = ties_y = 0
    n = len(x)
    for i in range(n):
        for j in range(i + 1, n):
            dx, dy = x[i] - x[j], y[i] - y[j]
            if dx == 0 and dy == 0:
                continue  # tied in both: counts in neither denominator term
            if dx == 0:
                ties_x += 1
            elif dy == 0:
                ties_y += 1
            elif (dx > 0) == (dy > 0):
                concordant += 1
            else:
                discordant += 1
    denominator = math.sqrt((concordant + discordant + ties_x) * (concordant + discordant + ties_y))
    return (concordant - discordant) / denominator if denominator else math.nan


def win_rates(scores: Mapping[str, float]) -> dict[str, float]:
    """Each model's share of the other models it beats strictly on one benchmark (needs >= 2 models)."""
    names = list(scores)
    if len(names) < 2:
        return {}
    return {m: sum(scores[m] > scores[o] for o in names if o != m) / (len(names) - 1) for m in names}


def mean_win_rates(benchmarks: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Mean over benchmarks (those with >= 2 models) of each model's win rate, over the benchmarks it ran."""
    sums: dict[str, list[float]] = {}
    for scores in benchmarks.values():
        for model, rate in win_rates(scores).items():
            sums.setdefault(model, []).append(rate)
    return {m: sum(v) / len(v) for m, v in sums.items()}


def ranks(values: Mapping[str, float]) -> dict[str, float]:
    """Rank 1 = highest value; ties share their average rank (nan values rank last, tied)."""
    names = list(values)
    return dict(zip(names, average_ranks([math.inf if math.isnan(values[m]) else -values[m] for m in names])))


def strongly_connected(names: Sequence[str], wins: Mapping[tuple[str, str], float]) -> bool:
    """True when every model can reach every other through 'beat at least once' edges."""
    def reach(start: str, forward: bool) -> set[str]:
        seen, todo = {start}, [start]
        while todo:
            a = todo.pop()
            for b in names:
                edge = (a, b) if forward else (b, a)
                if b not in seen and wins.get(edge, 0) > 0:
                    seen.add(b)
                    todo.append(b)
        return seen

    return not names or (len(reach(names[0], True)) == len(names) == len(reach(names[0], False)))


def bradley_terry(names: Sequence[str], wins: Mapping[tuple[str, str], float], *,
                  iterations: int = 1000, tolerance: float = 1e-10) -> tuple[dict[str, float], bool]:
    """Log-strengths (centred on mean 0) from wins[(a, b)] = times a beat b, and whether smoothing was needed.

    P(a beats b) = 1 / (1 + exp(s_b - s_a)). Models that were never compared with anyone get 0."""
    names = list(names)
    smoothed = not strongly_connected(names, wins)
    counts = dict(wins)
    if smoothed:
        for a in names:
            for b in names:
                if a != b and (wins.get((a, b), 0) or wins.get((b, a), 0)):
                    counts[(a, b)] = counts.get((a, b), 0) + SMOOTHING
    strength = {m: 1.0 for m in names}
    for _ in range(iterations):
        change = 0.0
        for a in names:
            won = sum(counts.get((a, b), 0) for b in names if b != a)
            games = sum((counts.get((a, b), 0) + counts.get((b, a), 0)) / (strength[a] + strength[b])
                        for b in names if b != a)
            if won > 0 and games > 0:
                new = won / games
                change = max(change, abs(math.log(new / strength[a])))
                strength[a] = new
        scale = math.exp(sum(math.log(s) for s in strength.values()) / len(names))
        strength = {m: s / scale for m, s in strength.items()}
        if change < tolerance:
            break
    return {m: math.log(s) for m, s in strength.items()}, smoothed


def percentile(values: Sequence[float], q: float, between: bool = True) -> float:
    """The q-quantile (0..1) by linear interpolation (numpy's default); nan when empty.
    between=False: the nearest value outward instead (a rank stays a rank)."""
    data = sorted(v for v in values if not math.isnan(v))
    if not data:
        return math.nan
    pos = (len(data) - 1) * q
    if not between:
        return data[math.floor(pos) if q < 0.5 else math.ceil(pos)]
    low = math.floor(pos)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (pos - low)


def interval(values: Sequence[float], level: float = 0.95, between: bool = True) -> tuple[float, float]:
    """The percentile bootstrap interval of resampled values (between=False: ends are values drawn)."""
    tail = (1 - level) / 2
    return percentile(values, tail, between), percentile(values, 1 - tail, between)


def z_score(value: float, others: Sequence[float]) -> float:
    """(value - mean(others)) / stdev(others); nan with fewer than 2 others or no spread."""
    others = [o for o in others if not math.isnan(o)]
    if math.isnan(value) or len(others) < 2:
        return math.nan
    spread = statistics.stdev(others)
    return (value - statistics.fmean(others)) / spread if spread > 0 else math.nan


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [0.0] * len(p_values)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson's r; nan with fewer than 2 points or a constant side."""
    n = len(x)
    if n < 2:
        return math.nan
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else math.nan


def average_ranks(values: Sequence[float]) -> list[float]:
    """Ranks 1..n, ties sharing their average rank (as scipy.stats.rankdata)."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rho: Pearson's r of the average ranks."""
    return pearson(average_ranks(x), average_ranks(y))


def iqm(values: Sequence[float]) -> float:
    """The interquartile mean: the mean of the middle 50% (scipy's trim_mean(values, 0.25):
    int(0.25 n) values cut from each end)."""
    data = sorted(values)
    cut = int(0.25 * len(data))
    middle = data[cut:len(data) - cut]
    return sum(middle) / len(middle) if middle else math.nan


def probability_of_improvement(x: Sequence[Sequence[float]], y: Sequence[Sequence[float]]) -> float:
    """rliable's P(X > Y): per task, the Mann-Whitney U statistic over all run pairs divided by
    n_x n_y (ties count 1/2), averaged over tasks. x[t] and y[t] are the runs' scores on task t."""
    per_task = []
    for xs, ys in zip(x, y):
        if xs and ys:
            wins = sum((a > b) + 0.5 * (a == b) for a in xs for b in ys)
            per_task.append(wins / (len(xs) * len(ys)))
    return sum(per_task) / len(per_task) if per_task else math.nan
