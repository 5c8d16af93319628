"""The item parsers on their own: every bad input names file, line and field."""

import pytest

from pytest_rmbench.items import ItemProblem, PairItem
from pytest_rmbench.items.files import FileParseError, parse_file, parse_section_assignment


def yaml_file(items_yaml: str, header: str = "") -> bytes:
    return (header + "items:\n" + items_yaml).encode()


GOOD = """\
  - id: a
    subset: chat
    prompt: hi
    chosen: hello
    rejected: go away
"""


def test_good_yaml_item():
    parsed = parse_file("f.rmbench.yaml", yaml_file(GOOD, "name: x\nsections:\n  Chat: [chat]\ngate: {chat: 0.5}\n"))
    (item,) = parsed.entries
    assert isinstance(item, PairItem)
    assert (item.id, item.subset, item.prompt, item.chosen, item.rejected) == ("a", "chat", "hi", "hello", "go away")
    assert item.source == "f.rmbench.yaml:6"
    assert parsed.gate == {"chat": 0.5}
    assert parsed.sections["Chat"].weights == {"chat": None}


@pytest.mark.parametrize(
    "item, field, words",
    [
        ("  - {subset: chat, prompt: p, chosen: c, rejected: r}\n", "id", "missing"),
        ("  - {id: [1], subset: chat, prompt: p, chosen: c, rejected: r}\n", "id", "string or an integer"),
        ("  - {id: 'a::b', subset: chat, prompt: p, chosen: c, rejected: r}\n", "id", "'::'"),
        ("  - {id: a, prompt: p, chosen: c, rejected: r}\n", "subset", "missing"),
        ("  - {id: a, subset: '', prompt: p, chosen: c, rejected: r}\n", "subset", "non-empty"),
        ("  - {id: a, subset: \"s\\rt\", prompt: p, chosen: c, rejected: r}\n", "subset", "without a newline"),
        ("  - {id: a, subset: 'a::b', prompt: p, chosen: c, rejected: r}\n", "subset", "'::'"),
        ("  - {id: '  ', subset: s, prompt: p, chosen: c, rejected: r}\n", "id", "non-empty"),
        ("  - {id: a, subset: s, chosen: c, rejected: r}\n", "prompt", "missing"),
        ("  - {id: a, subset: s, prompt: 3, chosen: c, rejected: r}\n", "prompt", "string or a list"),
        ("  - {id: a, subset: s, prompt: [{role: user, content: q}, {role: assistant, content: x}], chosen: c, rejected: r}\n", "prompt", "end with a user"),
        ("  - {id: a, subset: s, prompt: [{role: bot, content: q}], chosen: c, rejected: r}\n", "prompt", "roles are"),
        ("  - {id: a, subset: s, prompt: p, chosen: '  ', rejected: r}\n", "chosen", "empty"),
        ("  - {id: a, subset: s, prompt: p, chosen: c, rejected: 5}\n", "rejected", "must be a string"),
        ("  - {id: a, subset: s, prompt: p, chosen: c, rejected: r, strict: 'yes'}\n", "strict", "true or false"),
        ("  - {id: a, subset: s, prompt: p, chosen: c, rejected: r, tags: x}\n", "tags", "list"),
    ],
)
def test_bad_item_names_field_and_line(item, field, words):
    parsed = parse_file("f.rmbench.yaml", yaml_file(GOOD + item))
    good, bad = parsed.entries
    assert isinstance(good, PairItem)
    assert isinstance(bad, ItemProblem)
    assert bad.field == field
    message = bad.describe()
    assert message.startswith("f.rmbench.yaml:7: item #1")
    assert f"field '{field}'" in message and words in message


