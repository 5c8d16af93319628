"""Models compared across the run store: `runs agreement` and `runs leaderboard` (standings.py),
and the statistics under them (report/ranking.py) against scipy and hand computations."""

import json
import math
import random
import subprocess
import sys

import pytest
from scipy import stats

from pytest_rmbench.report.ranking import (
    bradley_terry, interval, kendall_tau_b, mean_win_rates, percentile, ranks, win_rates, z_score,
)
from pytest_rmbench.standings import agreement, leaderboard, outcome_table
from pytest_rmbench.storage.store import open_store


# -- formulas -----------------------------------------------------------------------------------
def test_kendall_tau_b_by_hand_and_against_scipy_with_ties():
    # one swapped pair of five: 9 concordant, 1 discordant -> (9 - 1) / 10
    assert kendall_tau_b([1, 2, 3, 4, 5], [1, 2, 3, 5, 4]) == pytest.approx(0.8, abs=1e-15)
    # ties on both sides, by hand: pairs (0,1) tied in x, (2,3) tied in y, (4,5) tied in both;
    # x = [1,1,2,3,4,4], y = [1,2,3,3,5,5]: C = 12, D = 0, ties_x = 1, ties_y = 1 -> 12 / sqrt(13 * 13)
    assert kendall_tau_b([1, 1, 2, 3, 4, 4], [1, 2, 3, 3, 5, 5]) == pytest.approx(12 / 13, abs=1e-15)
    rng = random.Random(7)
    for _ in range(200):
        n = rng.randint(2, 12)
        x = [rng.randint(0, 3) for _ in range(n)]
        y = [rng.randint(0, 3) for _ in range(n)]
        expected = stats.kendalltau(x, y).statistic
        got = kendall_tau_b(x, y)
        assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected, abs=1e-12)


def test_win_rates_are_strict_and_mean_over_the_benchmarks_a_model_ran():
    assert win_rates({"a": 0.9, "b": 0.5, "c": 0.5}) == {"a": 1.0, "b": 0.0, "c": 0.0}
    got = mean_win_rates({"x": {"a": 0.9, "b": 0.5, "c": 0.7}, "y": {"a": 0.1, "b": 0.2}})
    assert got == {"a": pytest.approx((1.0 + 0.0) / 2), "b": pytest.approx((0.0 + 1.0) / 2), "c": 0.5}


def test_bradley_terry_on_hand_solved_cases():
    # two models, a beat b 3 times and lost once: P(a > b) = 3/4, so s_a - s_b = ln 3
    s, smoothed = bradley_terry(["a", "b"], {("a", "b"): 3, ("b", "a"): 1})
    assert not smoothed and s["a"] - s["b"] == pytest.approx(math.log(3), abs=1e-9)
    assert s["a"] + s["b"] == pytest.approx(0, abs=1e-12)
    # a symmetric cycle: every model wins 2 of 3 against the next one; all strengths equal
    cycle = {("a", "b"): 2, ("b", "a"): 1, ("b", "c"): 2, ("c", "b"): 1, ("c", "a"): 2, ("a", "c"): 1}
    s, _ = bradley_terry(["a", "b", "c"], cycle)
    assert all(v == pytest.approx(0, abs=1e-9) for v in s.values())
    # a never lost: no finite maximum; smoothing adds 0.5 each way -> 2.5 : 0.5, s_a - s_b = ln 5
    s, smoothed = bradley_terry(["a", "b"], {("a", "b"): 2})
    assert smoothed and s["a"] - s["b"] == pytest.approx(math.log(5), abs=1e-9)
    # three models, a chain with a known solution: p = (4, 2, 1) satisfies every MM equation when
    # a beat b 2 of 3, b beat c 2 of 3 and a beat c 4 of 5
    wins = {("a", "b"): 2, ("b", "a"): 1, ("b", "c"): 2, ("c", "b"): 1, ("a", "c"): 4, ("c", "a"): 1}
    s, _ = bradley_terry(["a", "b", "c"], wins)
    assert s["a"] - s["b"] == pytest.approx(math.log(2), abs=1e-8)
    assert s["b"] - s["c"] == pytest.approx(math.log(2), abs=1e-8)


