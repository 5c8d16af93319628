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
  - {kind: best_of_n, id: b1, subset: s, prompt: p, chosen: [bbbb], rejected: [a]}
""")
    result = pytester.runpytest("--rm-model=judge", "--rm-kind=judge", "--rm-report=run.json", "-p", "no:cacheprovider")
    items = {i["id"]: i for i in json.loads((pytester.path / "run.json").read_text())["items"]}
    assert items["j1"]["outcome"] == "correct" and items["j1"]["verdicts"] == ["B>A", "A>B"]
    assert items["b1"]["outcome"] == "error" and "pairwise judge cannot score items of kind 'best_of_n'" in items["b1"]["error"]
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
    ({"kind": "cycle", "id": 1, "subset": "s", "prompt": "p", "answers": ["a", "b"]}, "answers", "exactly three"),
    ({"kind": "cycle", "id": 1, "subset": "s", "prompt": "p", "answers": ["a", "b", " "]}, "answers", "answer 2"),
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


# -- cycle: three answers ordered best to worst ---------------------------------------------------
CYCLE = """\
items:
  # lengths 9 > 5 > 2: the order the file gives -> correct
  - {kind: cycle, id: ok, subset: cycle, prompt: p, answers: [aaaaaaaaa, bbbbb, cc]}
  # lengths 5, 9, 2: the middle answer scores above the best one -> incorrect
  - {kind: cycle, id: swapped, subset: cycle, prompt: p, answers: [aaaaa, bbbbbbbbb, cc]}
"""


def test_cycle_with_a_reward_model_needs_strictly_decreasing_scores(pytester):
    pytester.makefile(".rmbench.yaml", cycle=CYCLE)
    result, report = run_report(pytester, "--junitxml=junit.xml")
    items = {i["id"]: i for i in report["items"]}
    ok, swapped = items["ok"], items["swapped"]
    assert (ok["kind"], ok["outcome"], ok["credit"]) == ("cycle", "correct", 1.0)
    assert ok["details"] == {"scores": [9.0, 5.0, 2.0], "order": [0, 1, 2]}
    assert (ok["chosen_score"], ok["rejected_score"]) == (9.0, 5.0)
    assert (swapped["outcome"], swapped["credit"]) == ("incorrect", 0.0)
    assert swapped["details"] == {"scores": [5.0, 9.0, 2.0], "order": [1, 0, 2]}
    assert (swapped["chosen_score"], swapped["rejected_score"]) == (5.0, 9.0)
    assert ok["chosen_longer"] is None  # not a pair: no length-bias figures
    assert report["cycle"] is None  # a scalar reward model cannot be intransitive
    assert ok["texts"] == {"prompt": "p", "answers": [
        {"label": "best", "text": "aaaaaaaaa"}, {"label": "middle", "text": "bbbbb"}, {"label": "worst", "text": "cc"}]}
    junit = (pytester.path / "junit.xml").read_text()
    assert "incorrect cycle (cycle.rmbench.yaml:5)" in junit
    assert "scores best, middle, worst [5, 9, 2] (must strictly decrease)" in junit
    assert "ranked by the model: middle, best, worst" in junit
    assert result.parseoutcomes()["passed"] == 1 and result.parseoutcomes()["incorrect"] == 1


def test_cycle_with_a_pairwise_judge_flags_intransitive_preferences(pytester):
    # rock beats scissors, scissors beats paper, paper beats rock; other answers: the longer wins
    pytester.makeconftest("""
import pytest
from pytest_rmbench.models.base import Prepared

BEATS = {"rock": "scissors", "scissors": "paper", "paper": "rock"}

class Judge:
    kind = "judge"; dtype = "n/a"; device = "cpu"; name = "judge"; pairwise = True
    def prepare(self, requests):
        return [Prepared(r, 1) for r in requests]
    def score_batch(self, batch):
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
""")
    pytester.makefile(".rmbench.yaml", cycle="""
items:
  - {kind: cycle, id: ok, subset: s, prompt: p, answers: [aaaaaaaaa, bbbbb, cc]}
  - {kind: cycle, id: rps, subset: s, prompt: p, answers: [rock, scissors, paper]}
  - {kind: cycle, id: reversed, subset: s, prompt: p, answers: [cc, bbbbb, aaaaaaaaa]}
""")
    result = pytester.runpytest("--rm-model=judge", "--rm-kind=judge", "--rm-report=run.json", "-p", "no:cacheprovider",
                                "--junitxml=junit.xml")
    report = json.loads((pytester.path / "run.json").read_text())
    items = {i["id"]: i for i in report["items"]}
    assert items["ok"]["outcome"] == "correct"
    assert items["ok"]["details"] == {"pairs": {"0>1": 2, "1>2": 2, "0>2": 2}, "intransitive": False}
    # the kind's own report block: one cycle among three judged items
    assert report["cycle"] == {"n": 3, "intransitive": 1, "intransitivity": pytest.approx(1 / 3)}
    assert list(report).index("cycle") == list(report).index("heads") + 1  # added after the blocks users know
    # rock > scissors and scissors > paper, both orders agreeing, but paper > rock: a cycle
    assert items["rps"]["outcome"] == "incorrect"
    assert items["rps"]["details"] == {"pairs": {"0>1": 2, "1>2": 2, "0>2": -2}, "intransitive": True}
    # every pair the wrong way round is wrong, but transitive
    assert items["reversed"]["outcome"] == "incorrect"
    assert items["reversed"]["details"] == {"pairs": {"0>1": -2, "1>2": -2, "0>2": -2}, "intransitive": False}
    junit = (pytester.path / "junit.xml").read_text()
    assert "0&gt;1 +2, 1&gt;2 +2, 0&gt;2 -2" in junit and "form a cycle (intransitive)" in junit
    assert result.parseoutcomes()["passed"] == 1 and result.parseoutcomes()["incorrect"] == 2


def test_cycle_requests_and_rule_on_hand_made_scores():
    item = CycleItem(id="1", subset="s", prompt="p", answers=("a", "b", "c"))
    assert [r.answer for r in item.requests()] == ["a", "b", "c"]
    assert [(r.answer_a, r.answer_b) for r in item.requests(Rules(pairwise=True))] == [
        ("a", "b"), ("b", "a"), ("b", "c"), ("c", "b"), ("a", "c"), ("c", "a")]
    assert _outcome(item, [3.0, 2.0, 1.0]).outcome == "correct"
    assert _outcome(item, [3.0, 2.0, 2.0]).outcome == "incorrect"  # strict: a tie is wrong
    out = _outcome(item, [1.0, 3.0, 2.0])
    assert (out.chosen_score, out.rejected_score, out.details["order"]) == (1.0, 3.0, [1, 2, 0])
    # one order right and the other a tie counts as right, as for judged pairs
    judged = _outcome(item, [1.0, 0.0, 1.0, -1.0, 1.0, -1.0], Rules(pairwise=True))
    assert judged.outcome == "correct" and judged.details["pairs"] == {"0>1": 1, "1>2": 2, "0>2": 2}
    reverse_cycle = _outcome(item, [-1.0, 1.0, -1.0, 1.0, 1.0, -1.0], Rules(pairwise=True))
    assert reverse_cycle.details == {"pairs": {"0>1": -2, "1>2": -2, "0>2": 2}, "intransitive": True}
    assert _outcome(item, [1.0, float("nan"), 1.0]).outcome == "error"
    assert item.chosen_longer() is None
    assert item.content_hash() != CycleItem(id="1", subset="s", prompt="p", answers=("a", "c", "b")).content_hash()
