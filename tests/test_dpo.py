"""The DPO implicit-reward kind, on tiny random LlamaForCausalLM models built here (no download).

The policy and the reference are the same architecture with different seeds. Every reward
is checked against a hand computation: one plain forward pass per sequence (no batch, no
padding, no attention mask), log-softmax, and the log-probs of the answer positions, where
the answer starts after the tokens of the prompt rendered alone with the generation prompt.
"""

from __future__ import annotations

import json
import math
import sys
import warnings
from pathlib import Path

import pytest

if str(Path(__file__).parent) not in sys.path:  # tinymodels sits next to this file
    sys.path.insert(0, str(Path(__file__).parent))
import tinymodels  # noqa: E402

from pytest_rmbench import engine  # noqa: E402
from pytest_rmbench.items import ScoreRequest  # noqa: E402
from pytest_rmbench.models import dpo  # noqa: E402
from pytest_rmbench.models.base import ModelLoadError, ModelSpec  # noqa: E402
from pytest_rmbench.report.terminal import NOT_LOADED  # noqa: E402

pytest_plugins = ["pytester"]

TOL = 1e-4


# -- fixtures: each model is built once per module --------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_cpu_thread):
    pass


@pytest.fixture(scope="module")
def models_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("dpo-models")


def build_causal(folder: Path, seed: int, chat_template: str = tinymodels.GENERATION_CHAT_TEMPLATE) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tinymodels.build_tiny_llama(folder, chat_template=chat_template, causal_lm=True, seed=seed)


@pytest.fixture(scope="module")
def policy_dir(models_root) -> Path:
    return build_causal(models_root / "policy", seed=1)


@pytest.fixture(scope="module")
def ref_dir(models_root) -> Path:
    return build_causal(models_root / "reference", seed=2)


@pytest.fixture(scope="module")
def hf_models(policy_dir, ref_dir):
    """The same weights loaded plainly, for the hand computation."""
    from transformers import AutoTokenizer, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(str(policy_dir))
    policy = LlamaForCausalLM.from_pretrained(str(policy_dir)).eval()
    reference = LlamaForCausalLM.from_pretrained(str(ref_dir)).eval()
    return tok, policy, reference


def make(policy: Path, ref: Path | None = None, **spec) -> dpo.DpoModel:
    spec.setdefault("device", "cpu")
    options = dict(spec.pop("options", {}))
    if ref is not None:
        options["ref_model"] = str(ref)
    return dpo.build(ModelSpec(model=str(policy), kind="dpo", options=options, **spec))


def score(model, requests, batch_size: int = 8) -> list[float]:
    results = engine.score_requests(model, requests, engine.BatchLimits(max_sequences=batch_size, max_tokens=10**9, min_fill=0))
    assert all(results[r].error is None for r in requests), [results[r].error for r in requests]
    return [results[r].score for r in requests]


SYSTEM = ("system", "Always give quantities in metric units .")
MULTI_TURN = (
    SYSTEM,
    ("user", "Please write a short poem about a cat ."),
    ("assistant", "Here is a short poem : the cat is very good ."),
    ("user", "Tell me a short story about a dog ."),
)


def varied_requests() -> list[ScoreRequest]:
    """16 requests of many lengths: string prompts and multi-turn prompts."""
    words = tinymodels.WORDS
    out = []
    for i in range(16):
        answer = " ".join(words[(5 * i) % 60 : (5 * i) % 60 + 1 + (i * 3) % 13])
        prompt = MULTI_TURN[: 2 + (i % 2) * 2] if i % 3 == 2 else "What is the capital of France ?" + " very" * (i % 7)
        out.append(ScoreRequest(prompt, answer))
    return out


# -- the hand computation ------------------------------------------------------------------------


def template_ids(tok, messages, generation_prompt: bool = False) -> list[int]:
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
    return list(tok(text, add_special_tokens=False)["input_ids"])


def hand_ids(tok, request: ScoreRequest) -> tuple[list[int], int]:
    """Full ids and where the answer starts, from the template directly."""
    messages = request.messages()
    full = template_ids(tok, messages)
    prompt = template_ids(tok, messages[:-1], generation_prompt=True)
    assert full[: len(prompt)] == prompt
    return full, len(prompt)


