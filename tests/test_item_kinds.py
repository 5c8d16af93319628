"""Item kinds in benchmark files: parsing, pass rules on a real session, credit and details in the report.

builtin:length scores an answer by its length in characters, so every expected figure
below is worked out by hand from the answers' lengths.
"""

import json

import pytest

from pytest_rmbench.items import (
    ITEM_KINDS, BestOfNItem, ConsistencyItem, CycleItem, ItemProblem, JudgedItem, Rules, ScoreResult, StepsItem,
    StyleMatrixItem, TiesItem, fractional_credit, reciprocal_rank, style_triangles,
)
from pytest_rmbench.items.files import parse_file

KINDS = """\
items:
  # fractional: chosen 'bbbb' (4) ties 'cccc' (4) at the top, 'a' (1) below -> credit 1/2
  - {kind: best_of_n, id: tie, subset: bon, prompt: p, chosen: [bbbb], rejected: [a, cccc]}
  # chosen alone at the top -> credit 1
  - {kind: best_of_n, id: top, subset: bon, prompt: p, chosen: [bbbbb], rejected: [a, cc]}
  # strict: min chosen 3 > max rejected 2 -> pass
  - {kind: best_of_n, id: strict, subset: bon-strict, prompt: p, rule: strict, chosen: [ccc, dddd], rejected: [aa, b]}
  # style matrix: chosen lengths 2, 4, 6 vs rejected 3, 5, 7
  #   M[i][j] = c_i > r_j: row0 (2): F F F; row1 (4): T F F; row2 (6): T T F
  #   hard (i<j) 0/3, normal 0/3, easy (i>j) 3/3 -> credit 1/3
  - {kind: style_matrix, id: m1, subset: styles, prompt: p, chosen: [aa, aaaa, aaaaaa], rejected: [bbb, bbbbb, bbbbbbb]}
  # ties: correct 5, 6 vs incorrect 1, 2 -> accurate
  - {kind: ties, id: t1, subset: ties, prompt: p, chosen: [aaaaa, aaaaaa], rejected: [b, bb]}
  # judged, scalar model: A (1) vs B (3) -> B>A = label -> correct
  - {kind: judged, id: j1, subset: judged, question: q, response_a: a, response_b: bbb, label: "B>A"}
  # judged with equal scores -> verdict B>A (JudgeBench's else branch) -> wrong for A>B
  - {kind: judged, id: j2, subset: judged, question: q, response_a: aa, response_b: bb, label: "A>B"}
  # consistency: the same answer under both prompts scores the same with builtin:length -> incorrect
  - {kind: consistency, id: c1, subset: consistency, prompt: write a poem, contrast_prompt: write a poem in French, answer: roses}
  - {kind: pair, id: p1, subset: pairs, prompt: p, chosen: longer, rejected: short}
"""


@pytest.fixture
def kinds(pytester):
    pytester.makefile(".rmbench.yaml", kinds=KINDS)
    return pytester


def run_report(pytester, *args):
    result = pytester.runpytest("--rm-model=builtin:length", "--rm-report=run.json", "-p", "no:cacheprovider", "-rN", *args)
    return result, json.loads((pytester.path / "run.json").read_text())


