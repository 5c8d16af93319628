"""The process-reward-model kind, on tiny random models built here (no download).

Four models: a LlamaForTokenClassification with 2 labels and one with 1 label (separator
"<extra_0>", a special token, as Qwen2.5-Math-PRM's), a LlamaForCausalLM read with the
"+" / "-" tokens after Math-Shepherd's step tag " ки\n" (the word-level tokenizer drops
the newline, so the tag is the separator's last token), and the packaged MiniLM BERT with a random
2-label token head (no chat template, a real WordPiece tokenizer, bidirectional).

Every probability is checked against a hand computation in the style of the model cards:
the whole text rendered at once (the steps joined, each followed by the separator),
tokenized in one call, the read positions found by looking for the separator's token
(the test's steps never contain it), one unpadded forward pass, softmax / sigmoid there.
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

from pytest_rmbench.items import CORRECT, INCORRECT, Rules, ScoreRequest, ScoreResult, StepsItem, StepsRequest  # noqa: E402
from pytest_rmbench.models import prm  # noqa: E402
from pytest_rmbench.models.base import ModelLoadError, ModelSpec  # noqa: E402
from pytest_rmbench.models.chat import fallback_text  # noqa: E402

pytest_plugins = ["pytester"]

TOL = 1e-5
SEPARATORS = {"head2": tinymodels.PRM_SEPARATOR, "head1": tinymodels.PRM_SEPARATOR, "causal": " ки\n", "bert": " ;"}


# -- fixtures: each model is built once per module --------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_cpu_thread):
    pass


@pytest.fixture(scope="module")
def models_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("prm-models")


_BUILT: dict = {}


def model_dir(root: Path, family: str) -> Path:
    """The folder of one family's model, built on first use."""
    if family not in _BUILT or not _BUILT[family].exists():
        folder = root / family
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if family == "bert":
                tinymodels.build_minilm_token_classifier(folder, seed=4)
            else:
                tinymodels.build_tiny_prm(folder, causal_lm=family == "causal", num_labels=1 if family == "head1" else 2,
                                          seed={"head2": 1, "head1": 2, "causal": 3}[family])
        _BUILT[family] = folder
    return _BUILT[family]


def make(folder: Path, family: str | None = None, **spec) -> prm.PrmModel:
    spec.setdefault("device", "cpu")
    options = dict(spec.pop("options", {}))
    if family is not None:
        options.setdefault("step_separator", SEPARATORS[family])
        if family == "causal":
            options.setdefault("step_token", "+,-")
    return prm.build(ModelSpec(model=str(folder), kind="prm", options=options, **spec))


def score(model, requests, batch_size: int = 8) -> list:
    """The adapter contract alone (no engine): prepare, longest first, batches, score_batch."""
    prepared = model.prepare(requests)
    assert len(prepared) == len(requests)
    order = sorted(prepared, key=lambda p: -p.length)
    results = {}
    for i in range(0, len(order), batch_size):
        batch = order[i : i + batch_size]
        for p, value in zip(batch, model.score_batch(batch)):
            results[p.request] = value
    return [results[r] for r in requests]


MULTI_TURN = (
    ("system", "Always give quantities in metric units ."),
    ("user", "Please write a short poem about a cat ."),
    ("assistant", "Here is a short poem : the cat is very good ."),
    ("user", "Tell me the sum of two and two ."),
)


def varied_requests() -> list:
    """14 solutions of 1 to 5 steps and many lengths, string and multi-turn prompts, and 3 answers."""
    words = tinymodels.WORDS
    out: list = []
    for i in range(14):
        steps = tuple(" ".join(words[(7 * i + 3 * s) % 80 : (7 * i + 3 * s) % 80 + 1 + (i + s) % 6]) for s in range(1 + i % 5))
        prompt = MULTI_TURN if i % 4 == 3 else "Explain why the sum of two and two equals four ." + " very" * (i % 6)
        out.append(StepsRequest(prompt, steps))
    out += [ScoreRequest("What is the capital of France ?", "The capital of France is Paris ."),
            ScoreRequest(MULTI_TURN, "four"), ScoreRequest("hello", "yes")]
    return out


