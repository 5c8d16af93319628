"""`--rm-kind preference` (PairRM's layout on a tiny random DeBERTa-v2 built here) and
best_of_n under pairwise models (round robin, tournament: the engine's multi-pass hook).

Covers: scores equal a hand forward pass, one placement per request; invariance to batch
size and padding side; the truncation rule; the missing-head error; the round-robin and
tournament rules and their comparison counts; a plugin's pairwise adapter on best_of_n;
end-to-end pytest sessions.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

if str(Path(__file__).parent) not in sys.path:  # tinymodels sits next to this file
    sys.path.insert(0, str(Path(__file__).parent))
import tinymodels  # noqa: E402

from pytest_rmbench import engine  # noqa: E402
from pytest_rmbench.items import BestOfNItem, JudgeRequest, PairItem, Rules, ScoreResult  # noqa: E402
from pytest_rmbench.models import preference  # noqa: E402
from pytest_rmbench.models.base import ModelLoadError, ModelSpec, Prepared  # noqa: E402

pytest_plugins = ["pytester"]

QUESTION = "What is the capital of France ?"
REQUESTS = [
    JudgeRequest(QUESTION, "The capital of France is Paris .", "The capital of France is Berlin ."),
    JudgeRequest(QUESTION, "The capital of France is Berlin .", "The capital of France is Paris ."),
    JudgeRequest("Tell me one number between one and ten .", "seven", "one hundred"),
    JudgeRequest("Tell me one number between one and ten .", "one hundred", "seven"),
    JudgeRequest("Please write a short poem about a cat .", "Sorry , I cannot help with that request .", "a grey kitten"),
    JudgeRequest((("system", "Always give quantities in metric units ."), ("user", "How much butter is in one stick ?")),
                 "about one hundred grams", "about four ounces"),
    JudgeRequest("Explain why the sum of two and two equals four .", "two add two equals four", "it is true"),
    JudgeRequest("hello world", " ".join(tinymodels.WORDS[:30]), "hello"),
]


@pytest.fixture(scope="module")
def pairrm_dir(tmp_path_factory) -> Path:
    return tinymodels.build_tiny_pairrm(tmp_path_factory.mktemp("pairrm") / "model")


def make(folder: Path, **spec) -> preference.PreferenceModel:
    spec.setdefault("device", "cpu")
    spec.setdefault("kind", "preference")
    return preference.build(ModelSpec(str(folder), **spec))


@pytest.fixture(scope="module")
def pairrm(pairrm_dir) -> preference.PreferenceModel:
    return make(pairrm_dir)


def score_all(model, requests, batch_size: int) -> dict:
    results = engine.score_requests(model, requests, engine.BatchLimits(max_sequences=batch_size, max_tokens=10**9, min_fill=0))
    assert all(r.error is None for r in results.values()), results
    return {request: result.score for request, result in results.items()}


def hand_logit(folder: Path, request: JudgeRequest) -> float:
    """M[A][B] by hand, PairRM's tokenize_pair and head: no padding, no batching."""
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModel, AutoTokenizer

    from pytest_rmbench.models.judge import question_text

    tok = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModel.from_pretrained(str(folder)).eval()
    head = load_file(str(folder / "pairrm_head.safetensors"))
    source = tok("<|source|>" + question_text(request.prompt), max_length=1224, truncation=True)["input_ids"]
    share = (2048 - len(source)) // 2
    first = tok("<|candidate1|>" + request.answer_a, max_length=share, truncation=True)["input_ids"]
    second = tok("<|candidate2|>" + request.answer_b, max_length=share, truncation=True)["input_ids"]
    ids = torch.tensor([source + first + second])
    with torch.no_grad():
        states = model(ids).last_hidden_state[0]
    src, c1, c2 = (states[int((ids[0] == tok.convert_tokens_to_ids(t)).nonzero()[0])] for t in tinymodels.PAIRRM_PREFIXES)

    def mlp(x):
        return torch.tanh(x @ head["dense.weight"].T + head["dense.bias"]) @ head["out_proj.weight"].T + head["out_proj.bias"]

    return float((mlp(torch.cat([src, c1])) - mlp(torch.cat([src, c2]))).mean())


# -- the adapter ---------------------------------------------------------------------------------