def test_each_kind_runs_with_its_rule_and_credit(kinds):
    result, report = run_report(kinds)
    items = {i["id"]: i for i in report["items"]}
    assert {k: (items[k]["kind"], items[k]["outcome"], items[k]["credit"]) for k in items} == {
        "tie": ("best_of_n", "incorrect", 0.5),
        "top": ("best_of_n", "correct", 1.0),
        "strict": ("best_of_n", "correct", 1.0),
        "m1": ("style_matrix", "incorrect", pytest.approx(1 / 3)),
        "t1": ("ties", "correct", 1.0),
        "j1": ("judged", "correct", 1.0),
        "j2": ("judged", "incorrect", 0.0),
        "c1": ("consistency", "incorrect", 0.0),
        "p1": ("pair", "correct", 1.0),
    }
    assert items["m1"]["details"]["matrix"] == [[False, False, False], [True, False, False], [True, True, False]]
    assert (items["m1"]["details"]["hard"], items["m1"]["details"]["normal"], items["m1"]["details"]["easy"]) == (0.0, 0.0, 1.0)
    assert items["t1"]["details"]["corr_incorrect_margin"] == 3.0 and items["t1"]["details"]["diff_corr_margin"] == 1.0
    assert items["j2"]["details"] == {"verdict": "B>A", "label": "A>B"}
    # subset accuracy is the mean credit: bon = (0.5 + 1) / 2
    assert report["subsets"]["bon"]["accuracy"] == pytest.approx(0.75)
    assert report["subsets"]["bon"]["passed"] == 1
    assert report["subsets"]["styles"]["accuracy"] == pytest.approx(1 / 3)
    # overall: (0.5 + 1 + 1 + 1/3 + 1 + 1 + 0 + 0 + 1) / 9
    assert report["overall"]["accuracy"] == pytest.approx((5.5 + 1 / 3) / 9)
    # the length baseline covers only the items that are pairs of answers (j1, j2, p1)
    assert report["length_baseline"]["n"] == 3
    assert result.parseoutcomes()["incorrect"] == 4 and result.parseoutcomes()["passed"] == 5


def test_failure_text_speaks_the_kinds_rule(kinds):
    run_report(kinds, "-k", "m1 or c1 or tie", "--junitxml=junit.xml")
    text = (kinds.path / "junit.xml").read_text()
    assert "incorrect style_matrix" in text and "hard 0  normal 0  easy 1" in text
    assert "under the contrast prompt 5" in text
    assert "credit 0.5 (must be 1)" in text


def test_a_pairwise_judge_refuses_scalar_only_kinds_per_item(pytester):
    pytester.makeconftest("""
import pytest
from pytest_rmbench.models.base import Prepared

class Judge:
    kind = "judge"; dtype = "n/a"; device = "cpu"; name = "judge"; pairwise = True
    def prepare(self, requests):
        return [Prepared(r, 1) for r in requests]
    def score_batch(self, batch):  # prefers the longer answer
        return [float(len(p.request.answer_a) - len(p.request.answer_b)) for p in batch]

@pytest.hookimpl
def pytest_rmbench_make_model(config, spec):
    return Judge()
""")
    pytester.makefile(".rmbench.yaml", kinds="""
items:
  - {kind: judged, id: j1, subset: s, question: q, response_a: a, response_b: bbb, label: "B>A"}
  - {kind: ties, id: b1, subset: s, prompt: p, chosen: [bbbb, cccc], rejected: [a]}
""")
    result = pytester.runpytest("--rm-model=judge", "--rm-kind=judge", "--rm-report=run.json", "-p", "no:cacheprovider")
    items = {i["id"]: i for i in json.loads((pytester.path / "run.json").read_text())["items"]}
    assert items["j1"]["outcome"] == "correct" and items["j1"]["verdicts"] == ["B>A", "A>B"]
    assert items["b1"]["outcome"] == "error" and "pairwise judge cannot score items of kind 'ties'" in items["b1"]["error"]
    assert result.ret == 1


def test_steps_items_need_a_process_reward_model(pytester):
    pytester.makefile(".rmbench.yaml", steps="""
items:
  - {kind: steps, id: s1, subset: gsm8k, problem: "1+1?", steps: ["1+1 = 2", "so 2"], label: -1}
""")
    result = pytester.runpytest("--rm-model=builtin:length", "--rm-report=run.json", "-p", "no:cacheprovider")
    item = json.loads((pytester.path / "run.json").read_text())["items"][0]
    assert item["outcome"] == "error"
    assert "need a process reward model (--rm-kind prm)" in item["error"]
    assert result.ret == 1


