"""Two runs' items paired by node id, with one rule for what counts as edited.

Used by the --rm-baseline comparison (report/baseline.py) and by
`python -m pytest_rmbench runs compare` (cli.py). An item is *edited* when its content
hashes differ; a hash missing on one side counts as different (the item could not be read
in that run, so its results cannot be paired). Pure functions over report items.
"""

from __future__ import annotations

from typing import Iterable, Iterator

from ..items import ERROR

ONLY_A = "only_a"
ONLY_B = "only_b"
EDITED = "edited"
ERRORED = "errored"
MATCHED = "matched"


def _hash(item: dict):
    return item.get("content_hash") or None


def is_edited(a: dict, b: dict) -> bool:
    """The one rule: the content hashes differ, a missing hash counting as different
    (two items both without a hash are not edited: neither could be read; their errors pair)."""
    return _hash(a) != _hash(b)


def classify(a: dict | None, b: dict | None) -> str:
    """only_a, only_b, edited, errored (an error on either side) or matched."""
    if b is None:
        return ONLY_A
    if a is None:
        return ONLY_B
    if is_edited(a, b):
        return EDITED
    if ERROR in (a.get("outcome"), b.get("outcome")):
        return ERRORED
    return MATCHED


def by_nodeid(items: Iterable) -> dict:
    """Report items by node id (entries that are not items, or have no node id, left out)."""
    return {i["nodeid"]: i for i in items or () if isinstance(i, dict) and i.get("nodeid") is not None}


def pair_items(a_items: Iterable, b_items: Iterable) -> Iterator[tuple[str, dict | None, dict | None, str]]:
    """(node id, item in A, item in B, class) for every node id of either run: B's order
    first (the later run), then the items only A has, in A's order."""
    a, b = by_nodeid(a_items), by_nodeid(b_items)
    for nodeid, ib in b.items():
        ia = a.get(nodeid)
        yield nodeid, ia, ib, classify(ia, ib)
    for nodeid, ia in a.items():
        if nodeid not in b:
            yield nodeid, ia, None, ONLY_A