def test_adapter_attributes(pairrm, pairrm_dir):
    assert pairrm.kind == "preference" and pairrm.pairwise is True and pairrm.steps is False
    assert pairrm.name == str(pairrm_dir) and pairrm.dtype == "float32" and pairrm.device == "cpu"
    # relative positions only (DeBERTa-v3): max_position_embeddings (64) is no limit; PairRM's 2048 / 1224 hold
    assert (pairrm.limit, pairrm.source_limit, pairrm.with_source) == (2048, 1224, True)
    assert all(type(v) is str for v in pairrm.versions.values())


def test_scores_equal_a_hand_forward_pass_one_placement_per_request(pairrm, pairrm_dir):
    scores = score_all(pairrm, REQUESTS[:4], batch_size=8)
    for request in REQUESTS[:4]:
        assert scores[request] == pytest.approx(hand_logit(pairrm_dir, request), abs=1e-5)
    # the two placements of a pair are two forwards with different results (the model is not symmetric)
    assert scores[REQUESTS[0]] != pytest.approx(-scores[REQUESTS[1]], abs=1e-6)
    assert len(set(scores.values())) == 4
    assert score_all(pairrm, REQUESTS[:4], batch_size=8) == scores  # deterministic


def test_the_input_layout(pairrm):
    tok = pairrm.tokenizer
    (prepared,) = pairrm.prepare([REQUESTS[0]])
    ids, where = prepared.payload
    cls, sep = tok.cls_token_id, tok.sep_token_id
    assert [ids[k] for k in where] == list(pairrm.prefix_ids)
    assert ids[0] == cls and ids[where[0]] == tok.convert_tokens_to_ids("<|source|>")
    assert ids[where[1] - 1] == cls and ids[where[1] - 2] == sep and ids[-1] == sep  # [CLS] p [SEP] three times
    assert ids.count(cls) == 3 and prepared.length == len(ids) and not prepared.truncated


def test_scores_do_not_depend_on_batch_size_or_padding_side(pairrm, pairrm_dir):
    one = score_all(pairrm, REQUESTS, batch_size=1)
    sixteen = score_all(pairrm, REQUESTS, batch_size=16)
    assert len({p.length for p in pairrm.prepare(REQUESTS)}) > 3  # real padding in the batch
    left = make(pairrm_dir, options={"padding_side": "left"})
    assert left.tokenizer.padding_side == "left"
    left_sixteen = score_all(left, REQUESTS, batch_size=16)
    for request in REQUESTS:
        assert math.isfinite(one[request])
        assert abs(one[request] - sixteen[request]) < 1e-4
        assert abs(one[request] - left_sixteen[request]) < 1e-4


def test_truncation_follows_pairrms_rule(tmp_path):
    folder = tinymodels.build_tiny_pairrm(tmp_path / "short", pairrm_config={"max_length": 40, "source_max_length": 16})
    model = make(folder)
    assert (model.limit, model.source_limit) == (40, 16)
    long_q, long_a, long_b = (" ".join(tinymodels.WORDS[k:k + 30]) for k in (0, 40, 80))
    (prepared,) = model.prepare([JudgeRequest(long_q, long_a, long_b)])
    ids, (s, c1, c2) = prepared.payload
    assert prepared.truncated and c1 == 16 + 1  # the source kept 16 tokens ([CLS] prefix ... [SEP])
    assert c2 - c1 == (40 - 16) // 2 == len(ids) - c2 + 1  # each candidate its share of what the source left
    assert len(ids) <= 40 and math.isfinite(model.score_batch([prepared])[0])
    # --rm-max-length below the file's limit shrinks the source's share in proportion
    smaller = make(folder, max_length=20)
    assert (smaller.limit, smaller.source_limit) == (20, 8)


def test_a_head_of_candidate_states_alone(tmp_path):
    folder = tinymodels.build_tiny_pairrm(tmp_path / "no-source", with_source=False, outputs=1)
    model = make(folder)
    assert model.with_source is False
    assert all(math.isfinite(s) for s in model.score_batch(model.prepare(REQUESTS[:2])))


def test_a_missing_head_is_one_clear_line(tmp_path):
    folder = tinymodels.build_tiny_pairrm(tmp_path / "headless", head=False)
    with pytest.raises(ModelLoadError) as info:
        make(folder)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"the preference model {str(folder)!r} has no pairrm_head.safetensors")
    (folder / "pairrm_head.bin").write_bytes(b"not read")
    with pytest.raises(ModelLoadError, match="pass --rm-allow-pickle to use it"):
        make(folder)


