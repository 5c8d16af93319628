"""`python -m pytest_rmbench runs list|show|compare|export` on a store filled here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest

from pytest_rmbench.cli import compare_reports
from pytest_rmbench.storage.store import open_store

PG_ENV = "RMBENCH_TEST_POSTGRES_URL"


def report(model, outcomes, *, hashes=None, gate_passed=True, started="2025-03-01T10:00:00+00:00"):
    """outcomes: {name: outcome}; names "s-..." go to subset safety, the others to chat."""
    hashes = hashes or {}
    items = []
    for name, outcome in outcomes.items():
        subset = "safety" if name.startswith("s-") else "chat"
        score = {"correct": (2.0, 1.0), "incorrect": (1.0, 2.0), "error": (None, None)}[outcome]
        items.append({"nodeid": f"core.rmbench.yaml::{subset}/{name}", "file": "core.rmbench.yaml", "id": name,
                      "subset": subset, "outcome": outcome, "chosen_score": score[0], "rejected_score": score[1],
                      "margin": None if score[0] is None else score[0] - score[1], "truncated": False,
                      "content_hash": hashes.get(name, "h-" + name), "prompt_hash": "p-" + name})

    def block(rs):
        scored = [r for r in rs if r["outcome"] != "error"]
        correct = sum(r["outcome"] == "correct" for r in scored)
        return {"n": len(scored), "correct": correct, "accuracy": correct / len(scored) if scored else None,
                "ci_low": 0.25 if scored else None, "ci_high": 0.75 if scored else None,
                "mean_margin": 0.5 if scored else None, "errors": len(rs) - len(scored)}

    subsets = {}
    for item in items:
        subsets.setdefault(item["subset"], []).append(item)
    checks = [{"name": "overall", "threshold": 0.9, "value": block(items)["accuracy"], "passed": gate_passed,
               "kind": "accuracy", "rule": "point", "status": "pass" if gate_passed else "fail"}]
    return {
        "run": {"model": model, "started": started, "seconds": 3.25},
        "items": items,
        "subsets": {k: block(v) for k, v in subsets.items()},
        "sections": {"Everything": {"n": len(items), "accuracy": block(items)["accuracy"],
                                    "subsets": ["chat", "safety"], "weights": {"chat": None, "safety": None}}},
        "overall": block(items),
        "length_baseline": {"accuracy": 0.5},
        "gate": {"configured": True, "passed": gate_passed, "checks": checks},
    }


RUN_A = report("org/rm-a", {"c1": "correct", "c2": "correct", "c3": "incorrect", "c4": "correct",
                            "s-1": "correct", "s-2": "incorrect"})
# c1 regresses, c3 is fixed, c4 was edited (other content hash), s-2 is fixed, s-3 is new, c2 errors
RUN_B = report("org/rm-b", {"c1": "incorrect", "c2": "error", "c3": "correct", "c4": "incorrect",
                            "s-1": "correct", "s-2": "correct", "s-3": "correct"},
               hashes={"c4": "h-c4-edited"}, gate_passed=False)
RUN_C = report("org/rm-a", {"c1": "correct"}, started="2025-03-02T10:00:00+00:00")


def fill(target):
    with open_store(target) as s:
        return [s.record_run(RUN_A, git_commit="1111111111aaaa"), s.record_run(RUN_B, git_commit="2222222222bbbb"),
                s.record_run(RUN_C)]


@pytest.fixture
def filled(tmp_path):
    path = tmp_path / ".rmbench" / "runs.sqlite"
    ids = fill(str(path))
    return tmp_path, ids


def cli(*args, cwd):
    proc = subprocess.run([sys.executable, "-m", "pytest_rmbench", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60)
    return proc


def test_list_uses_the_default_store_in_the_current_directory(filled):
    cwd, (a, b, c) = filled
    proc = cli("runs", "list", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["id", "started", "model", "git", "n", "accuracy", "gate"]
    assert lines[2].split()[:1] == [str(c)] and lines[-1].split()[0] == str(a)
    assert lines[-1].split() == [str(a), "2025-03-01", "10:00:00", "org/rm-a", "1111111111", "6", "0.667", "pass"]
    assert lines[-2].split()[-1] == "FAIL"
    proc = cli("runs", "list", "--limit", "1", "--store", ".rmbench/runs.sqlite", cwd=cwd)
    assert len(proc.stdout.splitlines()) == 3


def test_show(filled):
    cwd, (a, b, c) = filled
    proc = cli("runs", "show", str(b), cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert f"run {b}  model org/rm-b" in out and "git commit 2222222222bbbb" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.split()}
    assert rows["chat"][:4] == ["chat", "3", "1", "0.333"] and rows["chat"][-1] == "1"
    assert rows["safety"][:4] == ["safety", "3", "3", "1.000"]
    assert rows["overall"][:4] == ["overall", "6", "4", "0.667"] and "[0.250, 0.750]" in out
    assert rows["[Everything]"][:2] == ["[Everything]", "7"]
    assert "gate: FAILED" in out and "failed: overall 0.667 (needs 0.9, point)" in out
    # by model name (its most recent run) and "latest"
    assert f"run {c}  model org/rm-a" in cli("runs", "show", "org/rm-a", cwd=cwd).stdout
    assert f"run {c} " in cli("runs", "show", "latest", cwd=cwd).stdout
    assert "gate: passed" in cli("runs", "show", str(a), cwd=cwd).stdout


def test_show_json(filled):
    cwd, (a, b, c) = filled
    proc = cli("runs", "show", str(a), "--json", cwd=cwd)
    summary = json.loads(proc.stdout)
    assert summary["id"] == a and summary["model"] == "org/rm-a"
    assert summary["overall"] == RUN_A["overall"] and summary["subsets"] == RUN_A["subsets"]
    assert summary["gate"]["passed"] is True and "items" not in summary


def test_compare(filled):
    cwd, (a, b, c) = filled
    proc = cli("runs", "compare", str(a), str(b), "--json", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    chat, safety, overall = result["subsets"]["chat"], result["subsets"]["safety"], result["overall"]
    assert (chat["accuracy_a"], chat["accuracy_b"]) == (0.75, 1 / 3)
    assert chat["delta"] == pytest.approx(1 / 3 - 0.75)
    assert {k: chat[k] for k in ("matched", "regressions", "fixes", "edited", "errored")} == {
        "matched": 2, "regressions": 1, "fixes": 1, "edited": 1, "errored": 1}
    assert {k: safety[k] for k in ("matched", "regressions", "fixes", "edited", "only_b")} == {
        "matched": 2, "regressions": 0, "fixes": 1, "edited": 0, "only_b": 1}
    assert {k: overall[k] for k in ("regressions", "fixes", "edited", "errored", "only_a", "only_b")} == {
        "regressions": 1, "fixes": 2, "edited": 1, "errored": 1, "only_a": 0, "only_b": 1}
    assert result["a"]["id"] == a and result["b"]["model"] == "org/rm-b"

    text = cli("runs", "compare", str(a), str(b), cwd=cwd).stdout
    rows = {line.split()[0]: line.split() for line in text.splitlines() if line.split()}
    assert rows["subset"] == ["subset", "n", "A", "acc", "A", "n", "B", "acc", "B", "delta", "regressions", "fixes",
                              "edited", "p", "(McNemar)"]
    assert rows["chat"][:9] == ["chat", "4", "0.750", "3", "0.333", "-0.417", "1", "1", "1"]
    assert rows["overall"][:9] == ["overall", "6", "0.667", "6", "0.667", "+0.000", "1", "2", "1"]
    assert "edited (content changed, left out): 1" in text and "only in B: 1" in text


def test_compare_reports_leaves_edited_items_out():
    result = compare_reports(RUN_A, RUN_A)
    assert result["overall"]["matched"] == 6 and result["overall"]["regressions"] == 0
    assert result["overall"]["delta"] == 0 and result["overall"]["p_value"] == 1.0
    edited = report("x", {"c1": "incorrect"}, hashes={"c1": "new"})
    result = compare_reports(RUN_A, edited)
    assert result["subsets"]["chat"]["edited"] == 1 and result["subsets"]["chat"]["regressions"] == 0


def test_export(filled):
    cwd, (a, b, c) = filled
    proc = cli("runs", "export", str(b), cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    exported = json.loads(proc.stdout)
    assert exported["run"].pop("id") == b and exported == RUN_B
    proc = cli("runs", "export", "latest", "-o", "out/run.json", cwd=cwd)
    assert proc.returncode == 0 and f"run {c} written to out/run.json" in proc.stderr
    assert json.loads((cwd / "out" / "run.json").read_text())["run"]["id"] == c


def test_unknown_run_exits_2(filled):
    cwd, _ = filled
    for args in (["show", "no-such-model"], ["export", "424242"], ["compare", "1", "nope"]):
        proc = cli("runs", *args, cwd=cwd)
        assert proc.returncode == 2, (args, proc.stdout)
        assert "no run matches" in proc.stderr and "runs list" in proc.stderr
        assert "Traceback" not in proc.stderr


def test_missing_store_exits_2_and_creates_nothing(tmp_path):
    proc = cli("runs", "list", cwd=tmp_path)
    assert proc.returncode == 2 and "no run store at .rmbench" in proc.stderr
    assert not (tmp_path / ".rmbench").exists()
    proc = cli("runs", "show", "1", "--store", "elsewhere.sqlite", cwd=tmp_path)
    assert proc.returncode == 2 and "elsewhere.sqlite" in proc.stderr


def test_empty_store_and_usage_errors(tmp_path):
    open_store(str(tmp_path / "empty.sqlite")).close()
    proc = cli("runs", "list", "--store", "empty.sqlite", cwd=tmp_path)
    assert proc.returncode == 0 and "no runs recorded" in proc.stdout
    proc = cli("runs", cwd=tmp_path)
    assert proc.returncode == 2 and "usage" in proc.stderr


def test_cli_on_postgres(tmp_path):
    admin = os.environ.get(PG_ENV)
    if not admin:
        pytest.skip(f"PostgreSQL tests: set {PG_ENV}=postgresql://... (CI's .ci/run starts one)")
    psycopg = pytest.importorskip("psycopg", reason=f'{PG_ENV} is set but psycopg is not installed: pip install -e ".[postgres]"')
    name = f"rmbench_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = urlunsplit(urlsplit(admin)._replace(path="/" + name))
    try:
        a, b, c = fill(url)
        proc = cli("runs", "list", "--store", url, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert len(proc.stdout.splitlines()) == 5
        result = json.loads(cli("runs", "compare", str(a), str(b), "--json", "--store", url, cwd=tmp_path).stdout)
        assert result["overall"]["fixes"] == 2
        proc = cli("runs", "show", "nope", "--store", url, cwd=tmp_path)
        assert proc.returncode == 2
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_show_a_suite_run_with_fractional_credit_and_official_scores(tmp_path):
    run = report("org/rm-d", {"c1": "correct", "c2": "incorrect"})
    run["subsets"]["chat"].update(correct=1.5, accuracy=0.75)  # a best-of-n item with half credit
    run["scores"] = {"rewardbench2": {"final": 0.6683, "subsets": {"Ties": 1.0099}}}
    run["datasets"] = {"rewardbench2": {"headline": "final"}}
    path = tmp_path / ".rmbench" / "runs.sqlite"
    path.parent.mkdir()
    store = open_store(str(path))
    run_id = store.record_run(run)
    store.close()
    proc = cli("runs", "show", str(run_id), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[0]: line.split() for line in proc.stdout.splitlines() if line.split()}
    assert rows["chat"][:4] == ["chat", "2", "1.5", "0.750"]
    assert "rewardbench2: final 0.668" in proc.stdout
    summary = json.loads(cli("runs", "show", str(run_id), "--json", cwd=tmp_path).stdout)
    assert summary["scores"] == run["scores"]


# ------------------------------------------------------------------ finding the store


CONFIGS = {
    "pytest.ini": "[pytest]\naddopts = -q\n",
    "pyproject.toml": "[project]\nname = 'x'\n\n[tool.pytest.ini_options]\ntestpaths = ['tests']\n",
    "tox.ini": "[tox]\nenvlist = py3\n\n[pytest]\naddopts = -q\n",
    "setup.cfg": "[metadata]\nname = x\n\n[tool:pytest]\naddopts = -q\n",
    "pytest.toml": "[pytest]\naddopts = ['-q']\n",
}
# files that do not configure pytest: pytest walks on past them, and so must the CLI
DECOYS = {"pyproject.toml": "[project]\nname = 'inner'\n", "tox.ini": "[tox]\nenvlist = py3\n",
          "setup.cfg": "[metadata]\nname = inner\n"}


def project(tmp_path, config: str | None):
    """tmp_path/proj with `config` and its store of three runs; returns (proj, a subfolder with decoys, ids)."""
    root = tmp_path / "proj"
    deep = root / "tests" / "unit"
    deep.mkdir(parents=True)
    if config:
        (root / config).write_text(CONFIGS[config])
    for name, text in DECOYS.items():
        if config or name != "pyproject.toml":  # with no config at all, pytest takes the first pyproject.toml
            (root / "tests" / name).write_text(text)
    ids = fill(str(root / ".rmbench" / "runs.sqlite"))
    return root, deep, ids


@pytest.mark.parametrize("config", [*CONFIGS, None])
def test_list_from_a_subfolder_finds_the_store_of_pytests_rootdir(tmp_path, config):
    from pytest_rmbench.storage.history import find_rootdir

    if config is None and find_rootdir(str(tmp_path)) is not None:
        pytest.skip(f"a pytest config file above {tmp_path}: {find_rootdir(str(tmp_path))[1]}")
    root, deep, (a, b, c) = project(tmp_path, config)
    proc = cli("runs", "list", cwd=deep)
    assert proc.returncode == 0, proc.stderr
    assert [line.split()[0] for line in proc.stdout.splitlines()[2:]] == [str(c), str(b), str(a)]
    assert f"run {b}  model org/rm-b" in cli("runs", "show", str(b), cwd=deep).stdout
    # --store still wins, relative to the current folder
    (deep / "mine.sqlite").write_bytes(b"")
    proc = cli("runs", "list", "--store", "mine.sqlite", cwd=deep)
    assert proc.returncode == 0 and "no runs recorded in mine.sqlite" in proc.stdout


def test_the_rootdir_decides_even_without_a_store_there(tmp_path):
    """A config file nearer than the store makes that folder the rootdir: the CLI says where it looked."""
    root, deep, _ = project(tmp_path, "pytest.ini")
    (deep / "pytest.ini").write_text("")  # an empty pytest.ini counts, as for pytest
    proc = cli("runs", "list", cwd=deep)
    assert proc.returncode == 2 and proc.stdout == ""
    assert f"no run store at {deep / '.rmbench' / 'runs.sqlite'}" in proc.stderr
    assert f"the rootdir of {deep / 'pytest.ini'}" in proc.stderr
    assert not (deep / ".rmbench").exists()


def test_the_rootdirs_rm_store_option_is_followed(tmp_path):
    root, deep, (a, b, c) = project(tmp_path, None)
    (root / ".rmbench").rename(root / "history")
    (root / "tox.ini").write_text("[pytest]\nrm_store = history/runs.sqlite\n")
    proc = cli("runs", "list", cwd=deep)
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 5


def test_find_rootdir_follows_pytests_order_and_fallbacks(tmp_path):
    from pytest_rmbench.storage.history import find_rootdir, find_store

    outer, inner = tmp_path / "outer", tmp_path / "outer" / "inner"
    inner.mkdir(parents=True)
    (outer / "setup.cfg").write_text("[tool:pytest]\nrm_store = postgresql://db/runs\n")
    (outer / "tox.ini").write_text("[pytest]\n")
    (outer / "pyproject.toml").write_text("[tool.pytest]\nrm_store = 'x.sqlite'\n")  # native TOML mode
    (inner / "pyproject.toml").write_text("[project]\nname = 'inner'\n")
    assert find_rootdir(str(inner)) == (str(outer), str(outer / "pyproject.toml"), {"rm_store": "x.sqlite"})
    assert find_store(str(inner))[0] == str(outer / "x.sqlite")
    (outer / "pyproject.toml").unlink()
    assert find_rootdir(str(inner))[1] == str(outer / "tox.ini")  # tox.ini before setup.cfg
    (outer / "tox.ini").unlink()
    assert find_store(str(inner))[0] == "postgresql://db/runs"
    (outer / "setup.cfg").write_text("[metadata]\n")
    if find_rootdir(str(tmp_path)) is None:
        # no pytest config anywhere: pytest falls back to the first pyproject.toml; so does the CLI
        assert find_rootdir(str(inner)) == (str(inner), str(inner / "pyproject.toml"), {})
        (inner / "pyproject.toml").unlink()
        assert find_rootdir(str(inner)) is None
        assert find_store(str(inner))[0] == os.path.join(".rmbench", "runs.sqlite")
        (outer / ".rmbench").mkdir()
        (outer / ".rmbench" / "runs.sqlite").write_bytes(b"")
        assert find_store(str(inner))[0] == str(outer / ".rmbench" / "runs.sqlite")


# ------------------------------------------------------------------- a corrupt store


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_corrupt_store_is_reported_and_left_as_it_is(filled, damage):
    cwd, (a, b, c) = filled
    path = cwd / ".rmbench" / "runs.sqlite"
    if damage == "garbage":
        path.write_bytes(b"these are not the bytes of an SQLite database\x00\xff" * 300)
    else:
        with open(path, "r+b") as fh:
            fh.truncate(max(4096, os.path.getsize(path) // 2))
    before = path.read_bytes()
    listing = sorted(p.name for p in path.parent.iterdir())
    for args in (["list"], ["show", "latest"], ["compare", str(a), str(b)], ["export", str(a)]):
        proc = cli("runs", *args, cwd=cwd)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert proc.stdout == "" and "Traceback" not in proc.stderr and "Warning" not in proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and str(path) in lines[0] and "left as it is" in lines[0], proc.stderr
        assert lines[0].startswith(f"pytest-rmbench: the run store {path} is ")
        assert "unreadable (file is not a database)" in lines[0] if damage == "garbage" else "malformed" in lines[0]
    assert path.read_bytes() == before
    assert not list(path.parent.glob("*.corrupt-*"))
    assert sorted(p.name for p in path.parent.iterdir()) == listing


# ---------------------------------------------------------------------- list filters


def retarget(run: dict, file: str, model: str) -> dict:
    """The run with its items moved to another benchmark file (or --rm-bench suite) and model."""
    run = json.loads(json.dumps(run))
    run["run"]["model"] = model
    for item in run["items"]:
        item["file"] = file
        item["nodeid"] = f"{file}::{item['nodeid'].split('::', 1)[1]}"
    return run


def test_list_filters_by_model_and_suite(filled):
    cwd, (a, b, c) = filled  # a: org/rm-a, b: org/rm-b, c: org/rm-a, all of core.rmbench.yaml
    with open_store(str(cwd / ".rmbench" / "runs.sqlite")) as s:
        d = s.record_run(retarget(RUN_A, "rewardbench", "Org/RM-A-large"))
        e = s.record_run(retarget(RUN_A, "benchmarks/safety.rmbench.yaml", "other/model_1"))

    def listed(*args):
        proc = cli("runs", "list", *args, cwd=cwd)
        assert proc.returncode == 0, proc.stderr
        return [int(line.split()[0]) for line in proc.stdout.splitlines()[2:] if line.split()[0].isdigit()]

    assert listed() == [e, d, c, b, a]
    assert listed("--model", "org/rm-a") == [d, c, a]  # a substring, without case
    assert listed("--model", "rm-b") == [b]
    assert listed("--model", "model_1") == [e] and listed("--model", "model%") == []  # no wildcards
    assert listed("--suite", "core.rmbench.yaml") == [c, b, a]
    assert listed("--suite", "rewardbench") == [d]
    assert listed("--suite", "benchmarks/safety.rmbench.yaml") == listed("--suite", "safety.rmbench.yaml") == [e]
    assert listed("--suite", "safety") == [] and listed("--suite", "rmbench.yaml") == []  # whole names only
    assert listed("--model", "org/rm-a", "--suite", "core.rmbench.yaml") == [c, a]
    assert listed("--model", "org/rm-a", "--suite", "core.rmbench.yaml", "--limit", "1") == [c]
    proc = cli("runs", "list", "--model", "nobody", "--suite", "rewardbench", cwd=cwd)
    assert proc.returncode == 0 and f"no run in {cwd / '.rmbench' / 'runs.sqlite'} matches" in proc.stdout
    assert "model 'nobody' and suite 'rewardbench'" in proc.stdout


# ------------------------------------------------------------- nothing to compare


def test_compare_without_shared_unedited_items_says_so(filled):
    cwd, (a, b, c) = filled
    with open_store(str(cwd / ".rmbench" / "runs.sqlite")) as s:
        elsewhere = s.record_run(retarget(RUN_A, "rewardbench", "org/rm-a"))
        edited = s.record_run(report("org/rm-a", {"c1": "correct"}, hashes={"c1": "h-c1-edited"}))
    for first, second, detail in ((a, elsewhere, f"6 only in {a}, 6 only in {elsewhere}"),
                                  (c, edited, "1 edited")):
        for extra in ([], ["--json"]):
            proc = cli("runs", "compare", str(first), str(second), *extra, cwd=cwd)
            assert proc.returncode != 0 and proc.stdout == "", (extra, proc.stdout)
            assert f"runs {first} and {second} share no unedited items: nothing to compare ({detail})" in proc.stderr
    # one shared item is enough
    proc = cli("runs", "compare", str(a), str(c), cwd=cwd)
    assert proc.returncode == 0 and "matched items: 1" in proc.stdout