@pytest.mark.parametrize("raw, field, message", [
    ({"kind": "nope", "id": 1, "subset": "s"}, "kind", "unknown kind 'nope'"),
    ({"kind": "best_of_n", "id": 1, "subset": "s", "prompt": "p", "chosen": "x", "rejected": ["y"]}, "chosen", "non-empty list"),
    ({"kind": "best_of_n", "id": 1, "subset": "s", "prompt": "p", "chosen": ["x"], "rejected": ["y"], "rule": "lenient"}, "rule", "fractional, strict"),
    ({"kind": "style_matrix", "id": 1, "subset": "s", "prompt": "p", "chosen": ["a", "b"], "rejected": ["c"]}, "rejected", "one answer per style"),
    ({"kind": "ties", "id": 1, "subset": "s", "prompt": "p", "chosen": ["a", ""], "rejected": ["c"]}, "chosen", "answer 1"),
    ({"kind": "judged", "id": 1, "subset": "s", "question": "q", "response_a": "a", "response_b": "b", "label": "A=B"}, "label", '"A>B" or "B>A"'),
    ({"kind": "judged", "id": 1, "subset": "s", "question": "q", "response_a": "a", "label": "A>B"}, "response_b", "missing"),
    ({"kind": "steps", "id": 1, "subset": "s", "problem": "p", "steps": ["a", "b"], "label": 2}, "label", "0..1"),
    ({"kind": "steps", "id": 1, "subset": "s", "problem": "p", "steps": ["a"], "label": True}, "label", "earliest wrong step"),
    ({"kind": "consistency", "id": 1, "subset": "s", "prompt": "p", "contrast_prompt": "p", "answer": "a"}, "contrast_prompt", "same as prompt"),
    ({"kind": "cycle", "id": 1, "subset": "s", "prompt": "p", "answers": ["a", "b"]}, "answers", "at least three answers"),
    ({"kind": "cycle", "id": 1, "subset": "s", "prompt": "p", "answers": ["a", "b", " "]}, "answers", "answer 2"),
    ({"kind": "cycle", "id": 1, "subset": "s", "prompt": "p", "answers": ["a", "b", "a"]}, "answers", "answer 2 repeats answer 0"),
])
def test_each_kind_validates_its_fields(raw, field, message):
    entry = parse_file("f.rmbench.jsonl", (json.dumps(raw) + "\n").encode()).entries[0]
    assert isinstance(entry, ItemProblem)
    assert entry.field == field and message in entry.message
    assert "f.rmbench.jsonl:1" in entry.describe()


def test_an_unknown_kind_lists_the_registered_ones():
    entry = parse_file("f.rmbench.jsonl", b'{"kind": "nope", "id": 1, "subset": "s"}\n').entries[0]
    assert entry.message == f"unknown kind 'nope'; available: {', '.join(ITEM_KINDS.names())}"
    assert ITEM_KINDS.names()[:8] == ["pair", "best_of_n", "style_matrix", "ties", "judged", "steps", "consistency", "cycle"]
    assert ITEM_KINDS.get("cycle") is CycleItem


