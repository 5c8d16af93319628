"""Images in chat content parts (fields.prompt / fields.images, images.place, http) and items
with images in the views: the HTML thumbnail (made on the worker under --rm-html), the
Markdown and terminal marks (issue #13)."""

from __future__ import annotations

import base64
import io
import json
import re
import sys
from pathlib import Path

import pytest

PIL = pytest.importorskip("PIL.Image")

from pytest_rmbench.items import images as images_mod  # noqa: E402
from pytest_rmbench.items.files import validate_item  # noqa: E402
from pytest_rmbench.items.images import PLACEHOLDER, ImageRef, place  # noqa: E402
from pytest_rmbench.models.http import with_images  # noqa: E402
from pytest_rmbench.report.html import render_html  # noqa: E402
from pytest_rmbench.report.markdown import render_markdown  # noqa: E402
from pytest_rmbench.storage.cache import cache_key  # noqa: E402


if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))
from test_images import png, png_uri  # noqa: E402  (the image files test_images makes)


def parts_item(content, kind="pair", field_images=None, system=True):
    messages = ([{"role": "system", "content": "be brief"}] if system else []) + [{"role": "user", "content": content}]
    raw = {"id": "a", "subset": "s", "kind": kind, "prompt": messages, "chosen": "x", "rejected": "yy"}
    if kind == "judged":
        raw = {"id": "a", "subset": "s", "kind": "judged", "question": messages, "response_a": "x",
               "response_b": "yy", "label": "A>B"}
    if kind in ("best_of_n", "ties"):
        raw.update(chosen=["x"], rejected=["yy", "zzz"])
    if field_images is not None:
        raw["images"] = field_images
    return validate_item(raw, 0, 1, "f.rmbench.yaml")


def text(t):
    return {"type": "text", "text": t}


def image(path):
    return {"type": "image", "path": path}


# -- content parts: the prompt, the images, their order -------------------------------------
@pytest.mark.parametrize("kind", ["pair", "judged", "best_of_n"])
def test_image_parts_become_inline_refs_after_the_field_and_a_placeholder_in_the_text(tmp_path, kind):
    red, blue = png(tmp_path / "red.png"), png(tmp_path / "blue.png", (0, 0, 255))
    found = parts_item([text("Compare "), image(red), text(" with "), {"type": "image", "data": png_uri()}],
                       kind, field_images=[blue])
    assert found.prompt == (("system", "be brief"), ("user", f"Compare {PLACEHOLDER} with {PLACEHOLDER}"))
    assert [(r.value, r.inline) for r in found.images] == [(blue, False), (red, True), (png_uri(), True)]
    assert all(r.images == found.images for r in found.requests())
    assert found.report_texts()["images"][:2] == [blue, red]


def test_text_only_parts_are_the_joined_text_for_any_kind(tmp_path):
    found = parts_item([text("one "), text("two")], kind="ties", system=False)
    assert found.prompt == (("user", "one two"),)
    assert found.images == ()


@pytest.mark.parametrize("content, words", [
    ([text("a"), image("nope.png")], "message 1 part 1: image 0 (nope.png): not found"),
    ([image("https://example.com/x.png")], "message 1 part 0: image 0 (https://example.com/x.png) is a URL"),
    ([{"type": "image", "path": "x.png", "data": "y"}], "an image part is {type: image, path: PATH}"),
    ([{"type": "video", "path": "x.mp4"}], "message 1 part 0 must be a mapping with type text or image"),
    ([{"type": "text", "text": 3}], "a text part is exactly {type: text, text: STRING}"),
    ([], "message 1 content is an empty list of parts"),
    ([text(f"see {PLACEHOLDER} here"), {"type": "image", "data": png_uri()}], "holds the text '<image>'"),
])
def test_bad_parts_are_item_errors_naming_message_and_part(content, words):
    problem = parts_item(content)
    assert problem.field == "prompt" and words in problem.message, problem.message