def test_ranks_percentiles_and_z_scores():
    assert ranks({"a": 0.5, "b": 0.9, "c": 0.5}) == {"b": 1, "a": 2.5, "c": 2.5}
    assert percentile([1, 2, 3, 4], 0.5) == 2.5 and percentile([5], 0.9) == 5
    assert interval(list(range(101))) == pytest.approx((2.5, 97.5))
    assert z_score(1.0, [0.0, 1.0]) == pytest.approx((1.0 - 0.5) / math.sqrt(0.5))
    assert math.isnan(z_score(1.0, [0.5])) and math.isnan(z_score(1.0, [0.2, 0.2]))


# -- a store of runs ----------------------------------------------------------------------------
# per model, items right on each benchmark (10 items each): rankings partly agree
RIGHT = {
    "m1": {"alpha": 9, "beta": 8, "gamma": 2},
    "m2": {"alpha": 7, "beta": 9, "gamma": 3},
    "m3": {"alpha": 6, "beta": 5, "gamma": 9},
    "m4": {"alpha": 4, "beta": 4, "gamma": 5},
    "m5": {"alpha": 2, "beta": 3, "gamma": 7},
    "m6": {"alpha": 1, "beta": 1, "gamma": 1},
}


SCORED = ("m1", "m2", "m3")  # the others stored no scores


def score(model: str, bench: str, i: int, side: int) -> float:
    """A made-up reward: each model weighs the item index and the side differently."""
    weight = {"m1": 1.0, "m2": -0.5, "m3": 2.0}[model]
    return weight * i + (3 - side) * (len(bench) + int(model[1])) + (i * side) % 3


def report(model: str, right: dict[str, int], *, partial: bool = False, extra_error: bool = False) -> dict:
    items = []
    for bench, k in right.items():
        for i in range(10):
            items.append({"nodeid": f"{bench}.rmbench.yaml::s{i % 2}/i{i}", "file": f"{bench}.rmbench.yaml",
                          "subset": f"s{i % 2}", "outcome": "correct" if i < k else "incorrect",
                          "prompt_hash": f"{bench}-p{i // 2}",  # two items per prompt
                          **({"chosen_score": score(model, bench, i, 0), "rejected_score": score(model, bench, i, 1)}
                             if model in SCORED else {})})
        if extra_error:  # errors count nowhere
            items.append({"nodeid": f"{bench}.rmbench.yaml::s0/broken", "file": f"{bench}.rmbench.yaml",
                          "subset": "s0", "outcome": "error"})
    return {"run": {"model": model}, "items": items, "selection": {"partial": partial}}


@pytest.fixture
def store_path(tmp_path):
    path = tmp_path / "runs.sqlite"
    with open_store(str(path)) as store:
        store.record_run(report("m1", {"alpha": 0, "beta": 0, "gamma": 10}))  # older: replaced by the next
        for model, right in RIGHT.items():
            store.record_run(report(model, right, extra_error=model == "m3"))
        store.record_run(report("m1", {"alpha": 10, "beta": 0, "gamma": 0}, partial=True))  # a -k run: passed over
    return str(path)


def cli(store_path: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest_rmbench", "runs", *args, "--store", store_path],
                          capture_output=True, text=True, timeout=120)


def test_outcome_table_takes_each_models_latest_complete_run(store_path):
    with open_store(store_path, read_only=True) as store:
        table = outcome_table(store)
    assert sorted(table) == ["alpha.rmbench.yaml", "beta.rmbench.yaml", "gamma.rmbench.yaml"]
    for bench in ("alpha", "beta", "gamma"):
        acc = table[f"{bench}.rmbench.yaml"].accuracies()
        assert acc == {m: RIGHT[m][bench] / 10 for m in RIGHT}  # m3's errors left out, m1's partial run ignored
        assert table[f"{bench}.rmbench.yaml"].items == 10  # m3's errored item is no one's outcome


