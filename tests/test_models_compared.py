"""Several models in one run (issue #15): repeated --rm-model, one test per item and model, one
model held at a time, per-model reports, thresholds and --rm-compare in the gate, the
in-session leaderboard, and the same report under -n 2 as in one process."""

import json
import math
import random
import re

import numpy  # noqa: F401  (imported before pytester's in-process runs, which must not import them afresh:
import pytest
import torch  # noqa: F401  a second import of their C extensions fails)

from pytest_rmbench.engine import plan_chunks
from pytest_rmbench.collect import model_node_name
from pytest_rmbench.lanes import score_file_for
from pytest_rmbench.options import default_model_name
from pytest_rmbench.report.gate import GateConfig, Threshold, for_model
from pytest_rmbench.standings import accuracy_board, items_table

pytest_plugins = ["pytester"]

# toy:WORD scores an answer by whether WORD is in it; math answers carry "m", which toy:nomath
# reads backwards (right on chat, wrong on math). Loads and closes go to models.log.
CONFTEST = '''
import os
import pytest
from pytest_rmbench.models.base import Prepared

class Toy:
    dtype = "n/a"; device = "cpu"
    def __init__(self, word):
        self.word, self.kind, self.name = word, "toy", "toy:" + word
    def prepare(self, requests):
        return [Prepared(r, len(r.answer)) for r in requests]
    def score_batch(self, batch):
        out = []
        for p in batch:
            words = p.request.answer.split()
            if self.word == "nomath":
                out.append(float(("bad" if "m" in words else "good") in words))
            else:
                out.append(float(self.word in words))
        return out
    def close(self):
        with open(os.path.join(os.environ["TOY_LOG_DIR"], "models.log"), "a") as fh:
            fh.write(f"close {self.word} {os.getpid()}\\n")

BUILT = []  # weak references to every Toy built: a freed model must be gone, not merely closed

@pytest.hookimpl
def pytest_rmbench_make_model(config, spec):
    if spec.model.startswith("toy:"):
        import weakref
        alive = sum(ref() is not None for ref in BUILT)
        with open(os.path.join(os.environ["TOY_LOG_DIR"], "models.log"), "a") as fh:
            fh.write(f"load {spec.model[4:]} {os.getpid()} {alive}\\n")
        toy = Toy(spec.model[4:])
        BUILT.append(weakref.ref(toy))
        return toy

@pytest.hookimpl
def pytest_rmbench_model_fingerprint(config, spec):
    return spec.model if spec.model.startswith("toy:") else None
'''


@pytest.fixture
def toys(pytester, monkeypatch):
    monkeypatch.setenv("TOY_LOG_DIR", str(pytester.path))
    pytester.makeconftest(CONFTEST)
    lines = ["items:"]
    for i in range(6):
        lines.append(f"  - {{id: c{i}, subset: chat, prompt: 'chat {i}', chosen: 'good c{i}', rejected: 'bad c{i}'}}")
    for i in range(6):
        lines.append(f"  - {{id: m{i}, subset: math, prompt: 'math {i}', chosen: 'good m {i}', rejected: 'bad m {i}'}}")
    pytester.makefile(".rmbench.yaml", toy="\n".join(lines))
    return pytester


def run(pytester, *args, models=("good=toy:good", "bad=toy:bad")):
    """A real session of the models, in this process (-n N runs in a subprocess: xdist starts workers)."""
    flags = [f"--rm-model={m}" for m in models]
    runner = pytester.runpytest_subprocess if "-n" in args else pytester.runpytest
    return runner("-p", "no:randomly", *flags, "--rm-report=r.json", *args)


def report(pytester) -> dict:
    return json.loads((pytester.path / "r.json").read_text())


def log(pytester) -> list[list[str]]:
    path = pytester.path / "models.log"
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


