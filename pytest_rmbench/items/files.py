"""Benchmark files -> items, with errors that name the file, the line and the field.

Pure reading: no pytest here, so the parsers can be fuzzed on their own. A file that
cannot be read at all raises FileParseError; a readable file yields one entry per item,
either an Item or an ItemProblem, so its good items still run. This module reads YAML and
JSONL, the file header and an item's common fields (id, subset, kind, strict, tags); the
kind, found in the ITEM_KINDS registry, validates its own fields (`from_fields`).
"""

from __future__ import annotations

import itertools
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any, Iterable

import yaml

from ..registry import RegistryError
from . import ITEM_KINDS, fields
from .base import Item, ItemProblem, Section
from .fields import FieldError

COMMON_FIELDS = ("id", "subset", "kind", "strict", "tags")
HEADER_FIELDS = ("name", "description", "strict", "sections", "gate", "items")

__all__ = ["FieldError", "FileParseError", "ItemProblem", "ParsedFile", "Section", "parse_file", "parse_sections",
           "parse_thresholds", "parse_threshold_value", "parse_assignments", "parse_section_assignment", "validate_item"]


class FileParseError(Exception):
    def __init__(self, path: str, line: int | None, message: str):
        self.path, self.line, self.message = path, line, message
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {message}")


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
    from .lfs import LfsPointerFile, is_pointer_data  # here: lfs.py builds on this module's classes

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

    found = rows()
    first = next(found, None)
    if first is None:
        return parsed
    found = itertools.chain([first], found)
    if isinstance(first[0], dict) and set(first[0]) == set(GPM_CYCLIC_FIELDS):  # GPM's cyclic preferences
        found = _gpm_cycles(path, found)
    _add_items(parsed, found)
    return parsed


GPM_CYCLIC_FIELDS = ("instruction", "chosen", "reject")


def _gpm_cycles(path: str, rows: Iterable[tuple[Any, int]]) -> Iterable[tuple[dict, int]]:
    """GPM's cyclic JSONL (rows of exactly `instruction, chosen, reject`) -> `cycle` items.

    Consecutive rows form one cycle a->b, b->c, ..., z->a: each row's chosen is the previous
    row's reject, and the cycle closes at the row whose reject is the first row's chosen. The
    item's answers are the rows' chosen answers in order (a > b > ... > z > a); its id is
    cycle-N, its subset the file's name, its line the cycle's first row. A row that breaks the
    chain is an error naming its line.
    """
    name = os.path.basename(path)
    subset = name[: -len(".jsonl")] if name.endswith(".jsonl") else name
    subset = subset[: -len(".rmbench")] if subset.endswith(".rmbench") else subset
    cycle: list[tuple[dict, int]] = []
    count = 0
    for row, line in rows:
        if not isinstance(row, dict) or set(row) != set(GPM_CYCLIC_FIELDS):
            got = ", ".join(map(str, row)) if isinstance(row, dict) else type(row).__name__
            raise FileParseError(path, line, "a GPM cyclic file (its first row has exactly instruction, chosen, reject) "
                                             f"needs those three fields in every row; got {got}")
        if cycle:
            (previous, previous_line), start = cycle[-1], cycle[0][1]
            if row["instruction"] != previous["instruction"]:
                raise FileParseError(path, line, f"broken cycle: the instruction differs from line {previous_line}'s, but the "
                                                 f"cycle opened at line {start} has not closed (no row's reject came back to "
                                                 "its first chosen answer)")
            if row["chosen"] != previous["reject"]:
                raise FileParseError(path, line, f"broken chain: 'chosen' is not line {previous_line}'s 'reject' (GPM's cyclic "
                                                 f"rows go a->b, b->c, ... and close with a row whose reject is the first "
                                                 f"row's chosen, line {start})")
        cycle.append((row, line))
        if row["reject"] == cycle[0][0]["chosen"]:
            count += 1
            yield ({"kind": "cycle", "id": f"cycle-{count}", "subset": subset or "cycles", "prompt": cycle[0][0]["instruction"],
                    "answers": [r["chosen"] for r, _ in cycle]}, cycle[0][1])
            cycle = []
    if cycle:
        raise FileParseError(path, cycle[-1][1], f"the cycle opened at line {cycle[0][1]} never closes: the file ends before a "
                                                 "row's reject comes back to the cycle's first chosen answer")


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
            known = COMMON_FIELDS + _kind_fields(raw.get("kind", "pair"))
            unknown.extend(str(k) for k in raw if k not in known and str(k) not in unknown)
        parsed.entries.append(entry)
    parsed.unknown_fields = unknown


def _kind_fields(kind: Any) -> tuple:
    """The fields a kind reads (others draw a warning); none for an unknown kind."""
    if not isinstance(kind, str) or kind not in ITEM_KINDS:
        return ()
    try:
        return ITEM_KINDS.get(kind).FIELDS
    except RegistryError:  # said by the item's own error
        return ()


def validate_item(raw: Any, index: int, line: int | None, path: str, file_strict: bool = False) -> Item | ItemProblem:
    """One raw item -> an Item of its kind, or an ItemProblem naming the first field that does not fit."""
    if not isinstance(raw, dict):
        return ItemProblem(index, line, "(item)", f"expected a mapping of fields, got {type(raw).__name__}", path=path)
    item_id = subset = None
    try:
        item_id = fields.item_id(raw)
        subset = fields.name(raw, "subset")
        kind = raw.get("kind", "pair")
        if not isinstance(kind, str) or kind not in ITEM_KINDS:
            raise FieldError("kind", f"unknown kind {kind!r}; available: {', '.join(ITEM_KINDS.names())}")
        try:
            cls = ITEM_KINDS.get(kind)
        except RegistryError as exc:  # a plugin's kind that cannot be imported
            raise FieldError("kind", str(exc)) from None
        strict = fields.flag(raw, "strict")
        tags = fields.tags(raw)
        found = cls.from_fields(raw)
    except FieldError as exc:
        if item_id is None and exc.field == "id" and isinstance(raw.get("id"), (str, int)) and not isinstance(raw.get("id"), bool):
            item_id = str(raw["id"])  # an id of the right type that breaks the node-id rule is still named
        return ItemProblem(index, line, exc.field, exc.message, item_id, subset, path)
    return cls(
        id=item_id,
        subset=subset,
        strict=strict or file_strict,
        tags=tags,
        source=f"{path}:{line}" if line else f"{path}#{index}",
        order=index,
        **found,
    )


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
