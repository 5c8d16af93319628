"""`style_matrix`: k chosen and k rejected answers in k styles (RM-Bench, k = 3); credit is
the mean of the hard (upper triangle), normal (diagonal) and easy (lower triangle) accuracies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Mapping

from .base import ItemOutcome
from .fields import FieldError
from .lists import AnswerListsItem
from .rules import style_triangles


@dataclass(frozen=True, kw_only=True)
class StyleMatrixItem(AnswerListsItem):
    """k chosen and k rejected answers in k styles (RM-Bench: concise, detailed, markdown)."""

    kind: ClassVar[str] = "style_matrix"

    @classmethod
    def from_fields(cls, raw: Mapping) -> dict:
        found = super().from_fields(raw)
        if len(found["chosen"]) != len(found["rejected"]):
            raise FieldError("rejected", f"needs one answer per style: {len(found['chosen'])} chosen but "
                                         f"{len(found['rejected'])} rejected")
        return found

    def decide(self, chosen, rejected):
        k = len(chosen)
        matrix = [[chosen[i] > rejected[j] for j in range(k)] for i in range(k)]
        parts = style_triangles(matrix)
        present = [v for v in parts.values() if v is not None]
        return all(all(row) for row in matrix), sum(present) / len(present), min(chosen), {"matrix": matrix, **parts}

    def explain(self, outcome: ItemOutcome) -> str:
        d = outcome.details
        rows = "\n".join("    " + " ".join("+" if c else "-" for c in row) for row in d["matrix"])
        return (f"incorrect {self.kind} ({self.source})\n  chosen style i beats rejected style j (+) or not (-):\n{rows}\n"
                f"  hard {d['hard']:.3g}  normal {d['normal']:.3g}  easy {d['easy']:.3g}  credit {outcome.credit:.3g}")
