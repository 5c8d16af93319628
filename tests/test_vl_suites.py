"""The vision-language suites (issue #13): vl-rewardbench, multimodal-rewardbench and
mm-rlhf-rewardbench, from small hand-made files in each benchmark's own format (JSON/JSONL
with image files, parquet with embedded image bytes), scored by a conftest model that sees
images and prefers the longer answer; the official scores are checked against hand counts."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PIL = pytest.importorskip("PIL.Image")
datasets = pytest.importorskip("datasets")

from pytest_rmbench.items import ItemProblem, PairItem  # noqa: E402
from pytest_rmbench.suites.base import DataSource, SuiteDataError  # noqa: E402
from pytest_rmbench.suites.mm_rlhf_rewardbench import MM_RLHF_REWARDBENCH  # noqa: E402
from pytest_rmbench.suites.multimodal_rewardbench import MULTIMODAL_REWARDBENCH  # noqa: E402
from pytest_rmbench.suites.vl_rewardbench import VL_REWARDBENCH, group_of  # noqa: E402

if str(Path(__file__).parent) not in sys.path:  # suite_data sits next to this file
    sys.path.insert(0, str(Path(__file__).parent))
from suite_data import result, write_json, write_jsonl  # noqa: E402


def png_bytes(color=(255, 0, 0)) -> bytes:
    out = io.BytesIO()
    PIL.new("RGB", (4, 4), color).save(out, format="PNG")
    return out.getvalue()


def save_png(path, color=(255, 0, 0)) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Path(path).write_bytes(png_bytes(color))


# -- the three benchmarks' files ------------------------------------------------------------
def vl_row(id, response, ranking, image):
    return {"id": id, "image_path": image, "query": f"what is in {id}?", "response": response,
            "human_ranking": ranking, "models": ["m1", "m2"], "judge": "human", "rationale": None,
            "query_source": "x", "meta": {}, "human_error_analysis": []}


# a longer answer scores higher; chosen must win. Hand count by group:
#   general 2/2, hallucination 1/3 (the povid row is hallucination), reasoning 1/2 (+1 error)
VL_ROWS = [
    ("wildvision_1", ["a long chosen answer", "short"], [0, 1], "images/wildvision-battle/1.png"),  # correct
    ("LRVInstruction-2", ["short", "a much longer answer"], [1, 0], "images/vlfeedback/2.png"),  # correct: ranked 0 is second
    ("hallucination_3", ["aaaa", "bbbbbbbb"], [0, 1], "images/povid/3.png"),  # povid, incorrect
    ("RLAIF-V-4", ["a longer one", "x"], [0, 1], "images/rlaif-v/4.png"),  # correct
    ("RLHF-V-5", ["yy", "zzzz"], [0, 1], "images/rlhf-v/5.png"),  # incorrect
    ("mathverse_6", ["the answer is 4", "5"], [0, 1], "images/reasoning_tasks/6.png"),  # correct
    ("mmmu_7", ["long enough", "no"], [0, 1], "images/reasoning_tasks/missing.png"),  # image missing: error
    ("mmmu_8", ["1", "two"], [0, 1], "images/reasoning_tasks/8.png"),  # incorrect
]


def write_vl(folder):
    for _, _, _, image in VL_ROWS:
        if "missing" not in image:
            save_png(os.path.join(folder, image))
    write_jsonl(os.path.join(folder, "data.jsonl"), [vl_row(*r) for r in VL_ROWS])


def mmrb_row(id, category, better, out1, out2, image):
    return {"ID": id, "Text": f"describe {id}", "Image": image, "Output1": out1, "Output2": out2,
            "Better": better, "Meta": {"Category": category}}


# categories as 2_get_accuracy.py splits them; hand count in the comments
MMRB_ROWS = [
    ("nocaps_1", "open_generation/correctness_task", "Output1", "a long first output", "short", "images/nocaps/1.png"),  # ok
    ("visitbench_2", "open_generation/correctness_task", "Output2", "a long first output", "short", "images/v/2.png"),  # wrong
    ("pairs_3", "safety", "Output2", "no", "a longer second output", "images/pairs/3.png"),  # safety/bias ok
    ("hateful_4", "safety", "Output1", "no", "a longer second output", "images/h/4.png"),  # safety/toxicity wrong
    ("mathvista_5", "reasoning", "Output1", "a long first output", "short", "images/mathvista/5.png"),  # reasoning/math ok
    ("EMMA-Coding_6", "reasoning", "Output2", "short", "a long second output", "images/EMMA-Coding/6.png"),  # coding ok
    ("vqa_7", "vqa", "Output3", "a", "b", "images/vqa/7.png"),  # Better is neither: error
]


def write_mmrb(folder):
    for row in MMRB_ROWS:
        save_png(os.path.join(folder, row[-1]))
    write_json(os.path.join(folder, "all_data.json"), [mmrb_row(*r) for r in MMRB_ROWS])


# (id, media path, chosen, rejected); embedded image bytes; one video row (not run)
MMRLHF_ROWS = [
    ("a", "mcq/a.png", "a long chosen answer", "short"),  # ok
    ("a", "mcq/a.png", "short", "a long rejected answer"),  # wrong: id a fails ACC+
    ("b", "long/b.png", "a long chosen answer", "short"),  # ok
    ("b", "long/b.png", "another long answer", "no"),  # ok: b passes ACC+
    ("c", "short/c.png", "no", "a long rejected answer"),  # wrong
    ("d", "safety/d.png", "I cannot help with that.", "sure"),  # ok
]


def write_mmrlhf_parquet(path):
    rows = {"id": [], "image": [], "video": [], "prompt": [], "chosen": [], "rejected": [],
            "chosen_reason": [], "rejected_reason": []}
    for i, (id, media, chosen, rejected) in enumerate(MMRLHF_ROWS + [("e", None, "long answer", "no")]):
        rows["id"].append(id)
        rows["image"].append({"bytes": png_bytes((i * 30, 0, 0)), "path": media} if media else None)
        rows["video"].append(None if media else "video/e.mp4")
        rows["prompt"].append(f"question {id}")
        rows["chosen"].append(chosen)
        rows["rejected"].append(rejected)
        rows["chosen_reason"].append("why")
        rows["rejected_reason"].append("why not")
    features = datasets.Features({name: datasets.Value("string") for name in rows if name != "image"}
                                 | {"image": datasets.Image()})
    os.makedirs(os.path.dirname(path), exist_ok=True)
    datasets.Dataset.from_dict(rows, features=features).to_parquet(str(path))


def load(suite, folder, **options):
    source = DataSource(suite=suite.name, data_dir=str(folder), options=options)
    return list(suite.load(source)), source


# -- loading -------------------------------------------------------------------------------
def test_vl_groups_follow_the_id_prefix_with_povid_in_hallucination():
    assert [group_of(i) for i in ("wildvision_1", "LRVInstruction-000000007746", "hallucination_12", "RLAIF-V-14",
                                  "RLHF-V-3", "mathverse_9", "mmmu_2", "VLFeedback_1")] == [
        "general", "general", "hallucination", "hallucination", "hallucination", "reasoning", "reasoning", "general"]


def test_vl_chosen_is_the_response_ranked_0_and_a_missing_image_errors_its_row(tmp_path):
    write_vl(tmp_path)
    entries, source = load(VL_REWARDBENCH, tmp_path)
    items = {e.id: e for e in entries if isinstance(e, PairItem)}
    assert (items["LRVInstruction-2"].chosen, items["LRVInstruction-2"].rejected) == ("a much longer answer", "short")
    assert items["hallucination_3"].node == "hallucination/hallucination_3" and items["wildvision_1"].subset == "general"
    ref = items["RLAIF-V-4"].images[0]
    assert ref.kind == "path" and ref.value == "images/rlaif-v/4.png"
    assert ref.sha256 == hashlib.sha256((tmp_path / "images/rlaif-v/4.png").read_bytes()).hexdigest()
    [bad] = [e for e in entries if isinstance(e, ItemProblem)]
    assert (bad.id, bad.field) == ("mmmu_7", "image_path") and "data.jsonl row 6" in bad.path
    assert "images/reasoning_tasks/missing.png" in bad.message and "not found" in bad.message
    assert len(items) == 7 and source.used[0]["rows"] == 8


def test_vl_bad_rankings_are_row_errors(tmp_path):
    write_jsonl(tmp_path / "data.jsonl", [vl_row("mmmu_1", ["a", "b"], [0, 0], "x.png"),
                                          vl_row("mmmu_2", ["a"], [0], "x.png")])
    entries, _ = load(VL_REWARDBENCH, tmp_path)
    assert [(e.id, e.field) for e in entries] == [("mmmu_1", "human_ranking"), ("mmmu_2", "response")]


def test_embedded_parquet_images_become_data_uris_without_decoding(tmp_path, monkeypatch):
    """The Hub's layout: test-*.parquet with an Image column ({bytes, path}); nothing decodes at collection."""
    data = png_bytes((0, 255, 0))
    features = datasets.Features({"id": datasets.Value("string"), "query": datasets.Value("string"),
                                  "response": datasets.Sequence(datasets.Value("string")),
                                  "human_ranking": datasets.Sequence(datasets.Value("int64")), "image": datasets.Image()})
    rows = {"id": ["RLAIF-V-1"], "query": ["q"], "response": [["bad", "good one"]], "human_ranking": [[1, 0]],
            "image": [{"bytes": data, "path": "RLAIF-V-1.png"}]}
    datasets.Dataset.from_dict(rows, features=features).to_parquet(str(tmp_path / "data" / "test-00000-of-00001.parquet"))
    monkeypatch.setattr(PIL, "open", lambda *a, **k: pytest.fail("an image was decoded at collection"))
    [item], _ = load(VL_REWARDBENCH, tmp_path)
    ref = item.images[0]
    assert ref.kind == "data" and ref.value.startswith("data:image/png;base64,")
    assert ref.sha256 == hashlib.sha256(data).hexdigest() and item.chosen == "good one"


