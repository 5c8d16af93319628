"""Any input gives items or a clear error: the parsers never raise anything else."""

import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_rmbench.items import ItemProblem, PairItem
from pytest_rmbench.items.files import FileParseError, parse_file

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def parses_or_explains(path, data):
    try:
        parsed = parse_file(path, data)
    except FileParseError as exc:
        assert str(exc).startswith(path)
        return None
    for entry in parsed.entries:
        assert isinstance(entry, (PairItem, ItemProblem))
        if isinstance(entry, ItemProblem):
            assert entry.describe().startswith(path) and entry.field
    return parsed


@FUZZ
@given(st.binary(max_size=400))
@pytest.mark.parametrize("path", ["f.rmbench.yaml", "f.rmbench.jsonl"])
def test_random_bytes(path, data):
    parses_or_explains(path, data)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
item_like = st.fixed_dictionaries(
    {},
    optional={
        "id": json_values, "subset": json_values, "prompt": json_values, "chosen": json_values,
        "rejected": json_values, "strict": json_values, "tags": json_values, "extra": json_values,
    },
)


@FUZZ
@given(st.lists(item_like | json_values, max_size=6))
def test_random_items_in_jsonl(rows):
    data = "\n".join(json.dumps(r) for r in rows).encode()
    parses_or_explains("f.rmbench.jsonl", data)


@FUZZ
@given(st.dictionaries(st.sampled_from(["name", "strict", "sections", "gate", "items", "x"]), json_values, max_size=5),
       st.lists(item_like, max_size=4))
def test_random_yaml_headers_and_items(header, items):
    header = dict(header, items=items) if "items" not in header else header
    # JSON is YAML: the same document through the YAML parser
    parses_or_explains("f.rmbench.yaml", json.dumps(header, allow_nan=True).encode())


def test_alias_bomb_is_refused_quickly():
    doc = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    prev = "a"
    for name in "bcdefghi":
        doc += f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]\n"
        prev = name
    doc += f"items: [{{id: x, subset: s, prompt: *{prev}, chosen: c, rejected: r}}]\n"
    assert len(doc) < 500
    start = time.perf_counter()
    with pytest.raises(FileParseError) as info:
        parse_file("bomb.rmbench.yaml", doc.encode())
    assert time.perf_counter() - start < 1.0
    assert "alias bomb" in str(info.value) and info.value.line is not None


def test_deep_nesting_is_a_clear_error():
    for path, doc in (("f.rmbench.yaml", "items: " + "[" * 100_000), ("f.rmbench.jsonl", "[" * 100_000)):
        with pytest.raises(FileParseError):
            parse_file(path, doc.encode())
