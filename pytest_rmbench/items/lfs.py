"""Git LFS pointer files: what a clone made without git-lfs leaves in place of the data.

Such a file is a few lines of text ("version https://git-lfs.github.com/spec/v1", "oid
sha256:...", "size N"). Both paths that read data files (a suite's files under
--rm-data-dir, and `*.rmbench.*` item files) check with `is_pointer` / `is_pointer_data`
here, which look at the first bytes only, so that the file is named as a pointer, with the
fix, rather than failing to parse as JSON, YAML or parquet.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .base import ItemProblem
from .files import FileParseError

POINTER_START = b"version https://git-lfs.github.com/spec/"
FIX = "run `git lfs pull` in the clone"
PROBLEM = f"a Git LFS pointer file, not the data itself (the repository was cloned without git-lfs): {FIX}"


def is_pointer_data(head: bytes) -> bool:
    """Whether these bytes (the first ones of a file are enough) are a Git LFS pointer."""
    return head[:len(POINTER_START)] == POINTER_START


def is_pointer(path: str | os.PathLike) -> bool:
    """Whether the file is a Git LFS pointer; reads its first bytes only."""
    try:
        with open(path, "rb") as fh:
            return is_pointer_data(fh.read(len(POINTER_START)))
    except OSError:  # unreadable: the reader that follows says why
        return False


def pointer_message(path: str) -> str:
    return f"{path} is {PROBLEM}"


def pointers_message(paths: list[str], folder: str | None = None) -> str:
    """One message for a set of pointer files (all the files a suite found)."""
    if len(paths) == 1:
        return pointer_message(paths[0])
    names = [os.path.relpath(p, folder) if folder else p for p in paths]
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return (f"every data file found{f' under {folder}' if folder else ''} is a Git LFS pointer file, not the data "
            f"itself ({shown}); the repository was cloned without git-lfs: {FIX}")


class LfsPointerFile(FileParseError):
    """An item file that is a Git LFS pointer."""

    def __init__(self, path: str):
        super().__init__(path, None, PROBLEM)

    def problem(self) -> ItemProblem:
        """The file as one error item."""
        return PointerProblem(0, None, "(file)", PROBLEM, path=self.path)


@dataclass
class PointerProblem(ItemProblem):
    """A whole item file that is a Git LFS pointer: the message names the file, not an item."""

    def describe(self) -> str:
        return pointer_message(self.path)