# -- a real session ---------------------------------------------------------------------------
def test_each_item_is_one_test_per_model_named_the_pytest_way(toys):
    result = run(toys, "-v")
    result.stdout.fnmatch_lines(["*toy.rmbench.yaml::chat/c0?good? PASSED*", "*toy.rmbench.yaml::chat/c0?bad? INCORRECT*"])
    assert result.ret == 0  # bad's items are INCORRECT; with no gate set, the exit status is 0
    r = report(toys)
    assert list(r["models"]) == ["good", "bad"]
    assert r["models"]["good"]["overall"]["accuracy"] == 1.0 and r["models"]["bad"]["overall"]["accuracy"] == 0.0
    assert r["overall"]["accuracy"] == 1.0 and r["run"]["model"] == "toy:good"  # the top level is the first model's
    assert len(r["items"]) == 24 and {i["model"] for i in r["items"]} == {"good", "bad"}
    assert {i["nodeid"] for i in r["items"] if i["model"] == "bad"} == {
        f"toy.rmbench.yaml::{s}/{s[0]}{k}[bad]" for s in ("chat", "math") for k in range(6)}
    assert "items" not in r["models"]["bad"] and r["models"]["bad"]["overall"]["n"] == 12


def test_one_model_keeps_todays_node_ids_and_report(toys):
    run(toys, "-v", models=("cand=toy:good",)).stdout.fnmatch_lines(["*toy.rmbench.yaml::chat/c0 PASSED*"])
    r = report(toys)
    assert "models" not in r and "comparison" not in r and "model" not in r["items"][0]


def test_minus_k_runs_one_models_tests_and_the_run_is_partial(toys):
    result = run(toys, "-k", "bad")
    assert result.parseoutcomes() == {"incorrect": 12, "deselected": 12}
    r = report(toys)
    assert r["models"]["bad"]["selection"]["partial"] is False  # every item of bad ran
    assert r["models"]["good"]["selection"]["partial"] is True and r["models"]["good"]["overall"]["n"] == 0
    assert "run" in r["models"]["good"] and r["models"]["good"]["run"].get("id") is None  # nothing to store
    assert [b["name"] for b in r["comparison"]["boards"]] == ["overall", "chat", "math"]


def test_a_worker_holds_one_model_at_a_time_unless_asked(toys):
    assert run(toys, "-p", "no:xdist").ret == 0
    events = [tuple(line[:2]) for line in log(toys)]
    assert events[:3] == [("load", "good"), ("close", "good"), ("load", "bad")]  # good freed before bad loaded
    assert [line[3] for line in log(toys) if line[0] == "load"] == ["0", "0"]  # and gone: no model alive at a load
    (toys.path / "models.log").unlink()
    assert run(toys, "-p", "no:xdist", "--rm-keep-models", "--rm-no-cache").ret == 0
    assert [line[3] for line in log(toys) if line[0] == "load"] == ["0", "1"]  # good still held when bad loads
    events = [tuple(line[:2]) for line in log(toys)]
    assert events[:2] == [("load", "good"), ("load", "bad")] and sorted(events[2:]) == [("close", "bad"), ("close", "good")]
    workers = {w["model"]: w for w in report(toys)["workers"]}
    assert workers["good"]["loads"] == 1 and workers["good"]["freed"] == 0


def test_thresholds_apply_to_every_model_unless_one_is_named(toys):
    result = run(toys, "--rm-min-accuracy", "overall=0.5", "--rm-min-accuracy", "good:chat=0.9")
    checks = {c["name"]: c for c in report(toys)["gate"]["checks"]}
    assert checks["good:overall"]["passed"] and checks["bad:overall"]["passed"] is False
    assert checks["good:chat"]["passed"] and "bad:chat" not in checks and checks["good:chat"]["model"] == "good"
    result.stdout.fnmatch_lines(["*bad:overall 0.000, needs >= 0.500: FAIL*", "gate: FAILED"])
    assert result.ret == 1


def test_a_threshold_naming_no_model_of_the_run_is_a_usage_error(toys):
    result = run(toys, "--rm-min-accuracy", "gd:chat=0.9")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*threshold 'gd:chat'*matches no subset or section*models: good, bad*"])