def test_the_hub_reads_image_columns_undecoded(monkeypatch):
    """source.hub keeps the real load_dataset call; its Image columns come as bytes, never as PIL images."""
    data = png_bytes((0, 0, 255))
    features = datasets.Features({"id": datasets.Value("string"), "query": datasets.Value("string"),
                                  "response": datasets.Sequence(datasets.Value("string")),
                                  "human_ranking": datasets.Sequence(datasets.Value("int64")), "image": datasets.Image()})
    table = datasets.Dataset.from_dict({"id": ["mmmu_1"], "query": ["q"], "response": [["good one", "bad"]],
                                        "human_ranking": [[0, 1]], "image": [{"bytes": data, "path": None}]},
                                       features=features)
    calls = []
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: calls.append((a, k)) or table)
    [item] = list(VL_REWARDBENCH.load(DataSource(suite="vl-rewardbench")))
    assert calls == [(("MMInstruction/VL-RewardBench", None), {"split": "test"})]
    assert item.images[0].sha256 == hashlib.sha256(data).hexdigest() and item.subset == "reasoning"


def test_multimodal_rewardbench_rows_and_its_hub_message(tmp_path):
    write_mmrb(tmp_path / "data")
    entries, _ = load(MULTIMODAL_REWARDBENCH, tmp_path)
    assert [e.subset for e in entries if isinstance(e, PairItem)] == [
        "open_generation/correctness_task", "open_generation/correctness_task", "safety/bias", "safety/toxicity",
        "reasoning/math", "reasoning/coding"]
    assert entries[2].chosen == "a longer second output" and entries[2].node == "safety/bias/pairs_3"
    assert (entries[6].id, entries[6].field) == ("vqa_7", "Better")
    with pytest.raises(SuiteDataError, match="not on the Hugging Face Hub.*--rm-data-dir"):
        list(MULTIMODAL_REWARDBENCH.load(DataSource(suite="multimodal-rewardbench")))


