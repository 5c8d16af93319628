"""The quick gate, --rm-sample (sample.py): allocation, which items, finite-population intervals,
and a real session that gates on them."""

import json
import math

import pytest

from pytest_rmbench.report.stats import wilson_interval
from pytest_rmbench.sample import allocate, choose, fpc_interval

pytest_plugins = ["pytester"]


def test_allocation_by_hand():
    # base 3/3/2 (c has only 2), 12 left over the room 97 and 7: quotas 11.19 and 0.81 ->
    # floors 11 and 0, the one left goes to the larger remainder (b)
    assert allocate({"a": 100, "b": 10, "c": 2}, 20) == {"a": 14, "b": 4, "c": 2}
    assert allocate({"a": 5, "b": 5}, 50) == {"a": 5, "b": 5}  # more than there is: everything
    assert allocate({"a": 50, "b": 50, "c": 50}, 4) == {"a": 3, "b": 3, "c": 3}  # at least 3 each
    assert sum(allocate({"a": 700, "b": 200, "c": 100}, 100).values()) == 100


def test_the_sample_depends_on_node_ids_and_seed_only():
    entries = [(f"f.rmbench.yaml::{s}/{i}", s) for s in ("x", "y") for i in range(30)]
    one = choose(entries, 10, seed=0)
    assert one == choose(list(reversed(entries)), 10, seed=0)
    assert len(one) == 10 and sum(e.endswith(tuple(f"/{i}" for i in range(30))) for e in one) == 10
    assert sum("::x/" in e for e in one) == 5
    assert choose(entries, 10, seed=1) != one


def test_finite_population_interval():
    # the whole subset ran: the point, no interval
    assert fpc_interval(7, 10, 10) == (0.7, 0.7)
    # a tiny share of a huge population: Wilson's interval
    assert fpc_interval(8, 10, 10**9) == pytest.approx(wilson_interval(8, 10), abs=1e-6)
    # 10 of 20: Wilson at the effective size 10 * 19 / 10 = 19, by hand
    z, p, m = 1.959963984540054, 0.8, 19.0
    centre = (p + z * z / (2 * m)) / (1 + z * z / m)
    half = z / (1 + z * z / m) * math.sqrt(p * (1 - p) / m + z * z / (4 * m * m))
    assert fpc_interval(8, 10, 20) == pytest.approx((centre - half, centre + half), abs=1e-12)


def items_file(pytester, easy: int = 40, hard: int = 20) -> None:
    """easy: the chosen answer is the longer (builtin:length passes); hard: the shorter (fails)."""
    lines = ["name: sampled", "items:"]
    for i in range(easy):
        lines += [f"  - {{id: e{i}, subset: easy, prompt: q{i}, chosen: a long good answer {i}, rejected: nope}}"]
    for i in range(hard):
        lines += [f"  - {{id: h{i}, subset: hard, prompt: q{i}, chosen: ok, rejected: a long bad answer {i}}}"]
    pytester.makefile(".rmbench.yaml", sampled="\n".join(lines))


def run(pytester, *args):
    return pytester.runpytest_subprocess("-p", "no:randomly", "--rm-model=builtin:length", "--rm-no-store",
                                         "--rm-report=r.json", *args)


def test_a_sampled_run_reports_estimates_and_gates_on_them(pytester):
    items_file(pytester)
    result = run(pytester, "--rm-sample", "12", "--rm-min-accuracy", "easy=0.6", "--rm-min-accuracy", "overall=0.6")
    report = json.loads((pytester.path / "r.json").read_text())
    assert len(report["items"]) == 12
    assert report["selection"]["sample"] == {"size": 12, "seed": 0, "drawn": 12, "of": 60}
    assert report["selection"]["partial"] is True
    assert report["selection"]["why"] == ["a stratified sample of 12 of 60 items (--rm-sample 12, seed 0)"]
    easy, hard, overall = report["subsets"]["easy"], report["subsets"]["hard"], report["overall"]
    assert (easy["n"], hard["n"]) == (7, 5)  # 3 + 3 base, 6 more split 37 : 17 -> 4.11 and 1.89 -> 4 + 0 and 1 + 1
    assert easy["population"] == 40 and overall["population"] == 60
    assert (easy["ci_low"], easy["ci_high"]) == pytest.approx(fpc_interval(7, 7, 40))
    assert (overall["ci_low"], overall["ci_high"]) == pytest.approx(fpc_interval(7, 12, 60))
    checks = {c["name"]: c for c in report["gate"]["checks"] if c["kind"] == "accuracy"}
    assert checks["easy"]["status"] == "pass" and checks["easy"]["rule"] == "sample interval"
    # 7 of 12 estimate 0.58 of 60; 0.6 lies inside the interval: inconclusive, which never passes
    assert checks["overall"]["status"] == "inconclusive" and checks["overall"]["passed"] is False
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*overall 0.583 *needs >= 0.600: INCONCLUSIVE (sample interval rule*",
                                 "warning: inconclusive (counted as failed, --rm-sample: never a pass): overall"])


