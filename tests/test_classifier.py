"""The transformers sequence-classifier adapter, on tiny models built here (no download).

Covers: BOS handling with a chat template, the fallback format, scores that do not depend
on batching or padding, truncation order, templates that refuse consecutive roles, load
errors, bf16 on CPU, and end-to-end pytest runs on a tiny Llama and on MiniLM (BERT).
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import warnings
from pathlib import Path

import pytest

if str(Path(__file__).parent) not in sys.path:  # tinymodels sits next to this file
    sys.path.insert(0, str(Path(__file__).parent))
import tinymodels  # noqa: E402

from pytest_rmbench import engine  # noqa: E402
from pytest_rmbench.items import ScoreRequest, ScoreResult, judge_pair  # noqa: E402
from pytest_rmbench.models import classifier  # noqa: E402
from pytest_rmbench.models.base import ModelLoadError, ModelSpec  # noqa: E402
from pytest_rmbench.models.chat import ChatEncoder, RmbenchWarning, fallback_text  # noqa: E402

pytest_plugins = ["pytester"]

CORE_SUITE = Path(__file__).resolve().parent.parent / "benchmarks" / "core.rmbench.yaml"


# -- fixtures: each model is built once per module --------------------------------------------


@pytest.fixture(scope="module")
def models_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tinymodels")


@pytest.fixture(scope="module")
def llama_dir(models_root) -> Path:
    return tinymodels.build_tiny_llama(models_root / "llama")


@pytest.fixture(scope="module")
def llama_no_template_dir(models_root) -> Path:
    return tinymodels.build_tiny_llama(models_root / "llama-no-template", chat_template=None)


@pytest.fixture(scope="module")
def llama_strict_dir(models_root) -> Path:
    return tinymodels.build_tiny_llama(models_root / "llama-strict", chat_template=tinymodels.STRICT_CHAT_TEMPLATE)


@pytest.fixture(scope="module")
def bert_dir(models_root) -> Path:
    return tinymodels.build_minilm_classifier(models_root / "minilm")


@pytest.fixture
def offline(monkeypatch):
    """No network: huggingface_hub reads HF_HUB_OFFLINE at import, so patch its constant too."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    try:
        import huggingface_hub.constants as hub_constants
    except ImportError:
        return
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True, raising=False)


def score_requests(model, requests, batch_size: int):
    """engine.score_requests with at most batch_size sequences per forward pass."""
    return engine.score_requests(model, requests, engine.BatchLimits(max_sequences=batch_size, max_tokens=10**9, min_fill=0))


def make(folder: Path, **spec) -> classifier.ClassifierModel:
    spec.setdefault("device", "cpu")
    return classifier.build(ModelSpec(model=str(folder), **spec))


def template_ids(tokenizer, messages: list[dict]) -> list[int]:
    """What the adapter must produce: the template's text, no special tokens added on top."""
    return list(tokenizer(tokenizer.apply_chat_template(messages, tokenize=False), add_special_tokens=False)["input_ids"])


def msg(role: str, content: str) -> dict:
    return {"role": role, "content": content}


SYSTEM = ("system", "Always give quantities in metric units .")
MULTI_TURN = (
    SYSTEM,
    ("user", "Please write a short poem about a cat ."),
    ("assistant", "Here is a short poem : the cat is very good ."),
    ("user", "Tell me a short story about a dog ."),
    ("assistant", "Sure ! Here is a short story about a dog ."),
    ("user", "Who wrote the classic science fiction novel about a desert planet ?"),
)


def varied_requests() -> list[ScoreRequest]:
    """20 requests of many lengths: string prompts and multi-turn prompts."""
    words = tinymodels.WORDS
    out = []
    for i in range(20):
        answer = " ".join(words[(7 * i) % 50 : (7 * i) % 50 + 1 + (i * 3) % 17])
        if i % 4 == 3:
            prompt = MULTI_TURN[: 2 + (i % 3) * 2]
        else:
            prompt = "What is the capital of France ?" + " very" * (i % 9)
        out.append(ScoreRequest(prompt, answer))
    return out


