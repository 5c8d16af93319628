"""The pairwise judge kind, on a tiny random LlamaForCausalLM built here (no download).

Covers: scores equal to a manual forward pass, one BOS, the label-token rule, scores that do
not depend on batching or padding, the truncation rule, template files, the generate mode's
parser (on faked replies) and a real greedy run, load errors, and end-to-end pytest runs.
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
from pytest_rmbench.items import JudgeRequest, PairItem, verdict  # noqa: E402
from pytest_rmbench.models import judge  # noqa: E402
from pytest_rmbench.models.base import ModelLoadError, ModelSpec  # noqa: E402

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
    JudgeRequest((("user", "hello"), ("assistant", "hello world"), ("user", "Suggest a name for my new grey kitten .")),
                 "Here is an example : kitten", "no"),
    JudgeRequest("Explain why the sum of two and two equals four .", "two add two equals four", "it is true"),
]


# -- fixtures: each model is built once per module --------------------------------------------


@pytest.fixture(scope="module")
def models_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("judgemodels")


@pytest.fixture(scope="module")
def judge_dir(models_root) -> Path:
    return tinymodels.build_judge_llama(models_root / "judge")


@pytest.fixture(scope="module")
def judge_no_template_dir(models_root) -> Path:
    return tinymodels.build_judge_llama(models_root / "judge-no-template", chat_template=None)


def make(folder: Path, **spec) -> judge.JudgeModel:
    spec.setdefault("device", "cpu")
    spec.setdefault("kind", "judge")
    return judge.build(ModelSpec(str(folder), **spec))


@pytest.fixture(scope="module")
def judge_model(judge_dir) -> judge.JudgeModel:
    return make(judge_dir)


def score_all(model, requests, batch_size: int) -> dict:
    results = engine.score_requests(model, requests, engine.BatchLimits(max_sequences=batch_size, max_tokens=10**9, min_fill=0))
    assert all(r.error is None for r in results.values()), results
    return {request: result.score for request, result in results.items()}


def manual_log_odds(folder: Path, judge_text: str) -> float:
    """log p("A") - log p("B") after the judge prompt, by hand: no padding, no batching."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForCausalLM.from_pretrained(str(folder)).eval()
    text = tok.apply_chat_template([{"role": "user", "content": judge_text}], tokenize=False, add_generation_prompt=True)
    ids = tok(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logp = torch.log_softmax(model(ids).logits[0, -1].float(), dim=-1)
    a = tok("A", add_special_tokens=False)["input_ids"][0]
    b = tok("B", add_special_tokens=False)["input_ids"][0]
    return float(logp[a] - logp[b])


# -- the logprob mode ----------------------------------------------------------------------------


def test_adapter_attributes(judge_model, judge_dir):
    assert judge_model.kind == "judge" and judge_model.pairwise is True
    assert judge_model.name == str(judge_dir)
    assert judge_model.dtype == "float32" and judge_model.device == "cpu"
    assert judge_model.mode == "logprob" and judge_model.template == judge.DEFAULT_TEMPLATE
    assert all(type(v) is str for v in judge_model.versions.values())
    assert judge_model.limit == 128  # the model's max_position_embeddings (the tokenizer has no limit)


def test_score_is_the_label_log_odds_of_a_manual_forward_pass(judge_model, judge_dir):
    scores = score_all(judge_model, REQUESTS[:3], batch_size=8)
    for request in REQUESTS[:3]:
        assert math.isfinite(scores[request])
        text = judge.fill_template(judge.DEFAULT_TEMPLATE, request.prompt, request.answer_a, request.answer_b)
        assert scores[request] == pytest.approx(manual_log_odds(judge_dir, text), abs=1e-5)
        assert verdict(scores[request]) == ("A>B" if scores[request] > 0 else "B>A")
    assert len(set(scores.values())) == 3  # a random model still tells the prompts apart
    again = score_all(judge_model, REQUESTS[:3], batch_size=8)
    assert again == scores  # deterministic


def test_the_prompt_is_one_user_message_with_one_bos_and_a_generation_prompt(judge_model, judge_no_template_dir):
    tok = judge_model.tokenizer
    (prepared,) = judge_model.prepare([REQUESTS[5]])
    ids = prepared.payload
    assert ids.count(tok.bos_token_id) == 1 and ids[0] == tok.bos_token_id
    assert ids[1] == tok.convert_tokens_to_ids("<|user|>") and ids.count(tok.convert_tokens_to_ids("<|user|>")) == 1
    assert ids[-1] == tok.convert_tokens_to_ids("<|assistant|>")  # the model answers next
    text = tok.decode(ids)
    # the multi-turn prompt is written out as "System: ..." / "User: ..." lines inside the one message
    assert "System : Always give quantities in metric units . User :" in text
    assert prepared.length == len(ids) and prepared.truncated is False
    # no chat template: the filled template as plain text, with the tokenizer's own BOS (once)
    plain = make(judge_no_template_dir)
    (prepared,) = plain.prepare([REQUESTS[0]])
    filled = judge.fill_template(judge.DEFAULT_TEMPLATE, QUESTION, REQUESTS[0].answer_a, REQUESTS[0].answer_b)
    assert prepared.payload == list(plain.tokenizer(filled)["input_ids"])
    assert prepared.payload.count(plain.tokenizer.bos_token_id) == 1
    assert math.isfinite(plain.score_batch([prepared])[0])


def test_question_text_of_chat_prompts():
    assert judge.question_text("plain") == "plain"
    assert judge.question_text((("user", "only one"),)) == "only one"
    assert judge.question_text((("system", "s"), ("user", "u1"), ("assistant", "a1"), ("user", "u2"))) == (
        "System: s\nUser: u1\nAssistant: a1\nUser: u2"
    )


def test_scores_do_not_depend_on_batch_size_or_padding_side(judge_model, judge_dir):
    one = score_all(judge_model, REQUESTS, batch_size=1)
    eight = score_all(judge_model, REQUESTS, batch_size=8)
    assert len({p.length for p in judge_model.prepare(REQUESTS)}) > 3  # real padding in the batch of 8
    left = make(judge_dir, options={"padding_side": "left"})
    assert left.tokenizer.padding_side == "left" and judge_model.tokenizer.padding_side == "right"
    left_eight = score_all(left, REQUESTS, batch_size=8)
    for request in REQUESTS:
        assert math.isfinite(one[request])
        assert abs(one[request] - eight[request]) < 1e-4
        assert abs(one[request] - left_eight[request]) < 1e-4


def test_label_tokens_are_the_first_token_of_each_letter(judge_model):
    tok = judge_model.tokenizer
    assert judge_model.label_ids == (tok.convert_tokens_to_ids("A"), tok.convert_tokens_to_ids("B"))

    class Fake:
        unk_token_id = 0

        def __init__(self, vocab):
            self.vocab = vocab

        def __call__(self, text, add_special_tokens=True):
            assert add_special_tokens is False
            return {"input_ids": self.vocab[text]}

    # e.g. SentencePiece: "A" -> "▁A" (one token), or a word-start marker then the letter
    assert judge.label_token_ids(Fake({"A": [7, 9], "B": [8]})) == (7, 8)
    with pytest.raises(ModelLoadError, match="start with the same token"):
        judge.label_token_ids(Fake({"A": [5, 7], "B": [5, 8]}))
    with pytest.raises(ModelLoadError, match="no token for the judge label 'B'"):
        judge.label_token_ids(Fake({"A": [7], "B": [0]}))


def test_a_tokenizer_without_the_labels_is_a_clear_error(models_root):
    # the classifier tests' tokenizer has no capital letters: "A" is its unknown token
    folder = tinymodels.build_tiny_llama(models_root / "no-labels", causal_lm=True)
    with pytest.raises(ModelLoadError, match="no token for the judge label 'A'"):
        make(folder)


# -- truncation ----------------------------------------------------------------------------------

LONG_A = " ".join(tinymodels.WORDS[:40])
LONG_B = " ".join(tinymodels.WORDS[50:110])


def tokens(model, text: str) -> list[int]:
    return list(model.tokenizer(text, add_special_tokens=False)["input_ids"])


def test_long_answers_are_cut_from_the_end_to_equal_shares(judge_model, judge_dir):
    overhead = len(judge_model.fit(JudgeRequest("", "", "")).ids)
    room = 30  # for the question (7 tokens) and the answers (40 and 60 tokens)
    model = make(judge_dir, max_length=overhead + room)
    assert model.limit == overhead + room
    fitted = model.fit(JudgeRequest(QUESTION, LONG_A, LONG_B))
    assert fitted.truncated and len(fitted.ids) <= model.limit
    assert fitted.question == QUESTION  # the question fits once the answers are cut
    share = (room - len(tokens(model, QUESTION))) // 2
    cut_a, cut_b = tokens(model, fitted.answer_a), tokens(model, fitted.answer_b)
    assert len(cut_a) == len(cut_b) == share
    assert cut_a == tokens(model, LONG_A)[:share] and cut_b == tokens(model, LONG_B)[:share]  # their ends went
    # both orders are cut alike, and prepare flags the cut
    swapped = model.fit(JudgeRequest(QUESTION, LONG_B, LONG_A))
    assert (swapped.answer_a, swapped.answer_b) == (fitted.answer_b, fitted.answer_a)
    first, second, short = model.prepare([JudgeRequest(QUESTION, LONG_A, LONG_B), JudgeRequest(QUESTION, LONG_B, LONG_A),
                                          JudgeRequest(QUESTION, "Paris", "Berlin")])
    assert first.truncated and second.truncated and not short.truncated
    assert first.payload == fitted.ids and first.length == len(fitted.ids) <= model.limit
    assert all(math.isfinite(s) for s in model.score_batch([first, second, short]))
    # an answer shorter than its share stays whole; the other takes the rest of the room
    fitted = model.fit(JudgeRequest(QUESTION, "Paris", LONG_B))
    assert fitted.answer_a == "Paris"
    assert len(tokens(model, fitted.answer_b)) == room - len(tokens(model, QUESTION)) - 1


def test_a_long_question_is_cut_from_the_left_after_the_answers(judge_model, judge_dir):
    overhead = len(judge_model.fit(JudgeRequest("", "", "")).ids)
    room = 40
    model = make(judge_dir, max_length=overhead + room)
    question = " ".join(tinymodels.WORDS[:90])
    fitted = model.fit(JudgeRequest(question, LONG_A, LONG_B))
    assert fitted.truncated and len(fitted.ids) <= model.limit
    # the answers keep half of the room between them, the question the other half, from its end
    assert len(tokens(model, fitted.answer_a)) == len(tokens(model, fitted.answer_b)) == room // 4
    assert tokens(model, fitted.question) == tokens(model, question)[-(room // 2):]
    # the template alone over the limit: its end is kept (never an error)
    tiny = make(judge_dir, max_length=10)
    (prepared,) = tiny.prepare([JudgeRequest(QUESTION, LONG_A, LONG_B)])
    assert prepared.truncated and prepared.length == 10
    assert prepared.payload[-1] == tiny.tokenizer.convert_tokens_to_ids("<|assistant|>")


def test_a_placeholder_used_twice_still_fits(judge_dir, tmp_path):
    path = tmp_path / "twice.txt"
    path.write_text("{question}\nA: {answer_a}\nB: {answer_b}\n{question}\nA or B ?", encoding="utf-8")
    model = make(judge_dir, options={"judge_template": str(path)}, max_length=60)
    question = " ".join(tinymodels.WORDS[:40])
    for request in (JudgeRequest(question, LONG_A, LONG_B), JudgeRequest(QUESTION, LONG_A, LONG_B)):
        fitted = model.fit(request)
        assert fitted.truncated and len(fitted.ids) <= 60
        assert len(tokens(model, fitted.answer_a)) == len(tokens(model, fitted.answer_b)) > 0


# -- templates -----------------------------------------------------------------------------------


def test_a_custom_template_file(judge_dir, tmp_path):
    path = tmp_path / "judge.txt"
    path.write_text('Q: {question}\nfirst: {answer_a}\nsecond: {answer_b}\n{"keep": "braces"} A or B ?\n', encoding="utf-8")
    model = make(judge_dir, options={"judge_template": str(path)})
    assert model.template == path.read_text(encoding="utf-8")
    request = JudgeRequest(QUESTION, "Paris {answer_b}", "Berlin")
    filled = judge.fill_template(model.template, QUESTION, request.answer_a, request.answer_b)
    # one pass: an answer's "{answer_b}" is not filled in, and other braces stay as they are
    assert filled == 'Q: ' + QUESTION + '\nfirst: Paris {answer_b}\nsecond: Berlin\n{"keep": "braces"} A or B ?\n'
    (prepared,) = model.prepare([request])
    tok = model.tokenizer
    rendered = tok.apply_chat_template([{"role": "user", "content": filled}], tokenize=False, add_generation_prompt=True)
    assert prepared.payload == list(tok(rendered, add_special_tokens=False)["input_ids"])
    assert math.isfinite(model.score_batch([prepared])[0])


def test_a_template_file_without_a_placeholder_is_a_clear_error(judge_dir, tmp_path):
    path = tmp_path / "judge.txt"
    path.write_text("Q: {question}\nA: {answer_a}\nwhich is better?\n", encoding="utf-8")
    with pytest.raises(ModelLoadError) as info:
        make(judge_dir, options={"judge_template": str(path)})
    message = str(info.value)
    assert str(path) in message and "lacks the placeholder {answer_b}" in message
    with pytest.raises(ModelLoadError, match="could not read the judge template file .*missing.txt"):
        make(judge_dir, options={"judge_template": str(tmp_path / "missing.txt")})


def test_unknown_mode_and_wrong_architecture_are_clear_errors(judge_dir, models_root, tmp_path, monkeypatch):
    with pytest.raises(ModelLoadError, match="unknown --rm-judge-mode 'sample'; choose logprob or generate"):
        make(judge_dir, options={"judge_mode": "sample"})
    classifier_dir = tinymodels.build_tiny_llama(models_root / "classifier")
    with pytest.raises(ModelLoadError, match="LlamaForSequenceClassification, not a causal language model"):
        make(classifier_dir)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="could not load the model config"):
        make(tmp_path / "no-such-model")


# -- the generate mode ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply, score",
    [
        ("[[A]]", 1.0), ("[[B]]", -1.0), ("My verdict: [[B]]", -1.0), ("[[ A ]] and later [[B]]", 1.0),
        ("A", 1.0), (" B\n", -1.0), ("B.", -1.0), ("**A**", 1.0), ("(B)", -1.0), ("\n\nA\nbecause it is right", 1.0),
        ("A good answer", 0.0), ("Both are fine", 0.0), ("", 0.0), ("AB", 0.0), ("[[C]]", 0.0),
    ],
)
def test_parse_verdict(reply, score):
    assert judge.parse_verdict(reply) == score


def test_generate_mode_reads_the_reply(judge_dir, monkeypatch):
    import torch

    model = make(judge_dir, options={"judge_mode": "generate"})
    assert model.mode == "generate" and model.limit == 128 - judge.MAX_NEW_TOKENS
    replies = iter(["[[B]]", "[[A]]", "no idea"])
    seen = {}

    def fake_generate(input_ids, attention_mask, generation_config):
        seen.update(ids=input_ids, mask=attention_mask, config=generation_config)
        rows = [model.tokenizer(next(replies), add_special_tokens=False)["input_ids"] for _ in range(len(input_ids))]
        width = max(len(r) for r in rows)
        new = torch.tensor([r + [model.tokenizer.eos_token_id] * (width - len(r)) for r in rows])
        return torch.cat([input_ids, new], dim=1)

    monkeypatch.setattr(model.model, "generate", fake_generate)
    prepared = model.prepare(REQUESTS[:3])
    assert model.score_batch(prepared) == [-1.0, 1.0, 0.0]
    assert seen["config"].do_sample is False and seen["config"].max_new_tokens == judge.MAX_NEW_TOKENS
    lengths = [p.length for p in prepared]
    assert seen["mask"].sum(dim=1).tolist() == lengths
    assert all(seen["mask"][row, -1] == 1 for row in range(len(prepared)))  # left-padded: replies follow the prompt


def test_generate_mode_real_greedy_run(judge_dir):
    model = make(judge_dir, options={"judge_mode": "generate"})
    prepared = model.prepare(REQUESTS[:4])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no complaints about sampling flags
        replies = model.generate_replies(prepared)
        scores = model.score_batch(prepared)
    assert len(replies) == 4 and all(isinstance(r, str) for r in replies)
    assert scores == [judge.parse_verdict(r) for r in replies]
    assert set(scores) <= {-1.0, 0.0, 1.0}
    # greedy: the same replies one at a time, even when the model's own settings ask for sampling
    config = model.model.generation_config
    config.do_sample, config.temperature, config.top_k = True, 5.0, 3
    assert [model.generate_replies([p])[0] for p in prepared] == replies


def test_engine_rule_on_judge_requests(judge_model):
    pair = PairItem(id="x", subset="s", prompt=QUESTION, chosen="The capital of France is Paris .", rejected="The capital of France is Berlin .")
    scorer = engine.ChunkedScorer(lambda: judge_model, engine.BatchLimits(), pairwise_hint=None)
    outcome = scorer.score_items([("k", pair)])["k"]
    assert outcome.outcome in ("correct", "incorrect") and len(outcome.details["verdicts"]) == 2


# -- end to end, through pytest ------------------------------------------------------------------

ITEMS_YAML = """\
name: tiny-judge
items:
  - id: capital
    subset: chat
    prompt: What is the capital of France ?
    chosen: The capital of France is Paris .
    rejected: The capital of France is Berlin .
  - id: multi-turn
    subset: chat
    prompt:
      - role: system
        content: Always give quantities in metric units .
      - role: user
        content: How much butter is in one stick ?
    chosen: about one hundred grams
    rejected: about four ounces
  - id: sum
    subset: math
    prompt: What is two add two ?
    chosen: two add two equals four .
    rejected: two add two equals five .
  - id: count
    subset: math
    prompt: Tell me one number between one and ten .
    chosen: seven
    rejected: one hundred
"""


@pytest.mark.usefixtures("subprocess_env")
def test_end_to_end_judge_run(pytester, judge_dir):
    pytester.makefile(".rmbench.yaml", items=ITEMS_YAML)
    result = pytester.runpytest_subprocess(
        f"--rm-model={judge_dir}", "--rm-kind", "judge", "--rm-report=run.json", "--rm-no-store", "--rm-no-cache",
        "-p", "no:cacheprovider", timeout=240,
    )
    path = pytester.path / "run.json"
    assert path.exists(), result.stdout.str() + result.stderr.str()
    data = json.loads(path.read_text())
    assert result.ret == 0, result.stdout.str()  # no gate: incorrect items do not fail the run
    assert data["run"]["kind"] == "judge" and data["run"]["model"] == str(judge_dir)
    items = data["items"]
    assert len(items) == 4
    for item in items:
        assert item["outcome"] in ("correct", "incorrect"), item
        assert len(item["verdicts"]) == 2 and set(item["verdicts"]) <= {"A>B", "B>A", "tie"}
        assert isinstance(item["margin"], float) and math.isfinite(item["margin"])
    block = data["judge"]
    assert block["n"] == 4 and 0.0 <= block["inconsistency"] <= 1.0
    workers = data["workers"]
    assert sum(w["sequences"] for w in workers) == 8  # two orders per pair


def test_a_causal_lm_without_rm_kind_is_one_clear_error(pytester, judge_dir):
    pytester.makefile(".rmbench.yaml", items=ITEMS_YAML)
    result = pytester.runpytest(f"--rm-model={judge_dir}", "--rm-no-store", "-p", "no:cacheprovider", "-rN")  # -rN: no short summary, whose width CI=true changes
    assert result.ret != 0
    text = result.stdout.str()
    assert "--rm-kind dpo" in text and "--rm-kind judge" in text
    # said in full once, at the top of the summary; every item points to it
    assert text.count("causal language model (LlamaForCausalLM)") == 1, text
    result.stdout.fnmatch_lines(["=* rmbench: *", "the reward model could not be loaded: *causal language model "
                                 "(LlamaForCausalLM)*--rm-kind judge*", "  4 item(s) were not scored"])