def test_compare_gates_on_non_inferiority_between_two_models_of_the_run(toys):
    result = run(toys, "--rm-compare", "good=bad", models=("good=toy:good", "bad=toy:bad", "nomath=toy:nomath"))
    checks = {c["name"]: c for c in report(toys)["gate"]["checks"]}
    assert checks["good vs bad:overall"]["status"] == "pass" and checks["good vs bad:overall"]["kind"] == "compare"
    assert checks["good vs bad:overall"]["value"] == 1.0
    assert result.ret == 0  # the one check passes
    result = run(toys, "--rm-compare", "nomath=good", models=("good=toy:good", "bad=toy:bad", "nomath=toy:nomath"))
    checks = {c["name"]: c for c in report(toys)["gate"]["checks"]}
    assert checks["nomath vs good:chat"]["status"] == "pass"  # the same answers on every chat item
    assert checks["nomath vs good:math"]["status"] == "fail" and checks["nomath vs good:overall"]["status"] == "fail"
    block = report(toys)["comparison"]["compare"][0]
    assert (block["candidate"], block["base"], block["overall"]["regressions"]) == ("nomath", "good", 6)
    result.stdout.fnmatch_lines(["*nomath vs good:math delta -1.000*FAIL*", "gate: FAILED"])


@pytest.mark.parametrize("pair, message", [("good=gd", "unknown model 'gd'; models of this run: good, bad"),
                                           ("good=good", "a model compared with itself"),
                                           ("good", "expected CAND=BASE")])
def test_a_bad_compare_is_a_usage_error(toys, pair, message):
    result = run(toys, "--rm-compare", pair)
    assert result.ret == 4
    result.stderr.fnmatch_lines([f"*{message}*"])


def test_two_models_with_one_name_is_a_usage_error(toys):
    result = run(toys, models=("builtin:random", "builtin:random"))
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*two models are named 'random'*name them, e.g. --rm-model a=builtin:random*"])


def test_a_model_that_cannot_load_costs_its_own_items_only(toys):
    result = run(toys, models=("good=toy:good", "gone=./no-such-model"))
    assert result.parseoutcomes() == {"passed": 12, "unscored": 12}
    assert result.ret == 1  # the gate's errors check: gone's items could not be scored
    result.stdout.fnmatch_lines(["*gone: the reward model could not be loaded*"])
    r = report(toys)
    assert r["models"]["good"]["overall"]["accuracy"] == 1.0 and r["models"]["gone"]["overall"]["errors"] == 12
    assert "INTERNALERROR" not in result.stdout.str()


def test_under_xdist_the_report_equals_one_process(toys):
    models = ("good=toy:good", "bad=toy:bad", "nomath=toy:nomath")
    run(toys, "-p", "no:xdist", "--rm-no-cache", "--rm-chunk-size", "5", models=models)
    alone = report(toys)
    run(toys, "-n", "2", "--rm-no-cache", "--rm-chunk-size", "5", models=models)
    spread = report(toys)
    assert len({w["worker"] for w in spread["workers"]}) == 2

    def items(r):
        return {i["nodeid"]: (i["model"], i["outcome"], i["chosen_score"], i["rejected_score"]) for i in r["items"]}

    assert items(spread) == items(alone) and len(items(alone)) == 36
    assert spread["comparison"]["boards"] == alone["comparison"]["boards"]
    assert spread["comparison"]["pairs"] == alone["comparison"]["pairs"]
    for name in models:
        name = name.split("=")[0]
        for block in ("subsets", "overall", "sections", "scores"):
            assert spread["models"][name][block] == alone["models"][name][block]


def test_scores_are_saved_per_model_and_replay(toys):
    run(toys, "--rm-save-scores", "s.jsonl")
    first = {i["nodeid"]: i["outcome"] for i in report(toys)["items"]}
    assert (toys.path / "s.good.jsonl").exists() and (toys.path / "s.bad.jsonl").exists()
    run(toys, models=("good=scores:s.good.jsonl", "bad=scores:s.bad.jsonl"))
    assert {i["nodeid"]: i["outcome"] for i in report(toys)["items"]} == first


def test_the_cache_keeps_each_models_scores_apart(toys):
    run(toys)
    loads = len(log(toys))
    first = {i["nodeid"]: i["chosen_score"] for i in report(toys)["items"]}
    run(toys)
    assert len(log(toys)) == loads  # every score from the cache: no model loaded
    assert {i["nodeid"]: i["chosen_score"] for i in report(toys)["items"]} == first