_HAND_CACHE: dict = {}


def hand_logprobs(model, ids: list[int], start: int) -> list[float]:
    """log p(ids[t] | ids[:t]) for t >= start, from one unpadded forward pass."""
    import torch

    key = (id(model), tuple(ids))
    if key not in _HAND_CACHE:
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0].float()
        _HAND_CACHE[key] = (model, torch.log_softmax(logits, dim=-1))  # the model kept: its id stays unique
    logprobs = _HAND_CACHE[key][1]
    return [float(logprobs[t - 1, ids[t]]) for t in range(start, len(ids))]


def hand_reward(hf_models, ids, start, mode: str, beta: float = 0.5) -> float:
    _, policy, reference = hf_models
    lp = hand_logprobs(policy, ids, start)
    if mode == "ref":
        return beta * (sum(lp) - sum(hand_logprobs(reference, ids, start)))
    if mode == "sum":
        return sum(lp)
    if mode == "mean":
        return sum(lp) / len(lp)
    assert mode == "norm"
    return -math.sqrt(sum(x * x for x in lp))


# -- rewards ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sum", "mean", "norm", "ref"])
def test_rewards_equal_the_hand_computation(policy_dir, ref_dir, hf_models, mode):
    if mode == "ref":
        model = make(policy_dir, ref_dir, options={"beta": "0.5"})
    else:
        model = make(policy_dir, options={"ref_free": mode, "beta": "0.5"})
    assert (model.kind, model.dtype, model.device) == ("dpo", "float32", "cpu")
    assert all(isinstance(v, str) for v in model.versions.values())
    requests = varied_requests()
    got = score(model, requests, batch_size=8)
    tok = hf_models[0]
    expected = [hand_reward(hf_models, *hand_ids(tok, r), mode) for r in requests]
    diffs = [abs(a - b) for a, b in zip(got, expected)]
    assert max(diffs) < TOL, f"{mode}: off by up to {max(diffs):.3g}"
    assert len({round(v, 3) for v in got}) > 8  # the rewards really differ between requests
    if mode == "sum":  # beta scales only the reference version
        assert max(abs(a - b) for a, b in zip(score(make(policy_dir, options={"beta": "0.1"}), requests), got)) < TOL


def test_reference_of_the_policy_itself_gives_zero(policy_dir):
    model = make(policy_dir, policy_dir, options={"beta": "0.5"})
    assert max(abs(s) for s in score(model, varied_requests()[:6])) < TOL


def test_prompt_mask_is_positional_not_by_string(policy_dir, hf_models):
    """The answer's text also occurs inside the prompt: a string search finds it there first."""
    tok = hf_models[0]
    answer = "the capital of France is Paris ."
    request = ScoreRequest(f"Is {answer} true ? Reply with the translation only .", answer)
    model = make(policy_dir, options={"ref_free": "sum"})
    [prepared] = model.prepare([request])
    ids, start = prepared.payload
    full, prompt_len = hand_ids(tok, request)
    assert ids == full and start == prompt_len
    # the answer tokens are the answer plus the end-of-turn token, at the end of the sequence
    assert tok.convert_ids_to_tokens(ids[start:]) == answer.split() + ["</s>"]
    assert ids[start - 1] == tok.convert_tokens_to_ids("<|assistant|>")
    # where the answer's tokens first occur: inside the prompt
    answer_ids = list(tok(answer, add_special_tokens=False)["input_ids"])
    by_string = next(i for i in range(len(ids)) if ids[i : i + len(answer_ids)] == answer_ids)
    assert by_string < start
    [got] = score(model, [request])
    positional = hand_reward(hf_models, ids, start, "sum")
    wrong = hand_reward(hf_models, ids, by_string + len(answer_ids), "sum")  # what string masking scores
    assert abs(got - positional) < TOL
    assert abs(got - wrong) > 0.1


