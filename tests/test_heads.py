"""Multi-objective classifiers: `head` picks one output as the reward, `head_weights` sums them.

On a tiny random LlamaForSequenceClassification with three outputs, built here (no download).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

if str(Path(__file__).parent) not in sys.path:  # tinymodels sits next to this file
    sys.path.insert(0, str(Path(__file__).parent))
import tinymodels  # noqa: E402

from pytest_rmbench import engine  # noqa: E402
from pytest_rmbench.items import ScoreRequest  # noqa: E402
from pytest_rmbench.models import classifier  # noqa: E402
from pytest_rmbench.models.base import ModelLoadError, ModelSpec  # noqa: E402

torch = pytest.importorskip("torch")

REQUESTS = [
    ScoreRequest("What is the capital of France ?", "The capital of France is Paris ."),
    ScoreRequest("What is the capital of France ?", "Sorry , I cannot help with that request ."),
    ScoreRequest((("system", "Reply with the translation only ."), ("user", "hello world")), "hello"),
    ScoreRequest("Tell me one number between one and ten .", "seven"),
]


@pytest.fixture(scope="module")
def three_head_dir(tmp_path_factory) -> Path:
    from transformers import LlamaForSequenceClassification

    folder = tmp_path_factory.mktemp("three-heads")
    tokenizer = tinymodels.build_tokenizer(folder)
    torch.manual_seed(0)
    model = LlamaForSequenceClassification(tinymodels.llama_config(tokenizer, num_labels=3)).eval()
    model.save_pretrained(str(folder), safe_serialization=True)
    assert list(folder.glob("*.safetensors")), "the test model must load without --rm-allow-pickle"
    return folder


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


def make(folder: Path, **options) -> classifier.ClassifierModel:
    return classifier.build(ModelSpec(str(folder), device="cpu", dtype="float32", options=options))


def adapter_scores(model, batch_size: int = 4) -> list[float]:
    results = engine.score_requests(model, REQUESTS, engine.BatchLimits(max_sequences=batch_size, max_tokens=10**9, min_fill=0))
    assert all(results[r].error is None for r in REQUESTS), results
    return [results[r].score for r in REQUESTS]


@pytest.fixture(scope="module")
def manual_logits(three_head_dir) -> torch.Tensor:
    """Each sequence alone, no padding: the model's own forward, rows = REQUESTS."""
    from transformers import AutoModelForSequenceClassification

    reference = make(three_head_dir)  # only for its token ids (the chat encoding under test elsewhere)
    ids = [p.payload for p in reference.prepare(REQUESTS)]
    model = AutoModelForSequenceClassification.from_pretrained(str(three_head_dir), dtype=torch.float32).eval()
    with torch.inference_mode():
        rows = [model(input_ids=torch.tensor([seq])).logits[0] for seq in ids]
    logits = torch.stack(rows)
    assert logits.shape == (len(REQUESTS), 3)
    return logits


def test_default_is_output_zero(three_head_dir, manual_logits):
    model = make(three_head_dir)
    assert (model.head, model.head_weights) == (0, None)
    assert adapter_scores(model) == pytest.approx(manual_logits[:, 0].tolist(), abs=1e-5)


@pytest.mark.parametrize("batch_size", [1, 4])
def test_head_picks_that_output(three_head_dir, manual_logits, batch_size):
    scores = adapter_scores(make(three_head_dir, head="2"), batch_size)
    assert scores == pytest.approx(manual_logits[:, 2].tolist(), abs=1e-5)
    assert scores != pytest.approx(manual_logits[:, 0].tolist(), abs=1e-3), "the heads of a random model differ"


def test_head_weights_give_the_weighted_sum(three_head_dir, manual_logits):
    scores = adapter_scores(make(three_head_dir, head_weights="0.5,0,1"))
    expected = 0.5 * manual_logits[:, 0] + 0 * manual_logits[:, 1] + 1 * manual_logits[:, 2]
    assert scores == pytest.approx(expected.tolist(), abs=1e-5)
    spaced = adapter_scores(make(three_head_dir, head_weights=" 0.5, 0 ,1 "))
    assert spaced == pytest.approx(scores, abs=1e-6)


def test_empty_options_mean_unset(three_head_dir, manual_logits):
    model = make(three_head_dir, head="", head_weights="")
    assert (model.head, model.head_weights) == (0, None)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"head": "3"}, r"--rm-head 3 is out of range: .* has num_labels=3 \(outputs 0\.\.2\)"),
        ({"head": "-1"}, r"--rm-head must be an output index 0\.\.2, got '-1'"),
        ({"head": "one"}, r"--rm-head must be an output index"),
        ({"head_weights": "0.5,1"}, r"gives 2 weight\(s\), but the model .* has num_labels=3"),
        ({"head_weights": "1,1,1,1"}, r"gives 4 weight\(s\)"),
        ({"head_weights": "0.5,x,1"}, r"comma-separated numbers"),
        ({"head_weights": "0.5,nan,1"}, r"finite"),
        ({"head": "1", "head_weights": "1,0,0"}, r"exclude each other"),
    ],
)
def test_bad_head_options_are_load_errors(three_head_dir, options, message):
    with pytest.raises(ModelLoadError, match=message):
        make(three_head_dir, **options)


def test_every_head_travels_with_the_reward(three_head_dir, manual_logits):
    scores = adapter_scores(make(three_head_dir, head="1"))
    assert [h for s in scores for h in s.heads] == pytest.approx(manual_logits.flatten().tolist(), abs=1e-4)
    assert scores == pytest.approx(manual_logits[:, 1].tolist(), abs=1e-4)


def test_report_gives_per_head_accuracies_and_a_cached_rerun_keeps_them(pytester, three_head_dir):
    import json

    from transformers import AutoModelForSequenceClassification

    prompt = "What is the capital of France ?"
    answers = ["The capital of France is Paris .", "Sorry , I cannot help with that request .", "Lyon", "seven"]
    pairs = [(0, 1), (1, 0), (2, 3), (0, 3)]
    lines = [json.dumps({"id": i, "subset": "s", "prompt": prompt, "chosen": answers[c], "rejected": answers[r]})
             for i, (c, r) in enumerate(pairs)]
    (pytester.path / "pairs.rmbench.jsonl").write_text("\n".join(lines) + "\n")
    # each answer alone through the model's own forward: every head's verdict per pair, by hand
    requests = [ScoreRequest(prompt, a) for a in answers]
    ids = [p.payload for p in make(three_head_dir).prepare(requests)]
    model = AutoModelForSequenceClassification.from_pretrained(str(three_head_dir), dtype=torch.float32).eval()
    with torch.inference_mode():
        logits = [model(input_ids=torch.tensor([seq])).logits[0].tolist() for seq in ids]
    expected = [sum(logits[c][h] > logits[r][h] for c, r in pairs) / len(pairs) for h in range(3)]
    args = [f"--rm-model={three_head_dir}", "--rm-device=cpu", "--rm-dtype=float32", "-p", "no:cacheprovider"]
    for name in ("first.json", "cached.json"):
        result = pytester.runpytest(*args, f"--rm-report={name}")
        report = json.loads((pytester.path / name).read_text())
        assert report["heads"]["overall"] == pytest.approx(expected), name
        assert report["heads"]["subsets"]["s"] == pytest.approx(expected)
        result.stdout.fnmatch_lines(["per-head accuracy (each output as the reward, 4 pairs): 0: *"])
    assert report["workers"][0]["cached"] == 4  # the second run read every score, heads included, from the cache
