"""The files a run writes: checked before any scoring, written without replacing what is not a file.

A report path that cannot be written is a usage error at start-up (exit 4), never a lost
run at the end. Atomic writes (temporary file + rename) apply only to regular files: a
symlink is written through to its target, and a FIFO, a device or /dev/stdout directly.
"""

from __future__ import annotations

import os
import stat


class OutputError(Exception):
    """An output path that cannot be written; the message names the option and the path."""


def _nearest_existing(path: str) -> str:
    """The path itself, or its closest ancestor that exists."""
    current = path
    while not os.path.lexists(current):
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    return current


def _check_folder_creatable(option: str, shown: str, folder: str) -> None:
    """`folder` exists as a writable folder, or can be created under its nearest existing ancestor."""
    existing = _nearest_existing(folder)
    if not os.path.isdir(existing):
        what = "a file" if os.path.exists(existing) else "a broken link"
        raise OutputError(f"{option}={shown}: {existing} is {what}, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"{option}={shown}: the folder {existing} is not writable")


def check_output_file(option: str, path: str, shown: str | None = None) -> None:
    """A file the run will write at `path`: its parent must be (or become) a writable folder,
    and the path must not be a folder. Special files (FIFOs, devices) are accepted as they are.
    `shown`: the value as the user gave it, for the message."""
    shown = shown or path
    target = os.path.realpath(path)
    if os.path.isdir(target):
        raise OutputError(f"{option}={shown}: is a folder; give a file path")
    if os.path.exists(target):
        mode = os.stat(target).st_mode
        if not os.access(target, os.W_OK):
            raise OutputError(f"{option}={shown}: the file is not writable")
        if not stat.S_ISREG(mode):
            return  # a FIFO, a device, /dev/stdout: written directly
    _check_folder_creatable(option, shown, os.path.dirname(target) or ".")


def check_output_folder(option: str, path: str) -> None:
    """A folder the run will create files in (the score cache)."""
    target = os.path.realpath(path)
    if os.path.exists(target) and not os.path.isdir(target):
        raise OutputError(f"{option}={path}: is a file, not a folder")
    _check_folder_creatable(option, path, target)


def _regular_or_missing(path: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except FileNotFoundError:
        return True


def write_text(path: str, text: str) -> None:
    """Write `text` to `path`; a reader of a regular file never sees half of it.

    A symlink is followed (the link stays, its target gets the text); a FIFO, a device or
    /dev/stdout is written directly, since renaming over it would replace the node.
    """
    target = os.path.realpath(path)
    if not _regular_or_missing(target):
        with open(target, "w", encoding="utf-8") as fh:
            fh.write(text)
        return
    os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
    tmp = f"{target}.tmp{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        if os.path.exists(target):
            os.chmod(tmp, stat.S_IMODE(os.stat(target).st_mode))  # keep the file's permissions
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def append_text(path: str, text: str) -> None:
    """For $GITHUB_STEP_SUMMARY, which other steps also write to."""
    folder = os.path.dirname(os.path.realpath(path))
    if _regular_or_missing(path):
        os.makedirs(folder or ".", exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(text)