@pytest.mark.parametrize("ref", [False, True])
def test_batch_size_and_padding_side_agree(policy_dir, ref_dir, ref):
    requests = varied_requests()
    scores = {}
    for side in ("right", "left"):
        model = make(policy_dir, ref_dir if ref else None, options={"padding_side": side})
        calls = []
        for m in filter(None, (model.model, model.ref_model)):
            m.register_forward_pre_hook(lambda mod, args, kwargs: calls.append(dict(kwargs)), with_kwargs=True)
        for batch_size in (1, 8):
            scores[side, batch_size] = score(model, requests, batch_size)
        padded = [c for c in calls if not bool(c["attention_mask"].all())]
        assert padded  # batches really mix lengths
        for c in padded:
            mask = c["attention_mask"].bool()
            assert bool((mask[:, -1] if side == "left" else mask[:, 0]).all())
            expected = [i for n in mask.sum(-1).tolist() for i in range(n)]
            assert c["position_ids"][mask].tolist() == expected  # positions ignore padding
        assert len(calls) == (2 if ref else 1) * (len(requests) + 2)
    base = scores["right", 1]
    for key, values in scores.items():
        assert max(abs(a - b) for a, b in zip(values, base)) < TOL, key


def test_bos_appears_once(policy_dir):
    model = make(policy_dir)
    tok = model.tokenizer
    requests = [ScoreRequest("What is the capital of France ?", "Paris ."), ScoreRequest(MULTI_TURN, "Sure !")]
    for request, prepared in zip(requests, model.prepare(requests)):
        ids, start = prepared.payload
        assert ids == template_ids(tok, request.messages())
        assert ids[0] == tok.bos_token_id and ids.count(tok.bos_token_id) == 1
        assert ids[:start] == template_ids(tok, request.messages()[:-1], generation_prompt=True)


def test_bf16_runs_and_stays_close(policy_dir, ref_dir):
    requests = varied_requests()[:6]
    full = score(make(policy_dir, ref_dir), requests)
    half = make(policy_dir, ref_dir, dtype="bfloat16")
    assert half.dtype == "bfloat16"
    low = score(half, requests)
    assert all(math.isfinite(s) for s in low)
    assert max(abs(a - b) for a, b in zip(low, full)) < 0.1


# the generation prompt opens the answer with a word that the whole conversation does not hold
# (as templates that open a thinking block do): the prompt rendering is not a prefix
OPENER_TEMPLATE = tinymodels.CHAT_TEMPLATE + "{% if add_generation_prompt %}{{ '<|assistant|>\\nmaybe' }}{% endif %}"


@pytest.mark.parametrize("template, prompt_end, answer_tokens", [
    # ignores add_generation_prompt: its assistant header counts among the answer tokens
    (tinymodels.CHAT_TEMPLATE, ["?", "</s>"], ["<|assistant|>", "Paris", ".", "</s>"]),
    # not a prefix: the longest common prefix is the prompt
    (OPENER_TEMPLATE, ["</s>", "<|assistant|>"], ["Paris", ".", "</s>"]),
    # no chat template: "User: ...\n\nAssistant: ..." with the tokenizer's special tokens
    (None, ["Assistant", ":"], ["Paris", "."]),
])
def test_answer_start_with_other_templates(models_root, template, prompt_end, answer_tokens):
    folder = models_root / f"template-{[tinymodels.CHAT_TEMPLATE, OPENER_TEMPLATE, None].index(template)}"
    if not folder.exists():
        build_causal(folder, seed=1, chat_template=template)
    model = make(folder)
    request = ScoreRequest("What is the capital of France ?", "Paris .")
    [prepared] = model.prepare([request])
    ids, start = prepared.payload
    tokens = model.tokenizer.convert_ids_to_tokens(ids)
    assert tokens[start - 2 : start] == prompt_end and tokens[start:] == answer_tokens
    assert tokens.count("<s>") == 1
    if template is OPENER_TEMPLATE:
        prompt = template_ids(model.tokenizer, request.messages()[:-1], generation_prompt=True)
        assert ids[: len(prompt)] != prompt and start == len(prompt) - 1
    assert math.isfinite(score(model, [request])[0])


