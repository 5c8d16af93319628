"""M-RewardBench (C4AI-Community/multilingual-reward-bench): RewardBench translated into 23
languages, one Hub configuration (split `test`) per FLORES code.

Items report their subset as `LANG/SUBSET` (the subset is the `source` column, or `subset`
in older copies). Each language is scored as RewardBench v1 (same weights and sections);
the headline is the mean of the languages' final scores. The `languages` option (a list
of codes) picks languages; by default all 23 run.

Local files (--rm-data-dir): a language's files are those under a folder named by its code
(`arb_Arab/test-00000-of-00001.parquet`, as on the Hub, or `arb_Arab/filtered.json` of the
first release) or whose base name starts with it (`arb_Arab.jsonl`). `raw*` files (the
unfiltered split) are skipped, and when a folder holds both `test-*` and `filtered.*` (the
same rows twice), only `test-*` is read. A language without files is recorded as absent.
"""

from __future__ import annotations

import os
from typing import Iterator

from ..items import Item, ItemProblem, PairItem, Section
from .base import (DataSource, NodeNames, Rows, SuiteResult, check_columns, chosen_names, clean_name, data_files,
                   error_count, items_from_rows, mean, nothing_found, relative_parts, row_id, subset_accuracies, text)
from .rewardbench import SECTION_OF, official_scores, section_slug, section_tables

DATASET = "C4AI-Community/multilingual-reward-bench"
SPLIT = "test"
LANGUAGES = (
    "arb_Arab", "ces_Latn", "deu_Latn", "ell_Grek", "fra_Latn", "heb_Hebr", "hin_Deva", "ind_Latn",
    "ita_Latn", "jpn_Jpan", "kor_Hang", "nld_Latn", "pes_Arab", "pol_Latn", "por_Latn", "ron_Latn",
    "rus_Cyrl", "spa_Latn", "tur_Latn", "ukr_Cyrl", "vie_Latn", "zho_Hans", "zho_Hant",
)
SUBSET_COLUMNS = ("source", "subset")


def language_files(source: DataSource, lang: str, files: list[str]) -> list[str]:
    mine = []
    for path in files:
        parts = relative_parts(source, path)
        name = parts[-1]
        if lang in parts[:-1] or name == lang or name.startswith((f"{lang}.", f"{lang}-", f"{lang}_")):
            if not name.lower().startswith("raw"):
                mine.append(path)
    by_folder: dict[str, list[str]] = {}
    for path in mine:
        by_folder.setdefault(os.path.dirname(path), []).append(path)
    chosen = []
    for folder, paths in sorted(by_folder.items()):
        tests = [p for p in paths if os.path.basename(p).lower().startswith("test")]
        chosen.extend(tests or paths)
    return sorted(chosen)


def subset_column(rows: Rows, where: str) -> str:
    for column in SUBSET_COLUMNS:
        if column in rows.columns:
            return column
    check_columns(rows, where, ("source",))  # raises, listing the columns found
    return "source"


class MRewardBench:
    name = "m-rewardbench"
    headline = "mean"
    datasets = (DATASET,)

    def parts(self, source: DataSource) -> Iterator[tuple[str, str, Rows]]:
        languages = chosen_names(source, "languages", LANGUAGES, "language code(s)", "languages")
        if not source.data_dir:
            for lang in languages:
                yield lang, f"{DATASET}:{lang}", source.hub(DATASET, lang, SPLIT, part=lang)
            return
        files, _ = data_files(source, one_per_name=False)  # every language has its test-*.parquet
        found = {lang: language_files(source, lang, files) for lang in languages}
        if not any(found.values()):
            raise nothing_found(source, "LANG/test-*.parquet, LANG/filtered.json or LANG.jsonl "
                                f"for the languages {', '.join(languages)}")
        for lang in languages:
            if not found[lang]:
                source.absent(lang, f"no {lang}/test-*.parquet or {lang}.jsonl under {source.data_dir}")
            for path in found[lang]:
                yield lang, path, source.read_file(path, part=lang)
        source.check_lfs()

    def load(self, source: DataSource) -> Iterator[Item | ItemProblem]:
        names = NodeNames()
        offset = 0
        for lang, where, rows in self.parts(source):
            column = subset_column(rows, where)
            check_columns(rows, where, ("id", "prompt", "chosen", "rejected"))
            yield from items_from_rows(rows, where, self._maker(lang, column, where, offset, names), offset)
            offset += len(rows)

    def _maker(self, lang: str, column: str, where: str, offset: int, names: NodeNames):
        def make(row: dict, index: int) -> Item:
            item_id = row_id(row)
            subset = clean_name(row, column)
            prompt = text(row, "prompt")
            chosen, rejected = text(row, "chosen", empty=True), text(row, "rejected", empty=True)
            section = SECTION_OF.get(subset)
            node = f"{lang}/{section_slug(section)}/{subset}/{item_id}" if section else f"{lang}/{subset}/{item_id}"
            names.claim(node, f"row {offset + index}")
            return PairItem(id=item_id, subset=f"{lang}/{subset}", prompt=prompt, chosen=chosen, rejected=rejected,
                            source=f"{where}#{index}", order=offset + index, node=node)
        return make

    def sections(self, subsets: set[str]) -> dict[str, Section]:
        out = {}
        for lang in sorted({s.split("/", 1)[0] for s in subsets if "/" in s}):
            out.update(section_tables(subsets, prefix=f"{lang}/"))
        return out

    def score(self, results: list[SuiteResult]) -> dict | None:
        if not results:
            return None
        by_lang: dict[str, dict[str, float]] = {}
        for subset, value in subset_accuracies(results).items():
            lang, _, name = subset.partition("/")
            by_lang.setdefault(lang, {})[name] = value
        languages = {lang: official_scores(accs) for lang, accs in sorted(by_lang.items())}
        return {"mean": mean(v["final"] for v in languages.values()), "languages": languages,
                "errors": error_count(results)}


M_REWARDBENCH = MRewardBench()