def test_mm_rlhf_categories_ids_and_video_rows_not_run(tmp_path):
    write_mmrlhf_parquet(tmp_path / "data" / "train-00000-of-00001.parquet")
    entries, source = load(MM_RLHF_REWARDBENCH, tmp_path)
    assert [(e.node, e.group) for e in entries] == [
        ("mcq/a/0", "a"), ("mcq/a/1", "a"), ("long/b/0", "b"), ("long/b/1", "b"), ("short/c/0", "c"), ("safety/d/0", "d")]
    assert all(e.images[0].kind == "data" for e in entries)
    assert source.not_run == [{"part": "video", "reason": "1 video row(s) not run (ids e): items do not take video "
                               "yet; they are neither scored nor counted in acc and acc_plus"}]


# -- official scores by hand ------------------------------------------------------------------
def test_vl_scores():
    spec = [("general", 1), ("general", 1), ("hallucination", 0), ("hallucination", 1), ("hallucination", 0),
            ("reasoning", 1), ("reasoning", None), ("reasoning", 0)]
    scores = VL_REWARDBENCH.score([result(i, s, ok) for i, (s, ok) in enumerate(spec)])
    assert scores == {"overall": 4 / 7, "macro": (1 + 1 / 3 + 1 / 2) / 3, "errors": 1, "protocol": "scores",
                      "groups": {"general": 1.0, "hallucination": 1 / 3, "reasoning": 0.5}}