def test_one_field_validator_and_one_node_id_rule_for_files_and_suites():
    from pytest_rmbench.items import fields
    from pytest_rmbench.suites.base import NodeNames, RowError, clean_name, row_id, text, texts

    assert RowError is fields.FieldError
    for bad in ("", "  ", "a::b", "a\nb", "a\rb"):
        assert fields.name_error(bad) == fields.NAME_RULE
        with pytest.raises(RowError, match="must be non-empty, without '::'"):
            row_id({"id": bad or " "})
        with pytest.raises(RowError):
            clean_name({"subset": bad}, "subset")
        with pytest.raises(RowError):
            NodeNames().claim(bad, "row 1")
    assert fields.name_error("chat/1") is None and row_id({"id": 7}) == "7" and row_id({}, fallback=3) == "3"
    assert text({"a": ""}, "a", empty=True) == "" and texts({"a": ("x", "y")}, "a", 2) == ("x", "y")
    with pytest.raises(RowError, match="exactly 3 answers, got 2") as err:
        texts({"chosen": ["x", "y"]}, "chosen", 3)
    assert (err.value.field, str(err.value)) == ("chosen", "field 'chosen': must hold exactly 3 answers, got 2")


def test_int_and_string_ids_are_the_same_id():
    items = GOOD + "  - {id: 1, subset: s, prompt: p, chosen: c, rejected: r}\n  - {id: '1', subset: t, prompt: p, chosen: c, rejected: r}\n"
    entries = parse_file("f.rmbench.yaml", yaml_file(items)).entries
    assert entries[1].id == "1"
    assert isinstance(entries[2], ItemProblem) and "duplicate id '1'" in entries[2].message


def test_unknown_fields_are_listed():
    items = "  - {id: a, subset: s, prompt: p, chosen: c, rejected: r, colour: red}\n"
    parsed = parse_file("f.rmbench.yaml", yaml_file(items, "author: me\n"))
    assert set(parsed.unknown_fields) == {"author", "colour"}


@pytest.mark.parametrize(
    "data, line, words",
    [
        (b"items:\n  - {id: a\n", 3, "invalid YAML"),
        (b"name: x\nitems: [\xff]\n", 2, "not valid UTF-8"),
        (b"- a\n- b\n", 1, "expected a mapping"),
        (b"name: x\ngate: {chat: 2}\nitems: []\n", 2, "header field 'gate'"),
        (b"name: x\nsections: {Chat: 3}\nitems: []\n", 2, "header field 'sections'"),
        (b"name: x\n", 1, "no 'items' list"),
    ],
)
def test_unreadable_yaml_is_a_file_error_with_line(data, line, words):
    with pytest.raises(FileParseError) as info:
        parse_file("f.rmbench.yaml", data)
    assert info.value.line == line
    assert words in str(info.value)
    assert str(info.value).startswith(f"f.rmbench.yaml:{line}:")


def test_jsonl_lines_and_errors():
    data = b'{"id": 1, "subset": "s", "prompt": "p", "chosen": "c", "rejected": "r"}\n\n[1, 2]\n'
    entries = parse_file("f.rmbench.jsonl", data).entries
    assert entries[0].source == "f.rmbench.jsonl:1"
    assert isinstance(entries[1], ItemProblem) and entries[1].line == 3
    with pytest.raises(FileParseError) as info:
        parse_file("f.rmbench.jsonl", b'{"id": 1}\n{"id": \n')
    assert info.value.line == 2


def test_chat_prompt_with_consecutive_user_turns_is_allowed():
    items = "  - id: a\n    subset: s\n    prompt: [{role: system, content: be brief}, {role: user, content: one}, {role: user, content: two}]\n    chosen: c\n    rejected: r\n"
    (item,) = parse_file("f.rmbench.yaml", yaml_file(items)).entries
    assert item.prompt == (("system", "be brief"), ("user", "one"), ("user", "two"))


def test_section_assignments():
    assert parse_section_assignment("Chat", "chat, chat-hard").weights == {"chat": None, "chat-hard": None}
    assert parse_section_assignment("Safety", "refusals:1,xstest:2").weights == {"refusals": 1.0, "xstest": 2.0}
    with pytest.raises(ValueError):
        parse_section_assignment("Safety", "refusals:1,xstest")
