"""Benchmark files -> items, with errors that name the file, the line and the field.

Pure parsing and validation: no pytest here, so the parsers can be fuzzed on their own.
A file that cannot be read at all raises FileParseError; a readable file yields one
entry per item, either an Item or an ItemProblem, so its good items still run.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Iterable

import yaml

from . import ITEM_KINDS, LABELS, BestOfNItem, Item, Prompt, freeze_prompt

COMMON_FIELDS = ("id", "subset", "kind", "strict", "tags")
HEADER_FIELDS = ("name", "description", "strict", "sections", "gate", "items")
ROLES = ("system", "user", "assistant")


class FileParseError(Exception):
    def __init__(self, path: str, line: int | None, message: str):
        self.path, self.line, self.message = path, line, message
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {message}")


@dataclass
class ItemProblem:
    """An item that failed validation; collected as an error test."""

    index: int
    line: int | None
    field: str
    message: str
    id: str | None = None
    subset: str | None = None
    path: str = ""

    def describe(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        who = f"item #{self.index}" + (f" (id {self.id!r})" if self.id is not None else "")
        return f"{where}: {who}: field '{self.field}': {self.message}"


@dataclass
class Section:
    """Subsets pooled into one score; weight None means 'the subset's item count'."""

    name: str
    weights: dict[str, float | None]


@dataclass
class ParsedFile:
    path: str
    name: str | None = None
    description: str | None = None
    strict: bool = False
    sections: dict[str, Section] = field(default_factory=dict)
    gate: dict[str, float] = field(default_factory=dict)
    entries: list[Item | ItemProblem] = field(default_factory=list)
    unknown_fields: list[str] = field(default_factory=list)


MAX_YAML_NODES = 2_000_000  # after alias expansion


class BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses documents expanding to too many nodes through aliases.

    A few hundred bytes of nested aliases can stand for billions of nodes ("billion
    laughs"), so the bound is on expanded nodes, counted while composing, not on bytes.
    """

    def __init__(self, stream):
        super().__init__(stream)
        self._sizes: dict[int, int] = {}

    def compose_node(self, parent, index):
        is_alias = self.check_event(yaml.AliasEvent)
        node = super().compose_node(parent, index)
        if not is_alias:
            if isinstance(node, yaml.SequenceNode):
                size = 1 + sum(self._sizes.get(id(child), 1) for child in node.value)
            elif isinstance(node, yaml.MappingNode):
                size = 1 + sum(self._sizes.get(id(k), 1) + self._sizes.get(id(v), 1) for k, v in node.value)
            else:
                size = 1
            if size > MAX_YAML_NODES:
                raise yaml.composer.ComposerError(
                    None, None,
                    f"the document expands to more than {MAX_YAML_NODES:,} nodes through aliases "
                    "(an alias bomb?); refused",
                    node.start_mark,
                )
            self._sizes[id(node)] = size
        return node


def parse_file(path: str, data: bytes) -> ParsedFile:
    from ..lfs import LfsPointerFile, is_pointer_data  # here: lfs.py builds on this module's classes

    if is_pointer_data(data):  # a clone made without git-lfs: name it so, not "invalid JSON"
        raise LfsPointerFile(path)
    text = _decode(path, data)
    del data  # a big file should not sit in memory twice
    if path.endswith(".jsonl"):
        return _parse_jsonl(path, text)
    return _parse_yaml(path, text)


def _decode(path: str, data: bytes) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise FileParseError(path, line, f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})") from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise FileParseError(path, line, "contains a NUL byte")
    return text


def _parse_jsonl(path: str, text: str) -> ParsedFile:
    parsed = ParsedFile(path)

    def rows():
        # one line at a time: a 100,000-line file is never held as parsed rows all at once
        start, lineno = 0, 0
        while start < len(text):
            end = text.find("\n", start)
            end = len(text) if end < 0 else end
            line, start, lineno = text[start:end], end + 1, lineno + 1
            if not line.strip():
                continue
            try:
                yield json.loads(line), lineno
            except (json.JSONDecodeError, RecursionError) as exc:
                raise FileParseError(path, lineno, f"invalid JSON: {exc}") from None

    _add_items(parsed, rows())
    return parsed


def _parse_yaml(path: str, text: str) -> ParsedFile:
    loader = None
    try:
        loader = BoundedLoader(text)
        root = loader.get_single_node()
        doc = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        if mark is not None:
            line = mark.line + 1
        elif isinstance(getattr(exc, "position", None), int):  # ReaderError: a character YAML forbids
            line = text[: exc.position].count("\n") + 1
        else:
            line = None
        problem = getattr(exc, "problem", None) or getattr(exc, "reason", None) or str(exc)
        raise FileParseError(path, line, f"invalid YAML: {problem}") from None
    except RecursionError:
        raise FileParseError(path, None, "invalid YAML: nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()
    if not isinstance(doc, dict):
        raise FileParseError(path, 1, "expected a mapping with an 'items' list (and optional name, description, strict, sections, gate)")
    parsed = ParsedFile(path)
    parsed.unknown_fields = [str(k) for k in doc if k not in HEADER_FIELDS]
    key_lines = {n.value: n.start_mark.line + 1 for n, _ in root.value if isinstance(n, yaml.ScalarNode)}

    def header_error(key: str, message: str) -> FileParseError:
        return FileParseError(path, key_lines.get(key), f"header field '{key}': {message}")

    for key in ("name", "description"):
        value = doc.get(key)
        if value is not None and not isinstance(value, str):
            raise header_error(key, "must be a string")
    parsed.name, parsed.description = doc.get("name"), doc.get("description")
    strict = doc.get("strict", False)
    if not isinstance(strict, bool):
        raise header_error("strict", "must be true or false")
    parsed.strict = strict
    try:
        parsed.sections = parse_sections(doc.get("sections") or {})
    except ValueError as exc:
        raise header_error("sections", str(exc)) from None
    try:
        parsed.gate = parse_thresholds(doc.get("gate") or {})
    except ValueError as exc:
        raise header_error("gate", str(exc)) from None

    items = doc.get("items")
    if not isinstance(items, list):
        raise header_error("items", "must be a list of items") if "items" in doc else FileParseError(path, 1, "no 'items' list")
    items_node = next(v for k, v in root.value if isinstance(k, yaml.ScalarNode) and k.value == "items")
    lines = [child.start_mark.line + 1 for child in items_node.value]
    _add_items(parsed, list(zip(items, lines)))
    return parsed


def _add_items(parsed: ParsedFile, raw_items: Iterable[tuple[Any, int]]) -> None:
    seen: dict[str, int] = {}
    unknown: list[str] = list(parsed.unknown_fields)
    for index, (raw, line) in enumerate(raw_items):
        entry = validate_item(raw, index, line, parsed.path, file_strict=parsed.strict)
        if isinstance(entry, Item):
            if entry.id in seen:
                entry = ItemProblem(index, line, "id", f"duplicate id {entry.id!r} (first used by item #{seen[entry.id]})", entry.id, entry.subset, parsed.path)
            else:
                seen[entry.id] = index
        if isinstance(raw, dict):
            known = COMMON_FIELDS + KIND_FIELD_NAMES.get(raw.get("kind", "pair"), ())
            unknown.extend(str(k) for k in raw if k not in known and str(k) not in unknown)
        parsed.entries.append(entry)
    parsed.unknown_fields = unknown


def validate_item(raw: Any, index: int, line: int | None, path: str, file_strict: bool = False) -> Item | ItemProblem:
    def problem(fieldname: str, message: str, item_id=None, subset=None) -> ItemProblem:
        return ItemProblem(index, line, fieldname, message, item_id, subset, path)

    if not isinstance(raw, dict):
        return problem("(item)", f"expected a mapping of fields, got {type(raw).__name__}")
    item_id = raw.get("id")
    if item_id is None:
        return problem("id", "missing")
    if isinstance(item_id, bool) or not isinstance(item_id, (str, int)):
        return problem("id", f"must be a string or an integer, got {type(item_id).__name__}")
    item_id = str(item_id)
    if not item_id or "::" in item_id or "\n" in item_id or "\r" in item_id:
        return problem("id", "must be non-empty, without '::' and without a newline", item_id)
    subset = raw.get("subset")
    if not isinstance(subset, str) or not subset.strip() or "::" in subset or "\n" in subset:
        return problem("subset", "missing" if subset is None else "must be a non-empty string without '::' or a newline", item_id)
    kind = raw.get("kind", "pair")
    if kind not in ITEM_KINDS:
        return problem("kind", f"unknown kind {kind!r}; kinds are {', '.join(ITEM_KINDS)}", item_id, subset)
    strict = raw.get("strict", False)
    if not isinstance(strict, bool):
        return problem("strict", "must be true or false", item_id, subset)
    tags = raw.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
        return problem("tags", "must be a list of non-empty strings", item_id, subset)
    try:
        fields = KIND_FIELDS[kind](raw)
    except FieldError as exc:
        return problem(exc.field, exc.message, item_id, subset)
    return ITEM_KINDS[kind](
        id=item_id,
        subset=subset,
        strict=strict or file_strict,
        tags=tuple(tags),
        source=f"{path}:{line}" if line else f"{path}#{index}",
        order=index,
        **fields,
    )


class FieldError(Exception):
    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


def _prompt(raw: dict, name: str = "prompt") -> Prompt:
    if name not in raw:
        raise FieldError(name, "missing")
    error = _prompt_error(raw[name])
    if error:
        raise FieldError(name, error)
    return freeze_prompt(raw[name])


def _answer(raw: dict, name: str) -> str:
    value = raw.get(name)
    if value is None:
        raise FieldError(name, "missing")
    if not isinstance(value, str):
        raise FieldError(name, f"must be a string, got {type(value).__name__}")
    if not value.strip():
        raise FieldError(name, "is empty")
    return value


def _answers(raw: dict, name: str) -> tuple:
    value = raw.get(name)
    if value is None:
        raise FieldError(name, "missing")
    if not isinstance(value, list) or not value:
        raise FieldError(name, f"must be a non-empty list of answers, got {type(value).__name__}")
    for i, answer in enumerate(value):
        if not isinstance(answer, str) or not answer.strip():
            raise FieldError(name, f"answer {i} must be a non-empty string")
    return tuple(value)


def _pair_fields(raw: dict) -> dict:
    return {"prompt": _prompt(raw), "chosen": _answer(raw, "chosen"), "rejected": _answer(raw, "rejected")}


def _best_of_n_fields(raw: dict) -> dict:
    rule = raw.get("rule", "fractional")
    if rule not in BestOfNItem.RULES:
        raise FieldError("rule", f"must be one of {', '.join(BestOfNItem.RULES)}, got {rule!r}")
    return {"prompt": _prompt(raw), "chosen": _answers(raw, "chosen"), "rejected": _answers(raw, "rejected"), "rule": rule}


def _lists_fields(raw: dict) -> dict:
    return {"prompt": _prompt(raw), "chosen": _answers(raw, "chosen"), "rejected": _answers(raw, "rejected")}


def _style_matrix_fields(raw: dict) -> dict:
    fields = _lists_fields(raw)
    if len(fields["chosen"]) != len(fields["rejected"]):
        raise FieldError("rejected", f"needs one answer per style: {len(fields['chosen'])} chosen but {len(fields['rejected'])} rejected")
    return fields


def _judged_fields(raw: dict) -> dict:
    label = raw.get("label")
    if label not in LABELS:
        raise FieldError("label", f"must be \"A>B\" or \"B>A\", got {label!r}")
    return {"question": _prompt(raw, "question"), "response_a": _answer(raw, "response_a"),
            "response_b": _answer(raw, "response_b"), "label": label}


def _steps_fields(raw: dict) -> dict:
    problem = _answer(raw, "problem")
    steps = _answers(raw, "steps")
    label = raw.get("label")
    if isinstance(label, bool) or not isinstance(label, int) or not -1 <= label < len(steps):
        raise FieldError("label", f"must be the index of the earliest wrong step (0..{len(steps) - 1}) or -1, got {label!r}")
    return {"problem": problem, "steps": steps, "label": label}


def _consistency_fields(raw: dict) -> dict:
    fields = {"prompt": _prompt(raw), "contrast_prompt": _prompt(raw, "contrast_prompt"), "answer": _answer(raw, "answer")}
    if fields["prompt"] == fields["contrast_prompt"]:
        raise FieldError("contrast_prompt", "is the same as prompt: it must be a different (near-duplicate) instruction")
    return fields


KIND_FIELDS = {
    "pair": _pair_fields,
    "best_of_n": _best_of_n_fields,
    "style_matrix": _style_matrix_fields,
    "ties": _lists_fields,
    "judged": _judged_fields,
    "steps": _steps_fields,
    "consistency": _consistency_fields,
}
# the fields each kind reads (unknown ones draw a warning)
KIND_FIELD_NAMES = {
    "pair": ("prompt", "chosen", "rejected"),
    "best_of_n": ("prompt", "chosen", "rejected", "rule"),
    "style_matrix": ("prompt", "chosen", "rejected"),
    "ties": ("prompt", "chosen", "rejected"),
    "judged": ("question", "response_a", "response_b", "label"),
    "steps": ("problem", "steps", "label"),
    "consistency": ("prompt", "contrast_prompt", "answer"),
}


def _prompt_error(prompt: Any) -> str | None:
    if isinstance(prompt, str):
        return None if prompt.strip() else "is empty"
    if not isinstance(prompt, list):
        return f"must be a string or a list of chat messages, got {type(prompt).__name__}"
    if not prompt:
        return "is an empty list of messages"
    for i, message in enumerate(prompt):
        if not isinstance(message, dict) or set(message) != {"role", "content"}:
            return f"message {i} must be a mapping with exactly 'role' and 'content'"
        if message["role"] not in ROLES:
            return f"message {i} has role {message['role']!r}; roles are {', '.join(ROLES)}"
        if not isinstance(message["content"], str):
            return f"message {i} content must be a string"
    if prompt[-1]["role"] != "user":
        return "the list of messages must end with a user message"
    return None


def parse_sections(raw: Any) -> dict[str, Section]:
    """`{Name: [subset, ...]}` (count weights) or `{Name: {subset: weight}}`."""
    if not isinstance(raw, dict):
        raise ValueError("must be a mapping of section name to a list of subsets or a mapping of subset weights")
    sections: dict[str, Section] = {}
    for name, members in raw.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"section name {name!r} must be a non-empty string")
        if isinstance(members, list) and members and all(isinstance(m, str) and m for m in members):
            weights: dict[str, float | None] = {m: None for m in members}
        elif isinstance(members, dict) and members:
            weights = {}
            for subset, weight in members.items():
                if not isinstance(subset, str) or isinstance(weight, bool) or not isinstance(weight, (int, float)) or not (math.isfinite(weight) and weight > 0):
                    raise ValueError(f"section {name!r}: subset {subset!r} needs a positive number as weight, got {weight!r}")
                weights[subset] = float(weight)
        else:
            raise ValueError(f"section {name!r} must list its subsets, or map each subset to a positive weight")
        sections[name] = Section(name, weights)
    return sections


def parse_thresholds(raw: Any) -> dict[str, float]:
    if not isinstance(raw, dict):
        raise ValueError("must be a mapping of NAME: minimum accuracy")
    out: dict[str, float] = {}
    for name, value in raw.items():
        out[str(name)] = parse_threshold_value(str(name), value)
    return out


def parse_threshold_value(name: str, value: Any) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ValueError(f"threshold for {name!r} must be a number in [0, 1], got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0.0 <= value <= 1.0):
        raise ValueError(f"threshold for {name!r} must be a number in [0, 1], got {value!r}")
    return float(value)


def parse_assignments(lines: list[str], what: str) -> list[tuple[str, str]]:
    """Lines of `NAME=VALUE` from the command line or ini."""
    out = []
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise ValueError(f"{what}: expected NAME=VALUE, got {line!r}")
        out.append((name.strip(), value.strip()))
    return out


def parse_section_assignment(name: str, value: str) -> Section:
    """`Chat=chat,chat-hard` or `Safety=refusals:1.0,xstest:2.0` from the command line or ini."""
    members = [m.strip() for m in value.split(",") if m.strip()]
    if all(":" in m for m in members):
        pairs = {}
        for m in members:
            subset, _, weight = m.rpartition(":")
            try:
                pairs[subset.strip()] = float(weight)
            except ValueError:
                raise ValueError(f"section {name!r}: weight {weight!r} is not a number") from None
        return parse_sections({name: pairs})[name]
    if any(":" in m for m in members):
        raise ValueError(f"section {name!r}: give a weight to every subset or to none")
    return parse_sections({name: members})[name]
