"""What collection found: every benchmark file and suite with its headers, and each collected
item's subset (selected or not). Plain data: an xdist worker sends it to the controller as a
dict, where the gate and the report read it."""

from __future__ import annotations

from dataclasses import dataclass, field

from .items import Item


@dataclass
class Catalog:
    files: dict[str, dict] = field(default_factory=dict)  # path or suite name -> name, strict, sections, gate
    items: list[str | None] = field(default_factory=list)  # each collected item's subset (None: a bad item)
    suites: dict[str, dict] = field(default_factory=dict)  # suite name -> headline, items, datasets, not_run
    sample: dict | None = None  # --rm-sample: size asked, seed, items drawn, population per report subset

    def note_file(self, parsed) -> None:
        self.files[parsed.path] = {
            "name": parsed.name,
            "strict": parsed.strict,
            "sections": {n: s.weights for n, s in parsed.sections.items()},
            "gate": parsed.gate,
        }
        for entry in parsed.entries:
            self.items.append(getattr(entry, "subset", None))

    def note_suite(self, suite, source, entries) -> None:
        name = suite.name
        subsets = {e.subset for e in entries if isinstance(e, Item)}
        sections = suite.sections(subsets) or {}
        self.files[name] = {
            "name": name,
            "strict": False,
            "sections": {f"{name}/{n}": {f"{name}/{k}": w for k, w in s.weights.items()} for n, s in sections.items()},
            "gate": {},
        }
        self.suites[name] = {"headline": suite.headline, "items": len(entries), "datasets": source.used,
                             "not_run": source.not_run}
        for entry in entries:
            subset = getattr(entry, "subset", None)
            self.items.append(f"{name}/{subset}" if subset is not None else None)

    def subsets(self) -> set[str]:
        return {s for s in self.items if s is not None}

    def to_dict(self) -> dict:
        out = {"files": self.files, "items": self.items, "suites": self.suites}
        return {**out, "sample": self.sample} if self.sample else out

    @classmethod
    def from_dict(cls, data: dict) -> "Catalog":
        return cls(files=dict(data.get("files") or {}), items=list(data.get("items") or []),
                   suites=dict(data.get("suites") or {}), sample=data.get("sample") or None)