def test_each_model_is_one_run_in_the_store(toys):
    from pytest_rmbench.storage.store import open_store

    result = run(toys)
    result.stdout.fnmatch_lines(["recorded as runs 2 (good), 1 (bad)*"])  # the first model last: it is `latest`
    store = open_store(str(toys.path / ".rmbench" / "runs.sqlite"))
    try:
        runs = {r["model"]: r for r in store.run_files()}
        assert set(runs) == {"toy:good", "toy:bad"} and not runs["toy:bad"]["partial"]
        nodeids = {row[0] for row in store.item_outcomes(runs["toy:bad"]["id"])}
        assert "toy.rmbench.yaml::chat/c0" in nodeids  # a one-model run's node ids: baselines pair them
    finally:
        store.close()


def test_a_sample_is_the_same_items_for_every_model(toys):
    run(toys, "--rm-sample", "6")
    r = report(toys)
    chosen = {m: {i["nodeid"].rsplit("[", 1)[0] for i in r["items"] if i["model"] == m} for m in ("good", "bad")}
    assert chosen["good"] == chosen["bad"] and len(chosen["good"]) == 6
    assert r["models"]["bad"]["overall"]["estimate"] is True


def test_the_terminal_markdown_and_html_show_the_comparison(toys):
    result = run(toys, "--rm-markdown", "m.md", "--rm-html", "h.html")
    result.stdout.fnmatch_lines(["*rmbench: 2 models: good (toy:good), bad (toy:bad)*", "  accuracy  good   bad",
                                 "  chat      1.000  0.000", "leaderboard (95% intervals*",
                                 "  overall  1     good   12  1.000     [1.000, 1.000]  [1, 1]",
                                 "pairs of models*", "  good  bad  12     12      0       +1.000*"])
    markdown = (toys.path / "m.md").read_text()
    assert "## Models compared" in markdown and "| overall | 1 | good | 12 | 1.000 |" in markdown
    assert markdown.startswith("## ℹ️ rmbench: no gate · overall accuracy good 1.000, bad 0.000")
    page = (toys.path / "h.html").read_text()
    assert 'data-section="models"' in page and 'data-chart="forest-overall"' in page and 'data-table="pairs"' in page
    assert "<h1>rmbench report: good (toy:good), bad (toy:bad)</h1>" in page


# -- the pieces -------------------------------------------------------------------------------------
def test_names_node_ids_and_score_files():
    assert default_model_name("./runs/ckpt-900/") == "ckpt-900"
    assert default_model_name("builtin:length") == "length" and default_model_name("scores:out/s.jsonl") == "s"
    assert default_model_name("http://user:pw@host:8000/v1?model=x") == "v1"
    assert model_node_name("chat/1", "cand") == "chat/1[cand]" and model_node_name("chat/1[item-3]", "b") == "chat/1[item-3-b]"
    assert model_node_name("chat/1", None) == "chat/1"
    assert score_file_for("s.jsonl", "a", True) == "s.a.jsonl" and score_file_for("s.jsonl", "a", False) == "s.jsonl"
    assert score_file_for("out/{model}.jsonl", "a", True) == "out/a.jsonl"


def test_chunks_never_mix_models():
    keys = [f"f::s/{i}[a]" for i in range(5)] + [f"f::s/{i}[b]" for i in range(3)]
    assert plan_chunks(keys, 3, lambda k: k[-2]) == [keys[0:3], keys[3:5], keys[5:8]]
    assert plan_chunks(keys, 3) == [keys[0:3], keys[3:6], keys[6:8]]  # one model: as before


def test_a_threshold_naming_a_model_wins_over_the_general_one():
    config = GateConfig(thresholds={"chat": Threshold("chat", 0.5, "ini"), "a:chat": Threshold("a:chat", 0.9, "cli"),
                                    "b:overall": Threshold("b:overall", 0.7, "cli")})
    assert {n: t.value for n, t in for_model(config, "a", ["a", "b"]).thresholds.items()} == {"chat": 0.9}
    assert {n: t.value for n, t in for_model(config, "b", ["a", "b"]).thresholds.items()} == {"chat": 0.5, "overall": 0.7}