def test_mm_rlhf_acc_plus_counts_an_id_only_when_all_its_rows_are_correct():
    from pytest_rmbench.suites import SuiteResult

    spec = [("a", "mcq", 1), ("a", "mcq", 0), ("b", "long", 1), ("b", "long", 1), ("c", "short", 0),
            ("d", "safety", 1), ("f", "mcq", 1), ("f", "mcq", None)]  # f has an error: left out of ACC+
    results = [SuiteResult(f"{g}/{i}", s, "error" if ok is None else ("correct" if ok else "incorrect"),
                           None if ok is None else float(ok), {}, g) for i, (g, s, ok) in enumerate(spec)]
    scores = MM_RLHF_REWARDBENCH.score(results)
    assert scores["acc"] == 5 / 7 and scores["acc_plus"] == 2 / 4 and scores["ids"] == 4 and scores["errors"] == 1
    assert scores["categories"] == {"long": {"acc": 1.0, "acc_plus": 1.0}, "mcq": {"acc": 2 / 3, "acc_plus": 0.0},
                                    "safety": {"acc": 1.0, "acc_plus": 1.0}, "short": {"acc": 0.0, "acc_plus": 0.0}}


# -- end to end: one pytest session, the three suites, a model that sees images -----------------
SEEING = '''
import json
import pytest
from pytest_rmbench.items.images import decode
from pytest_rmbench.models.base import Prepared

class Seeing:
    """Sees images (decodes each, per chunk) and prefers the longer answer."""
    kind = "seeing"; dtype = "n/a"; device = "cpu"; name = "seeing"; images = True
    def prepare(self, requests):
        with open("seen.log", "a") as log:
            for r in requests:
                log.write(json.dumps([decode(ref)[0].size for ref in r.images]) + "\\n")
        return [Prepared(r, len(r.answer)) for r in requests]
    def score_batch(self, batch):
        return [float(len(p.request.answer)) for p in batch]

@pytest.hookimpl
def pytest_rmbench_make_model(config, spec):
    return Seeing() if spec.model == "seeing" else None
'''