def test_logits_only_where_the_answers_are(policy_dir, ref_dir):
    """Only the last positions' logits are computed (logits_to_keep); a model that cannot
    be asked so gives the same rewards from all positions."""
    requests = varied_requests()
    model = make(policy_dir, ref_dir, options={"padding_side": "left"})
    calls = []
    model.model.register_forward_pre_hook(lambda mod, args, kwargs: calls.append(dict(kwargs)), with_kwargs=True)
    kept = score(model, requests, batch_size=8)
    assert all(0 < c["logits_to_keep"] < c["input_ids"].shape[1] for c in calls)
    for accepts in model._accepts.values():
        accepts.discard("logits_to_keep")
    calls.clear()
    everything = score(model, requests, batch_size=8)
    assert calls and not any("logits_to_keep" in c for c in calls)
    assert max(abs(a - b) for a, b in zip(kept, everything)) < TOL


# -- truncation ----------------------------------------------------------------------------------


def test_truncated_prompt_moves_the_answer_start(policy_dir, hf_models):
    tok = hf_models[0]
    request = ScoreRequest(MULTI_TURN, "Sure ! Here is a short story about a dog .")
    full, prompt_len = hand_ids(tok, request)
    answer_len = len(full) - prompt_len
    limit = len(full) - 12  # drops the oldest turns and cuts into the prompt
    model = make(policy_dir, max_length=limit)
    [prepared] = model.prepare([request])
    ids, start = prepared.payload
    assert prepared.truncated and len(ids) <= limit
    assert len(ids) - start == answer_len  # the answer is whole, its start recomputed
    assert ids[start:] == full[prompt_len:]
    [got] = score(model, [request])
    assert abs(got - hand_reward(hf_models, ids, start, "sum")) < TOL


def test_truncated_answer_keeps_its_start(policy_dir, hf_models):
    tok = hf_models[0]
    request = ScoreRequest("hello", " ".join(tinymodels.WORDS[:60]))
    model = make(policy_dir, max_length=20)
    [prepared] = model.prepare([request])
    ids, start = prepared.payload
    assert prepared.truncated and len(ids) == 20
    assert tok.convert_ids_to_tokens(ids[:start]) == ["<s>", "<|user|>", "</s>", "<|assistant|>"]
    # the answer's text is cut at its end; the template's end-of-turn token stays
    assert tok.convert_ids_to_tokens(ids[start:]) == tinymodels.WORDS[: 20 - start - 1] + ["</s>"]
    [got] = score(model, [request])
    assert abs(got - hand_reward(hf_models, ids, start, "sum")) < TOL


def test_no_answer_token_left_errors_for_that_request_only(policy_dir):
    # <s> <|system|> </s> <|user|> </s> <|assistant|>: an emptied system prompt alone fills 6
    bad = ScoreRequest((SYSTEM, ("user", "hello")), "Paris .")
    good = ScoreRequest("hello", "Paris .")
    model = make(policy_dir, max_length=6)
    results = engine.score_requests(model, [bad, good], engine.BatchLimits())
    assert results[bad].score is None and "no tokens left" in results[bad].error
    assert results[good].error is None and math.isfinite(results[good].score)
    [prepared] = model.prepare([good])
    ids, start = prepared.payload
    # the prompt emptied, the answer cut at its end: "Paris" and the end of the turn are left
    assert model.tokenizer.convert_ids_to_tokens(ids[start:]) == ["Paris", "</s>"]


# -- load errors -----------------------------------------------------------------------------------


def test_missing_reference_is_one_clear_error(policy_dir, tmp_path):
    missing = tmp_path / "no-such-reference"
    with pytest.raises(ModelLoadError) as info:
        make(policy_dir, missing)
    assert str(info.value) == f"the reference model (--rm-ref-model): there is no folder {str(missing)!r}"


def test_reference_with_another_vocabulary_is_refused(policy_dir, tmp_path):
    import torch
    from transformers import LlamaForCausalLM

    tok = tinymodels.build_tokenizer(tmp_path / "wide")
    config = tinymodels.llama_config(tok)
    config.vocab_size = len(tok) + 16
    torch.manual_seed(3)
    LlamaForCausalLM(config).save_pretrained(str(tmp_path / "wide"))
    with pytest.raises(ModelLoadError, match="vocabulary of .* tokens"):
        make(policy_dir, tmp_path / "wide")


