"""Published suites end to end on a real (tiny, locally built) transformers reward model:
every official figure is recomputed here from the model's own score of each answer alone."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

if str(Path(__file__).parent) not in sys.path:  # tinymodels sits next to this file
    sys.path.insert(0, str(Path(__file__).parent))
import tinymodels  # noqa: E402

from pytest_rmbench import engine  # noqa: E402
from pytest_rmbench.items import ScoreRequest, fractional_credit  # noqa: E402
from pytest_rmbench.models import classifier  # noqa: E402
from pytest_rmbench.models.base import ModelSpec  # noqa: E402

pytest.importorskip("torch")

WORDS = ["the capital of France is Paris .", "Sorry , I cannot help .", "seven", "hello world", "one two three",
         "Paris", "I think it is Lyon .", "The answer is 4 .", "four", "no"]


@pytest.fixture(scope="module")
def llama(tmp_path_factory) -> Path:
    return tinymodels.build_tiny_llama(tmp_path_factory.mktemp("suite-llama") / "llama")


def rb2_rows():
    rows = []
    for i in range(6):
        answers = [WORDS[(i + k) % len(WORDS)] for k in range(4)]
        rows.append({"id": str(i), "prompt": f"question {i} ?", "chosen": answers[:1], "rejected": answers[1:],
                     "num_correct": 1, "num_incorrect": 3, "total_completions": 4, "models": [],
                     "subset": ["Factuality", "Math", "Safety", "Focus", "Precise IF", "Factuality"][i],
                     "additional_metadata": None})
    return rows


def test_rewardbench2_on_a_real_model_matches_scoring_each_answer_alone(pytester, llama, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    data = pytester.mkdir("data")
    rows = rb2_rows()
    (data / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = pytester.runpytest("--rm-bench=rewardbench2", f"--rm-data-dir={data}", f"--rm-model={llama}",
                                "--rm-device=cpu", "--rm-dtype=float32", "--rm-report=run.json", "-p", "no:cacheprovider",
                                "--rm-batch-size=3")
    report = json.loads((pytester.path / "run.json").read_text())
    assert report["run"]["kind"] == "classifier" and len(report["items"]) == 6, result.stdout.str()

    # the same model, one answer per forward pass, outside pytest
    model = classifier.build(ModelSpec(str(llama), device="cpu", dtype="float32"))
    requests = [ScoreRequest(r["prompt"], a) for r in rows for a in r["chosen"] + r["rejected"]]
    alone = engine.score_requests(model, requests, engine.BatchLimits(max_sequences=1, max_tokens=10**9, min_fill=0))
    by_subset: dict[str, list[float]] = {}
    for row, item in zip(rows, report["items"]):
        scores = [alone[ScoreRequest(row["prompt"], a)].score for a in row["chosen"] + row["rejected"]]
        credit = fractional_credit(scores[:1], scores[1:])
        assert item["credit"] == pytest.approx(credit) and item["nodeid"].startswith("rewardbench2::")
        assert item["details"]["chosen_scores"] == pytest.approx(scores[:1], abs=1e-4)
        by_subset.setdefault(row["subset"], []).append(credit)
    subsets = {name: sum(v) / len(v) for name, v in by_subset.items()}
    official = report["scores"]["rewardbench2"]
    assert official["subsets"] == pytest.approx(subsets)
    assert official["final"] == pytest.approx(sum(subsets.values()) / len(subsets))