# -- formatting --------------------------------------------------------------------------------


def test_chat_template_ids_hold_exactly_one_bos(llama_dir):
    model = make(llama_dir)
    tok = model.tokenizer
    bos, eos = tok.bos_token_id, tok.eos_token_id
    requests = [
        ScoreRequest("What is the capital of France ?", "The capital of France is Paris ."),
        ScoreRequest(MULTI_TURN, "I am not sure ."),
    ]
    for request, prepared in zip(requests, model.prepare(requests)):
        text = tok.apply_chat_template(request.messages(), tokenize=False)
        assert text.startswith("<s><|")  # the template itself holds the BOS
        ids = prepared.payload
        assert prepared.length == len(ids)
        assert ids[0] == bos
        assert ids.count(bos) == 1
        assert ids.count(eos) == len(request.messages())  # one </s> per message, nothing added
        assert ids == template_ids(tok, request.messages())
        assert not prepared.truncated
        # What naive re-tokenization would give (allenai rewardbench does this): two BOS.
        naive = list(tok(text, add_special_tokens=True)["input_ids"])
        assert naive[:2] == [bos, bos] and naive.count(bos) == 2
        assert naive != ids  # so the checks above catch a doubled BOS


def test_fallback_format_without_chat_template(llama_no_template_dir):
    model = make(llama_no_template_dir)
    tok = model.tokenizer
    assert not model.encoder.has_template
    request = ScoreRequest(MULTI_TURN[:4], "Sure ! Here is a short story about a dog .")
    expected = (
        "System: Always give quantities in metric units .\n\n"
        "User: Please write a short poem about a cat .\n\n"
        "Assistant: Here is a short poem : the cat is very good .\n\n"
        "User: Tell me a short story about a dog .\n\n"
        "Assistant: Sure ! Here is a short story about a dog ."
    )
    assert fallback_text(request.messages()) == expected
    assert model.encoder.render(request.messages()) == expected
    [prepared] = model.prepare([request])
    ids = prepared.payload
    # tokenized WITH special tokens: this tokenizer adds one <s>, and only one
    assert ids == list(tok(expected, add_special_tokens=True)["input_ids"])
    assert ids[0] == tok.bos_token_id and ids.count(tok.bos_token_id) == 1
    assert tok.unk_token_id not in ids
    text = tok.decode(ids)
    assert text.startswith("<s> System : Always give")
    assert text.count("User :") == 2 and text.count("Assistant :") == 2
    # a string prompt is one user message
    [short] = model.prepare([ScoreRequest("hello world", "Paris .")])
    assert short.payload == list(tok("User: hello world\n\nAssistant: Paris .")["input_ids"])


def test_fallback_on_bert_adds_cls_and_sep_once(bert_dir):
    model = make(bert_dir)
    tok = model.tokenizer
    assert not model.encoder.has_template
    [prepared] = model.prepare([ScoreRequest(MULTI_TURN[:2], "Here is a short poem about a cat.")])
    ids = prepared.payload
    assert ids[0] == tok.cls_token_id and ids.count(tok.cls_token_id) == 1
    assert ids[-1] == tok.sep_token_id and ids.count(tok.sep_token_id) == 1
    body = tok.decode(ids[1:-1])
    assert body.startswith("system : always give quantities in metric units")
    assert "user : please write a short poem about a cat" in body
    assert body.endswith("assistant : here is a short poem about a cat.")


# -- batching and padding ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def gpt2_dir(models_root) -> Path:
    return tinymodels.build_tiny_gpt2(models_root / "gpt2")


def record_model_inputs(model) -> list[dict]:
    """Every forward call's tensors (input_ids, attention_mask, position_ids)."""
    calls: list[dict] = []

    def hook(module, args, kwargs):
        calls.append({k: v.clone() for k, v in kwargs.items() if k in ("input_ids", "attention_mask", "position_ids")})

    model.model.register_forward_pre_hook(hook, with_kwargs=True)
    return calls