def test_the_three_suites_end_to_end(pytester):
    pytester.makeconftest(SEEING)
    write_vl(pytester.path / "data" / "vl")
    write_mmrb(pytester.path / "data" / "mmrb")
    write_mmrlhf_parquet(pytester.path / "data" / "mm-rlhf" / "data" / "train-00000-of-00001.parquet")
    result = pytester.runpytest("--rm-bench", "vl-rewardbench", "--rm-bench", "multimodal-rewardbench", "--rm-bench",
                                "mm-rlhf-rewardbench", "--rm-data-dir=data", "--rm-model=seeing", "--rm-report=run.json",
                                "--rm-no-store", "-p", "no:cacheprovider")
    report = json.loads((pytester.path / "run.json").read_text())
    vl, mmrb, mmrlhf = (report["scores"][n] for n in ("vl-rewardbench", "multimodal-rewardbench", "mm-rlhf-rewardbench"))
    assert vl == {"overall": 4 / 7, "macro": (1 + 1 / 3 + 1 / 2) / 3, "errors": 1, "protocol": "scores",
                  "groups": {"general": 1.0, "hallucination": 1 / 3, "reasoning": 0.5}}
    assert mmrb == {"overall": 4 / 6, "errors": 1, "categories": {
        "open_generation/correctness_task": 0.5, "reasoning/coding": 1.0, "reasoning/math": 1.0, "safety/bias": 1.0,
        "safety/toxicity": 0.0}}
    assert mmrlhf == {"acc": 4 / 6, "acc_plus": 2 / 4, "ids": 4, "errors": 0, "categories": {
        "long": {"acc": 1.0, "acc_plus": 1.0}, "mcq": {"acc": 0.5, "acc_plus": 0.0},
        "safety": {"acc": 1.0, "acc_plus": 1.0}, "short": {"acc": 0.0, "acc_plus": 0.0}}}
    assert [p["part"] for p in report["datasets"]["mm-rlhf-rewardbench"]["not_run"]] == ["video"]
    items = {i["nodeid"]: i for i in report["items"]}
    assert items["vl-rewardbench::general/LRVInstruction-2"]["outcome"] == "correct"  # ranked [1, 0]
    assert items["vl-rewardbench::hallucination/hallucination_3"]["outcome"] == "incorrect"
    missing = items["vl-rewardbench::item-6"]  # an error item: it has no subset
    assert missing["outcome"] == "error" and "data.jsonl row 6" in missing["error"]
    assert "(id 'mmmu_7'): field 'image_path': image 'images/reasoning_tasks/missing.png' not found" in missing["error"]
    seen = [json.loads(line) for line in (pytester.path / "seen.log").read_text().splitlines()]
    assert len(seen) == 2 * (7 + 6 + 6) and all(s == [[4, 4]] for s in seen)  # every request had its image, decoded
    assert result.ret == 1  # the error items fail the gate


@pytest.mark.usefixtures("subprocess_env")
def test_offline_and_not_cached_is_a_short_error_naming_the_dataset(pytester, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache
    proc = subprocess.run([sys.executable, "-m", "pytest", "--rm-bench", "vl-rewardbench", "--rm-bench",
                           "mm-rlhf-rewardbench", "--rm-model=builtin:length", "-p", "no:cacheprovider"],
                          cwd=pytester.path, env=dict(os.environ), capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out
    for suite, dataset in (("vl-rewardbench", "MMInstruction/VL-RewardBench"),
                           ("mm-rlhf-rewardbench", "yifanzhang114/MM-RLHF-RewardBench")):
        assert f"ERROR collecting {suite}" in out and f"{suite}: dataset {dataset!r}" in out
    assert "--rm-data-dir" in out and "Traceback" not in out


def test_mm_rlhf_from_the_hub_needs_the_image_files(monkeypatch, tmp_path):
    """The Hub's rows name image files load_dataset does not fetch: one error with the fix, or images_dir."""
    rows = {"id": ["a"], "image": ["mcq/a.png"], "video": [None], "prompt": ["q"], "chosen": ["a long answer"],
            "rejected": ["no"], "chosen_reason": [""], "rejected_reason": [""]}
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: datasets.Dataset.from_dict(rows))
    with pytest.raises(SuiteDataError, match="huggingface-cli download yifanzhang114/MM-RLHF-RewardBench"):
        list(MM_RLHF_REWARDBENCH.load(DataSource(suite="mm-rlhf-rewardbench")))
    save_png(tmp_path / "images" / "mcq" / "a.png")
    [item] = MM_RLHF_REWARDBENCH.load(DataSource(suite="mm-rlhf-rewardbench", options={"images_dir": str(tmp_path)}))
    assert item.node == "mcq/a/0" and item.images[0].path == str(tmp_path / "images" / "mcq" / "a.png")


def test_mm_rlhf_category_is_the_first_keyword_in_the_media_path():
    from pytest_rmbench.suites.mm_rlhf_rewardbench import category_of, media_path

    assert [category_of(media_path(row)) for row in (
        {"image": "images/long_short/1.png"},  # both: the first of mcq, long, short, safety, video
        {"image": [{"bytes": b"", "path": "safety/2.png"}]},
        {"image": None, "video": "videos/video_3"},
        {"image": "images/4.png"},
    )] == ["long", "safety", "video", "other"]
