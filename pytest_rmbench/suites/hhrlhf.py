"""Anthropic HH-RLHF (Anthropic/hh-rlhf, split `test`): one pair per row.

Each row holds two whole transcripts, "\n\nHuman: ...\n\nAssistant: ..." alternating, that
share the prompt and differ in the final answer. The prompt is the longest prefix the two
transcripts share that ends right after a "\n\nAssistant:"; it becomes a multi-turn chat
prompt (user / assistant messages ending with the user's turn; two turns in a row by the
same speaker are joined by a blank line). Each answer is the rest of its own transcript,
stripped of surrounding whitespace. In the real test files some answers ramble on into
invented turns ("...\n\nHuman: ...\n\nAssistant: ..."): that text is part of the answer,
as the model wrote it, so the two transcripts may hold different numbers of turns. Rows
whose transcripts share no such prefix, or do not follow the format, are error items.
Rows whose two answers are identical (the dataset has a few) are kept: no strict rule can
pass them.

Subsets: locally (--rm-data-dir, the GitHub/Hub layout `helpful-base/test.jsonl.gz`, ...)
the folder name; from the Hub each folder is loaded on its own (`data_dir=`), so subsets match.
The id is the row's position in its file (or in the split). Score: accuracy overall and per subset.
"""

from __future__ import annotations

import re
from typing import Iterator

from ..items import Item, ItemProblem, PairItem, Section, freeze_prompt
from .base import (DataSource, NodeNames, RowError, Rows, SuiteResult, check_columns, data_files, items_from_rows,
                   nothing_found, pair_score, relative_parts, strip_data_suffix)

DATASET = "Anthropic/hh-rlhf"
SPLIT = "test"
FOLDERS = ("helpful-base", "helpful-online", "helpful-rejection-sampled", "harmless-base")
ASSISTANT = "\n\nAssistant:"
TURN = re.compile(r"\n\n(Human|Assistant):")


def split_transcript(chosen: str, rejected: str) -> tuple[list[dict], str, str]:
    """(the shared turns as chat messages, the chosen answer, the rejected answer)."""
    for name, value in (("chosen", chosen), ("rejected", rejected)):
        if not isinstance(value, str):
            raise RowError(name, "missing" if value is None else f"must be a string, got {type(value).__name__}")
    chosen, rejected = _normalise(chosen), _normalise(rejected)
    common = 0
    limit = min(len(chosen), len(rejected))
    while common < limit and chosen[common] == rejected[common]:
        common += 1
    # the prompt: the longest shared prefix that ends right after an assistant marker, i.e. the
    # last marker lying wholly inside the shared text (the space after it is the answer's, and
    # stripped with it). An answer that rambles on into invented "\n\nHuman:" turns differs
    # from the other answer before those, so its invented turns stay in the answer.
    cut = chosen.rfind(ASSISTANT, 0, common)
    if cut < 0:
        raise _no_shared_prompt(chosen, rejected)
    answers = [value[cut + len(ASSISTANT):].strip() for value in (chosen, rejected)]
    return _messages(chosen[:cut]), answers[0], answers[1]


def _no_shared_prompt(chosen: str, rejected: str) -> RowError:
    wanted = "the two transcripts share no prompt: no common beginning that ends with '\\n\\nAssistant:'"
    for name, value in (("chosen", chosen), ("rejected", rejected)):
        if ASSISTANT not in value:
            return RowError(name, f"{wanted} ({name!r} has no '\\n\\nAssistant:' turn at all)")
    return RowError("rejected", f"{wanted} (it differs from 'chosen' before the first '\\n\\nAssistant:')")


def _normalise(transcript: str) -> str:
    # a few copies drop the leading blank line; the markers need it
    return "\n\n" + transcript.lstrip("\n") if not transcript.startswith("\n\n") else transcript


def _messages(shared: str) -> list[dict]:
    pieces = TURN.split(shared)
    if pieces[0].strip():
        raise RowError("chosen", "the transcript does not start with a 'Human:' turn")
    messages: list[dict] = []
    for speaker, content in zip(pieces[1::2], pieces[2::2]):
        role = "user" if speaker == "Human" else "assistant"
        content = content.strip()
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"] += "\n\n" + content
        else:
            messages.append({"role": role, "content": content})
    if not messages or messages[0]["role"] != "user":
        raise RowError("chosen", "the transcript does not start with a 'Human:' turn")
    if messages[-1]["role"] != "user":
        raise RowError("chosen", "the turn before the final answer is not the human's")
    return messages


def local_subset(source: DataSource, path: str, split: str) -> str | None:
    """The subset of a local file, or None when the file is not one of ours."""
    parts = relative_parts(source, path)
    stem = strip_data_suffix(parts[-1])
    folder = parts[-2] if len(parts) > 1 else None
    if folder in FOLDERS and (stem == split or stem.startswith(f"{split}-")):
        return folder
    for name in FOLDERS:
        if stem in (f"{name}-{split}", f"{name}_{split}", f"{name}.{split}"):
            return name
    return None


class HHRLHF:
    name = "hh-rlhf"
    headline = "overall"
    datasets = (DATASET,)

    def parts(self, source: DataSource) -> list[tuple[str, str, Rows]]:
        split = source.option("split", SPLIT)
        if not source.data_dir:  # one folder at a time, so that each keeps its subset
            return [(folder, f"{DATASET}/{folder}", source.hub(DATASET, split=split, part=folder, data_dir=folder))
                    for folder in FOLDERS]
        files, _ = data_files(source, one_per_name=False)  # every folder has its test.jsonl.gz
        mine: dict[str, list[str]] = {}
        for path in files:
            subset = local_subset(source, path, split)
            if subset:
                mine.setdefault(subset, []).append(path)
        if not mine:
            raise nothing_found(source, ", ".join(f"{f}/{split}.jsonl.gz" for f in FOLDERS))
        found = []
        for folder in FOLDERS:
            if folder not in mine:
                source.absent(folder, f"no {folder}/{split}.jsonl.gz under {source.data_dir}")
            found.extend((folder, path, source.read_file(path, part=folder)) for path in mine.get(folder, []))
        source.check_lfs()
        return found

    def load(self, source: DataSource) -> Iterator[Item | ItemProblem]:
        names = NodeNames()
        offset = 0
        for subset, where, rows in self.parts(source):
            check_columns(rows, where, ("chosen", "rejected"))
            yield from items_from_rows(rows, where, self._maker(subset, where, offset, names), offset, None)
            offset += len(rows)

    def _maker(self, subset: str, where: str, offset: int, names: NodeNames):
        def make(row: dict, index: int) -> Item:
            messages, chosen, rejected = split_transcript(row.get("chosen"), row.get("rejected"))
            item_id = str(index)
            node = names.unique(f"{subset}/{item_id}", offset + index)  # two files of one folder: keep both
            return PairItem(id=node[len(subset) + 1:], subset=subset, prompt=freeze_prompt(messages), chosen=chosen,
                            rejected=rejected, source=f"{where}#{index}", order=offset + index, node=node)
        return make

    def sections(self, subsets: set[str]) -> dict[str, Section]:
        return {}

    def score(self, results: list[SuiteResult]) -> dict | None:
        return pair_score(results)


HH_RLHF = HHRLHF()