def test_image_parts_need_a_kind_that_takes_images_and_a_user_message():
    problem = parts_item([{"type": "image", "data": png_uri()}], kind="ties")
    assert problem.message == ("message 1 part 0: an image part needs a kind that takes images "
                               "(pair, best_of_n, judged)")
    raw = {"id": "a", "subset": "s", "chosen": "x", "rejected": "y", "prompt": [
        {"role": "system", "content": [text("s")]}, {"role": "user", "content": "u"}]}
    assert validate_item(raw, 0, 1, "f").message == "message 0 content must be a string"


def test_a_literal_placeholder_without_parts_is_plain_text(tmp_path):
    found = parts_item(f"what is {PLACEHOLDER}?", field_images=[png(tmp_path / "a.png")])
    assert found.prompt[-1] == ("user", f"what is {PLACEHOLDER}?") and not found.images[0].inline
    placed, _ = place(found.requests()[0].messages(), found.images)
    assert placed[1]["content"] == [{"type": "image", "image": found.images[0]}, text(f"what is {PLACEHOLDER}?")]


def test_an_edited_or_moved_image_changes_the_content_hash_and_the_keys(tmp_path):
    path = png(tmp_path / "a.png")
    before = parts_item([image(path), text("what?")])
    png(tmp_path / "a.png", color=(0, 255, 0))
    after = parts_item([image(path), text("what?")])
    assert before.node_name() == after.node_name() and before.content_hash() != after.content_hash()
    assert before.requests()[0] != after.requests()[0]
    assert cache_key(before.requests()[0]) != cache_key(after.requests()[0])
    # the same text and bytes, the image given by the field instead of in place: another request
    literal = parts_item(f"{PLACEHOLDER}what?", field_images=[path])
    assert literal.prompt == after.prompt and literal.images[0].sha256 == after.images[0].sha256
    assert literal.content_hash() != after.content_hash()
    assert cache_key(literal.requests()[0]) != cache_key(after.requests()[0])


def test_place_puts_inline_images_where_they_sat_and_field_images_first_in_the_last_user_turn():
    a, b, c = (ImageRef("data", f"data:image/png;base64,{n}", sha256=n) for n in "abc")
    b, c = (ImageRef(r.kind, r.value, r.sha256, inline=True) for r in (b, c))
    messages = [{"role": "user", "content": f"look {PLACEHOLDER}"}, {"role": "assistant", "content": "ok"},
                {"role": "user", "content": f"and {PLACEHOLDER}{PLACEHOLDER} now"}]
    placed, order = place(messages, (a, b, c, c))
    assert placed == [
        {"role": "user", "content": [text("look "), {"type": "image", "image": b}]},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [{"type": "image", "image": a}, text("and "), {"type": "image", "image": c},
                                     {"type": "image", "image": c}, text(" now")]},
    ]
    assert order == [b, a, c, c]
    with pytest.raises(images_mod.ImageError, match="3 inline image"):
        place(messages[:1], (b, c, c))
    bare, order = images_mod.template_messages(messages, (a, b, c, c))
    assert bare[0]["content"] == [text("look "), {"type": "image"}] and order == [b, a, c, c]
    assert bare[2]["content"][:2] == [{"type": "image"}, text("and ")] and bare[1] == messages[1]


def test_http_sends_each_image_where_its_part_sat(tmp_path):
    found = parts_item([text("first "), image(png(tmp_path / "red.png")), text(" then "),
                        {"type": "image", "data": png_uri()}], field_images=[png(tmp_path / "g.png", (0, 255, 0))])
    sent = with_images(found.requests()[0].messages(), found.images)
    user = sent[1]["content"]
    assert [p["type"] for p in user] == ["image_url", "text", "image_url", "text", "image_url"]
    assert [p["text"] for p in user if p["type"] == "text"] == ["first ", " then "]
    colours = [PIL.open(io.BytesIO(base64.b64decode(p["image_url"]["url"].split(",", 1)[1]))).getpixel((0, 0))
               for p in user if p["type"] == "image_url"]
    assert colours == [(0, 255, 0), (255, 0, 0), (0, 0, 255)]
    assert sent[0] == {"role": "system", "content": "be brief"} and sent[2] == {"role": "assistant", "content": "x"}


