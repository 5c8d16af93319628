"""Run history around a session: where the store lives, the baseline to compare with, recording.

Thin glue between the plugin and store.py / baseline.py, so the plugin's hooks stay short.
"""

from __future__ import annotations

import json
import os
import subprocess

DEFAULT_STORE = os.path.join(".rmbench", "runs.sqlite")


class BaselineError(Exception):
    """The baseline the user named cannot be found or read."""


def store_target(configured: str | None, rootdir: str) -> str:
    if configured and "://" in configured:
        return configured
    path = configured or DEFAULT_STORE
    return path if os.path.isabs(path) else os.path.join(rootdir, path)


def git_commit(rootdir: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", rootdir, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def load_baseline(ref: str, open_store, items: list[dict]) -> tuple[dict | None, str]:
    """(the baseline report, a label for it). ref: latest, a run id, a model name or a JSON report path.

    Returns (None, reason) when `latest` finds no earlier run sharing items; raises
    BaselineError for a named baseline that does not exist.
    """
    if ref.endswith(".json") or os.path.isfile(ref):
        try:
            with open(ref, encoding="utf-8") as fh:
                report = json.load(fh)
        except (OSError, ValueError) as exc:
            raise BaselineError(f"cannot read the baseline report {ref!r}: {exc}") from None
        if not isinstance(report, dict) or not isinstance(report.get("items"), list):
            raise BaselineError(f"{ref!r} is not a pytest-rmbench JSON report (no 'items' list)")
        return report, ref
    store = open_store()
    hashes = {i["nodeid"]: i.get("content_hash") for i in items}
    found = store.find_run(ref, items=hashes)
    if found is None:
        if ref == "latest":
            return None, "no earlier recorded run shares items with this one"
        raise BaselineError(f"no recorded run matches --rm-baseline={ref!r} (a run id, a model name, 'latest' or a report .json)")
    return found, f"run {found['run'].get('id')} ({found['run'].get('model')})"