def test_the_same_sample_under_xdist_and_for_another_model(pytester):
    items_file(pytester)
    run(pytester, "--rm-sample", "10", "--rm-sample-seed", "4")
    serial = {i["nodeid"] for i in json.loads((pytester.path / "r.json").read_text())["items"]}
    pytester.runpytest_subprocess("-p", "no:randomly", "--rm-model=builtin:random", "--rm-no-store",
                                  "--rm-report=r2.json", "--rm-sample", "10", "--rm-sample-seed", "4", "-n", "2")
    other = json.loads((pytester.path / "r2.json").read_text())
    assert {i["nodeid"] for i in other["items"]} == serial and len(serial) == 10
    assert other["subsets"]["easy"]["population"] == 40


@pytest.mark.parametrize("value", ["0", "x", "-3"])
def test_a_bad_sample_size_is_a_usage_error(pytester, value):
    items_file(pytester, 3, 3)
    result = run(pytester, "--rm-sample", value)
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*--rm-sample:*"])


def test_a_sampled_run_compares_with_a_full_baseline_on_its_own_items(pytester):
    items_file(pytester)
    store = str(pytester.path / "runs.sqlite")
    full = pytester.runpytest_subprocess("-p", "no:randomly", "--rm-model=builtin:length", f"--rm-store={store}")
    assert full.ret == 0
    sampled = pytester.runpytest_subprocess("-p", "no:randomly", "--rm-model=builtin:length", f"--rm-store={store}",
                                            "--rm-report=r.json", "--rm-sample", "12", "--rm-baseline=latest")
    report = json.loads((pytester.path / "r.json").read_text())
    assert report["baseline"]["overall"]["n"] == 12  # paired on the sample's items only
    assert report["baseline"]["overall"]["regressions"] == 0 and report["baseline"]["shared"] == 12 and sampled.ret == 0
    # the sampled run is partial: a later latest baseline is still the full run
    again = pytester.runpytest_subprocess("-p", "no:randomly", "--rm-model=builtin:length", f"--rm-store={store}",
                                          "--rm-report=r2.json", "--rm-baseline=latest")
    assert json.loads((pytester.path / "r2.json").read_text())["baseline"]["overall"]["n"] == 60 and again.ret == 0


SUITE_CONFTEST = '''
import pytest
from pytest_rmbench.items import PairItem
from pytest_rmbench.suites.base import items_from_rows

ROWS = [{"id": i, "area": "big" if i < 30 else "small", "good": "a long good answer", "bad": "no"} for i in range(40)]

class Many:
    name = "many"
    headline = "overall"

    def load(self, source):
        def make(row, index):
            return PairItem(id=str(row["id"]), subset=row["area"], prompt="q", chosen=row["good"], rejected=row["bad"],
                            node=f"{row['area']}/{row['id']}", source=f"many#{index}", order=index)
        return items_from_rows(ROWS, "many-data", make)

    def sections(self, subsets):
        return {}

    def score(self, results):
        graded = [r for r in results if r.outcome != "error"]
        return {"overall": sum(r.credit for r in graded) / len(graded)}

@pytest.hookimpl
def pytest_rmbench_make_suite(config, name):
    return Many() if name == "many" else None
'''


def test_a_suite_is_sampled_by_its_own_subsets(pytester):
    pytester.makeconftest(SUITE_CONFTEST)
    result = run(pytester, "--rm-bench=many", "--rm-sample", "8", "--rm-min-accuracy", "many/big=0.7",
                 "--rm-min-accuracy", "many=0.5")
    report = json.loads((pytester.path / "r.json").read_text())
    big, small = report["subsets"]["many/big"], report["subsets"]["many/small"]
    # base 3 + 3, two more over the room 27 : 7 -> quotas 1.59 and 0.41: floors 1 and 0, the last to big's remainder
    assert (big["n"], big["population"], small["n"], small["population"]) == (5, 30, 3, 10)
    assert report["scores"]["many"] == {"overall": 1.0}  # the suite scores the items that ran
    assert (big["ci_low"], big["ci_high"]) == pytest.approx(fpc_interval(5, 5, 30))
    checks = {c["name"]: c for c in report["gate"]["checks"] if c["kind"] == "accuracy"}
    # 5 right of 30 sampled: the interval's low end is about 0.60, so >= 0.7 cannot be shown
    assert checks["many/big"]["status"] == "inconclusive" and result.ret == 1
    # the official score of 8 items is said to be an estimate, and a threshold on it cannot pass (no interval)
    assert report["datasets"]["many"]["estimate"] == {"items": 8, "of": 40}
    assert checks["many"]["status"] == "inconclusive" and checks["many"]["passed"] is False and checks["many"]["value"] == 1.0
    result.stdout.fnmatch_lines(["many: overall 1.000 (an estimate from 8 of 40 items: --rm-sample)"])