def test_classifier_folder_is_not_a_policy(tmp_path):
    classifier_dir = tinymodels.build_tiny_llama(tmp_path / "classifier")
    with pytest.raises(ModelLoadError, match="not a causal language model.*--rm-kind classifier"):
        make(classifier_dir)


@pytest.mark.parametrize("options, message", [
    ({"beta": "zero"}, "--rm-beta: expected a number"),
    ({"beta": "-1"}, "--rm-beta must be a positive"),
    ({"ref_free": "max"}, "unknown --rm-ref-free"),
])
def test_bad_options_are_refused(policy_dir, options, message):
    with pytest.raises(ModelLoadError, match=message):
        make(policy_dir, options=options)


# -- end to end, through pytest ------------------------------------------------------------------

ITEMS_YAML = """\
name: tiny-dpo
items:
  - id: capital
    subset: chat
    prompt: What is the capital of France ?
    chosen: The capital of France is Paris .
    rejected: The capital of France is Berlin .
  - id: echo
    subset: chat
    prompt: Is the capital of France Paris ? Reply with the translation only .
    chosen: the capital of France is Paris .
    rejected: not sure
  - id: multi-turn
    subset: chat
    prompt:
      - role: system
        content: Always give quantities in metric units .
      - role: user
        content: How much butter is in one stick ?
    chosen: about one hundred grams
    rejected: about four ounces
  - id: count
    subset: math
    prompt: Tell me one number between one and ten .
    chosen: seven
    rejected: one hundred
"""


@pytest.fixture
def subprocess_env(subprocess_env, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the subprocess pytest runs share two cores


def run_dpo(pytester, policy: Path, ref: Path, report: str, subprocess: bool = True):
    pytester.makefile(".rmbench.yaml", items=ITEMS_YAML)
    args = ("--rm-kind", "dpo", f"--rm-model={policy}", f"--rm-ref-model={ref}", f"--rm-report={report}",
            "--rm-no-store", "-p", "no:cacheprovider")
    result = pytester.runpytest_subprocess(*args, timeout=240) if subprocess else pytester.runpytest(*args)
    path = pytester.path / report
    assert path.exists(), result.stdout.str() + result.stderr.str()
    return result, json.loads(path.read_text())


@pytest.mark.usefixtures("subprocess_env")
def test_end_to_end_with_a_reference(pytester, policy_dir, ref_dir):
    result, report = run_dpo(pytester, policy_dir, ref_dir, "run.json")
    assert result.ret == 0, result.stdout.str()
    assert report["run"]["kind"] == "dpo" and report["run"]["model"] == str(policy_dir)
    items = report["items"]
    assert len(items) == 4
    for item in items:
        assert item["outcome"] in ("correct", "incorrect"), item
        chosen, rejected = item["chosen_score"], item["rejected_score"]
        assert math.isfinite(chosen) and math.isfinite(rejected)
        assert abs(item["margin"] - (chosen - rejected)) < 1e-9
        assert (item["outcome"] == "correct") == (chosen > rejected)
    assert len({item["chosen_score"] for item in items}) == 4


@pytest.mark.usefixtures("subprocess_env")
def test_end_to_end_missing_reference_is_one_clear_error(pytester, policy_dir, tmp_path):
    missing = tmp_path / "missing-reference"
    result, report = run_dpo(pytester, policy_dir, missing, "run.json", subprocess=False)  # fails before any torch work
    assert result.ret != 0
    assert [item["outcome"] for item in report["items"]] == ["error"] * 4
    message = f"the reward model could not be loaded: the reference model (--rm-ref-model): there is no folder {str(missing)!r}"
    lines = result.stdout.lines
    # the summary names the cause once, at its top; every item points to it
    assert lines.count(message) == 1, result.stdout.str()
    assert lines.index(message) == next(i for i, line in enumerate(lines) if line.startswith("=") and "rmbench:" in line) + 1
    assert not [line for line in lines if line.startswith("error:")]
    assert [item["error"] for item in report["items"]] == [NOT_LOADED] * 4
    assert report["run"]["load_error"] == message.split(": ", 1)[1]
