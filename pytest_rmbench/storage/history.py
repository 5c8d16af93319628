"""Run history around a session: where the store lives, the baseline to compare with, recording.

Thin glue between the plugin and store.py / report/baseline.py, so the plugin's hooks stay short.
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


# -- finding the store from outside pytest (python -m pytest_rmbench runs ...) ------------------

def _ini_section(path: str, section: str) -> dict | None:
    """The options of [section] in an ini-style file; None when it has no such section (or cannot be read)."""
    import configparser

    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError):
        return None
    return dict(parser[section]) if parser.has_section(section) else None


def _toml(path: str) -> dict | None:
    try:
        import tomllib
    except ImportError:  # Python 3.10: pytest itself depends on tomli there
        import tomli as tomllib
    try:
        with open(path, "rb") as fh:
            return tomllib.loads(fh.read().decode("utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def _pytest_toml(path: str) -> dict:
    """pytest.toml: always the config file, even empty; options in its [pytest] table."""
    table = (_toml(path) or {}).get("pytest")
    return table if isinstance(table, dict) else {}


def _pyproject(path: str) -> dict | None:
    """[tool.pytest] (native TOML) or [tool.pytest.ini_options]; None when it has neither."""
    tool = ((_toml(path) or {}).get("tool") or {}).get("pytest")
    if not isinstance(tool, dict):
        return None
    native = {k: v for k, v in tool.items() if k != "ini_options"}
    if native:
        return native
    ini = tool.get("ini_options")
    return ini if isinstance(ini, dict) else None


# pytest's own order in each folder (_pytest/config/findpaths.py, CONFIG_LOADERS_BY_NAME); a reader
# returns the file's pytest options, or None when the file does not configure pytest
_CONFIG_FILES = (
    ("pytest.toml", _pytest_toml),
    (".pytest.toml", _pytest_toml),
    ("pytest.ini", lambda p: _ini_section(p, "pytest") or {}),  # a pytest.ini counts even without [pytest]
    (".pytest.ini", lambda p: _ini_section(p, "pytest") or {}),
    ("pyproject.toml", _pyproject),
    ("tox.ini", lambda p: _ini_section(p, "pytest")),
    ("setup.cfg", lambda p: _ini_section(p, "tool:pytest")),
)


def find_rootdir(start: str) -> tuple[str, str, dict] | None:
    """(rootdir, its config file, the file's pytest options) as pytest finds them when run without
    arguments in `start`: the first folder upwards with a pytest.ini (or pytest.toml), a pyproject.toml
    with [tool.pytest.ini_options] (or [tool.pytest]), a tox.ini with [pytest] or a setup.cfg with
    [tool:pytest]; failing that, the first pyproject.toml at all. None when there is none of them."""
    folder = os.path.abspath(start)
    first_pyproject = None
    while True:
        for name, options_of in _CONFIG_FILES:
            path = os.path.join(folder, name)
            if os.path.isfile(path):
                if name == "pyproject.toml" and first_pyproject is None:
                    first_pyproject = path
                options = options_of(path)
                if options is not None:
                    return folder, path, options
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return None if first_pyproject is None else (os.path.dirname(first_pyproject), first_pyproject, {})


def find_store(start: str | None = None) -> tuple[str, str]:
    """(the run store the plugin records to when pytest runs from `start`, how it was found).

    The store of pytest's rootdir (its rm_store ini option, else .rmbench/runs.sqlite there);
    with no config file up the tree, the first folder from `start` upwards holding
    .rmbench/runs.sqlite; failing both, .rmbench/runs.sqlite (relative: `start` is the cwd)."""
    start = os.getcwd() if start is None else start
    found = find_rootdir(start)
    if found is not None:
        rootdir, config_file, options = found
        configured = options.get("rm_store")
        configured = str(configured).strip() if configured is not None else None
        return store_target(configured or None, rootdir), f"the rootdir of {config_file}"
    folder = os.path.abspath(start)
    while True:
        if os.path.isfile(os.path.join(folder, DEFAULT_STORE)):
            return os.path.join(folder, DEFAULT_STORE), f"found in {folder}"
        parent = os.path.dirname(folder)
        if parent == folder:
            return DEFAULT_STORE, "no pytest config file or run store above the current folder"
        folder = parent


def git_commit(rootdir: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", rootdir, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def load_baseline(ref: str, open_store, items: list[dict], files: list[str]) -> tuple[dict | None, str]:
    """(the baseline report, a label saying what was chosen). ref: latest, a run id, a model name
    or a JSON report path.

    `latest` is the latest complete run over the same files (partial runs are passed over, and
    the label says so); it returns (None, why) when there is none. Any other ref that names
    nothing raises BaselineError: a typo must fail the gate, not switch it off.
    """
    if ref.endswith(".json") or os.path.isfile(ref):
        try:
            with open(ref, encoding="utf-8") as fh:
                report = json.load(fh)
        except (OSError, ValueError) as exc:
            raise BaselineError(f"--rm-baseline={ref}: cannot read the baseline report: {exc}") from None
        if not isinstance(report, dict) or not isinstance(report.get("items"), list):
            raise BaselineError(f"--rm-baseline={ref}: not a pytest-rmbench JSON report (no 'items' list)")
        return report, ref
    store = open_store()
    if ref == "latest":
        found, passed_over = store.latest_complete(files)
        skipped = f"; partial run(s) {', '.join(map(str, passed_over))} passed over" if passed_over else ""
        if found is None:
            return None, f"latest: no earlier complete run of these files in the run store{skipped}; nothing to compare with"
        run = found["run"]
        return found, f"run {run.get('id')} ({run.get('model')}; latest complete run of these files{skipped})"
    found = store.find_run(ref)
    if found is None:
        raise BaselineError(f"--rm-baseline={ref}: no recorded run matches (a run id, a model name, 'latest' or a report .json)")
    run = found["run"]
    partial = " (a partial run)" if ((found.get("selection") or {}).get("partial")) else ""
    return found, f"run {run.get('id')} ({run.get('model')}){partial}"
