"""RM-Bench as a suite: per-domain files or total_dataset.json, pooled safety, the triangles."""

import sys
from pathlib import Path

import pytest

from pytest_rmbench.items import ItemProblem, StyleMatrixItem
from pytest_rmbench.suites import DataSource, Rows, SuiteDataError, SuiteResult
from pytest_rmbench.suites.rm_bench import RMBENCH

if str(Path(__file__).parent) not in sys.path:  # suite_data sits next to this file
    sys.path.insert(0, str(Path(__file__).parent))
from suite_data import scored, write_json  # noqa: E402


def row(id, tag="x", **extra):
    return {"id": id, "prompt": f"prompt {tag} {id}",
            "chosen": [f"c{i} {tag} {id}" for i in range(3)], "rejected": [f"r{i} {tag} {id}" for i in range(3)], **extra}


def load(tmp_path):
    source = DataSource(suite="rmbench", data_dir=str(tmp_path))
    return source, list(RMBENCH.load(source))


def test_per_domain_files_pool_safety_and_keep_nodes_unique(tmp_path):
    bad = row(2, "chat")
    bad["chosen"] = bad["chosen"][:2]
    write_json(tmp_path / "chat_filtered.json", [row(1, "chat", subset="alpacaeval"), bad])
    write_json(tmp_path / "safety-refuse_filtered.json", [row(1, "refuse")])
    write_json(tmp_path / "safety-response_filtered.json", [row(1, "response")])
    write_json(tmp_path / "other.json", [{"a": 1}])
    source, entries = load(tmp_path)
    items = [e for e in entries if not isinstance(e, ItemProblem)]
    assert [i.node for i in items] == ["chat/1", "safety-refuse/1", "safety-response/1"]
    assert [i.subset for i in items] == ["chat", "safety", "safety"]
    assert len({i.id for i in items}) == 3
    assert all(isinstance(i, StyleMatrixItem) and len(i.chosen) == len(i.rejected) == 3 for i in items)
    assert [i.order for i in items] == sorted(i.order for i in items)
    (problem,) = [e for e in entries if isinstance(e, ItemProblem)]
    assert problem.field == "chosen" and "3" in problem.message
    assert {n["part"] for n in source.not_run} == {"code", "math"}
    assert all("not found" in n["reason"] for n in source.not_run)
    assert sorted(u["part"] for u in source.used) == ["chat", "safety-refuse", "safety-response"]


def test_total_dataset_is_used_alone_with_its_domain_field(tmp_path):
    write_json(tmp_path / "total_dataset.json", [
        row(1, "a", domain="chat"), row(1, "b", domain="code"), row(1, "c", domain="math"),
        row(1, "d", domain="safety-refuse"), row(2, "e", domain="sports"),
    ])
    write_json(tmp_path / "chat_filtered.json", [row(9, "chat")])  # the same rows again: not read
    source, entries = load(tmp_path)
    nodes = [e.node for e in entries if not isinstance(e, ItemProblem)]
    assert nodes == ["chat/1", "code/1", "math/1", "safety-refuse/1"]
    (problem,) = [e for e in entries if isinstance(e, ItemProblem)]
    assert problem.field == "domain" and "sports" in problem.message
    assert [u["name"] for u in source.used] == ["total_dataset.json"]
    assert [n["part"] for n in source.not_run] == ["safety-response"]


def test_no_files_is_a_data_error(tmp_path):
    write_json(tmp_path / "chat.json", [row(1)])
    with pytest.raises(SuiteDataError, match="chat_filtered.json"):
        load(tmp_path)


def test_hub_reads_the_train_split(monkeypatch):
    calls = []

    def hub(self, dataset, config=None, split=None, part=None):
        calls.append((dataset, split))
        return Rows.from_list([row(1, domain="math")])

    monkeypatch.setattr(DataSource, "hub", hub)
    source = DataSource(suite="rmbench")
    (item,) = RMBENCH.load(source)
    assert calls == [("THU-KEG/RM-Bench", "train")] and item.node == "math/1"
    assert len(source.not_run) == 4


def item(part, n):
    subset = "safety" if part.startswith("safety") else part
    texts = row(n, part)
    return StyleMatrixItem(id=f"{part}/{n}", subset=subset, prompt=texts["prompt"], chosen=tuple(texts["chosen"]),
                           rejected=tuple(texts["rejected"]))


def test_triangles_and_pooled_domains_by_hand():
    # chosen [1, 5, 9] vs rejected [2, 6, 0]:
    #   row 0: 1>2 no, 1>6 no, 1>0 yes / row 1: yes no yes / row 2: yes yes yes
    # hard (i<j) = (no, yes, yes) 2/3; normal = (no, no, yes) 1/3; easy (i>j) = (yes, yes, yes) 1
    hand = scored(item("chat", 1), [1, 5, 9] + [2, 6, 0])
    assert hand.details["matrix"] == [[False, False, True], [True, False, True], [True, True, True]]
    assert (hand.details["hard"], hand.details["normal"], hand.details["easy"]) == pytest.approx((2 / 3, 1 / 3, 1))
    perfect = scored(item("chat", 2), [10] * 3 + [0, 1, 2])
    # safety pools rows: two all-wrong safety-refuse items and one all-right safety-response item
    wrong = [scored(item("safety-refuse", n), [0, 0, 0] + [1, 1, 1]) for n in (1, 2)]
    right = scored(item("safety-response", 1), [1, 1, 1] + [0, 0, 0])
    errored = SuiteResult("code/1", "code", "error", None, {})
    bad_row = SuiteResult(None, "(invalid)", "error", None, {})
    scores = RMBENCH.score([hand, perfect, *wrong, right, errored, bad_row])

    chat = {"hard": 5 / 6, "normal": 2 / 3, "easy": 1.0, "score": (5 / 6 + 2 / 3 + 1) / 3}
    safety = {"hard": 1 / 3, "normal": 1 / 3, "easy": 1 / 3, "score": 1 / 3}  # not 1/2: pooled by item
    assert scores["domains"] == {"chat": pytest.approx(chat), "safety": pytest.approx(safety)}
    assert scores["overall"] == pytest.approx((chat["score"] + safety["score"]) / 2)
    assert scores["hard"] == pytest.approx((5 / 6 + 1 / 3) / 2)
    assert scores["normal"] == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert scores["easy"] == pytest.approx((1 + 1 / 3) / 2)
    assert scores["errors"] == 2 and "code" not in scores["domains"]
    assert RMBENCH.score([]) is None
