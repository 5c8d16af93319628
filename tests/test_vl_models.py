"""The vision-language model kinds (models/vision.py, models/vision_judge.py) on a tiny
random-init Qwen2-VL built here (tests/vlmodels.py, no download).

Covers: reward = trl value head at the last non-pad token, equal to a hand forward pass through
Qwen2VLProcessor + Qwen2VLForConditionalGeneration one item at a time; batch-size and
padding-side invariance; --rm-kind auto detection; a bad image or an over-long sequence errors
its item only; text-only items; the VL judge's label log-odds by hand in both orders; value
head and detection errors; end-to-end pytest runs.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

pytest.importorskip("PIL.Image")
pytest.importorskip("transformers")

if str(Path(__file__).parent) not in sys.path:  # vlmodels sits next to this file
    sys.path.insert(0, str(Path(__file__).parent))
import vlmodels  # noqa: E402

from pytest_rmbench import engine  # noqa: E402
from pytest_rmbench.items import JudgeRequest, ScoreRequest  # noqa: E402
from pytest_rmbench.items.images import parse_ref  # noqa: E402
from pytest_rmbench.models import judge, vision  # noqa: E402
from pytest_rmbench.models.base import ModelLoadError, ModelSpec, capabilities  # noqa: E402
from pytest_rmbench.models.resolve import resolve  # noqa: E402

pytest_plugins = ["pytester"]

QUESTION = "What colour is the image ?"


# -- fixtures: built once per module ----------------------------------------------------------


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("vl")


@pytest.fixture(scope="module")
def vl_dir(root) -> Path:
    """The tiny Qwen2-VL with a trl value head: a reward model, and (--rm-kind judge) a judge."""
    return vlmodels.build_tiny_qwen2_vl(root / "qwen2-vl", value_head=True)


@pytest.fixture(scope="module")
def images(root) -> dict:
    folder = root / "images"
    paths = {
        "red": vlmodels.make_image(folder / "red.png"),
        "blue": vlmodels.make_image(folder / "blue.png", size=(60, 50), colour=(20, 20, 220)),
        "stripe": vlmodels.make_image(folder / "stripe.png", size=(56, 56), colour=(20, 200, 20), stripe=(250, 250, 0)),
    }
    (folder / "bad.png").write_bytes(paths["red"].read_bytes()[:40])  # a truncated PNG: found, hashed, not decodable
    paths["bad"] = folder / "bad.png"
    cut = paths["stripe"].read_bytes()
    (folder / "cut.png").write_bytes(cut[: len(cut) - 30])  # its header (size) reads, its pixels do not decode
    paths["cut"] = folder / "cut.png"
    return paths


@pytest.fixture(scope="module")
def refs(images) -> dict:
    return {name: parse_ref(str(path), 0) for name, path in images.items()}


@pytest.fixture(scope="module")
def reward_model(vl_dir):
    return vision.build(ModelSpec(str(vl_dir), kind="vision", device="cpu"))


@pytest.fixture(scope="module")
def hand(vl_dir):
    """The reference: Qwen2VLProcessor (rebuilt from the folder's parts) and the full
    Qwen2VLForConditionalGeneration, one item at a time, no padding."""
    import torch
    from safetensors.torch import load_file
    from transformers import AutoImageProcessor, AutoTokenizer, Qwen2VLForConditionalGeneration, Qwen2VLProcessor

    processor = Qwen2VLProcessor(image_processor=AutoImageProcessor.from_pretrained(vl_dir),
                                 tokenizer=AutoTokenizer.from_pretrained(vl_dir), video_processor=vlmodels.video_processor(),
                                 chat_template=vlmodels.CHAT_TEMPLATE)
    model = Qwen2VLForConditionalGeneration.from_pretrained(vl_dir).eval()
    head = load_file(str(vl_dir / "value_head.safetensors"))

    def inputs(messages, image_paths, generation_prompt):
        from PIL import Image

        text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
        pictures = [Image.open(p).convert("RGB") for p in image_paths] or None
        return processor(text=[text], images=pictures, return_tensors="pt")

    def reward(prompt, answer, image_paths=()):
        content = [{"type": "image"} for _ in image_paths] + [{"type": "text", "text": prompt}]
        messages = [{"role": "user", "content": content if image_paths else prompt}, {"role": "assistant", "content": answer}]
        return reward_of(messages, image_paths)

    def reward_of(messages, image_paths):
        with torch.no_grad():
            out = model(**inputs(messages, image_paths, False), output_hidden_states=True, use_cache=False)
        last = out.hidden_states[-1][0, -1]
        return float(last @ head["v_head.summary.weight"][0] + head["v_head.summary.bias"][0])

    def log_odds(judge_text, image_paths, labels):
        content = [{"type": "image"} for _ in image_paths] + [{"type": "text", "text": judge_text}]
        with torch.no_grad():
            logits = model(**inputs([{"role": "user", "content": content}], image_paths, True), use_cache=False).logits
        logp = torch.log_softmax(logits[0, -1].float(), dim=-1)
        return float(logp[labels[0]] - logp[labels[1]])

    return reward, log_odds, reward_of


def score_all(model, requests, batch_size: int) -> dict:
    limits = engine.BatchLimits(max_sequences=batch_size, max_tokens=10**9, min_fill=0)
    return engine.score_requests(model, requests, limits)


# -- the scalar VL reward model ---------------------------------------------------------------


def requests_for(refs) -> list[ScoreRequest]:
    return [
        ScoreRequest(QUESTION, "The image is red .", images=(refs["red"],)),
        ScoreRequest(QUESTION, "The image is blue .", images=(refs["red"],)),
        ScoreRequest("What is in the picture ?", "A green square .", images=(refs["stripe"],)),
        ScoreRequest("Describe the image .", "It is blue . It is red .", images=(refs["blue"], refs["red"])),
        ScoreRequest("What is in the picture ?", "A cat sits on a mat ."),  # text only
    ]


def test_scores_equal_a_hand_forward_pass_one_item_at_a_time(reward_model, refs, images, hand):
    reward, *_ = hand
    requests = requests_for(refs)
    found = score_all(reward_model, requests, batch_size=8)
    path_of = {ref: images[name] for name, ref in refs.items()}
    for request in requests:
        expected = reward(request.prompt, request.answer, [path_of[r] for r in request.images])
        assert found[request].error is None and found[request].score == pytest.approx(expected, abs=1e-4), request
    assert len({round(found[r].score, 4) for r in requests}) == len(requests)  # the images and texts matter


def test_scores_do_not_depend_on_batch_size_or_padding_side(vl_dir, reward_model, refs):
    requests = requests_for(refs)
    base = {r: s.score for r, s in score_all(reward_model, requests, batch_size=1).items()}
    left = vision.build(ModelSpec(str(vl_dir), kind="vision", device="cpu", options={"padding_side": "left"}))
    assert left.tokenizer.padding_side == "left" and reward_model.tokenizer.padding_side == "right"
    for model, size in ((reward_model, 3), (reward_model, 8), (left, 2), (left, 8)):
        found = score_all(model, requests, batch_size=size)
        for request in requests:
            assert found[request].score == pytest.approx(base[request], abs=1e-4), (size, request)


@pytest.fixture(scope="module")
def threaded(vl_dir):
    """The reward model with its images made in the background thread (on by default on a GPU only)."""
    model = vision.build(ModelSpec(str(vl_dir), kind="vision", device="cpu"))
    assert model.inputs.overlap is False
    model.inputs.overlap = True
    yield model
    model.close()


def test_the_image_thread_gives_the_same_scores(reward_model, threaded, refs):
    requests = requests_for(refs)
    plain, found = score_all(reward_model, requests, 8), score_all(threaded, requests, 8)
    assert all(found[r].score == pytest.approx(plain[r].score, abs=1e-6) for r in requests)
    assert threaded.inputs._executor is not None  # it ran in the thread


def test_a_pair_shares_its_image_work_and_tokens_count_image_patches(threaded, refs):
    prepared = threaded.prepare(requests_for(refs)[:2])
    assert prepared[0].payload["images"][0] is prepared[1].payload["images"][0]  # decoded and preprocessed once
    text_only = threaded.prepare([ScoreRequest(QUESTION, "The image is red .")])[0]
    image_tokens = int(prepared[0].payload["images"][0].result()["image_grid_thw"].prod()) // 4  # merge 2x2
    # the image adds <|vision_start|>, its tokens and <|vision_end|>
    assert prepared[0].length == text_only.length + image_tokens + 2
    assert sum(prepared[0].payload["extra"]["mm_token_type_ids"]) == image_tokens


@pytest.mark.parametrize("thread", [False, True])
def test_a_bad_image_errors_its_item_only(reward_model, threaded, refs, thread):
    good = requests_for(refs)
    expected = {r: s.score for r, s in score_all(reward_model, good, batch_size=8).items()}
    cut_fails_in = "scoring failed" if thread else "could not prepare the input"  # the pixels are decoded there
    bad = ScoreRequest(QUESTION, "The image is red .", images=(refs["bad"],))  # fails in prepare (its header)
    cut = ScoreRequest(QUESTION, "The image is red .", images=(refs["cut"],))  # its size reads: fails when decoded
    found = score_all(threaded if thread else reward_model, good + [bad, cut], batch_size=8)
    assert found[bad].error.startswith("could not prepare the input") and "bad.png: cannot be decoded" in found[bad].error
    assert found[cut].error.startswith(cut_fails_in) and "cut.png: cannot be decoded" in found[cut].error
    assert all(found[r].score == pytest.approx(expected[r], abs=1e-5) for r in good)


def test_an_overlong_sequence_errors_its_item_only(vl_dir, refs):
    good = requests_for(refs)
    short = vision.build(ModelSpec(str(vl_dir), kind="vision", device="cpu", max_length=20))
    found = score_all(short, good, batch_size=8)
    too_long = [r for r in good if found[r].error]
    assert too_long and all("over the limit of 20" in found[r].error for r in too_long)
    assert any(found[r].error is None for r in good)


def test_auto_detects_the_vision_kind_and_it_sees_images(vl_dir, reward_model):
    resolved = resolve(ModelSpec(str(vl_dir)))
    assert resolved.kind == "vision" and resolved.local and resolved.pairwise is False
    assert capabilities(reward_model).images and not capabilities(reward_model).pairwise
    assert reward_model.kind == "vision" and reward_model.head == "value"


def test_detection_of_vl_folders_without_a_value_head_and_of_remote_code(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["Qwen2VLForConditionalGeneration"],
                                                      "vision_config": {"depth": 1}}))
    resolved = resolve(ModelSpec(str(tmp_path)))
    assert resolved.kind is None and "--rm-kind judge" in resolved.error and "value_head.safetensors" in resolved.error
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["Gemma3ForSequenceClassification"],
                                                      "vision_config": {}}))
    assert resolve(ModelSpec(str(tmp_path))).kind == "vision"
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["InternLMXComposer2ForCausalLM"],
                                                      "auto_map": {"AutoModel": "modeling.X"}}))
    assert "--rm-kind vision --rm-trust-remote-code" in resolve(ModelSpec(str(tmp_path))).error


def test_a_wrong_value_head_or_missing_weights_are_one_clear_load_error(root, vl_dir):
    import shutil

    import torch
    from safetensors.torch import save_file

    folder = root / "wrong-head"
    shutil.copytree(vl_dir, folder)
    save_file({"v_head.summary.weight": torch.zeros(1, 7), "v_head.summary.bias": torch.zeros(1)},
              str(folder / "value_head.safetensors"))
    with pytest.raises(ModelLoadError, match=r"hidden size 32 needs \(1, 32\)"):
        vision.build(ModelSpec(str(folder), kind="vision", device="cpu"))
    (folder / "value_head.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="without a reward head.*--rm-kind judge"):
        vision.build(ModelSpec(str(folder), kind="vision", device="cpu"))
    from safetensors.torch import load_file

    shutil.copy(vl_dir / "value_head.safetensors", folder / "value_head.safetensors")
    weights = load_file(str(folder / "model.safetensors"))
    save_file({k: v for k, v in weights.items() if "merger" not in k}, str(folder / "model.safetensors"),
              metadata={"format": "pt"})
    with pytest.raises(ModelLoadError, match="lacks weights that a vision-language backbone needs.*merger"):
        vision.build(ModelSpec(str(folder), kind="vision", device="cpu"))  # they would be random


# -- the generative VL judge --------------------------------------------------------------------


@pytest.fixture(scope="module")
def vl_judge(vl_dir):
    return judge.build(ModelSpec(str(vl_dir), kind="judge", device="cpu"))


def test_the_vl_judge_is_the_text_judge_with_images(vl_judge, refs, images, hand):
    _, log_odds, _ = hand
    from pytest_rmbench.models.vision_judge import VisionJudgeModel

    assert isinstance(vl_judge, VisionJudgeModel) and isinstance(vl_judge, judge.JudgeModel)
    assert capabilities(vl_judge).pairwise and capabilities(vl_judge).images
    forward = JudgeRequest(QUESTION, "The image is red .", "The image is blue .", images=(refs["red"],))
    backward = JudgeRequest(QUESTION, "The image is blue .", "The image is red .", images=(refs["red"],))
    text_only = JudgeRequest("What is in the picture ?", "A cat .", "A dog .")
    found = score_all(vl_judge, [forward, backward, text_only], batch_size=3)
    for request in (forward, backward, text_only):
        judge_text = judge.fill_template(judge.DEFAULT_TEMPLATE, request.prompt, request.answer_a, request.answer_b)
        expected = log_odds(judge_text, [images["red"]] if request.images else [], vl_judge.label_ids)
        assert found[request].score == pytest.approx(expected, abs=1e-4), request
    assert found[forward].score != pytest.approx(found[backward].score, abs=1e-3)  # the order is shown to the judge


def test_the_vl_judge_generates_with_its_images(vl_judge, refs, monkeypatch):
    """generate mode: greedy replies with the images in the prompt, read by the text judge's parser."""
    requests = [JudgeRequest(QUESTION, "The image is red .", "The image is blue .", images=(refs["red"],)),
                JudgeRequest("What is in the picture ?", "A cat .", "A dog .")]
    monkeypatch.setattr(vl_judge, "mode", "generate")
    replies = vl_judge.generate_replies(vl_judge.prepare(requests))
    assert len(replies) == 2 and all(isinstance(r, str) and r for r in replies)
    found = score_all(vl_judge, requests, batch_size=2)
    assert [found[r].score for r in requests] == [judge.parse_verdict(r) for r in replies]


# -- end to end through pytest ----------------------------------------------------------------

ITEMS_YAML = """\
items:
  - id: red
    subset: colour
    prompt: What colour is the image ?
    chosen: The image is red .
    rejected: The image is blue .
    images: [images/red.png]
  - id: two
    subset: colour
    prompt: Describe the image .
    chosen: It is blue . It is red .
    rejected: A dog runs in the park .
    images: [images/blue.png, images/red.png]
  - id: stripe
    subset: shape
    prompt: What is in the picture ?
    chosen: A green square .
    rejected: A cat sits on a mat .
    images: [images/stripe.png]
  - id: broken
    subset: shape
    prompt: What colour is the image ?
    chosen: The image is red .
    rejected: The image is blue .
    images: [images/bad.png]
  - id: text
    subset: shape
    prompt: What is in the picture ?
    chosen: A cat sits on a mat .
    rejected: A dog .
"""


def run(pytester, vl_dir, report: str, *args: str) -> dict:
    # in this process (torch is loaded already): a subprocess would spend ~10 s importing it per run
    result = pytester.runpytest(f"--rm-model={vl_dir}", f"--rm-report={report}", "--rm-no-cache", "--rm-no-store",
                                "-p", "no:cacheprovider", *args)
    path = pytester.path / report
    assert path.exists(), result.stdout.str() + result.stderr.str()
    return {item["id"]: item for item in json.loads(path.read_text())["items"]}


@pytest.fixture
def item_folder(pytester, images):
    import shutil

    shutil.copytree(images["red"].parent, pytester.path / "images")
    pytester.makefile(".rmbench.yaml", items=ITEMS_YAML)
    return pytester.path


@pytest.mark.usefixtures("subprocess_env", "item_folder")
def test_end_to_end_scores_equal_the_hand_pass_across_batch_sizes(pytester, vl_dir, images, hand):
    reward, *_ = hand
    runs = [run(pytester, vl_dir, "b1.json", "--rm-batch-size", "1"),
            run(pytester, vl_dir, "b8.json", "--rm-batch-size", "8", "--rm-min-batch-fill", "0")]
    expected = {"red": (("The image is red .", "The image is blue ."), QUESTION, [images["red"]]),
                "two": (("It is blue . It is red .", "A dog runs in the park ."), "Describe the image .",
                        [images["blue"], images["red"]]),
                "stripe": (("A green square .", "A cat sits on a mat ."), "What is in the picture ?", [images["stripe"]]),
                "text": (("A cat sits on a mat .", "A dog ."), "What is in the picture ?", [])}
    for items in runs:
        assert set(items) == {"red", "two", "stripe", "broken", "text"}, items
        assert items["broken"]["outcome"] == "error" and "bad.png" in items["broken"]["error"]
        for name, ((chosen, rejected), prompt, paths) in expected.items():
            item = items[name]
            assert item["outcome"] in ("correct", "incorrect"), item
            assert item["chosen_score"] == pytest.approx(reward(prompt, chosen, paths), abs=1e-4), name
            assert item["rejected_score"] == pytest.approx(reward(prompt, rejected, paths), abs=1e-4), name
            assert (item["outcome"] == "correct") == (item["chosen_score"] > item["rejected_score"])


@pytest.mark.usefixtures("subprocess_env", "item_folder")
def test_end_to_end_vl_judge_reports_both_orders(pytester, vl_dir):
    items = run(pytester, vl_dir, "judge.json", "--rm-kind", "judge")
    report = json.loads((pytester.path / "judge.json").read_text())
    assert report["run"]["kind"] == "judge"
    assert items["broken"]["outcome"] == "error" and "bad.png" in items["broken"]["error"]
    for name in ("red", "two", "stripe", "text"):
        assert len(items[name]["verdicts"]) == 2 and math.isfinite(items[name]["margin"]), items[name]
    assert report["judge"]["n"] == 4 and 0.0 <= report["judge"]["inconsistency"] <= 1.0


# -- repository code with get_score (InternLM-XComposer2.5-Reward's interface) ------------------


def test_repository_code_with_get_score_only_with_trust_remote_code(root, refs):
    folder = vlmodels.build_remote_code_reward(root / "remote")
    with pytest.raises(ModelLoadError, match="--rm-trust-remote-code"):
        vision.build(ModelSpec(str(folder), kind="vision", device="cpu"))
    model = vision.build(ModelSpec(str(folder), kind="vision", device="cpu", trust_remote_code=True))
    assert isinstance(model, vision.RemoteScoreModel) and capabilities(model).images
    red, text = ScoreRequest(QUESTION, "The image is red .", images=(refs["red"],)), ScoreRequest(QUESTION, "A dog .")
    found = score_all(model, [red, text, ScoreRequest(QUESTION, "red", images=(refs["bad"],))], batch_size=4)
    # 2 * (mean red / 255) + 1 + 0.5 * words: the red image is (200, 30, 30) everywhere
    assert found[red].score == pytest.approx(2 * 200 / 255 + 1 + 0.5 * 5, abs=1e-5)
    assert found[text].score == pytest.approx(1 + 0.5 * 3, abs=1e-5)
    assert sum("bad.png" in (r.error or "") for r in found.values()) == 1
    model.close()


# -- a VL ...ForSequenceClassification, through its AutoProcessor (Gemma 3) ------------------------


def test_a_vl_sequence_classifier_scores_like_its_hand_forward_pass(root, refs, images):
    import torch
    from PIL import Image
    from transformers import AutoProcessor, Gemma3ForSequenceClassification

    folder = vlmodels.build_tiny_gemma3_classifier(root / "gemma3")
    assert resolve(ModelSpec(str(folder))).kind == "vision"
    model = vision.build(ModelSpec(str(folder), kind="vision", device="cpu"))
    assert model.head == "classifier" and not model.inputs.expanded and model._positions
    requests = requests_for(refs)
    processor, reference = AutoProcessor.from_pretrained(folder), Gemma3ForSequenceClassification.from_pretrained(folder).eval()
    path_of = {ref: images[name] for name, ref in refs.items()}
    left = vision.build(ModelSpec(str(folder), kind="vision", device="cpu", options={"padding_side": "left"}))
    runs = [score_all(model, requests, 1), score_all(model, requests, 8), score_all(left, requests, 8)]
    for request in requests:
        content = [{"type": "image"} for _ in request.images] + [{"type": "text", "text": request.prompt}]
        messages = [{"role": "user", "content": content if request.images else request.prompt},
                    {"role": "assistant", "content": request.answer}]
        text = processor.apply_chat_template(messages, tokenize=False)
        pictures = [Image.open(path_of[r]).convert("RGB") for r in request.images] or None
        with torch.no_grad():
            expected = float(reference(**processor(text=[text], images=pictures, return_tensors="pt")).logits[0, 0])
        for found in runs:
            assert found[request].score == pytest.approx(expected, abs=1e-4), request


def test_qwen2_5_vl_with_a_value_head_scores_like_its_hand_forward_pass(root, refs, images):
    import torch
    from PIL import Image
    from safetensors.torch import load_file
    from transformers import AutoImageProcessor, AutoTokenizer, Qwen2_5_VLForConditionalGeneration, Qwen2VLProcessor

    folder = vlmodels.build_tiny_qwen2_5_vl(root / "qwen2.5-vl")
    assert resolve(ModelSpec(str(folder))).kind == "vision"
    model = vision.build(ModelSpec(str(folder), kind="vision", device="cpu"))
    assert model.inputs.expanded and type(model.model).__name__ == "Qwen2_5_VLModel"
    processor = Qwen2VLProcessor(image_processor=AutoImageProcessor.from_pretrained(folder),
                                 tokenizer=AutoTokenizer.from_pretrained(folder), video_processor=vlmodels.video_processor(),
                                 chat_template=vlmodels.CHAT_TEMPLATE)
    reference = Qwen2_5_VLForConditionalGeneration.from_pretrained(folder).eval()
    head = load_file(str(folder / "value_head.safetensors"))
    requests = requests_for(refs)
    runs = [score_all(model, requests, 1), score_all(model, requests, 8)]
    path_of = {ref: images[name] for name, ref in refs.items()}
    for request in requests:
        content = [{"type": "image"} for _ in request.images] + [{"type": "text", "text": request.prompt}]
        messages = [{"role": "user", "content": content if request.images else request.prompt},
                    {"role": "assistant", "content": request.answer}]
        text = processor.apply_chat_template(messages, tokenize=False)
        pictures = [Image.open(path_of[r]).convert("RGB") for r in request.images] or None
        with torch.no_grad():
            out = reference(**processor(text=[text], images=pictures, return_tensors="pt"), output_hidden_states=True)
        expected = float(out.hidden_states[-1][0, -1] @ head["v_head.summary.weight"][0] + head["v_head.summary.bias"][0])
        for found in runs:
            assert found[request].score == pytest.approx(expected, abs=1e-4), request


@pytest.mark.usefixtures("subprocess_env", "item_folder")
def test_end_to_end_a_rerun_reads_the_score_cache_and_an_edited_image_is_scored_again(pytester, vl_dir, images):
    def cached_run(report: str):
        result = pytester.runpytest(f"--rm-model={vl_dir}", f"--rm-report={report}", "--rm-no-store", "-p", "no:cacheprovider")
        data = json.loads((pytester.path / report).read_text())
        return {item["id"]: item for item in data["items"]}, sum(w.get("cached") or 0 for w in data["workers"]), result

    first, cached, _ = cached_run("first.json")
    assert cached == 0
    vlmodels.make_image(pytester.path / "images" / "red.png", colour=(10, 10, 10))  # "red" and "two" show it
    second, cached, _ = cached_run("second.json")
    assert cached == 4  # stripe's and text's two answers: from the cache; red's and two's scored again
    assert second["red"]["chosen_score"] != pytest.approx(first["red"]["chosen_score"], abs=1e-6)
    assert second["stripe"]["chosen_score"] == first["stripe"]["chosen_score"]
    assert second["text"]["rejected_score"] == first["text"]["rejected_score"]


def test_an_image_from_a_content_part_sits_where_it_sat(reward_model, images, hand):
    """A prompt whose user message holds text, an image, text: the image tokens come between the texts."""
    from pytest_rmbench.items import Rules
    from pytest_rmbench.items.files import validate_item

    raw = {"id": "inline", "subset": "s", "chosen": "The image is red .", "rejected": "The image is blue .",
           "prompt": [{"role": "user", "content": [{"type": "text", "text": "Here is the picture : "},
                                                   {"type": "image", "path": str(images["red"])},
                                                   {"type": "text", "text": " What colour is it ?"}]}]}
    item = validate_item(raw, 0, 1, "inline.rmbench.jsonl")
    requests = item.requests(Rules())
    found = score_all(reward_model, requests, batch_size=2)
    reward, _, reward_of = hand
    for request in requests:
        messages = [{"role": "user", "content": [{"type": "text", "text": "Here is the picture : "}, {"type": "image"},
                                                 {"type": "text", "text": " What colour is it ?"}]},
                    {"role": "assistant", "content": request.answer}]
        assert found[request].score == pytest.approx(reward_of(messages, [images["red"]]), abs=1e-4)
        image_first = reward("Here is the picture :  What colour is it ?", request.answer, [images["red"]])
        assert found[request].score != pytest.approx(image_first, abs=1e-3)