def test_runs_agreement_matches_scipy_and_the_leave_one_out_aggregate(store_path):
    done = cli(store_path, "agreement", "--json", "--reps", "200")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    acc = {b: [RIGHT[m][b] for m in sorted(RIGHT)] for b in ("alpha", "beta", "gamma")}
    pairs = {(p["a"].split(".")[0], p["b"].split(".")[0]): p for p in result["pairs"]}
    assert set(pairs) == {("alpha", "beta"), ("alpha", "gamma"), ("beta", "gamma")}
    for (a, b), p in pairs.items():
        assert p["models"] == 6 and p["few_models"] is True
        assert p["tau"] == pytest.approx(stats.kendalltau(acc[a], acc[b]).statistic, abs=1e-12)
        assert p["low"] <= p["tau"] <= p["high"]
    # alpha against the mean win rate of beta and gamma, by hand
    others = {m: (win_rates({n: RIGHT[n]["beta"] for n in RIGHT})[m]
                  + win_rates({n: RIGHT[n]["gamma"] for n in RIGHT})[m]) / 2 for m in sorted(RIGHT)}
    alpha = next(a for a in result["aggregate"] if a["benchmark"].startswith("alpha"))
    assert alpha["tau"] == pytest.approx(stats.kendalltau(acc["alpha"], [others[m] for m in sorted(RIGHT)]).statistic)
    taus = {a["benchmark"].split(".")[0]: a["tau"] for a in result["aggregate"]}
    assert alpha["z"] == pytest.approx(z_score(taus["alpha"], [taus["beta"], taus["gamma"]]))
    text = cli(store_path, "agreement", "--reps", "50").stdout
    assert "fewer than 10 models" in text and "alpha.rmbench.yaml" in text


def test_runs_agreement_needs_five_shared_models(store_path):
    done = cli(store_path, "agreement", "--model", "m1", "--model", "m2", "--model", "m3", "--reps", "10")
    assert done.returncode == 0
    assert "no two benchmarks share 5 models" in done.stdout


def test_runs_leaderboard_ranks_by_mean_win_rate_with_bradley_terry_and_intervals(store_path):
    done = cli(store_path, "leaderboard", "--json", "--reps", "100")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    expected = mean_win_rates({b: {m: RIGHT[m][b] for m in RIGHT} for b in ("alpha", "beta", "gamma")})
    rows = {r["model"]: r for r in result["models"]}
    for model, rate in expected.items():
        assert rows[model]["mean_win_rate"] == pytest.approx(rate)
        low, high = rows[model]["rank_interval"]
        assert low <= rows[model]["rank"] <= high
    assert [r["model"] for r in result["models"]][-1] == "m6"  # last everywhere
    assert result["items"] == 30 and result["smoothed"] is True  # m6 never beat anyone: no finite fit
    # Bradley-Terry over items: m6 lost to everyone it met, m3 beat most: strengths follow
    assert rows["m3"]["bradley_terry"] > rows["m4"]["bradley_terry"] > rows["m6"]["bradley_terry"]
    table = cli(store_path, "leaderboard", "--suite", "alpha.rmbench.yaml", "--reps", "20")
    assert "6 models over 1 benchmarks" in table.stdout and "m1" in table.stdout.splitlines()[2]


def test_runs_leaderboard_by_subset_and_an_empty_selection(store_path):
    result = json.loads(cli(store_path, "leaderboard", "--by", "subset", "--json", "--reps", "10").stdout)
    assert len(result["benchmarks"]) == 6 and "alpha.rmbench.yaml::s0" in result["benchmarks"]
    done = cli(store_path, "leaderboard", "--model", "nobody")
    assert done.returncode == 0 and "no complete run" in done.stdout