def steps_of(request) -> tuple:
    return tuple(request.steps) if isinstance(request, StepsRequest) else (request.answer,)


# -- the hand computation ----------------------------------------------------------------------


def hand_ids(tok, family: str, request) -> tuple[list[int], list[int]]:
    """(ids, read positions): the whole text tokenized at once, positions by the separator's token."""
    separator = SEPARATORS[family]
    solution = "".join(step + separator for step in steps_of(request))
    messages = ScoreRequest(request.prompt, solution).messages()
    if family == "bert":  # no chat template: the fallback text, with the tokenizer's [CLS] ... [SEP]
        ids = list(tok(fallback_text(messages), add_special_tokens=True)["input_ids"])
    else:
        ids = list(tok(tok.apply_chat_template(messages, tokenize=False), add_special_tokens=False)["input_ids"])
    (separator_id,) = tok(separator, add_special_tokens=False)["input_ids"]
    return ids, [i for i, t in enumerate(ids) if t == separator_id]


def hand_probabilities(hf_model, family: str, ids: list[int], positions: list[int]) -> list[float]:
    import torch

    with torch.no_grad():
        logits = hf_model(torch.tensor([ids])).logits[0].float()[positions]
    if family == "causal":
        tok = hand_probabilities.tokenizers[family]
        good, bad = (tok.convert_tokens_to_ids(t) for t in ("+", "-"))
        return torch.softmax(logits[:, [good, bad]], -1)[:, 0].tolist()
    if family == "head1":
        return torch.sigmoid(logits[:, 0]).tolist()
    return torch.softmax(logits, -1)[:, 1].tolist()


hand_probabilities.tokenizers = {}


def hf_model(folder: Path, family: str):
    from transformers import AutoModelForCausalLM, AutoModelForTokenClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder))
    hand_probabilities.tokenizers[family] = tok
    cls = AutoModelForCausalLM if family == "causal" else AutoModelForTokenClassification
    return tok, cls.from_pretrained(str(folder)).eval()


def max_diff(a: list, b: list) -> float:
    flat = lambda values: [x for v in values for x in (v if isinstance(v, tuple) else (v,))]  # noqa: E731
    fa, fb = flat(a), flat(b)
    assert len(fa) == len(fb)
    return max(abs(x - y) for x, y in zip(fa, fb))


# -- probabilities -----------------------------------------------------------------------------


@pytest.mark.parametrize("family", ["head2", "head1", "causal", "bert"])
def test_probabilities_equal_the_hand_computation(models_root, family):
    folder = model_dir(models_root, family)
    model = make(folder, family)
    assert (model.kind, model.dtype, model.device, model.steps) == ("prm", "float32", "cpu", True)
    assert model.causal == (family == "causal")
    assert all(isinstance(v, str) for v in model.versions.values())
    tok, plain = hf_model(folder, family)
    requests = varied_requests()
    got = score(model, requests)
    for request, prepared, value in zip(requests, model.prepare(requests), got):
        ids, positions = hand_ids(tok, family, request)
        assert prepared.payload == (ids, positions)  # the same tokens, the same read positions
        assert not prepared.truncated and prepared.length == len(ids)
        expected = hand_probabilities(plain, family, ids, positions)
        if isinstance(request, StepsRequest):
            assert isinstance(value, tuple) and len(value) == len(request.steps)
        else:  # an answer is a one-step solution: a float
            assert isinstance(value, float)
            value = (value,)
        assert all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in value)
        assert max(abs(a - b) for a, b in zip(value, expected)) < TOL, (family, request)
    values = [v for g in got for v in (g if isinstance(g, tuple) else (g,))]
    assert len({round(v, 4) for v in values}) > len(values) // 2  # they really differ