def items(outcomes: dict[str, list[int]], clusters=None) -> list[dict]:
    return [{"model": m, "nodeid": f"n{k}", "outcome": "correct" if v else "incorrect",
             "prompt_hash": clusters[k] if clusters else None}
            for m, values in outcomes.items() for k, v in enumerate(values)]


def test_accuracy_board_by_hand():
    # every item the same pattern: each resample is the data again, so intervals are points
    table = items_table(items({"a": [1] * 10, "b": [0] * 10}), lambda i: ["all"])
    rows = {r["model"]: r for r in accuracy_board(table["all"], ["a", "b"], reps=200)}
    assert (rows["a"]["accuracy"], rows["a"]["ci_low"], rows["a"]["ci_high"]) == (1.0, 1.0, 1.0)
    assert (rows["a"]["rank"], rows["a"]["rank_low"], rows["a"]["rank_high"]) == (1, 1, 1)
    assert (rows["b"]["rank_low"], rows["b"]["rank_high"], rows["b"]["n"]) == (2, 2, 10)


def test_the_resamples_are_shared_by_every_model():
    # b is a with one item more wrong: in every shared resample a >= b, so a never ranks 2nd
    # (with independent resamples per model it would, often: both are near 0.5 on 40 items)
    rng = random.Random(1)
    a = [rng.randint(0, 1) for _ in range(40)]
    b = list(a)
    b[a.index(1)] = 0
    table = items_table(items({"a": a, "b": b}), lambda i: ["all"])
    rows = {r["model"]: r for r in accuracy_board(table["all"], ["a", "b"], reps=2000, seed=3)}
    assert rows["a"]["rank_high"] <= 1.5 and rows["b"]["rank_low"] >= 1.5
    assert rows["a"]["accuracy"] - rows["b"]["accuracy"] == pytest.approx(1 / 40)


def test_a_prompt_is_resampled_whole():
    # two items per prompt, the same outcome inside a prompt: 10 prompts, so the interval is the
    # 10-cluster one (wider than 20 independent items would give)
    outcomes = [1, 1, 0, 0] * 5
    clusters = [f"p{k // 2}" for k in range(20)]
    table = items_table(items({"a": outcomes, "b": [1] * 20}, clusters), lambda i: ["all"])
    assert table["all"].clusters == 10 and table["all"].items == 20
    row = next(r for r in accuracy_board(table["all"], ["a", "b"], reps=4000, seed=0) if r["model"] == "a")
    # the binomial(10, 0.5) / 10 resampling distribution's 2.5% and 97.5% points are 0.2 and 0.8
    assert row["accuracy"] == 0.5 and row["ci_low"] == pytest.approx(0.2) and row["ci_high"] == pytest.approx(0.8)
    assert not math.isnan(row["rank_low"])