# -- thumbnails ----------------------------------------------------------------------------------
def thumb_size(uri):
    data = base64.b64decode(uri.split(",", 1)[1])
    found = PIL.open(io.BytesIO(data))
    return found.format, found.size, len(data)


def test_a_thumbnail_is_a_small_jpeg_under_the_cap(tmp_path):
    import os

    PIL.frombytes("RGB", (640, 480), os.urandom(640 * 480 * 3)).save(tmp_path / "noise.png")
    ref = images_mod.parse_ref(str(tmp_path / "noise.png"), 0)
    fmt, size, nbytes = thumb_size(images_mod.thumbnail(ref))
    assert fmt == "JPEG" and size == (96, 72) and nbytes <= images_mod.THUMB_BYTES
    fmt, size, nbytes = thumb_size(images_mod.thumbnail(ref, side=40, cap=100_000))
    assert size == (40, 30)
    with pytest.raises(images_mod.ImageError, match="thumbnail is over 10 bytes"):
        images_mod.thumbnail(ref, cap=10)
    PIL.new("RGBA", (10, 20), (255, 0, 0, 0)).save(tmp_path / "clear.png")  # transparent: laid on white
    uri = images_mod.thumbnail(images_mod.parse_ref(str(tmp_path / "clear.png"), 0))
    pixel = PIL.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).getpixel((5, 10))
    assert all(v > 245 for v in pixel)


def test_no_pillow_or_a_corrupt_image_gives_a_reason_not_an_error(tmp_path, monkeypatch):
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    bad = parts_item([image(str(tmp_path / "bad.png"))])
    why = images_mod.report_thumbnail(bad)["thumbnail_error"]
    assert "cannot be decoded" in why and "0x" not in why  # no memory address: a steady message
    good = parts_item([image(png(tmp_path / "a.png"))])

    def missing():
        raise images_mod.ImageError("items with images needs PIL, which is not installed")

    monkeypatch.setattr(images_mod, "pillow", missing)
    assert images_mod.report_thumbnail(good) == {"thumbnail_error": "items with images needs PIL, which is not installed"}
    monkeypatch.setattr(images_mod, "pillow", lambda: 1 / 0)
    assert "ZeroDivisionError" in images_mod.report_thumbnail(good)["thumbnail_error"]
    assert images_mod.report_thumbnail(parts_item("plain")) == {}


def report_with(items):
    return {"run": {"model": "m"}, "items": items, "subsets": {}, "sections": {}, "overall": {}, "gate": {"checks": []}}


def record(n, outcome="incorrect", texts=None, margin=-0.5):
    return {"nodeid": f"f.rmbench.yaml::s/{n}", "id": n, "subset": "s", "outcome": outcome, "margin": margin,
            "texts": texts}


def test_html_marks_image_items_with_a_thumbnail_or_a_label_and_text_reports_have_no_column(tmp_path):
    uri = images_mod.thumbnail(images_mod.parse_ref(png(tmp_path / "a.png"), 0))
    items = [record("thumb", texts={"prompt": "p", "images": ["a.png", "b.png", "c.png"], "thumbnail": uri}),
             record("label", texts={"prompt": "p", "images": ["bad.png"], "thumbnail_error": "image bad.png: cannot be decoded"}),
             record("plain", texts={"prompt": "p"}),
             record("nothumb", texts={"prompt": "p", "images": ["a.png", "b.png"]}),
             record("fake", texts={"prompt": "p", "images": ["x.png"], "thumbnail": "https://x/y.png"})]
    page = render_html(report_with(items))
    rows = dict(re.findall(r'<td class="id">f\.rmbench\.yaml::s/(\w+)</td>(<td[^>]*class="img">.*?</td>)', page))
    assert rows["thumb"] == (f'<td data-v="3" class="img"><img class="thumb" src="{uri}" alt="image 1 of 3" '
                             'title="image 1 of 3"> <span class="muted">+2 more</span></td>')
    assert rows["label"] == ('<td data-v="1" class="img"><span class="img-label" title="image bad.png: cannot be '
                             'decoded">1 image, no preview</span></td>')
    assert rows["plain"] == '<td data-v="0" class="img">-</td>'
    assert rows["nothumb"].endswith(">2 images</span></td>") and "<img" not in rows["fake"]
    assert re.findall(r'src="([^"]*)"', page) == [uri]  # data: only, never fetched
    assert "no thumbnail: image bad.png: cannot be decoded" in page and "<li>c.png</li>" in page
    text_only = render_html(report_with([items[2]]))
    assert 'class="img"' not in text_only and 'data-key="images"' not in text_only