@pytest.mark.parametrize("family", ["head2", "causal", "bert"])
def test_batch_size_and_padding_side_agree(models_root, family):
    requests = varied_requests()
    scores = {}
    for side in ("right", "left"):
        model = make(model_dir(models_root, family), family, options={"padding_side": side})
        calls = []
        model.model.register_forward_pre_hook(lambda mod, args, kwargs: calls.append(dict(kwargs)), with_kwargs=True)
        for batch_size in (1, 8, 64):
            scores[side, batch_size] = score(model, requests, batch_size)
        padded = [c for c in calls if not bool(c["attention_mask"].all())]
        assert padded  # batches really mix lengths
        for c in padded:
            mask = c["attention_mask"].bool()
            assert bool((mask[:, -1] if side == "left" else mask[:, 0]).all())
            expected = [i for n in mask.sum(-1).tolist() for i in range(n)]
            assert c["position_ids"][mask].tolist() == expected  # positions ignore padding
        assert len(calls) == len(requests) + 3 + 1  # batches of 1, of 8 (8, 8, 1) and of 64
    base = scores["right", 1]
    for key, values in scores.items():
        assert max_diff(values, base) < TOL, key


def test_vocabulary_logits_only_at_the_read_positions(models_root):
    model = make(model_dir(models_root, "causal"), "causal", options={"padding_side": "left"})
    requests = varied_requests()
    calls = []
    model.model.register_forward_pre_hook(lambda mod, args, kwargs: calls.append(dict(kwargs)), with_kwargs=True)
    kept = score(model, requests, batch_size=8)
    for c in calls:
        keep = c["logits_to_keep"].tolist()
        assert keep == sorted(set(keep)) and len(keep) < c["input_ids"].shape[1]
        separator_id = model.encoder.separator_ids[-1]
        assert set(c["input_ids"][:, keep].flatten().tolist()) >= {separator_id}
    model._accepts.discard("logits_to_keep")
    calls.clear()
    everything = score(model, requests, batch_size=8)
    assert calls and not any("logits_to_keep" in c for c in calls)
    assert max_diff(kept, everything) < TOL


def test_good_token_alone_is_its_probability_over_the_vocabulary(models_root):
    import torch

    folder = model_dir(models_root, "causal")
    model = make(folder, "causal", options={"step_token": "+"})
    assert model.bad_id is None
    tok, plain = hf_model(folder, "causal")
    request = StepsRequest("Tell me the sum of two and two .", ("two and two", "equals four"))
    [got] = score(model, [request])
    ids, positions = hand_ids(tok, "causal", request)
    with torch.no_grad():
        logits = plain(torch.tensor([ids])).logits[0].float()[positions]
    expected = torch.softmax(logits, -1)[:, tok.convert_tokens_to_ids("+")].tolist()
    assert max(abs(a - b) for a, b in zip(got, expected)) < TOL
    assert max(got) < 0.2  # one token among ~200: far below the two-token softmax's values


@pytest.mark.parametrize("labels, bias, expected", [(2, [0.0, 1.0], 1 / (1 + math.exp(-1.0))), (1, [-0.5], 1 / (1 + math.exp(0.5)))])
def test_the_head_reads_label_one_or_the_sigmoid(models_root, labels, bias, expected):
    """A head of zero weights and a known bias: every step gets exactly softmax(bias)[1] or sigmoid(bias)."""
    import torch

    model = make(model_dir(models_root, "head2" if labels == 2 else "head1"), "head2")
    with torch.no_grad():
        model.model.score.weight.zero_()
        model.model.score.bias.copy_(torch.tensor(bias))
    [got] = score(model, [StepsRequest("hello", ("yes", "no", "maybe"))])
    assert got == pytest.approx((expected,) * 3, abs=1e-6)