# Llama: rotary (relative) positions; GPT-2: absolute positions, so its scores move if
# left padding shifts the positions of the real tokens.
@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_scores_do_not_depend_on_batch_size_or_padding_side(request, arch):
    folder = request.getfixturevalue(f"{arch}_dir")
    requests = varied_requests()
    scores = {}
    for side in ("right", "left"):
        model = make(folder, options={"padding_side": side})
        assert model.tokenizer.padding_side == side
        calls = record_model_inputs(model)
        lengths = [p.length for p in model.prepare(requests)]
        assert len(set(lengths)) >= 10  # batches really mix lengths, so padding happens
        for batch_size in (1, 3, 16):
            results = score_requests(model, requests, batch_size)
            assert all(results[r].error is None for r in requests)
            scores[side, batch_size] = [results[r].score for r in requests]
        # the padding really sits on the asked side, and positions count real tokens only
        padded = [c for c in calls if not bool(c["attention_mask"].all())]
        assert padded
        for c in padded:
            mask = c["attention_mask"].bool()
            real_at = mask[:, -1] if side == "left" else mask[:, 0]
            assert bool(real_at.all())
            assert bool((c["input_ids"][~mask] == model.pad_id).all())
            real_positions = c["position_ids"][mask]
            expected = [list(range(int(n))) for n in mask.sum(-1)]
            assert real_positions.tolist() == [i for row in expected for i in row]
    reference = scores["right", 1]
    assert all(math.isfinite(s) for s in reference)
    assert max(reference) - min(reference) > 0.05  # the model tells inputs apart
    for key, values in scores.items():
        diffs = [abs(a - b) for a, b in zip(values, reference)]
        assert max(diffs) < 1e-4, f"{key}: scores moved by up to {max(diffs):.3g}"
    # outcomes of pairs (consecutive requests) agree wherever the margin is clear
    clear = 0
    for i in range(0, len(requests), 2):
        margin = reference[i] - reference[i + 1]
        if abs(margin) <= 1e-4:
            continue
        clear += 1
        outcomes = {judge_pair(ScoreResult(v[i]), ScoreResult(v[i + 1])).outcome for v in scores.values()}
        assert len(outcomes) == 1
    assert clear >= 5