def test_the_readme_shows_what_its_command_prints(pytester):
    import pathlib
    import re
    import shlex
    import shutil

    root = pathlib.Path(__file__).parent.parent
    readme = (root / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Several models in one run", 1)[1].split("\n## ", 1)[0]
    command = re.search(r"```bash\n(.*?)\n```", section, re.S).group(1)
    table, gate = re.findall(r"```text\n(.*?)\n```", section, re.S)[:2]
    shutil.copytree(root / "benchmarks", pytester.path / "benchmarks")
    args = shlex.split(command)
    assert args[:2] == ["pytest", "benchmarks"]
    result = pytester.runpytest_subprocess("-p", "no:randomly", "--rm-no-store", *args[1:])
    out = result.stdout.str()
    assert table in out
    assert all(line in out.splitlines() for line in gate.splitlines())


def test_the_baseline_compares_the_first_model_and_latest_is_the_first_models_run(toys):
    run(toys, models=("nomath=toy:nomath",))  # run 1
    result = run(toys, "--rm-baseline", "latest", models=("good=toy:good", "bad=toy:bad"))
    r = report(toys)
    assert r["baseline"]["run"] == 1 and r["models"]["good"]["baseline"]["overall"]["fixes"] == 6
    assert r["models"]["bad"]["baseline"] is None and "good:baseline:overall" in {c["name"] for c in r["gate"]["checks"]}
    result.stdout.fnmatch_lines(["--rm-baseline compares the first model, good"])
    run(toys, "--rm-baseline", "latest", models=("good=toy:good",))
    assert report(toys)["baseline"]["run"] == 3  # good's run of the session before, not bad's (run 2)


def test_ray_runs_one_model(toys):
    result = run(toys, "--rm-ray", "local")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*--rm-ray runs one model*"])


def test_junit_has_a_testcase_per_item_and_model_and_each_models_accuracy(toys):
    run(toys, "--junitxml=j.xml")
    xml = (toys.path / "j.xml").read_text()
    assert 'name="chat/c0[good]"' in xml and 'name="chat/c0[bad]"' in xml
    assert '<property name="rm_accuracy_overall[bad]" value="0.0"' in xml
    assert '<property name="rm_model[good]" value="toy:good"' in xml


def test_the_page_of_several_models_renders_in_headless_chromium(toys, tmp_path):
    from test_markdown_html import chromium_path, page_errors, run_chromium

    binary = chromium_path()
    if binary is None:
        pytest.skip("no chromium: install Debian's chromium (apt-get install -y chromium; .ci/chromium.sh does it)")
    run(toys, "--rm-html", "h.html", models=("good=toy:good", "bad=toy:bad", "nomath=toy:nomath"))
    dumped = run_chromium(binary, tmp_path, "dom", "--dump-dom", (toys.path / "h.html").as_uri())
    assert dumped.returncode == 0, dumped.stderr[-3000:]
    dom = dumped.stdout
    assert 'data-rmbench-js="ok"' in dom and page_errors(dumped.stderr) == []
    for chart in ("forest-overall", "forest-subset"):
        assert f'data-chart="{chart}"' in dom
    assert dom.count('data-outcome="incorrect"') == 12 + 6  # bad's 12 and nomath's 6 math items, in one table
    assert re.search(r'<table data-table="models">.*?<td>overall</td><td>1.000</td><td>0.000</td><td>0.500</td>', dom, re.S)


def test_last_failed_reruns_one_models_failures(toys):
    run(toys, "-p", "cacheprovider", models=("good=toy:good", "nomath=toy:nomath"))
    result = run(toys, "-p", "cacheprovider", "--lf", "-v", models=("good=toy:good", "nomath=toy:nomath"))
    assert result.parseoutcomes() == {"incorrect": 6}  # --lf left the others uncollected
    result.stdout.fnmatch_lines(["*toy.rmbench.yaml::math/m0?nomath? INCORRECT*"])
    r = report(toys)
    assert r["models"]["nomath"]["selection"]["partial"] and r["models"]["nomath"]["subsets"]["math"]["n"] == 6


def test_last_failed_finds_an_item_whose_name_has_brackets(pytester):
    # a duplicate id is an error test named chat/1[item-1]; pytest 9 parses "[item-1]" as params
    pytester.makefile(".rmbench.yaml", dup="items:\n  - {id: 1, subset: chat, prompt: p, chosen: aa, rejected: b}\n"
                                           "  - {id: 1, subset: chat, prompt: q, chosen: aa, rejected: b}\n")
    args = ("-p", "no:randomly", "-p", "cacheprovider", "--rm-model=builtin:length", "--rm-no-store")
    pytester.runpytest_subprocess(*args)
    result = pytester.runpytest_subprocess(*args, "--lf", "-v")
    result.stdout.fnmatch_lines(["run-last-failure: rerun previous 1 failure*", "*dup.rmbench.yaml::chat/1?item-1? ERROR*"])


@pytest.fixture(scope="module")
def two_real_models(tmp_path_factory):
    import tinymodels

    root = tmp_path_factory.mktemp("two-models")
    return tinymodels.build_tiny_llama(root / "llama", seed=1), tinymodels.build_minilm_classifier(root / "minilm", seed=2)


def test_real_models_score_in_one_session_as_each_alone(pytester, two_real_models, subprocess_env):
    # a tiny Llama and the packaged MiniLM: the same scores item by item in one session of both
    # under -n 2 (each worker frees one model before it loads the other) as in a session of each
    llama, minilm = two_real_models
    lines = [json.dumps({"id": i, "subset": "chat" if i % 2 else "math", "prompt": f"hello world number {i}",
                         "chosen": "a helpful answer " * (1 + i % 3), "rejected": "no " * (1 + i % 4)}) for i in range(24)]
    pytester.makefile(".rmbench.jsonl", real="\n".join(lines))
    base = ("-p", "no:randomly", "--rm-no-cache", "--rm-no-store", "--rm-report=r.json", "--rm-chunk-size", "4")

    def scores(*args) -> dict:
        assert pytester.runpytest_subprocess(*base, *args).ret == 0
        return {(i.get("model"), i["nodeid"].split("[")[0]): (i["outcome"], i["chosen_score"], i["rejected_score"])
                for i in report(pytester)["items"]}

    alone = {("llama", k): v for (_, k), v in scores(f"--rm-model={llama}").items()}
    alone.update({("minilm", k): v for (_, k), v in scores(f"--rm-model={minilm}").items()})
    both = scores("-n", "2", f"--rm-model=llama={llama}", f"--rm-model=minilm={minilm}")
    assert set(both) == set(alone) and len(both) == 48
    for key, (outcome, chosen, rejected) in both.items():
        assert outcome == alone[key][0] and chosen == pytest.approx(alone[key][1], abs=1e-5)
        assert rejected == pytest.approx(alone[key][2], abs=1e-5)
    workers = report(pytester)["workers"]
    assert {w["model"] for w in workers} == {"llama", "minilm"} and all(w["loads"] == 1 for w in workers)


def test_a_report_of_several_models_is_a_baseline_through_its_first_model(toys):
    run(toys, models=("nomath=toy:nomath", "good=toy:good"))
    (toys.path / "r.json").rename(toys.path / "before.json")
    run(toys, "--rm-baseline", "before.json", models=("good=toy:good",))
    baseline = report(toys)["baseline"]
    assert baseline["shared"] == 12 and baseline["overall"]["fixes"] == 6 and "its first model nomath" in baseline["label"]


def test_each_model_may_have_its_own_kind(toys):
    models = ("good=toy:good", "len=builtin:length")
    assert run(toys, "--rm-kind", "len=builtin", models=models).ret == 0
    assert report(toys)["models"]["len"]["run"]["kind"] == "builtin"
    result = run(toys, "--rm-kind", "len=http", models=models)
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*--rm-kind http needs --rm-model=http://..., got --rm-model=builtin:length*"])
    result = run(toys, "--rm-kind", "lenght=builtin", models=models)
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*--rm-kind lenght=builtin: expected KIND, or NAME=KIND entries naming models of this run"
                                 " (good, len), got 'lenght=builtin'*"])