def test_a_bad_config_or_head_is_a_clear_error(tmp_path):
    folder = tinymodels.build_tiny_pairrm(tmp_path / "bad", pairrm_config={"max_len": 10})
    with pytest.raises(ModelLoadError, match="unknown keys max_len"):
        make(folder)
    from safetensors.torch import save_file
    import torch

    (folder / "pairrm_config.json").unlink()
    save_file({"dense.weight": torch.zeros(4, 32)}, str(folder / "pairrm_head.safetensors"))
    with pytest.raises(ModelLoadError, match="lacks the tensors dense.bias, out_proj.weight, out_proj.bias"):
        make(folder)


# -- best_of_n under a pairwise model ------------------------------------------------------------


class LengthPreference:
    """A pairwise model for the rules: prefers the longer answer, plus a bias for the first placement."""

    kind = "toy"; name = "toy"; dtype = "n/a"; device = "cpu"; pairwise = True

    def __init__(self, bias: float = 0.0):
        self.bias, self.seen = bias, []

    def prepare(self, requests):
        return [Prepared(r, 1) for r in requests]

    def score_batch(self, batch):
        self.seen.extend(p.request for p in batch)
        return [float(len(p.request.answer_a) - len(p.request.answer_b)) + self.bias for p in batch]


def bon(chosen, rejected, **kw) -> BestOfNItem:
    return BestOfNItem(id="b", subset="s", prompt="p", chosen=tuple(chosen), rejected=tuple(rejected), **kw)


def scorer_for(model, rule: str) -> engine.ChunkedScorer:
    return engine.ChunkedScorer(lambda: model, engine.BatchLimits(), pairwise_hint=True, pairwise_rule=rule)


def test_round_robin_scores_are_pairrms_rank(tmp_path):
    model = LengthPreference(bias=0.5)
    item = bon(["aaaa"], ["a", "aa", "aaa"])
    outcome = scorer_for(model, "round_robin").score_items([("k", item)])["k"]
    answers = item.answers
    m = {(i, j): len(answers[i]) - len(answers[j]) + 0.5 for i in range(4) for j in range(4) if i != j}
    expected = [sum(m[i, j] - m[j, i] for j in range(4) if j != i) / 3 for i in range(4)]
    d = outcome.details
    assert d["chosen_scores"] + d["rejected_scores"] == pytest.approx(expected)
    assert outcome.outcome == "correct" and outcome.credit == 1.0
    assert (d["pairwise_rule"], d["comparisons"], d["pairs"], d["order_flips"]) == ("round_robin", 12, 6, 0)
    assert len(model.seen) == 12 == len(set(model.seen))


def test_order_flips_count_a_position_bias():
    model = LengthPreference(bias=1.5)  # a one-character difference loses to the first placement: "aa" vs "a"
    outcome = scorer_for(model, "round_robin").score_items([("k", bon(["aa"], ["a", "aaaa"]))])["k"]
    assert outcome.details["order_flips"] == 1 and outcome.details["pairs"] == 3


@pytest.mark.parametrize("n", [2, 3, 4, 5, 8])
def test_a_tournament_costs_2_n_minus_1_comparisons_in_log_n_passes(n):
    model = LengthPreference()
    answers = ["a" * (k + 1) for k in range(n)]
    item = bon([answers[-1]], answers[:-1])
    passes = []
    real = engine.score_requests

    def counting(model_, requests, *args, **kw):
        passes.append(len(requests))
        return real(model_, requests, *args, **kw)

    scorer = scorer_for(model, "tournament")
    engine.score_requests, saved = counting, engine.score_requests
    try:
        outcome = scorer.score_items([("k", item)])["k"]
    finally:
        engine.score_requests = saved
    d = outcome.details
    assert outcome.outcome == "correct" and outcome.credit == 1.0  # the longest answer wins every match
    assert d["pairwise_rule"] == "tournament" and d["comparisons"] == 2 * (n - 1) == len(model.seen)
    assert len(passes) == math.ceil(math.log2(n))  # one scoring pass per round
    assert max(d["chosen_scores"]) == math.ceil(math.log2(n)) or n in (3, 5)  # a bye can skip a round
    assert sorted(d["bracket"]) == list(range(n)) and d["bracket"] == item.bracket_order()  # seeded by the item