def test_scores_agree_across_token_budgets(llama_dir):
    base = varied_requests()
    requests = [ScoreRequest(r.prompt if i < 20 else f"{r.prompt} ({i})", r.answer) for i, r in
                enumerate(base * 4)][:64]
    model = make(llama_dir)
    lengths = [p.length for p in model.prepare(requests)]
    budgets = {  # padded tokens per batch -> sequences per batch
        1: engine.BatchLimits(max_sequences=10**6, max_tokens=min(lengths), min_fill=0),
        7: engine.BatchLimits(max_sequences=7, max_tokens=7 * max(lengths), min_fill=0),
        64: engine.BatchLimits(max_sequences=10**6, max_tokens=64 * max(lengths), min_fill=0),
    }
    scores = {}
    for per_batch, limits in budgets.items():
        stats = engine.EngineStats()
        results = engine.score_requests(model, requests, limits, stats)
        assert stats.batches == -(-64 // per_batch)
        scores[per_batch] = [results[r].score for r in requests]
    for per_batch in (7, 64):
        assert max(abs(a - b) for a, b in zip(scores[per_batch], scores[1])) < 1e-4


def test_batches_are_padded_with_the_model_config_pad_id(llama_dir, tmp_path):
    """The classifier head finds the last real token by config.pad_token_id: pad with that id.

    Here the tokenizer's pad (<pad>) and the config's pad (<unk>) differ; padding with the
    tokenizer's id put the score of a right-padded row on a pad token.
    """
    folder = tmp_path / "llama-pad"
    shutil.copytree(llama_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    unk = 3
    assert config["pad_token_id"] != unk
    config["pad_token_id"] = unk
    (folder / "config.json").write_text(json.dumps(config))
    model = make(folder, options={"padding_side": "right"})
    assert model.tokenizer.convert_ids_to_tokens(unk) == "<unk>"
    assert model.pad_id == unk == model.model.config.pad_token_id
    requests = varied_requests()
    one = score_requests(model, requests, 1)
    many = score_requests(model, requests, 16)
    assert max(abs(one[r].score - many[r].score) for r in requests) < 1e-4


# -- truncation --------------------------------------------------------------------------------


def test_truncation_drops_the_oldest_turns_first(llama_dir):
    tok = make(llama_dir).tokenizer
    answer = "I am not sure ."
    request = ScoreRequest(MULTI_TURN, answer)
    full = template_ids(tok, request.messages())
    system, u1, a1, u2, a2, last = [msg(*m) for m in MULTI_TURN]
    without_first_pair = template_ids(tok, [system, u2, a2, last, msg("assistant", answer)])
    only_last = template_ids(tok, [system, last, msg("assistant", answer)])
    assert len(only_last) < len(without_first_pair) < len(full)

    [p] = make(llama_dir, max_length=len(without_first_pair)).prepare([request])
    assert p.truncated and p.payload == without_first_pair

    [p] = make(llama_dir, max_length=len(only_last) + 1).prepare([request])
    # both older exchanges are gone; the system message and the final user turn survive whole
    assert p.truncated and p.payload == only_last

    [p] = make(llama_dir, max_length=len(full)).prepare([request])
    assert not p.truncated and p.payload == full


def test_truncation_then_cuts_the_prompt_from_the_left(llama_dir):
    tok = make(llama_dir).tokenizer
    question = "hello world one two three four five six seven eight nine ten what is the capital of France ?"
    request = ScoreRequest((MULTI_TURN[1], MULTI_TURN[2], ("user", question)), "Paris .")
    kept = "what is the capital of France ?"
    expected = template_ids(tok, [msg("user", kept), msg("assistant", "Paris .")])
    [p] = make(llama_dir, max_length=len(expected)).prepare([request])
    assert p.truncated and len(p.payload) <= len(expected)
    assert p.payload == expected  # context dropped, the question's START cut, the answer whole
    assert tok.decode(p.payload).endswith("Paris . </s>")


def test_truncation_cuts_an_overlong_answer_at_its_end(llama_dir):
    tok = make(llama_dir).tokenizer
    words = tinymodels.WORDS[:60]
    request = ScoreRequest("Tell me a short story .", " ".join(words))
    limit = 24
    model = make(llama_dir, max_length=limit)
    results = score_requests(model, [request], 4)
    assert results[request].truncated and math.isfinite(results[request].score)
    [p] = model.prepare([request])
    overhead = len(template_ids(tok, [msg("user", ""), msg("assistant", "")]))
    expected = template_ids(tok, [msg("user", ""), msg("assistant", " ".join(words[: limit - overhead]))])
    assert p.truncated and len(p.payload) == limit
    assert p.payload == expected  # the prompt is emptied first, then the answer keeps its start
    assert p.payload[-1] == tok.eos_token_id  # the template's end is intact


def test_truncated_lengths_never_exceed_the_limit(llama_dir):
    tok = make(llama_dir).tokenizer
    request = ScoreRequest(MULTI_TURN, " ".join(tinymodels.WORDS[:30]))
    messages = request.messages()
    full = template_ids(tok, messages)
    for limit in range(8, len(full) + 3):
        ids, truncated = ChatEncoder(tok, limit).encode_fitted(messages)
        assert len(ids) <= limit
        assert truncated == (len(full) > limit)
        assert ids[0] == tok.bos_token_id and ids.count(tok.bos_token_id) == 1


def test_short_inputs_are_not_truncated(llama_dir):
    model = make(llama_dir, max_length=40)
    short = ScoreRequest("What is the capital of France ?", "Paris .")
    long = ScoreRequest(MULTI_TURN, " ".join(tinymodels.WORDS[:40]))
    results = score_requests(model, [short, long], 2)
    assert results[short].truncated is False
    assert results[long].truncated is True
    [p] = model.prepare([short])
    assert p.payload == template_ids(model.tokenizer, short.messages())


def test_model_limit_applies_without_max_length(llama_dir):
    model = make(llama_dir)  # max_position_embeddings = 128
    assert model.encoder.max_length == 128
    request = ScoreRequest("hello world " * 100, "Paris .")
    results = score_requests(model, [request], 1)
    assert results[request].truncated and results[request].error is None
    assert model.prepare([request])[0].length <= 128
    assert make(llama_dir, max_length=1000).encoder.max_length == 128  # never past the model's


# -- templates that refuse consecutive roles ---------------------------------------------------


def test_template_refusing_consecutive_roles_gets_merged_messages(llama_strict_dir):
    model = make(llama_strict_dir)
    tok = model.tokenizer
    first, second = "Suggest a name for my new grey kitten .", "Tell me a name with the first word M ."
    request = ScoreRequest((("user", first), ("user", second)), "Maybe Misty .")
    with pytest.raises(Exception, match="alternate"):
        tok.apply_chat_template(request.messages(), tokenize=False)

    alternating = ScoreRequest(MULTI_TURN, "I am not sure .")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RmbenchWarning)
        assert score_requests(model, [alternating], 1)[alternating].error is None

    with pytest.warns(RmbenchWarning, match="merged"):
        results = score_requests(model, [request], 2)
    result = results[request]
    assert result.error is None and math.isfinite(result.score)
    merged = [msg("user", first + "\n\n" + second), msg("assistant", "Maybe Misty .")]
    [p] = model.prepare([request])
    assert p.payload == template_ids(tok, merged)


# -- load errors -------------------------------------------------------------------------------


@pytest.mark.usefixtures("offline")
@pytest.mark.usefixtures("offline")
def test_missing_hub_model_names_the_cache_and_the_hub():
    name = "no-such-owner/no-such-reward-model"
    with pytest.raises(ModelLoadError) as info:
        make(name)
    message = str(info.value)
    assert "not a local folder" in message
    assert "local Hugging Face cache" in message and "Hub" in message
    assert name in message


@pytest.mark.usefixtures("offline")
@pytest.mark.parametrize("name", ["/no/such/folder/rm", "./checkpoints/rm-step-900"])
def test_missing_local_folder_says_so(name):
    with pytest.raises(ModelLoadError) as info:
        make(name)
    assert str(info.value) == f"could not load the model config: there is no folder {name!r}"


@pytest.mark.usefixtures("offline")
def test_causal_lm_is_not_a_sequence_classifier(tmp_path):
    folder = tinymodels.build_tiny_llama(tmp_path / "causal", causal_lm=True)
    with pytest.raises(ModelLoadError, match="LlamaForCausalLM, not a sequence classifier"):
        make(folder)


@pytest.mark.usefixtures("offline")
def test_pickle_weights_need_allow_pickle(tmp_path, llama_dir):
    folder = tinymodels.build_tiny_llama(tmp_path / "pickled", pickle_only=True)
    assert (folder / "pytorch_model.bin").exists()
    assert not any(f.suffix == ".safetensors" for f in folder.iterdir())
    with pytest.raises(ModelLoadError) as info:
        make(folder)
    message = str(info.value)
    assert "no .safetensors" in message and "--rm-allow-pickle" in message
    model = make(folder, allow_pickle=True)
    request = ScoreRequest("What is the capital of France ?", "Paris .")
    score = score_requests(model, [request], 1)[request].score
    same_weights = score_requests(make(llama_dir), [request], 1)[request].score  # same seed
    assert score == pytest.approx(same_weights, abs=1e-5)


@pytest.mark.usefixtures("offline")
@pytest.mark.parametrize(
    "auto_map, model_type",
    [
        ({"AutoModelForSequenceClassification": "modeling_tiny.TinyRewardModel"}, None),
        ({"AutoConfig": "modeling_tiny.TinyConfig", "AutoModelForSequenceClassification": "modeling_tiny.TinyRewardModel"}, "tiny-custom-rm"),
    ],
    ids=["known-type", "custom-type"],
)
def test_remote_code_is_refused_without_trust(tmp_path, llama_dir, auto_map, model_type):
    folder = tmp_path / "remote"
    shutil.copytree(llama_dir, folder)
    tinymodels.add_auto_map(folder, auto_map, model_type)
    with pytest.raises(ModelLoadError, match="--rm-trust-remote-code"):
        make(folder)


# -- dtype ----------------------------------------------------------------------------------------


def test_bf16_on_cpu(llama_dir):
    import torch

    model = make(llama_dir, dtype="bf16")
    assert model.dtype == "bfloat16" and model.device == "cpu"
    assert next(model.model.parameters()).dtype == torch.bfloat16
    requests = varied_requests()[:8]
    bf16 = score_requests(model, requests, 3)
    fp32 = score_requests(make(llama_dir), requests, 3)
    for r in requests:
        assert bf16[r].error is None and math.isfinite(bf16[r].score)
        assert abs(bf16[r].score - fp32[r].score) < 0.1


@pytest.mark.parametrize("key", ["dtype", "torch_dtype"])
def test_dtype_defaults_to_the_config(tmp_path, llama_dir, key):
    folder = tmp_path / "llama-bf16"
    shutil.copytree(llama_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config.pop("dtype", None)
    config.pop("torch_dtype", None)
    (folder / "config.json").write_text(json.dumps(config))
    assert make(folder).dtype == "float32"  # no dtype in the config
    config[key] = "bfloat16"  # torch_dtype: the name before transformers 4.56
    (folder / "config.json").write_text(json.dumps(config))
    model = make(folder)
    assert model.dtype == "bfloat16"
    assert make(folder, dtype="fp32").dtype == "float32"  # the command line wins
    with pytest.raises(ModelLoadError, match="unknown --rm-dtype"):
        make(folder, dtype="int3")


@pytest.mark.parametrize(
    "version, keyword",
    [("4.45.2", "torch_dtype"), ("4.55.4", "torch_dtype"), ("4.56.0.dev0", "dtype"), ("4.56.1", "dtype"), ("5.24.0", "dtype")],
)
def test_from_pretrained_dtype_keyword_follows_the_transformers_version(version, keyword):
    from types import SimpleNamespace

    assert classifier.dtype_keyword(SimpleNamespace(__version__=version)) == keyword


# -- end to end, through pytest ------------------------------------------------------------------

ITEMS_YAML = """\
name: tiny
items:
  - id: capital
    subset: chat
    prompt: What is the capital of France ?
    chosen: The capital of France is Paris .
    rejected: The capital of France is Berlin .
  - id: thanks
    subset: chat
    prompt: Reply with the translation only .
    chosen: thank you very much
    rejected: Sure ! Here is the translation , thank you very much .
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
  - id: product
    subset: math
    prompt: What is three multiply three ?
    chosen: nine
    rejected: it equals six
  - id: count
    subset: math
    prompt: Tell me one number between one and ten .
    chosen: seven
    rejected: one hundred
"""


def run_bench(pytester, model_dir: Path, report: str, *args: str):
    # --rm-no-cache: every run really scores (a later run would read the first one's scores)
    result = pytester.runpytest_subprocess(
        f"--rm-model={model_dir}", f"--rm-report={report}", "--rm-no-cache", "-p", "no:cacheprovider", *args, timeout=240
    )
    path = pytester.path / report
    assert path.exists(), result.stdout.str() + result.stderr.str()
    return result, json.loads(path.read_text())


def check_items(report: dict, count: int) -> dict[str, dict]:
    items = report["items"]
    assert len(items) == count
    for item in items:
        assert item["outcome"] in ("correct", "incorrect"), item
        for key in ("chosen_score", "rejected_score"):
            assert isinstance(item[key], float) and math.isfinite(item[key]), item
        assert (item["outcome"] == "correct") == (item["chosen_score"] > item["rejected_score"])
    return {item["nodeid"]: item for item in items}


@pytest.mark.usefixtures("subprocess_env")
def test_end_to_end_tiny_llama_and_batch_sizes(pytester, llama_dir):
    import torch
    import transformers

    pytester.makefile(".rmbench.yaml", items=ITEMS_YAML)
    runs = {}
    # (batch size, extra args, batches): under -n 2, 6 pairs are cut into chunks of 1 pair (2 sequences) -> 6
    for batch_size, extra, batches in ((1, (), 12), (7, (), 2), (3, ("-n", "2", "--rm-chunk-size", "2"), 6)):
        result, report = run_bench(pytester, llama_dir, f"run-{batch_size}.json", "--rm-batch-size", str(batch_size),
                                   "--rm-min-batch-fill", "0", *extra)  # batches of exactly batch_size, to count them
        assert result.ret == 0, result.stdout.str()  # no gate: incorrect items do not fail the run
        assert report["gate"]["passed"] is True
        versions = report["run"]["versions"]
        assert versions["torch"] == torch.__version__
        assert versions["transformers"] == transformers.__version__
        assert report["run"]["model"] == str(llama_dir)
        assert report["run"]["kind"] == "classifier" and report["run"]["device"] == "cpu"
        assert set(report["subsets"]) == {"chat", "math"}
        runs[batch_size] = check_items(report, 6)
        workers = report["workers"]  # 12 distinct sequences, really scored in batches of at most batch_size
        assert sum(w["sequences"] for w in workers) == 12
        assert sum(w["batches"] for w in workers) == batches
        assert not any(w.get("cached") for w in workers)
        if extra:  # under xdist: both workers scored, and sent their figures back
            assert sorted(w["worker"] for w in workers) == ["gw0", "gw1"] and all(w["items"] for w in workers)
    for other_run in (runs[7], runs[3]):
        assert runs[1].keys() == other_run.keys()
    for nodeid, item in runs[1].items():
        other = runs[7][nodeid]
        assert abs(item["chosen_score"] - other["chosen_score"]) < 1e-4
        assert abs(item["rejected_score"] - other["rejected_score"]) < 1e-4
        if abs(item["margin"]) > 1e-4:
            assert item["outcome"] == other["outcome"]


@pytest.mark.usefixtures("subprocess_env")
def test_end_to_end_minilm_on_the_core_suite(pytester, bert_dir):
    shutil.copy(CORE_SUITE, pytester.path / CORE_SUITE.name)
    result, report = run_bench(pytester, bert_dir, "core.json", "-q")
    items = check_items(report, report["run"]["collected"])
    assert len(items) >= 40
    assert report["overall"]["errors"] == 0
    assert report["gate"]["configured"] is True
    expected = 0 if report["gate"]["passed"] else 1
    assert result.ret == expected, result.stdout.str()
    result.stdout.fnmatch_lines(["*rmbench: *minilm* (classifier, float32, cpu)*"])


@pytest.mark.usefixtures("subprocess_env")
def test_a_one_megabyte_answer_is_truncated_and_counted(pytester, llama_dir):
    words = tinymodels.WORDS
    huge = " ".join(words[i % 40] for i in range(280_000))  # over 1 MB of text
    assert len(huge) > 1_000_000
    rows = [
        {"id": "huge", "subset": "s", "prompt": "What is two add two ?", "chosen": huge, "rejected": "four"},
        {"id": "small", "subset": "s", "prompt": "What is two add two ?", "chosen": "four", "rejected": "five"},
    ]
    (pytester.path / "big.rmbench.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    result, report = run_bench(pytester, llama_dir, "big.json")
    assert result.ret == 0, result.stdout.str()
    items = {i["id"]: i for i in report["items"]}
    assert items["huge"]["truncated"] is True and items["huge"]["outcome"] in ("correct", "incorrect")
    assert items["small"]["truncated"] is False
    assert report["truncated"] == 1
    result.stdout.fnmatch_lines(["*truncated: 1*"])