def test_a_suite_has_a_board_with_each_models_official_score(pytester):
    from test_sample import SUITE_CONFTEST

    pytester.makeconftest(SUITE_CONFTEST)
    pytester.makefile(".rmbench.yaml", own="items:\n  - {id: 1, subset: mine, prompt: p, chosen: a long answer, rejected: b}\n")
    result = pytester.runpytest_subprocess("-p", "no:randomly", "--rm-bench=many", "--rm-model=len=builtin:length",
                                           "--rm-model=rnd=builtin:random", "--rm-report=r.json", "--rm-no-store")
    r = report(pytester)
    board = next(b for b in r["comparison"]["boards"] if b["name"] == "many")
    assert board["kind"] == "suite" and {row["model"]: row["official"] for row in board["models"]} == {
        "len": 1.0, "rnd": r["models"]["rnd"]["scores"]["many"]["overall"]}
    assert [b["name"] for b in r["comparison"]["boards"]][:3] == ["overall", "many", "own.rmbench.yaml"]
    result.stdout.fnmatch_lines(["  board * rank 95%  official", "  many *  1.000"])
    assert "many overall" in result.stdout.str()  # the accuracy matrix's row for the headline


def test_builtin_random_takes_a_seed_of_its_own():
    from pytest_rmbench.models.base import ModelLoadError, ModelSpec
    from pytest_rmbench.models.builtin import build

    assert build(ModelSpec("builtin:random:7", seed=3)).seed == 7 and build(ModelSpec("builtin:random", seed=3)).seed == 3
    for model in ("builtin:length:3", "builtin:random:x"):
        with pytest.raises(ModelLoadError, match="only builtin:random takes a seed, as builtin:random:SEED"):
            build(ModelSpec(model))
