"""The gpm kind (general preference model with preference embeddings), on tiny random Llama
backbones with a seeded GPM head built here (no download).

Covers: s(A, B) equal to a hand computation (hidden state at EOS -> head -> normalise -> R)
for d = 2 and d = 4 with and without the prompt (eigenvalue) head, exact antisymmetry, scores
that do not depend on batch size or padding side, one forward per distinct (prompt, answer),
a pytest session over pair and judged items, and one-line load errors.
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
from pytest_rmbench.items import JudgeRequest  # noqa: E402
from pytest_rmbench.models import gpm, kinds  # noqa: E402
from pytest_rmbench.models.base import ModelLoadError, ModelSpec  # noqa: E402

pytest_plugins = ["pytester"]

FRANCE = "What is the capital of France ?"
COUNT = "Tell me one number between one and ten ."
MULTI = (("system", "Always give quantities in metric units ."), ("user", "How much butter is in one stick ?"))
ANSWERS = {
    FRANCE: ["The capital of France is Paris .", "The capital of France is Berlin .", "Paris", "hello world"],
    COUNT: ["seven", "one hundred", "Sure ! Here is the answer to your question : seven ."],
    MULTI: ["about one hundred grams", "about four ounces"],
}
# every ordered pair of distinct answers to each prompt
REQUESTS = [JudgeRequest(p, a, b) for p, answers in ANSWERS.items() for a in answers for b in answers if a != b]
DISTINCT = sum(len(a) for a in ANSWERS.values())  # distinct (prompt, answer) sequences
HEADS = [(2, False), (2, True), (4, False), (4, True)]


# -- fixtures: each model is built once per module --------------------------------------------


@pytest.fixture(scope="module")
def models_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("gpmmodels")


@pytest.fixture(scope="module")
def gpm_dirs(models_root) -> dict:
    """(d, prompt head) -> a tiny GPM folder."""
    return {
        (dim, head): tinymodels.build_gpm_llama(models_root / f"gpm-d{dim}-{'eigen' if head else 'plain'}", dim=dim,
                                                prompt_head=head, seed=dim + head)
        for dim, head in HEADS
    }


@pytest.fixture(scope="module")
def loaded(gpm_dirs) -> dict:
    return {key: gpm.build(ModelSpec(str(folder), kind="gpm", device="cpu")) for key, folder in gpm_dirs.items()}


def score(model, requests, **limits) -> list[float]:
    results = engine.score_requests(model, requests, engine.BatchLimits(**limits))
    assert all(r.error is None for r in results.values()), results
    return [results[r].score for r in requests]


# -- the score is the hand computation ---------------------------------------------------------


def hand_score(folder: Path, prompt, answer_a: str, answer_b: str) -> float:
    """s(A > B) from the checkpoint's files, one sequence at a time, with an explicit R matrix."""
    import torch
    from safetensors.torch import load_file
    from transformers import AutoTokenizer, LlamaModel

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    backbone = LlamaModel.from_pretrained(str(folder)).eval()
    head = load_file(str(folder / "gpm_head.safetensors"))
    config = json.loads((folder / "gpm_config.json").read_text())
    dim = config["value_head_dim"]
    messages = ([{"role": "user", "content": prompt}] if isinstance(prompt, str)
                else [{"role": r, "content": c} for r, c in prompt])

    def ids_of(conversation) -> list[int]:
        text = tokenizer.apply_chat_template(conversation, tokenize=False)
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])  # the template holds BOS

    def forward(answer: str):
        ids = ids_of(messages + [{"role": "assistant", "content": answer}])
        ids[-1] = tokenizer.eos_token_id  # forced to end with EOS (the template's last token)
        with torch.no_grad():
            hidden = backbone(torch.tensor([ids])).last_hidden_state[0].double()
        v = head["value_head.weight"].double() @ hidden[-1]
        return v / v.norm(), hidden

    v_a, hidden_a = forward(answer_a)
    v_b, _ = forward(answer_b)
    eigen = torch.ones(dim // 2, dtype=torch.float64)
    if config["prompt_head"]:
        prompt_end = len(ids_of(messages)) - 1  # the prompt's last token, read in A's sequence
        eigen = torch.softmax(head["eigen_head.weight"].double() @ hidden_a[prompt_end], dim=-1)
    R = torch.zeros(dim, dim, dtype=torch.float64)
    for k in range(dim // 2):
        R[2 * k, 2 * k + 1] = -eigen[k]
        R[2 * k + 1, 2 * k] = eigen[k]
    s = float((R @ v_a) @ v_b)
    if dim == 2 and not config["prompt_head"]:  # families.md: c0*r1 - c1*r0
        assert s == pytest.approx(float(v_a[0] * v_b[1] - v_a[1] * v_b[0]), abs=1e-12)
    return s


@pytest.mark.parametrize("dim, prompt_head", HEADS)
def test_scores_equal_a_hand_computation(gpm_dirs, loaded, dim, prompt_head):
    model = loaded[(dim, prompt_head)]
    assert (model.dim, model.prompt_head) == (dim, prompt_head)
    requests = [REQUESTS[0], REQUESTS[5], REQUESTS[-1], JudgeRequest(COUNT, "seven", "one hundred")]
    got = score(model, requests)
    for request, s in zip(requests, got):
        expected = hand_score(gpm_dirs[(dim, prompt_head)], request.prompt, request.answer_a, request.answer_b)
        assert s == pytest.approx(expected, abs=1e-5), request
        assert abs(s) <= 1.0 + 1e-6  # unit vectors, eigenvalues summing to 1 (or all 1 for d = 2)
    assert any(abs(s) > 1e-3 for s in got)  # not a degenerate head


def test_embeddings_are_unit_vectors_and_the_probability_uses_tau(loaded):
    model = loaded[(4, True)]
    vectors = model.embeddings(FRANCE, ANSWERS[FRANCE])
    assert all(len(v) == 4 and math.isclose(sum(x * x for x in v), 1.0, rel_tol=1e-5) for v in vectors)
    assert gpm.TAU == 0.1
    assert gpm.preference_probability(0.0) == 0.5
    assert gpm.preference_probability(0.1) == pytest.approx(1 / (1 + math.exp(-1.0)))
    assert gpm.preference_probability(-0.3) + gpm.preference_probability(0.3) == pytest.approx(1.0)
    assert gpm.preference_probability(-1e4) == 0.0 and gpm.preference_probability(1e4) == 1.0  # no overflow


# -- antisymmetry, batching, padding ------------------------------------------------------------


@pytest.mark.parametrize("dim, prompt_head", HEADS)
def test_antisymmetry_is_exact(loaded, dim, prompt_head):
    model = loaded[(dim, prompt_head)]
    scores = dict(zip(REQUESTS, score(model, REQUESTS)))
    for r in REQUESTS:
        assert scores[JudgeRequest(r.prompt, r.answer_b, r.answer_a)] == -scores[r]  # exactly, not approximately
    one_by_one = dict(zip(REQUESTS, score(model, REQUESTS, max_sequences=1, min_fill=0)))
    for r in REQUESTS:
        assert one_by_one[JudgeRequest(r.prompt, r.answer_b, r.answer_a)] == -one_by_one[r]
    assert gpm.gpm_score([0.6, 0.8], [1.0, 0.0]) == -0.8 and gpm.gpm_score([1.0, 0.0], [0.6, 0.8]) == 0.8


@pytest.mark.parametrize("dim, prompt_head", [(2, False), (4, True)])
def test_scores_do_not_depend_on_batch_size_or_padding_side(gpm_dirs, dim, prompt_head):
    folder = str(gpm_dirs[(dim, prompt_head)])
    runs = []
    for side in ("right", "left"):
        model = gpm.build(ModelSpec(folder, kind="gpm", device="cpu", options={"padding_side": side}))
        for batch_size in (1, 16):
            runs.append(score(model, REQUESTS, max_sequences=batch_size, min_fill=0))
    for other in runs[1:]:
        assert other == pytest.approx(runs[0], abs=1e-5)


def test_one_forward_per_distinct_answer(gpm_dirs):
    model = gpm.build(ModelSpec(str(gpm_dirs[(4, True)]), kind="gpm", device="cpu"))
    assert model.forwards == 0
    score(model, REQUESTS)  # both orders of every pair: n(n-1) requests per prompt
    assert len(REQUESTS) == 12 + 6 + 2
    assert model.forwards == DISTINCT == 9
    passes = model.forward_passes
    # a further pass over the same answers (a tournament's next round): no forward at all
    score(model, [JudgeRequest(FRANCE, ANSWERS[FRANCE][0], ANSWERS[FRANCE][2])], max_sequences=1, min_fill=0)
    assert (model.forwards, model.forward_passes) == (DISTINCT, passes)
    score(model, [JudgeRequest(FRANCE, "Paris", "The capital of Australia is Canberra , not Sydney .")])
    assert model.forwards == DISTINCT + 1  # one new answer, one forward


def test_the_kind_is_registered():
    assert kinds.model_builder("gpm") is gpm.build
    assert "gpm" in kinds.KIND_NAMES
    assert gpm.GpmModel.pairwise is True and gpm.GpmModel.steps is False and gpm.GpmModel.kind == "gpm"


# -- load errors -----------------------------------------------------------------------------


def test_a_missing_head_file_is_one_clear_line(models_root):
    folder = tinymodels.build_gpm_llama(models_root / "no-head", with_head=False)
    with pytest.raises(ModelLoadError) as info:
        gpm.build(ModelSpec(str(folder), kind="gpm", device="cpu"))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"the GPM head file gpm_head.safetensors is missing from {str(folder)!r}")
    assert "value_head.weight [d, hidden]" in message


def test_head_config_mismatches_are_refused(models_root, gpm_dirs):
    import shutil

    folder = models_root / "odd"
    shutil.copytree(gpm_dirs[(2, False)], folder)
    (folder / "gpm_config.json").write_text(json.dumps({"value_head_dim": 3}))
    with pytest.raises(ModelLoadError, match="value_head_dim=3: it must be even"):
        gpm.build(ModelSpec(str(folder), kind="gpm", device="cpu"))
    (folder / "gpm_config.json").write_text(json.dumps({"value_head_dim": 4, "prompt_head": False}))
    with pytest.raises(ModelLoadError, match=r"value_head.weight in gpm_head.safetensors .* has shape \[2, 32\], expected \[4, 32\]"):
        gpm.build(ModelSpec(str(folder), kind="gpm", device="cpu"))
    (folder / "gpm_config.json").write_text(json.dumps({"value_head_dim": 2, "prompt_head": True}))
    with pytest.raises(ModelLoadError, match="lacks eigen_head.weight"):
        gpm.build(ModelSpec(str(folder), kind="gpm", device="cpu"))
    (folder / "gpm_config.json").unlink()
    with pytest.raises(ModelLoadError, match="the GPM config file gpm_config.json is missing"):
        gpm.build(ModelSpec(str(folder), kind="gpm", device="cpu"))


def test_scalar_requests_are_refused(loaded):
    from pytest_rmbench.items import ScoreRequest

    with pytest.raises(TypeError, match="compares two answers"):
        loaded[(2, False)].prepare([ScoreRequest(FRANCE, "Paris")])


# -- a pytest session --------------------------------------------------------------------------

ITEMS_YAML = """\
items:
  - id: france
    subset: facts
    prompt: What is the capital of France ?
    chosen: The capital of France is Paris .
    rejected: The capital of France is Berlin .
  - id: france-short
    subset: facts
    prompt: What is the capital of France ?
    chosen: Paris
    rejected: The capital of France is Berlin .
  - id: count
    subset: math
    prompt: Tell me one number between one and ten .
    chosen: seven
    rejected: one hundred
  - {kind: judged, id: j1, subset: judged, question: "Tell me one number between one and ten .", response_a: one hundred, response_b: seven, label: "B>A"}
  - {kind: judged, id: j2, subset: judged, question: "What is the capital of France ?", response_a: Paris, response_b: hello world, label: "A>B"}
"""
# distinct (prompt, answer): France x {Paris ., Berlin ., Paris, hello world}, count x {seven, one hundred}
SESSION_DISTINCT = 6


@pytest.fixture
def gpm_instances(monkeypatch) -> list:
    """Every GpmModel built in this test (the in-process session builds its own)."""
    made = []
    init = gpm.GpmModel.__init__

    def recording_init(self, spec):
        init(self, spec)
        made.append(self)

    monkeypatch.setattr(gpm.GpmModel, "__init__", recording_init)
    return made


@pytest.mark.parametrize("batch_size", ["1", "16"])
def test_a_session_over_pair_and_judged_items(pytester, gpm_dirs, loaded, gpm_instances, monkeypatch, batch_size):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    pytester.makefile(".rmbench.yaml", items=ITEMS_YAML)
    folder = gpm_dirs[(4, True)]
    result = pytester.runpytest_inprocess(
        f"--rm-model={folder}", "--rm-kind", "gpm", "--rm-report=run.json", "--rm-no-store", "--rm-no-cache",
        "--rm-batch-size", batch_size, "--rm-device", "cpu", "-p", "no:cacheprovider",
    )
    path = pytester.path / "run.json"
    assert path.exists(), result.stdout.str()
    data = json.loads(path.read_text())
    assert result.ret == 0, result.stdout.str()
    assert data["run"]["kind"] == "gpm"
    items = {i["id"]: i for i in data["items"]}
    assert set(items) == {"france", "france-short", "count", "j1", "j2"}
    for item in items.values():
        assert item["outcome"] in ("correct", "incorrect"), item
        first, second = item["verdicts"]
        assert {first, second} == {"A>B", "B>A"}  # antisymmetric: the two orders never disagree
    (model,) = gpm_instances
    assert model.forwards == SESSION_DISTINCT  # 10 requests (5 items x 2 orders), 6 forwards
    assert model.model is None  # closed at the end of the run
    # the margins are the model's own scores, whatever the batch size
    request = JudgeRequest("What is the capital of France ?", "The capital of France is Paris .",
                           "The capital of France is Berlin .")
    assert items["france"]["margin"] == pytest.approx(score(loaded[(4, True)], [request])[0], abs=1e-5)


BEST_OF_N_YAML = """\
items:
  - {kind: best_of_n, id: b1, subset: bon, prompt: "What is the capital of France ?", chosen: ["The capital of France is Paris ."], rejected: ["The capital of France is Berlin .", "hello world", "Paris"]}
  - {kind: best_of_n, id: b2, subset: bon, prompt: "Tell me one number between one and ten .", chosen: [seven], rejected: [one hundred, "zero", "one thousand"]}
"""


@pytest.mark.parametrize("rule, comparisons", [("round_robin", 12), ("tournament", 6)])
def test_best_of_n_costs_one_forward_per_answer(pytester, gpm_dirs, gpm_instances, monkeypatch, rule, comparisons):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    pytester.makefile(".rmbench.yaml", items=BEST_OF_N_YAML)
    result = pytester.runpytest_inprocess(
        f"--rm-model={gpm_dirs[(4, True)]}", "--rm-kind", "gpm", "--rm-pairwise-rule", rule, "--rm-report=run.json",
        "--rm-no-store", "--rm-no-cache", "--rm-device", "cpu", "-p", "no:cacheprovider",
    )
    data = json.loads((pytester.path / "run.json").read_text())
    assert result.ret == 0, result.stdout.str()
    for item in data["items"]:
        assert item["outcome"] in ("correct", "incorrect"), item
        assert item["details"]["pairwise_rule"] == rule and item["details"]["comparisons"] == comparisons
        assert item["details"]["order_flips"] == 0  # antisymmetric: no pair flips with the placement
    (model,) = gpm_instances
    assert model.forwards == 8  # 2 items x 4 answers: n forwards per item, whatever the rule