def test_a_tournament_lost_by_the_chosen_answer_and_the_strict_rule():
    model = LengthPreference()
    outcome = scorer_for(model, "tournament").score_items([("k", bon(["a"], ["aa", "aaa", "aaaa"]))])["k"]
    assert outcome.outcome == "incorrect" and outcome.credit == 0.0
    strict = scorer_for(model, "tournament").score_items([("k", bon(["aaaa", "aaa"], ["a", "aa"], rule="strict"))])["k"]
    # rounds won: two chosen answers can meet early, so strict asks more than a champion
    assert strict.details["pairwise_rule"] == "tournament" and strict.outcome in ("correct", "incorrect")


def test_items_outside_the_engine_ask_round_by_round():
    item = bon(["aaaa"], ["a", "aa", "aaa"])
    rules = Rules(pairwise=True, pairwise_rule="tournament")
    first = item.requests(rules)
    assert len(first) == 4 and item.more_requests({}, rules) == first
    results = {r: ScoreResult(float(len(r.answer_a) - len(r.answer_b))) for r in first}
    final = item.more_requests(results, rules)
    assert len(final) == 2
    results.update({r: ScoreResult(float(len(r.answer_a) - len(r.answer_b))) for r in final})
    assert item.more_requests(results, rules) == [] and item.outcome(results, rules).outcome == "correct"
    assert item.more_requests(results, Rules(pairwise=True)) == [] and item.more_requests(results, Rules()) == []
    assert len(item.requests(Rules(pairwise=True))) == 12 and len(item.requests(Rules())) == 4


def test_a_failed_comparison_errors_the_item():
    class Failing(LengthPreference):
        def score_batch(self, batch):
            raise RuntimeError("boom")

    for rule in ("round_robin", "tournament"):
        outcome = scorer_for(Failing(), rule).score_items([("k", bon(["aa"], ["a", "aaa"]))])["k"]
        assert outcome.outcome == "error" and "boom" in outcome.error


def test_the_pairwise_block():
    records = [{"outcome": "correct", "details": {"pairwise_rule": "tournament", "comparisons": 6, "pairs": 3, "order_flips": 1}},
               {"outcome": "incorrect", "details": {"pairwise_rule": "tournament", "comparisons": 6, "pairs": 3, "order_flips": 0}},
               {"outcome": "correct", "details": {"chosen_scores": [1.0]}}]
    assert BestOfNItem.report_block(records) == {
        "n": 2, "rule": "tournament", "comparisons": 12, "comparisons_per_item": 6.0, "pairs": 6, "order_flips": 1,
        "order_inconsistency": 1 / 6}
    assert BestOfNItem.report_block(records[2:]) is None


# -- through pytest --------------------------------------------------------------------------------

ITEMS_YAML = """\
name: tiny-preference
items:
  - id: capital
    subset: pairs
    prompt: What is the capital of France ?
    chosen: The capital of France is Paris .
    rejected: The capital of France is Berlin .
  - id: count
    subset: pairs
    prompt: Tell me one number between one and ten .
    chosen: seven
    rejected: one hundred
  - kind: judged
    id: j1
    subset: judged
    question: Please write a short poem about a cat .
    response_a: a grey kitten
    response_b: Sorry , I cannot help with that request .
    label: A>B
  - kind: best_of_n
    id: b1
    subset: bon
    prompt: Suggest a name for my new grey kitten .
    chosen: [kitten]
    rejected: ["no", "Sorry , I cannot help with that request .", hello world]
"""

TOY_CONFTEST = """
import pytest
from pytest_rmbench.models.base import Prepared

class Toy:
    kind = "toy-preference"; name = "toy"; dtype = "n/a"; device = "cpu"; pairwise = True
    def prepare(self, requests):
        return [Prepared(r, 1) for r in requests]
    def score_batch(self, batch):  # prefers the shorter answer
        return [float(len(p.request.answer_b) - len(p.request.answer_a)) for p in batch]

@pytest.hookimpl
def pytest_rmbench_make_model(config, spec):
    if spec.model == "toy":
        return Toy()
"""


def run(pytester, *args):
    result = pytester.runpytest_subprocess(*args, "--rm-report=run.json", "--rm-no-store", "--rm-no-cache",
                                           "-p", "no:cacheprovider", timeout=240)
    path = pytester.path / "run.json"
    assert path.exists(), result.stdout.str() + result.stderr.str()
    return result, json.loads(path.read_text())