def test_unknown_fields_are_judged_per_kind():
    rows = [{"kind": "steps", "id": 1, "subset": "s", "problem": "p", "steps": ["a"], "label": -1, "chosen": "x"}]
    parsed = parse_file("f.rmbench.jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode())
    assert parsed.unknown_fields == ["chosen"]


# -- the formulas, on hand-computed values --------------------------------------------------
def test_fractional_credit():
    assert fractional_credit([3.0], [1.0, 2.0, 0.0]) == 1.0
    assert fractional_credit([3.0], [3.0, 3.0, 0.0]) == pytest.approx(1 / 3)
    assert fractional_credit([2.0], [3.0, 1.0, 1.0]) == 0.0
    assert fractional_credit([3.0, 3.0], [3.0]) == pytest.approx(2 / 3)  # several chosen at the top


def test_reciprocal_rank_breaks_ties_against_the_chosen():
    assert reciprocal_rank(5.0, [1.0, 2.0]) == 1.0
    assert reciprocal_rank(5.0, [5.0, 2.0]) == 0.5  # a tie ranks the chosen below
    assert reciprocal_rank(1.0, [5.0, 6.0, 0.0]) == pytest.approx(1 / 3)


def test_style_triangles():
    m = [[True, False, True], [True, True, False], [False, True, True]]
    assert style_triangles(m) == {"hard": pytest.approx(1 / 3), "normal": 1.0, "easy": pytest.approx(2 / 3)}


def _outcome(item, scores, rules=Rules()):
    requests = item.requests(rules)
    values = scores if isinstance(scores, list) else [scores]
    return item.outcome({r: ScoreResult(v) for r, v in zip(requests, values)}, rules)


def test_judged_counter_with_a_pairwise_judge():
    item = JudgedItem(id="1", subset="s", question="q", response_a="a", response_b="b", label="A>B")
    judge = Rules(pairwise=True)
    # first order A>B (right); swapped order: positive = the judge prefers the shown A (= response b) -> B>A flipped... wrong
    assert _outcome(item, [1.0, 1.0], judge).outcome == "incorrect"  # inconsistent: +1 - 1 = 0
    assert _outcome(item, [1.0, -1.0], judge).outcome == "correct"  # both orders right
    assert _outcome(item, [1.0, 0.0], judge).outcome == "correct"  # one right, one tie
    assert _outcome(item, [0.0, 0.0], judge).outcome == "incorrect"  # two ties
    assert _outcome(item, [-1.0, 1.0], judge).details["counter"] == -2


def test_ties_item_and_best_of_n_details():
    ties = TiesItem(id="1", subset="s", prompt="p", chosen=("a", "b"), rejected=("c",))
    out = _outcome(ties, [3.0, 5.0, 4.0])
    assert out.outcome == "incorrect" and out.details["diff_corr_margin"] == 2.0 and out.details["corr_incorrect_margin"] == -1.0
    bon = BestOfNItem(id="1", subset="s", prompt="p", chosen=("a",), rejected=("b", "c"), rule="strict")
    out = _outcome(bon, [2.0, 2.0, 1.0])
    assert out.credit == 0.0 and out.details["accurate_with_ties"] is True and out.details["reciprocal_rank"] == 0.5


def test_steps_item_predicts_the_first_step_under_the_threshold():
    item = StepsItem(id="1", subset="s", problem="p", steps=("a", "b", "c"), label=1)
    assert _outcome(item, (0.9, 0.4, 0.2)).outcome == "correct"
    assert _outcome(item, (0.9, 0.6, 0.2)).details["prediction"] == 2
    assert _outcome(item, (0.9, 0.6, 0.2), Rules(step_threshold=0.7)).details["prediction"] == 1
    assert _outcome(item, (0.9, 0.6)).outcome == "error"  # a score per step, or an error


def test_style_matrix_and_consistency_outcomes():
    m = StyleMatrixItem(id="1", subset="s", prompt="p", chosen=("a", "b", "c"), rejected=("d", "e", "f"))
    out = _outcome(m, [10.0, 10.0, 10.0, 1.0, 1.0, 1.0])
    assert out.outcome == "correct" and out.credit == 1.0
    c = ConsistencyItem(id="1", subset="s", prompt="p", contrast_prompt="q", answer="a")
    assert _outcome(c, [2.0, 1.0]).outcome == "correct"
    assert _outcome(c, [1.0, 1.0]).outcome == "incorrect"


def test_a_table_of_many_subsets_folds_those_inside_sections():
    from pytest_rmbench.report.aggregate import MAX_SUBSET_ROWS, table_lines

    def b(acc):
        return {"n": 1, "correct": acc, "accuracy": acc, "ci_low": None, "ci_high": None, "mean_margin": None, "errors": 0}

    names = [f"lang{i:02d}/s" for i in range(MAX_SUBSET_ROWS + 5)]
    report = {"subsets": {**{n: b(1) for n in names}, "loose": b(0)},
              "sections": {"lang00": {"n": 1, "accuracy": 1.0, "subsets": names}}, "overall": b(1)}
    lines = list(table_lines(report))
    assert any(line.startswith("loose ") for line in lines) and not any(line.startswith("lang01/s") for line in lines)
    assert any(f"(+{len(names)} in sections, -v)" in line for line in lines)
    assert any(line.startswith("lang01/s") for line in table_lines(report, verbose=1))


# -- cycle: a cyclic preference a0 > a1 > ... > a(k-1) > a0 -----------------------------------------
CYCLE = """\
items:
  # lengths 9, 5, 2: edges 0>1 (9>5) yes, 1>2 (5>2) yes, 2>0 (2>9) no -> credit 2/3
  - {kind: cycle, id: c3a, subset: three, prompt: p, answers: [aaaaaaaaa, bbbbb, cc]}
  # lengths 2, 5, 7: 0>1 no, 1>2 no, 2>0 (7>2) yes -> credit 1/3
  - {kind: cycle, id: c3b, subset: three, prompt: p, answers: [aa, bbbbb, ccccccc]}
  # lengths 4, 3, 2, 1: 0>1, 1>2, 2>3 yes, 3>0 (1>4) no -> credit 3/4
  - {kind: cycle, id: c4a, subset: four, prompt: p, answers: [aaaa, bbb, cc, d]}
  # lengths 2, 4, 1, 3: 0>1 no, 1>2 (4>1) yes, 2>3 no, 3>0 (3>2) yes -> credit 2/4
  - {kind: cycle, id: c4b, subset: four, prompt: p, answers: [aa, bbbb, c, ddd]}
"""


def test_cycle_with_a_reward_model_earns_the_fraction_of_edges_and_never_passes(pytester):
    pytester.makefile(".rmbench.yaml", cycle=CYCLE)
    result, report = run_report(pytester, "--junitxml=junit.xml")
    items = {i["id"]: i for i in report["items"]}
    assert {k: (i["kind"], i["outcome"], i["credit"]) for k, i in items.items()} == {
        "c3a": ("cycle", "incorrect", pytest.approx(2 / 3)), "c3b": ("cycle", "incorrect", pytest.approx(1 / 3)),
        "c4a": ("cycle", "incorrect", 0.75), "c4b": ("cycle", "incorrect", 0.5)}
    assert items["c3a"]["details"] == {"model": "scalar", "edges": [True, True, False], "scores": [9.0, 5.0, 2.0]}
    assert items["c4b"]["details"]["edges"] == [False, True, False, True]
    # the weakest edge as the item's margin: 2>0, scores 2 and 9
    assert (items["c3a"]["chosen_score"], items["c3a"]["rejected_score"]) == (2.0, 9.0)
    assert report["subsets"]["three"]["accuracy"] == pytest.approx(0.5)
    assert report["subsets"]["four"]["accuracy"] == pytest.approx(0.625)
    # the kind's block: n, mean credit, full passes, and the Bradley-Terry bound per k
    assert report["cycle"] == {
        "model": "scalar", "n": 4, "mean_credit": pytest.approx((2 / 3 + 1 / 3 + 3 / 4 + 1 / 2) / 4), "passed": 0,
        "by_k": {"3": {"n": 2, "mean_credit": pytest.approx(0.5), "passed": 0, "bt_bound": pytest.approx(2 / 3)},
                 "4": {"n": 2, "mean_credit": pytest.approx(0.625), "passed": 0, "bt_bound": 0.75}},
        "bt_bound_rule": "a scalar (Bradley-Terry) model predicts at most k-1 of a k-cycle's k edges"}
    assert list(report).index("cycle") == list(report).index("heads") + 1  # added after the blocks users know
    assert items["c3a"]["chosen_longer"] is None  # not a pair: no length-bias figures
    assert items["c4a"]["texts"] == {"prompt": "p", "answers": [
        {"label": "answer 0", "text": "aaaa"}, {"label": "answer 1", "text": "bbb"}, {"label": "answer 2", "text": "cc"},
        {"label": "answer 3", "text": "d"}]}
    junit = (pytester.path / "junit.xml").read_text()
    assert "incorrect cycle (cycle.rmbench.yaml:3)" in junit
    assert "2 of the 3 edges of the cycle 0 &gt; 1 &gt; 2 &gt; 0 predicted (credit 0.667)" in junit
    assert "scores by answer [9, 5, 2]; edges missed: 2&gt;0" in junit
    assert "predicts at most 3 of 4 edges (credit &lt;= 0.75)" in junit
    assert result.parseoutcomes()["incorrect"] == 4


CYCLE_JUDGE = """
import pytest
from pytest_rmbench.models.base import Prepared

BEATS = {"rock": "scissors", "scissors": "paper", "paper": "rock"}

class Judge:
    kind = "judge"; dtype = "n/a"; device = "cpu"; name = "judge"; pairwise = True
    def prepare(self, requests):
        return [Prepared(r, 1) for r in requests]
    def score_batch(self, batch):  # rock-paper-scissors; other answers: the longer wins
        out = []
        for p in batch:
            a, b = p.request.answer_a, p.request.answer_b
            if a in BEATS and b in BEATS:
                out.append(1.0 if BEATS[a] == b else -1.0)
            else:
                out.append(float(len(a) - len(b)))
        return out

@pytest.hookimpl
def pytest_rmbench_make_model(config, spec):
    return Judge()
"""


def test_cycle_with_a_pairwise_judge_that_predicts_the_cycle_passes(pytester):
    pytester.makeconftest(CYCLE_JUDGE)
    pytester.makefile(".rmbench.yaml", cycle="""
items:
  - {kind: cycle, id: rps, subset: s, prompt: p, answers: [rock, scissors, paper]}
  - {kind: cycle, id: reversed, subset: s, prompt: p, answers: [rock, paper, scissors]}
  - {kind: cycle, id: lengths, subset: s, prompt: p, answers: [aaaaaaaaa, bbbbb, cc]}
""")
    result = pytester.runpytest("--rm-model=judge", "--rm-kind=judge", "--rm-report=run.json", "-p", "no:cacheprovider",
                                "--junitxml=junit.xml")
    report = json.loads((pytester.path / "run.json").read_text())
    items = {i["id"]: i for i in report["items"]}
    assert (items["rps"]["outcome"], items["rps"]["credit"]) == ("correct", 1.0)
    assert items["rps"]["details"] == {"model": "pairwise", "edges": [True, True, True], "counters": [2, 2, 2],
                                       "edge_verdicts": [["A>B", "B>A"]] * 3}
    assert (items["reversed"]["outcome"], items["reversed"]["credit"]) == ("incorrect", 0.0)
    assert items["reversed"]["details"]["counters"] == [-2, -2, -2]
    # a judge by length: 9 > 5 > 2 but not 2 > 9
    assert (items["lengths"]["credit"], items["lengths"]["details"]["counters"]) == (pytest.approx(2 / 3), [2, 2, -2])
    assert report["cycle"]["model"] == "pairwise"
    assert (report["cycle"]["n"], report["cycle"]["passed"]) == (3, 1)
    assert report["cycle"]["mean_credit"] == pytest.approx((1 + 0 + 2 / 3) / 3)
    assert report["cycle"]["by_k"]["3"]["bt_bound"] == pytest.approx(2 / 3)
    assert report["judge"] is None  # the edges' verdicts are not the pair kinds' position consistency
    junit = (pytester.path / "junit.xml").read_text()
    assert "the judge's counters (each must be &gt; 0): 0&gt;1 +2, 1&gt;2 +2, 2&gt;0 -2" in junit
    assert result.parseoutcomes()["passed"] == 1 and result.parseoutcomes()["incorrect"] == 2


def test_cycle_requests_and_rule_on_hand_made_scores():
    item = CycleItem(id="1", subset="s", prompt="p", answers=("a", "b", "c", "d"))
    assert [r.answer for r in item.requests()] == ["a", "b", "c", "d"]
    assert [(r.answer_a, r.answer_b) for r in item.requests(Rules(pairwise=True))] == [
        ("a", "b"), ("b", "a"), ("b", "c"), ("c", "b"), ("c", "d"), ("d", "c"), ("d", "a"), ("a", "d")]
    out = _outcome(item, [4.0, 3.0, 2.0, 1.0])
    assert (out.outcome, out.credit, out.details["edges"]) == ("incorrect", 0.75, [True, True, True, False])
    tied = _outcome(item, [4.0, 3.0, 3.0, 1.0])  # strict: a tie is a missed edge
    assert (tied.credit, tied.details["edges"]) == (0.5, [True, False, True, False])
    # one order right and the other a tie counts as right, as for judged pairs
    judged = _outcome(item, [1.0, 0.0, 1.0, -1.0, 2.0, -1.0, 1.0, -1.0], Rules(pairwise=True))
    assert (judged.outcome, judged.credit, judged.details["counters"]) == ("correct", 1.0, [1, 2, 2, 2])
    assert judged.chosen_score == 0.5  # the weakest edge's margin, averaged over the two orders
    half = _outcome(item, [1.0, -1.0, -1.0, 1.0, 1.0, -1.0, 0.0, 0.0], Rules(pairwise=True))
    assert (half.outcome, half.credit, half.details["counters"]) == ("incorrect", 0.5, [2, -2, 2, 0])
    assert _outcome(item, [1.0, float("nan"), 1.0, 2.0]).outcome == "error"
    assert item.chosen_longer() is None
    assert item.content_hash() != CycleItem(id="1", subset="s", prompt="p", answers=("a", "c", "b", "d")).content_hash()


def gpm_rows(*rows) -> bytes:
    return "".join(json.dumps(dict(zip(("instruction", "chosen", "reject"), r))) + "\n" for r in rows).encode()


def test_gpm_cyclic_jsonl_is_read_into_cycles():
    # GPM's demo shape: a 4-cycle a->b, b->c, c->d, d->a, then a 3-cycle on another prompt
    data = gpm_rows(("p", "a", "b"), ("p", "b", "c"), ("p", "c", "d"), ("p", "d", "a"),
                    ("q", "x", "y"), ("q", "y", "z"), ("q", "z", "x"))
    parsed = parse_file("demo.rmbench.jsonl", data)
    assert [(e.id, e.subset, e.prompt, e.answers, e.source) for e in parsed.entries] == [
        ("cycle-1", "demo", "p", ("a", "b", "c", "d"), "demo.rmbench.jsonl:1"),
        ("cycle-2", "demo", "q", ("x", "y", "z"), "demo.rmbench.jsonl:5")]
    assert parsed.unknown_fields == []
    # a 2-cycle closes but is no cycle of three: an error item, the others still run
    parsed = parse_file("two.rmbench.jsonl", gpm_rows(("p", "a", "b"), ("p", "b", "a"), ("q", "x", "y"), ("q", "y", "z"), ("q", "z", "x")))
    assert isinstance(parsed.entries[0], ItemProblem) and "at least three answers" in parsed.entries[0].message
    assert parsed.entries[1].answers == ("x", "y", "z")


@pytest.mark.parametrize("rows, line, message", [
    ([("p", "a", "b"), ("p", "c", "a")], 2, "broken chain: 'chosen' is not line 1's 'reject'"),
    ([("p", "a", "b"), ("p", "b", "c"), ("p", "c", "a"), ("p", "a", "b"), ("q", "b", "a")], 5,
     "broken cycle: the instruction differs from line 4's, but the cycle opened at line 4 has not closed"),
    ([("p", "a", "b"), ("p", "b", "c")], 2, "the cycle opened at line 1 never closes"),
    ([("p", "a", "b"), {"instruction": "p", "chosen": "b", "rejected": "a"}], 2, "needs those three fields in every row"),
])
def test_a_broken_gpm_chain_is_an_error_naming_the_line(rows, line, message):
    from pytest_rmbench.items.files import FileParseError

    data = b"".join(json.dumps(r if isinstance(r, dict) else dict(zip(("instruction", "chosen", "reject"), r))).encode() + b"\n"
                    for r in rows)
    with pytest.raises(FileParseError) as info:
        parse_file("gpm.rmbench.jsonl", data)
    assert info.value.line == line and message in info.value.message
    assert str(info.value).startswith(f"gpm.rmbench.jsonl:{line}: ")