def test_markdown_and_terminal_lists_mark_image_items():
    items = [record("img", texts={"images": ["a.png"]}), record("two", texts={"images": ["a", "b"]}, margin=-0.2),
             record("plain", texts={"prompt": "p"}, margin=-0.1)]
    page = render_markdown(report_with(items))
    assert "- f.rmbench.yaml::s/img: margin -0.5 [1 image]" in page
    assert "- f.rmbench.yaml::s/two: margin -0.2 [2 images]" in page
    assert "- f.rmbench.yaml::s/plain: margin -0.1\n" in page
    assert "- Items with images: 2" in page


# -- end to end through pytest ----------------------------------------------------------------
CONFTEST = """
import json
import pytest
from pytest_rmbench.items.images import decode, place
from pytest_rmbench.models.base import Prepared

def shape(message):
    content = message["content"]
    if isinstance(content, str):
        return [message["role"], content]
    return [message["role"], [p["text"] if p["type"] == "text" else "IMG:" + p["image"].value.rsplit("/", 1)[-1]
                              for p in content]]

class Seeing:
    kind = "seeing"; dtype = "n/a"; device = "cpu"; name = "seeing"; images = True
    def prepare(self, requests):
        out = []
        for r in requests:
            placed, order = place(r.messages(), r.images)
            for ref in order:
                decode(ref)  # a bad image errors its own item
            out.append(Prepared(r, 1, payload=placed))
        return out
    def score_batch(self, batch):
        with open("requests.log", "a") as fh:
            for p in batch:
                fh.write(json.dumps([shape(m) for m in p.payload]) + "\\n")
        return [float(len(p.request.answer)) for p in batch]

@pytest.hookimpl
def pytest_rmbench_make_model(config, spec):
    if spec.model == "seeing":
        return Seeing()

@pytest.hookimpl
def pytest_rmbench_model_fingerprint(config, spec):
    return "seeing-1" if spec.model == "seeing" else None
"""

ITEMS = """\
items:
  - id: parts
    subset: vision
    prompt:
      - {role: user, content: [{type: text, text: "Is "}, {type: image, path: img/red.png},
                               {type: text, text: " like "}, {type: image, path: img/blue.png}, {type: text, text: "?"}]}
    chosen: yes it is
    rejected: "no"
    images: [img/green.png]
  - {id: field, subset: vision, prompt: "what colour?", chosen: red, rejected: blue and long, images: [img/red.png]}
  - {id: text, subset: vision, prompt: hello, chosen: a longer hello, rejected: hi}
"""


@pytest.fixture
def suite(pytester):
    (pytester.path / "img").mkdir()
    png(pytester.path / "img" / "red.png")
    png(pytester.path / "img" / "blue.png", (0, 0, 255))
    png(pytester.path / "img" / "green.png", (0, 255, 0), size=(200, 100))
    pytester.makeconftest(CONFTEST)
    pytester.makefile(".rmbench.yaml", items=ITEMS)
    return pytester


def run(pytester, *args, subprocess=False):
    call = pytester.runpytest_subprocess if subprocess else pytester.runpytest
    result = call("--rm-model=seeing", "--rm-report=run.json", "--rm-no-store", "-p", "no:cacheprovider", *args)
    report = json.loads((pytester.path / "run.json").read_text())
    return result, {i["id"]: i for i in report["items"]}