def test_an_answer_scores_as_a_one_step_solution(models_root):
    model = make(model_dir(models_root, "head2"), "head2")
    answer = ScoreRequest(MULTI_TURN, "The sum is four .")
    solution = StepsRequest(MULTI_TURN, ("The sum is four .",))
    longer = StepsRequest(MULTI_TURN, ("The sum is four .", "yes"))
    got = score(model, [answer, solution, longer], batch_size=3)
    assert isinstance(got[0], float) and isinstance(got[1], tuple) and len(got[1]) == 1
    assert abs(got[0] - got[1][0]) < 1e-6
    assert abs(got[0] - got[2][0]) < 1e-6  # causal: a later step does not change an earlier one
    assert model.prepare([answer])[0].payload == model.prepare([solution])[0].payload


def test_bf16_runs_and_stays_close(models_root):
    requests = varied_requests()[:6]
    full = score(make(model_dir(models_root, "causal"), "causal"), requests)
    half = make(model_dir(models_root, "causal"), "causal", dtype="bfloat16")
    assert half.dtype == "bfloat16" and next(half.model.parameters()).dtype == half.torch.bfloat16
    low = score(half, requests)
    assert all(isinstance(v, float) for g in low for v in (g if isinstance(g, tuple) else (g,)))
    assert max_diff(low, full) < 0.05


def test_the_kind_builds_through_the_hook(models_root):
    from pytest_rmbench.models import kinds

    spec = ModelSpec(model=str(model_dir(models_root, "head2")), kind="prm", device="cpu",
                     options={"step_separator": tinymodels.PRM_SEPARATOR})
    model = kinds.pytest_rmbench_make_model(config=None, spec=spec)
    assert isinstance(model, prm.PrmModel) and model.kind == "prm"


# -- positions ---------------------------------------------------------------------------------


def test_positions_are_by_token_not_by_search(models_root):
    """A step that contains the separator's text: a search finds it twice, the positions once per step."""
    model = make(model_dir(models_root, "causal"), "causal")
    tok = model.tokenizer
    steps = ("two and two ки four", "yes")
    [prepared] = model.prepare([StepsRequest("Tell me the sum of two and two .", steps)])
    ids, ends = prepared.payload
    separator_id = tok.convert_tokens_to_ids("ки")
    assert ids.count(separator_id) == 3 and len(ends) == 2
    assert [tok.convert_ids_to_tokens(ids[e - 1 : e + 1]) for e in ends] == [["four", "ки"], ["yes", "ки"]]
    [got] = score(model, [StepsRequest("Tell me the sum of two and two .", steps)])
    assert len(got) == 2
    # the ids: the template's text around the steps, each step then the separator, tokenized apart
    assert tok.convert_ids_to_tokens(ids) == (
        ["<s>", "<|user|>"] + "Tell me the sum of two and two .".split() + ["</s>", "<|assistant|>"]
        + ["two", "and", "two", "ки", "four", "ки", "yes", "ки", "</s>"]
    )
    assert ids.count(tok.bos_token_id) == 1  # the template's BOS, none added


def test_every_read_position_is_the_separators_last_token(models_root):
    """The MiniLM WordPiece tokenizer and a two-token separator: the read token never changes."""
    model = make(model_dir(models_root, "bert"), "bert", options={"step_separator": r"\n;;"})
    assert model.separator == "\n;;"  # the escape became a newline
    separator_ids = model.encoder.separator_ids
    assert len(separator_ids) == 2
    for prepared in model.prepare(varied_requests()):
        ids, ends = prepared.payload
        assert ids[0] == model.tokenizer.cls_token_id and ids[-1] == model.tokenizer.sep_token_id
        assert all(ids[e - 1 : e + 1] == separator_ids for e in ends)


def test_escapes():
    assert prm.decode_escapes(r"\n\n") == "\n\n"
    assert prm.decode_escapes(r"a\tb\\n") == "a\tb\\n"
    assert prm.decode_escapes(" ки") == " ки"


# -- the threshold -----------------------------------------------------------------------------


