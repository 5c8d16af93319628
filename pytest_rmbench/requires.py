"""The optional heavy packages (torch, transformers, datasets: the `hf` extra) and the one
clear error a run gets when it needs one that is not installed.

builtin:*, scores:, http models, reports, the store and the gate never import them; the
entry points that do (building a transformers model, reading a dataset from the Hub) call
`require` first, so a missing package is one line naming the install command, not a
traceback.
"""

from __future__ import annotations

import importlib

HF_EXTRA = "pip install 'pytest-rmbench[hf]'"
VISION_EXTRA = "pip install 'pytest-rmbench[vision]'"  # Pillow, for items with images


def missing_message(names: tuple[str, ...] | list[str], what: str, failures: dict[str, str], hint: str = "",
                    extra: str = HF_EXTRA) -> str:
    """'<what> needs torch and transformers, which are not installed: pip install ...'."""
    listed = " and ".join(names) if len(names) <= 2 else ", ".join(names[:-1]) + " and " + names[-1]
    broken = [f"{name}: {reason}" for name, reason in failures.items() if reason]
    if broken:  # installed but fails to import (e.g. a broken CUDA build): say why
        return f"{what} needs {listed}, which cannot be imported ({'; '.join(broken)}); reinstall with {extra}"
    verb = "is" if len(names) == 1 else "are"
    return f"{what} needs {listed}, which {verb} not installed: {extra}{f' ({hint})' if hint else ''}"


def require(*names: str, what: str, error: type[Exception] = ImportError, hint: str = "", extra: str = HF_EXTRA) -> None:
    """Raises `error` with one line naming the install command unless every module in
    `names` can be imported. `what` names what needs them ("the transformers model './rm'");
    `hint` adds another way out ("or pass --rm-data-dir with local files"); `extra` is the
    install command (VISION_EXTRA for Pillow)."""
    missing: list[str] = []
    failures: dict[str, str] = {}
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            missing.append(name)
            absent = isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] == name
            failures[name] = "" if absent else f"{type(exc).__name__}: {exc}"
    if missing:
        raise error(missing_message(missing, what, failures, hint, extra)) from None
