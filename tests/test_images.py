"""Items with images (pytest_rmbench/items/images.py): the field, identity, decoding per
chunk, the http model's image_url parts, and errors that stay with their item."""

from __future__ import annotations

import base64
import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

PIL = pytest.importorskip("PIL.Image")

from pytest_rmbench.items import JudgeRequest, Rules, ScoreRequest, request_parts  # noqa: E402
from pytest_rmbench.items import images as images_mod  # noqa: E402
from pytest_rmbench.items.files import validate_item  # noqa: E402
from pytest_rmbench.models.base import blind_to_images, capabilities  # noqa: E402
from pytest_rmbench.storage.cache import cache_key  # noqa: E402
from pytest_rmbench.storage.scorefile import _writable  # noqa: E402
from pytest_rmbench.items.base import ScoreResult  # noqa: E402


def png(path, color=(255, 0, 0), size=(4, 4)) -> str:
    PIL.new("RGB", size, color).save(path, format="PNG")
    return str(path)


def png_uri(color=(0, 0, 255)) -> str:
    out = io.BytesIO()
    PIL.new("RGB", (2, 2), color).save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def item(images, kind="pair", **more):
    raw = {"id": "a", "subset": "s", "prompt": "what is shown?", "chosen": "a red square", "rejected": "a cat",
           "images": images, **more}
    if kind == "judged":
        raw = {"id": "a", "subset": "s", "kind": "judged", "question": "q", "response_a": "x", "response_b": "yy",
               "label": "A>B", "images": images}
    if kind == "best_of_n":
        raw = {**raw, "kind": "best_of_n", "chosen": ["a"], "rejected": ["b", "c"]}
    return validate_item(raw, 0, 1, "f.rmbench.jsonl")


# -- the field and identity ----------------------------------------------------------------
@pytest.mark.parametrize("kind", ["pair", "judged", "best_of_n"])
def test_each_prompt_kind_takes_images_and_its_requests_carry_them(tmp_path, kind):
    found = item([png(tmp_path / "a.png"), png_uri()], kind)
    assert len(found.images) == 2 and [r.kind for r in found.images] == ["path", "data"]
    requests = found.requests(Rules()) + found.requests(Rules(pairwise=True))
    assert requests and all(r.images == found.images for r in requests)
    assert found.report_texts()["images"][0].endswith("a.png")


def test_content_hash_follows_the_bytes_and_the_node_id_does_not(tmp_path):
    path = png(tmp_path / "a.png")
    before = item([path])
    png(tmp_path / "a.png", color=(0, 255, 0))
    after = item([path])
    assert before.node_name() == after.node_name()
    assert before.content_hash() != after.content_hash()
    assert before.requests()[0] != after.requests()[0]
    assert cache_key(before.requests()[0]) != cache_key(after.requests()[0])


def test_items_without_images_keep_their_hashes_and_keys(tmp_path):
    plain = item(None)
    assert plain.images == () and "images" not in plain.report_texts()
    request = ScoreRequest("what is shown?", "a red square")
    assert plain.requests()[0] == request
    assert request_parts(request) == ["what is shown?", "a red square"]
    assert request_parts(JudgeRequest("q", "a", "b")) == ["judge", "q", "a", "b"]
    assert item([png(tmp_path / "a.png")]).content_hash() != plain.content_hash()


@pytest.mark.parametrize("entry, words", [
    ("https://example.com/cat.png", "is a URL; URLs are never fetched"),
    ("ftp://example.com/cat.png", "is a URL"),
    ("missing.png", "not found"),
    ("data:image/png;base64,@@@", "does not decode"),
    ("data:text/plain;base64,aGk=", "not 'data:image/...;base64,...'"),
    ({"url": "x"}, "mapping with 'path' or 'data'"),
])
def test_bad_image_entries_are_item_errors_naming_the_image(entry, words):
    problem = item([entry])
    assert problem.field == "images" and words in problem.message and "image 0" in problem.message


def test_images_must_be_a_non_empty_list():
    assert "non-empty list" in item("a.png").message
    assert "non-empty list" in item([]).message