def test_threshold_predicts_the_first_wrong_step(models_root):
    model = make(model_dir(models_root, "head2"), "head2")
    item = StepsItem(id="s", subset="math", problem="Tell me the sum of two and two .",
                     steps=("two and two", "equals four", "not five", "yes"), label=2)
    [request] = item.requests(Rules())
    [scores] = score(model, [request])
    assert len(scores) == 4 and len(set(scores)) == 4
    results = {request: ScoreResult(scores)}
    ordered = sorted(scores)
    cuts = [ordered[0] / 2] + [(a + b) / 2 for a, b in zip(ordered, ordered[1:])] + [(ordered[-1] + 1) / 2]
    seen = set()
    for threshold in cuts:
        expected = next((i for i, s in enumerate(scores) if not s >= threshold), -1)
        outcome = item.outcome(results, Rules(step_threshold=threshold))
        assert outcome.details["prediction"] == expected
        assert outcome.details["step_scores"] == list(scores)
        assert outcome.outcome == (CORRECT if expected == 2 else INCORRECT)
        seen.add(expected)
    assert {-1, 0} <= seen  # under every score: no wrong step; above the first: step 0


@pytest.mark.parametrize("threshold, predicted", [(0.1, -1), (0.5, 2), (0.7, 1), (0.95, 0), (0.2, -1), (0.8, 1)])
def test_the_first_step_under_the_threshold_is_the_prediction(threshold, predicted):
    item = StepsItem(id="s", subset="math", problem="p", steps=("a", "b", "c", "d"), label=1)
    [request] = item.requests(Rules())
    outcome = item.outcome({request: ScoreResult((0.9, 0.6, 0.2, 0.8))}, Rules(step_threshold=threshold))
    assert outcome.details["prediction"] == predicted  # a score equal to the threshold is not under it
    assert outcome.outcome == (CORRECT if predicted == 1 else INCORRECT)


# -- truncation --------------------------------------------------------------------------------


def test_a_long_problem_is_cut_from_the_left_and_every_step_kept(models_root):
    folder = model_dir(models_root, "head2")
    tok, plain = hf_model(folder, "head2")
    request = StepsRequest(MULTI_TURN, ("two and two", "equals four", "yes"))
    full, _ = hand_ids(tok, "head2", request)
    limit = len(full) - 14  # drops the oldest turns and cuts into the final question
    model = make(folder, "head2", max_length=limit)
    [prepared] = model.prepare([request])
    ids, ends = prepared.payload
    assert prepared.truncated and len(ids) <= limit
    tail = full[-12:]  # the steps, their separators and the end of the turn, untouched
    assert ids[-12:] == tail and len(ends) == 3
    assert all(ids[e] == tok.convert_tokens_to_ids(tinymodels.PRM_SEPARATOR) for e in ends)
    [got] = score(model, [request])
    assert max(abs(a - b) for a, b in zip(got, hand_probabilities(plain, "head2", ids, ends))) < TOL


def test_a_solution_longer_than_the_limit_errors_alone(models_root):
    folder = model_dir(models_root, "head2")
    steps = ("two and two", "equals four", "yes")
    bare = len(make(folder, "head2").prepare([StepsRequest("", steps)])[0].payload[0])  # the problem emptied
    model = make(folder, "head2", max_length=bare - 1)
    # only the closing </s> after the last separator is cut: every step is still read
    [prepared] = model.prepare([StepsRequest("hello", steps)])
    ids, ends = prepared.payload
    assert prepared.truncated and len(ids) == bare - 1 and ends[-1] == len(ids) - 1
    assert len(score(model, [StepsRequest("hello", steps)])[0]) == 3
    too_long = StepsRequest("hello", steps + ("no",))
    with pytest.raises(ValueError, match=rf"the solution does not fit in max_length {bare - 1}"):
        model.prepare([too_long])
    with pytest.raises(ValueError, match="does not fit"):
        make(folder, "head2", max_length=bare - 3).prepare([ScoreRequest("hello", " ".join(tinymodels.WORDS[:12]))])


def test_no_steps_or_another_request_is_refused(models_root):
    model = make(model_dir(models_root, "head2"), "head2")
    with pytest.raises(ValueError, match="no steps"):
        model.prepare([StepsRequest("hello", ())])
    from pytest_rmbench.items import JudgeRequest

    with pytest.raises(TypeError, match="JudgeRequest"):
        model.prepare([JudgeRequest("hello", "a", "b")])