def logged(pytester):
    path = pytester.path / "requests.log"
    found = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    path.unlink(missing_ok=True)
    return found


def test_adapters_get_the_parts_in_place_and_an_edited_image_is_rescored_not_cached(suite):
    result, items = run(suite, "--rm-markdown=run.md")
    seen = logged(suite)
    question = ["user", ["IMG:green.png", "Is ", "IMG:red.png", " like ", "IMG:blue.png", "?"]]
    assert [question, ["assistant", "yes it is"]] in seen and [question, ["assistant", "no"]] in seen
    assert [["user", ["IMG:red.png", "what colour?"]], ["assistant", "red"]] in seen
    assert [["user", "hello"], ["assistant", "hi"]] in seen and len(seen) == 6
    assert items["parts"]["texts"]["prompt"] == [{"role": "user", "content": "Is <image> like <image>?"}]
    assert items["parts"]["texts"]["images"] == ["img/green.png", "img/red.png", "img/blue.png"]
    assert "thumbnail" not in items["parts"]["texts"]  # only with --rm-html
    assert items["field"]["outcome"] == "incorrect" and items["parts"]["outcome"] == "correct"
    out = result.stdout.str()
    assert "items with images: 2" in out and "vision/field  margin -10 [1 image]" in out
    assert "vision/field: margin -10 [1 image]" in (suite.path / "run.md").read_text()
    hashes = {k: v["content_hash"] for k, v in items.items()}

    _, again = run(suite)
    assert logged(suite) == [] and {k: v["outcome"] for k, v in again.items()} == {k: v["outcome"] for k, v in items.items()}
    png(suite.path / "img" / "blue.png", (9, 9, 9))  # only the parts item shows blue.png
    _, edited = run(suite)
    assert [m[0] for m in logged(suite)] == [question, question]  # its two answers, nothing else
    assert edited["parts"]["nodeid"] == items["parts"]["nodeid"] and edited["parts"]["content_hash"] != hashes["parts"]
    assert {k: v["content_hash"] for k, v in edited.items() if k != "parts"} == {k: hashes[k] for k in ("field", "text")}


def check_html(page, items):
    uris = re.findall(r'<img class="thumb" src="(data:image/jpeg;base64,[^"]+)"', page)
    assert len(uris) == 2 and re.findall(r'src="([^"]*)"', page) == uris
    shapes = [thumb_size(uri) for uri in uris]  # the parts item's first image: green, 200 x 100
    assert ("JPEG", (96, 48)) in [(fmt, size) for fmt, size, _ in shapes]
    assert all(nbytes <= images_mod.THUMB_BYTES for _, _, nbytes in shapes)
    assert '<span class="muted">+2 more</span>' in page
    assert all("thumbnail" not in i["texts"] for i in items.values())  # the page's alone: not in the JSON
    assert "thumbnail" not in items["text"]["texts"] and items["text"]["texts"] == {
        "prompt": "hello", "chosen": "a longer hello", "rejected": "hi"}


def test_html_thumbnails_and_a_corrupt_image_gives_a_label(suite):
    result, items = run(suite, "--rm-html=run.html")
    check_html((suite.path / "run.html").read_text(), items)
    (suite.path / "img" / "red.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    result, items = run(suite, "--rm-html=run.html")
    page = (suite.path / "run.html").read_text()
    assert items["field"]["outcome"] == "error" and "cannot be decoded" in items["field"]["error"]
    assert "cannot be decoded" in items["field"]["texts"]["thumbnail_error"]
    assert ">1 image, no preview</span>" in page and items["parts"]["outcome"] == "error"
    assert items["text"]["outcome"] == "correct" and "report written" not in result.stderr.str()


def test_html_thumbnails_under_xdist_are_made_on_the_workers(suite):
    pytest.importorskip("xdist")
    result, items = run(suite, "--rm-html=run.html", "-n", "2", subprocess=True)
    assert result.ret == 0 and items["parts"]["outcome"] == "correct"
    check_html((suite.path / "run.html").read_text(), items)