def test_relative_paths_resolve_against_the_item_file(tmp_path):
    (tmp_path / "img").mkdir()
    png(tmp_path / "img" / "a.png")
    with images_mod.item_file(str(tmp_path / "items.rmbench.yaml")):
        found = item(["img/a.png"])
    assert found.images[0].path == str(tmp_path / "img" / "a.png")
    assert found.report_texts()["images"] == ["img/a.png"]


def test_a_data_uri_is_clipped_for_people(tmp_path):
    ref = item([png_uri()]).images[0]
    assert len(ref.label()) < 100 and "characters" in ref.label() and "base64" not in repr(ref)[100:]


def test_score_files_skip_image_requests(tmp_path):
    request = item([png(tmp_path / "a.png")]).requests()[0]
    assert not _writable(request, ScoreResult(1.0))
    assert _writable(ScoreRequest("p", "a"), ScoreResult(1.0))


# -- decoding --------------------------------------------------------------------------------
def test_decode_checks_the_bytes_and_refuses_bombs(tmp_path, monkeypatch):
    ref = item([png(tmp_path / "a.png", size=(64, 64))]).images[0]
    image, _ = images_mod.decode(ref)
    assert image.size == (64, 64)
    monkeypatch.setattr(PIL, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(images_mod.ImageError, match="decompression bomb"):
        images_mod.decode(ref)
    monkeypatch.undo()
    data = (tmp_path / "a.png").read_bytes()
    (tmp_path / "a.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(images_mod.ImageError, match="changed since collection"):
        images_mod.decode(ref)
    truncated = item([str(tmp_path / "a.png")]).images[0]
    with pytest.raises(images_mod.ImageError, match="cannot be decoded"):
        images_mod.decode(truncated)


def test_missing_pillow_is_one_line(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "PIL", None)  # "import PIL" now fails as if not installed
    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    with pytest.raises(images_mod.ImageError) as info:
        images_mod.pillow()
    assert str(info.value) == ("items with images needs PIL, which is not installed: "
                               "pip install 'pytest-rmbench[vision]'")


def test_a_text_model_is_blind_to_images(tmp_path):
    class Text:
        kind = "classifier"

    class Seeing:
        kind = "http"
        images = True

    with_image = item([png(tmp_path / "a.png")]).requests()[0]
    text = ScoreRequest("p", "a")
    assert capabilities(Text()).images is False and capabilities(Seeing()).images is True
    found = blind_to_images(Text(), [with_image, text])
    assert list(found) == [with_image] and found[with_image].error.startswith("the model cannot see images")
    assert blind_to_images(Seeing(), [with_image]) == {}


# -- end to end through pytest ------------------------------------------------------------------
class ImageServer:
    """An in-process stand-in for a vLLM multimodal server: /classify scores a conversation by
    how many image_url data URIs its last user message carries; it records what it got."""

    def __init__(self):
        self.bodies = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.bodies.append(body)
                content = [m for m in body["messages"] if m["role"] == "user"][-1]["content"]
                parts = content if isinstance(content, list) else []
                seen = sum(p["type"] == "image_url" and p["image_url"]["url"].startswith("data:image/") for p in parts)
                answer = body["messages"][-1]["content"]
                score = seen + (len(answer) / 100 if isinstance(answer, str) else 0)
                if self.path.endswith("/chat/completions"):
                    top = [{"token": "A", "logprob": -0.1}, {"token": "B", "logprob": -3.0}]
                    out = {"choices": [{"logprobs": {"content": [{"token": "A", "logprob": -0.1, "top_logprobs": top}]}}]}
                else:
                    out = {"data": [{"index": 0, "label": "x", "probs": [score], "num_classes": 1}]}
                raw = json.dumps(out).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def parts(self) -> list:
        return [p for b in self.bodies for m in b["messages"] if isinstance(m["content"], list) for p in m["content"]]


@pytest.fixture
def server():
    found = ImageServer()
    yield found
    found.httpd.shutdown()
    found.httpd.server_close()


def write_suite(pytester):
    png(pytester.path / "red.png")
    png(pytester.path / "blue.png", color=(0, 0, 255))
    rows = [
        {"id": "text", "subset": "s", "prompt": "p", "chosen": "longer answer", "rejected": "short"},
        {"id": "img", "subset": "s", "prompt": "p", "chosen": "a red square", "rejected": "a cat", "images": ["red.png"]},
        {"id": "two", "subset": "s", "prompt": "p", "chosen": "blue", "rejected": "b", "images": ["blue.png", png_uri()]},
        {"id": "url", "subset": "s", "prompt": "p", "chosen": "c", "rejected": "r", "images": ["http://x/y.png"]},
    ]
    (pytester.path / "items.rmbench.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def run(pytester, *args):
    result = pytester.runpytest("--rm-report=run.json", "-p", "no:cacheprovider", "-rN", *args)
    report = json.loads((pytester.path / "run.json").read_text())
    return result, {i["id"]: i for i in report["items"]}


def test_http_sends_image_url_data_uris_and_scores(pytester, server):
    write_suite(pytester)
    result, items = run(pytester, f"--rm-model={server.url}/v1?model=vl", "--rm-markdown=run.md")
    assert items["text"]["outcome"] == items["img"]["outcome"] == items["two"]["outcome"] == "correct"
    assert items["url"]["outcome"] == "error" and "URLs are never fetched" in items["url"]["error"]
    parts = server.parts()
    urls = [p["image_url"]["url"] for p in parts if p["type"] == "image_url"]
    assert len(urls) == 2 + 2 * 2 and all(u.startswith("data:image/png;base64,") for u in urls)
    assert items["two"]["texts"]["images"][0] == "blue.png" and "characters" in items["two"]["texts"]["images"][1]
    assert "items with images: 2" in result.stdout.str()
    assert "- Items with images: 2" in (pytester.path / "run.md").read_text()
    assert "base64" not in result.stdout.str()


def test_a_bad_image_errors_its_item_only_at_scoring(pytester, server):
    write_suite(pytester)
    (pytester.path / "red.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")  # collected with these bytes: hashes match
    result, items = run(pytester, f"--rm-model={server.url}/v1?model=vl")
    assert items["img"]["outcome"] == "error"
    assert "red.png" in items["img"]["error"] and "cannot be decoded" in items["img"]["error"]
    assert items["two"]["outcome"] == items["text"]["outcome"] == "correct"


def test_nothing_decodes_at_collection(pytester, monkeypatch):
    write_suite(pytester)
    calls = []
    real = images_mod.decode
    monkeypatch.setattr(images_mod, "decode", lambda ref: calls.append(ref) or real(ref))
    result = pytester.runpytest("--collect-only", "-q", "-p", "no:cacheprovider")
    assert "4 tests collected" in result.stdout.str() and calls == []


def test_a_text_model_errors_image_items_and_paths_resolve_from_the_item_file(pytester):
    """builtin:length cannot see images: the image item errors with one line, the text item in the
    same file passes; the image path is relative to the item file's folder, not the working folder."""
    from PIL import Image

    (pytester.path / "sub" / "img").mkdir(parents=True)
    Image.new("RGB", (4, 4), "red").save(pytester.path / "sub" / "img" / "a.png")
    (pytester.path / "sub" / "x.rmbench.yaml").write_text(
        "items:\n"
        "  - {id: 1, subset: s, prompt: p, chosen: longer, rejected: nope, images: [img/a.png]}\n"
        "  - {id: 2, subset: s, prompt: p, chosen: longer, rejected: nope}\n")
    result = pytester.runpytest("sub", "--rm-model=builtin:length", "--rm-no-store", "--rm-report=r.json",
                                "-p", "no:cacheprovider")
    items = {i["id"]: i for i in json.loads((pytester.path / "r.json").read_text())["items"]}
    assert items["1"]["outcome"] == "error"
    assert items["1"]["error"].startswith("the model cannot see images: a builtin model scores text only")
    assert items["2"]["outcome"] == "correct" and result.ret == 1