# -- load errors -------------------------------------------------------------------------------


def test_a_causal_lm_needs_a_step_token(models_root):
    folder = model_dir(models_root, "causal")
    with pytest.raises(ModelLoadError) as info:
        make(folder, options={"step_separator": " ки"})
    message = str(info.value)
    assert "is a causal language model (LlamaForCausalLM)" in message
    assert "--rm-step-token GOOD or GOOD,BAD" in message and "token-classification head needs none" in message


@pytest.mark.parametrize("token, message", [
    ("two words", r"'two words' is not one token .*: it is 2 tokens: \['two', 'words'\]"),
    ("zzz", r"'zzz' is not one token .*not in the vocabulary"),
    ("+,-,x", "must be GOOD or GOOD,BAD"),
    (",-", "must be GOOD or GOOD,BAD"),
    ("+,+", "GOOD and BAD are the same token"),
])
def test_step_tokens_must_be_single_tokens(models_root, token, message):
    with pytest.raises(ModelLoadError, match=message):
        make(model_dir(models_root, "causal"), options={"step_separator": " ки", "step_token": token})


def test_a_vocabulary_entry_counts_as_one_token(models_root):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir(models_root, "bert")))
    assert len(tok("##s", add_special_tokens=False)["input_ids"]) > 1
    assert prm._single_token(tok, "##s", "bert") == tok.convert_tokens_to_ids("##s")


def test_other_load_errors(models_root, tmp_path):
    head = model_dir(models_root, "head2")
    with pytest.raises(ModelLoadError, match="--rm-step-token is for causal language models.*LlamaForTokenClassification"):
        make(head, options={"step_token": "+"})
    with pytest.raises(ModelLoadError, match=r"the step separator '\\n\\n' .* has no tokens"):
        make(head)  # the default blank line: the word-level tokenizer drops whitespace
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        three = tinymodels.build_tiny_prm(tmp_path / "three", num_labels=3)
        classifier = tinymodels.build_tiny_llama(tmp_path / "classifier")
    with pytest.raises(ModelLoadError, match="a head of 3 labels per token"):
        make(three, "head2")
    with pytest.raises(ModelLoadError, match="LlamaForSequenceClassification, not a process reward model.*--rm-kind classifier"):
        make(classifier, "head2")


# -- a process reward model whose code comes with it (as Qwen2.5-Math-PRM) ----------------------

MODELING = '''
import torch
from transformers import LlamaModel, LlamaPreTrainedModel


class TinyForProcessRewardModel(LlamaPreTrainedModel):
    """A two-layer head on every token; returns a plain tuple, as older repository code does."""

    def __init__(self, config):
        super().__init__(config)
        self.model = LlamaModel(config)
        self.score = torch.nn.Sequential(
            torch.nn.Linear(config.hidden_size, config.hidden_size), torch.nn.ReLU(), torch.nn.Linear(config.hidden_size, 2)
        )
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, **kwargs):
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids).last_hidden_state
        return (self.score(hidden),)
'''