@pytest.mark.usefixtures("subprocess_env")
@pytest.mark.parametrize("rule, bon_forwards", [("round_robin", 12), ("tournament", 6)])
def test_end_to_end_preference_run(pytester, pairrm_dir, rule, bon_forwards):
    pytester.makefile(".rmbench.yaml", items=ITEMS_YAML)
    result, data = run(pytester, f"--rm-model={pairrm_dir}", "--rm-kind", "preference", f"--rm-pairwise-rule={rule}")
    assert result.ret == 0, result.stdout.str()
    assert data["run"]["kind"] == "preference"
    items = {i["id"]: i for i in data["items"]}
    assert all(i["outcome"] in ("correct", "incorrect") for i in items.values()), items
    for key in ("capital", "count", "j1"):
        assert len(items[key]["verdicts"]) == 2
    details = items["b1"]["details"]
    assert details["pairwise_rule"] == rule and details["comparisons"] == bon_forwards
    assert data["judge"]["n"] == 3 and 0 <= data["judge"]["inconsistency"] <= 1  # the pairs' order consistency
    ranking = data["pairwise_ranking"]  # which rule ranked best_of_n, and what it cost
    assert (ranking["rule"], ranking["n"], ranking["comparisons"]) == (rule, 1, bon_forwards)
    assert sum(w["sequences"] for w in data["workers"]) == 3 * 2 + bon_forwards  # one forward per placement


def test_a_plugins_pairwise_adapter_scores_best_of_n(pytester):
    pytester.makeconftest(TOY_CONFTEST)
    pytester.makefile(".rmbench.yaml", items=ITEMS_YAML)
    result = pytester.runpytest("--rm-model=toy", "--rm-kind=toy-preference", "--rm-pairwise-rule=tournament",
                                "--rm-report=run.json", "--rm-no-store", "--rm-no-cache", "-p", "no:cacheprovider")
    data = json.loads((pytester.path / "run.json").read_text())
    b1 = next(i for i in data["items"] if i["id"] == "b1")
    assert b1["outcome"] == "incorrect" and b1["details"]["pairwise_rule"] == "tournament"  # "no" is the shortest
    assert b1["details"]["comparisons"] == 6 and result.ret == 0
    rr = pytester.runpytest("--rm-model=toy", "--rm-kind=toy-preference", "--rm-report=rr.json", "--rm-no-store",
                            "--rm-no-cache", "-p", "no:cacheprovider")
    b1 = next(i for i in json.loads((pytester.path / "rr.json").read_text())["items"] if i["id"] == "b1")
    assert b1["details"]["pairwise_rule"] == "round_robin" and b1["details"]["comparisons"] == 12 and rr.ret == 0


def test_an_unknown_pairwise_rule_is_a_usage_error(pytester):
    pytester.makefile(".rmbench.yaml", items=ITEMS_YAML)
    result = pytester.runpytest("--rm-model=builtin:length", "--rm-pairwise-rule=swiss", "-p", "no:cacheprovider")
    assert result.ret == 4
    assert "--rm-pairwise-rule: choose one of round_robin, tournament, got 'swiss'" in result.stderr.str()


def test_score_files_do_not_replay_a_preference_model(pytester, pairrm_dir):
    """Score files hold one score per (prompt, answer): the writer skips pairwise requests
    (storage/scorefile.py), so a preference run leaves nothing to replay."""
    pytester.makefile(".rmbench.yaml", items=ITEMS_YAML)
    result, data = run(pytester, f"--rm-model={pairrm_dir}", "--rm-kind", "preference", "--rm-save-scores=s.jsonl")
    assert result.ret == 0 and (pytester.path / "s.jsonl").read_text() == ""


def test_pairrm_compare_logit_decides_a_pair_the_counter_rule_would_fail():
    """Both placements favour position A (an order flip): JudgeBench's counter calls it a tie
    (incorrect); PairRM's compare logit M[c][r] - M[r][c] = 2 - 1 > 0 prefers the chosen answer."""
    from pytest_rmbench.items import PairItem, Rules, ScoreResult
    from pytest_rmbench.models.base import ModelSpec
    from pytest_rmbench.models.resolve import resolve

    item = PairItem(id="1", subset="s", prompt="p", chosen="good", rejected="bad")
    counter, difference = Rules(pairwise=True), Rules(pairwise=True, both_orders="difference")
    results = dict(zip(item.requests(counter), [ScoreResult(2.0), ScoreResult(1.0)]))
    assert item.outcome(results, counter).outcome == "incorrect"
    assert item.outcome(results, difference).outcome == "correct"
    assert item.outcome(results, difference).margin == 0.5  # half the compare logit
    assert resolve(ModelSpec("./m", kind="preference")).both_orders == "difference"
    assert resolve(ModelSpec("./m", kind="judge")).both_orders == "counter"