def test_leaderboard_is_reproducible_for_a_seed(store_path):
    with open_store(store_path, read_only=True) as store:
        table = outcome_table(store)
    assert leaderboard(table, reps=30, seed=3) == leaderboard(table, reps=30, seed=3)
    assert agreement(table, reps=30, seed=3) == agreement(table, reps=30, seed=3)


def test_the_readme_shows_this_stores_leaderboard(store_path):
    import pathlib

    from pytest_rmbench.standings import leaderboard_lines

    readme = (pathlib.Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    with open_store(store_path, read_only=True) as store:
        lines = leaderboard_lines(leaderboard(outcome_table(store), reps=1000, seed=0))
    assert "\n".join(lines) in readme


def test_pairwise_comparisons_by_hand(store_path):
    with open_store(store_path, read_only=True) as store:
        result = leaderboard(outcome_table(store), reps=10)
    pairs = {(p["a"], p["b"]): p for p in result["pairs"]}
    assert len(pairs) == 15 and result["prompts"] == 15  # two items per prompt
    p = pairs[("m1", "m6")]  # m6 is right only on item 0 of each benchmark, m1 on 9, 8 and 2 of them
    assert (p["items"], p["a_only"], p["b_only"]) == (30, 8 + 7 + 1, 0)
    assert p["delta"] == pytest.approx(16 / 30)
    assert p["mcnemar_p"] == pytest.approx(2 * 0.5 ** 16)
    ordered = sorted(result["pairs"], key=lambda r: r["mcnemar_p"])
    assert ordered[0]["holm_p"] == pytest.approx(min(1, 15 * ordered[0]["mcnemar_p"]))
    assert all(r["holm_p"] >= r["mcnemar_p"] for r in result["pairs"])
    assert p["low"] <= p["delta"] <= p["high"]


def test_runs_correlate_against_scipy(store_path):
    done = cli(store_path, "correlate", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    pairs = {(p["a"], p["b"]): p for p in result["pairs"]}
    assert set(pairs) == {("m1", "m2"), ("m1", "m3"), ("m2", "m3")}  # only these stored scores
    xs, ys, cx, cy = [], [], [], []
    for bench in ("alpha", "beta", "gamma"):
        for i in range(10):
            a = [score("m1", bench, i, 0), score("m1", bench, i, 1)]
            b = [score("m3", bench, i, 0), score("m3", bench, i, 1)]
            xs += a
            ys += b
            cx += [a[0] - sum(a) / 2, a[1] - sum(a) / 2]
            cy += [b[0] - sum(b) / 2, b[1] - sum(b) / 2]
    got = pairs[("m1", "m3")]
    assert got["answers"] == 60
    assert got["spearman"] == pytest.approx(stats.spearmanr(xs, ys).statistic, abs=1e-12)
    assert got["centred_pearson"] == pytest.approx(stats.pearsonr(cx, cy).statistic, abs=1e-12)
    assert "Spearman" in cli(store_path, "correlate").stdout


# -- several runs per model (rliable) ----------------------------------------------------------
def test_iqm_and_probability_of_improvement_against_scipy():
    from pytest_rmbench.report.ranking import iqm, probability_of_improvement

    rng = random.Random(3)
    for n in (1, 3, 4, 7, 8, 13):
        values = [rng.random() for _ in range(n)]
        assert iqm(values) == pytest.approx(stats.trim_mean(values, 0.25))
    x = [[0.1, 0.5, 0.5, 0.9], [0.3, 0.3]]
    y = [[0.5, 0.2], [0.3, 0.1, 0.6]]
    by_task = [stats.mannwhitneyu(a, b).statistic / (len(a) * len(b)) for a, b in zip(x, y)]
    assert probability_of_improvement(x, y) == pytest.approx(sum(by_task) / 2)


def seed_report(model: str, accuracies: dict[str, float]) -> dict:
    items = [{"nodeid": f"s.rmbench.yaml::{t}/1", "file": "s.rmbench.yaml", "subset": t, "outcome": "correct"}
             for t in accuracies]
    return {"run": {"model": model}, "items": items, "selection": {"partial": False},
            "subsets": {t: {"accuracy": a} for t, a in accuracies.items()}}


def test_runs_seeds_summarises_several_runs_per_model(tmp_path):
    path = str(tmp_path / "runs.sqlite")
    a = [{"x": 0.80, "y": 0.60}, {"x": 0.82, "y": 0.64}, {"x": 0.78, "y": 0.62}, {"x": 0.90, "y": 0.50}]
    b = [{"x": 0.70, "y": 0.61}, {"x": 0.72, "y": 0.63}, {"x": 0.74, "y": 0.59}, {"x": 0.70, "y": 0.61}]
    with open_store(path) as store:
        for run in a:
            store.record_run(seed_report("a", run))
        for run in b:
            store.record_run(seed_report("b", run))
        store.record_run(seed_report("c", {"x": 0.5, "y": 0.5}))
        store.record_run(seed_report("c", {"x": 0.5, "y": 0.5}))
    done = cli(path, "seeds", "--json", "--reps", "300", "--model", "a", "--model", "b")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["tasks"] == ["x", "y"]
    rows = {m["model"]: m for m in result["models"]}
    assert rows["a"]["iqm"] == pytest.approx(stats.trim_mean([v for r in a for v in r.values()], 0.25))
    assert rows["b"]["iqm"] == pytest.approx(stats.trim_mean([v for r in b for v in r.values()], 0.25))
    low, high = rows["a"]["interval"]
    assert low < rows["a"]["iqm"] < high and rows["a"]["runs"] == 4
    (pair,) = result["pairs"]
    x = [[r["x"] for r in a], [r["y"] for r in a]]
    y = [[r["x"] for r in b], [r["y"] for r in b]]
    expected = sum(stats.mannwhitneyu(p, q).statistic / 16 for p, q in zip(x, y)) / 2
    assert (pair["a"], pair["b"]) == ("a", "b") and pair["p_improvement"] == pytest.approx(expected)
    text = cli(path, "seeds", "--reps", "50").stdout
    assert "identical runs, so no spread to resample: c" in text and "P(A > B)" in text


def test_leaderboard_page_and_markdown(store_path, tmp_path):
    page, md = tmp_path / "board.html", tmp_path / "board.md"
    done = cli(store_path, "leaderboard", "--reps", "20", "--html", str(page), "--markdown", str(md))
    assert done.returncode == 0, done.stderr
    html = page.read_text()
    assert 'data-chart="forest-win-rate"' in html and 'data-chart="forest-bradley-terry"' in html
    assert html.count("<circle") == 12 and "<script" not in html and "script-src" not in html
    assert 'data-table="pairs"' in html and html.count('style="color:#1a7f37"') >= 1  # m3 beats m6 clearly
    rows = [line for line in md.read_text().splitlines() if line.startswith("| ")]
    assert rows[1].startswith("| 1.5 | m3 | 3 | 0.733 |") and len(rows) == 1 + 6 + 1 + 15


def test_leaderboard_page_escapes_model_names():
    from pytest_rmbench.report.leaderboard import leaderboard_html, leaderboard_markdown

    row = {"model": "<b>x</b>|y", "benchmarks": 1, "mean_win_rate": 0.5, "mean_win_rate_interval": (0.4, 0.6),
           "bradley_terry": 0.0, "bradley_terry_interval": (-0.1, 0.1), "rank": 1, "rank_interval": (1, 1)}
    result = {"models": [row], "benchmarks": ["b"], "items": 3, "prompts": 3, "reps": 1, "seed": 0, "pairs": []}
    assert "<b>x</b>" not in leaderboard_html(result) and "&lt;b&gt;x&lt;/b&gt;" in leaderboard_html(result)
    assert "&lt;b&gt;x&lt;/b&gt;\\|y" in leaderboard_markdown(result)