@pytest.fixture(scope="module")
def custom_dir(models_root) -> Path:
    import importlib.util

    import torch

    folder = models_root / "custom"
    tok = tinymodels.build_prm_tokenizer(folder)
    (folder / "modeling_tinyprm.py").write_text(MODELING)
    spec = importlib.util.spec_from_file_location("modeling_tinyprm_test", folder / "modeling_tinyprm.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(5)
    module.TinyForProcessRewardModel(tinymodels.llama_config(tok)).eval().save_pretrained(str(folder))
    config = json.loads((folder / "config.json").read_text())
    config["architectures"] = ["TinyForProcessRewardModel"]
    config["auto_map"] = {"AutoModel": "modeling_tinyprm.TinyForProcessRewardModel"}
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    return folder, module


def test_repository_code_needs_trust(custom_dir):
    folder, _ = custom_dir
    with pytest.raises(ModelLoadError, match="asks to run code from its repository.*--rm-trust-remote-code"):
        make(folder, "head2")


def test_repository_code_runs_when_trusted(custom_dir, tmp_path, monkeypatch):
    import torch
    import transformers.dynamic_module_utils as dynamic

    folder, module = custom_dir
    monkeypatch.setattr(dynamic, "HF_MODULES_CACHE", str(tmp_path / "modules"))  # not the user's cache
    monkeypatch.setattr(sys, "path", list(sys.path))
    model = make(folder, "head2", trust_remote_code=True)
    assert type(model.model).__name__ == "TinyForProcessRewardModel"
    tok = model.tokenizer
    plain = module.TinyForProcessRewardModel.from_pretrained(str(folder)).eval()
    requests = varied_requests()[:6]
    got = score(model, requests, batch_size=3)
    for request, value in zip(requests, got):
        ids, positions = hand_ids(tok, "head2", request)
        with torch.no_grad():
            expected = torch.softmax(plain(torch.tensor([ids]))[0][0][positions].float(), -1)[:, 1].tolist()
        value = value if isinstance(value, tuple) else (value,)
        assert max(abs(a - b) for a, b in zip(value, expected)) < TOL


# -- end to end, through pytest ----------------------------------------------------------------

STEPS_YAML = """\
name: tiny-prm
items:
  - kind: steps
    id: sum
    subset: math
    problem: Tell me the sum of two and two .
    steps: ["two and two", "equals four"]
    label: -1
  - kind: steps
    id: wrong-second
    subset: math
    problem: Explain why the sum of two and two equals four .
    steps: ["two and two", "equals five", "yes"]
    label: 1
  - kind: steps
    id: wrong-first
    subset: math
    problem: What is the capital of France ?
    steps: ["Berlin", "yes"]
    label: 0
"""


def run_steps(pytester, folder: Path, report: str):
    result = pytester.runpytest(
        f"--rm-model={folder}", "--rm-kind", "prm", "--rm-step-separator", tinymodels.PRM_SEPARATOR,
        "--rm-step-threshold", "0.3", f"--rm-report={report}", "--rm-no-store", "-p", "no:cacheprovider",
    )
    path = pytester.path / report
    assert path.exists(), result.stdout.str() + result.stderr.str()
    return result, json.loads(path.read_text())


def test_end_to_end(pytester, models_root):
    folder = model_dir(models_root, "head2")
    pytester.makefile(".rmbench.yaml", items=STEPS_YAML)
    result, report = run_steps(pytester, folder, "run.json")
    assert report["run"]["kind"] == "prm"
    items = {item["id"]: item for item in report["items"]}
    assert sorted(items) == ["sum", "wrong-first", "wrong-second"], report["items"]
    for item in items.values():
        assert item["outcome"] in (CORRECT, INCORRECT), item
        details = item["details"]
        assert len(details["step_scores"]) == {"sum": 2, "wrong-second": 3, "wrong-first": 2}[item["id"]]
        expected = next((i for i, s in enumerate(details["step_scores"]) if s < 0.3), -1)
        assert details["prediction"] == expected
        assert (item["outcome"] == CORRECT) == (expected == details["label"])
    # the scores are the adapter's own
    [direct] = score(make(folder, "head2"), [StepsRequest("What is the capital of France ?", ("Berlin", "yes"))])
    assert max(abs(a - b) for a, b in zip(direct, items["wrong-first"]["details"]["step_scores"])) < TOL
    passed = sum(item["outcome"] == CORRECT for item in items.values())
    assert result.parseoutcomes() == ({"passed": passed, "incorrect": 3 - passed} if passed < 3 else {"passed": 3})
    # again, from the score cache: the same per-step scores
    again, cached = run_steps(pytester, folder, "again.json")
    again.stdout.fnmatch_lines(["score cache: 3 of 3 sequences read from the cache*"])
    assert {i["id"]: i["details"]["step_scores"] for i in cached["items"]} == {k: i["details"]["step_scores"] for k, i in items.items()}
