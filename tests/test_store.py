"""The run history: record, get, find, list; concurrency; corrupt files; NaN; PostgreSQL.

Each test runs on SQLite, and on PostgreSQL too when RMBENCH_TEST_POSTGRES_URL points
at a server (a fresh database is created and dropped per test).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sqlite3
import sys
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest

from pytest_rmbench.storage.store import (PostgresStore, SqliteStore, StoreError, StoreWarning, dumps, open_store,
                                  redact)

PG_ENV = "RMBENCH_TEST_POSTGRES_URL"
PG_SKIP = f"PostgreSQL tests: set {PG_ENV}=postgresql://... (CI's .ci/run starts one)"


# --------------------------------------------------------------------------- helpers


def make_report(model, items, *, started="2025-01-01T00:00:00+00:00", gate_passed=True, seconds=2.5):
    """items: (name, content_hash, outcome[, subset]) tuples; the node id is core.rmbench.yaml::<subset>/<name>."""
    records = []
    for spec in items:
        name, content_hash, outcome = spec[:3]
        subset = spec[3] if len(spec) > 3 else "chat"
        chosen, rejected = (1.0, 0.0) if outcome == "correct" else (0.0, 1.0)
        if outcome == "error":
            chosen = rejected = None
        records.append({
            "nodeid": f"core.rmbench.yaml::{subset}/{name}", "file": "core.rmbench.yaml", "id": name,
            "subset": subset, "outcome": outcome, "chosen_score": chosen, "rejected_score": rejected,
            "margin": None if chosen is None else chosen - rejected, "truncated": False,
            "content_hash": content_hash, "prompt_hash": f"p-{name}",
        })

    def block(rs):
        scored = [r for r in rs if r["outcome"] != "error"]
        correct = sum(r["outcome"] == "correct" for r in scored)
        return {"n": len(scored), "correct": correct, "accuracy": correct / len(scored) if scored else None,
                "ci_low": 0.1 if scored else None, "ci_high": 0.9 if scored else None,
                "mean_margin": 0.0 if scored else None, "errors": len(rs) - len(scored)}

    subsets = {}
    for r in records:
        subsets.setdefault(r["subset"], []).append(r)
    return {
        "run": {"model": model, "kind": "builtin", "started": started, "seconds": seconds, "collected": len(records)},
        "items": records,
        "subsets": {name: block(rs) for name, rs in subsets.items()},
        "sections": {},
        "overall": block(records),
        "length_baseline": {"accuracy": 0.5},
        "gate": {"configured": True, "passed": gate_passed,
                 "checks": [{"name": "overall", "threshold": 0.5, "passed": gate_passed}]},
    }


def pg_database(admin_url):
    """Create a uniquely named database; returns (its URL, a function that drops it)."""
    psycopg = pytest.importorskip("psycopg", reason=f"{PG_ENV} is set but psycopg is not installed:"
                                  ' pip install -e ".[postgres]"')
    name = f"rmbench_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(admin_url)
    url = urlunsplit(parts._replace(path="/" + name))

    def drop():
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return url, drop


@pytest.fixture(params=["sqlite", "postgres"])
def target(request, tmp_path):
    """A store location: an SQLite path, or the URL of a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield str(tmp_path / ".rmbench" / "runs.sqlite")
        return
    admin = os.environ.get(PG_ENV)
    if not admin:
        pytest.skip(PG_SKIP)
    url, drop = pg_database(admin)
    try:
        yield url
    finally:
        drop()


@pytest.fixture
def store(target):
    s = open_store(target)
    yield s
    s.close()


# ----------------------------------------------------------------------- record / get


def test_record_and_get_round_trip(store):
    report = make_report("rm-a", [("x", "h1", "correct"), ("y", "h2", "incorrect", "safety"), ("z", "h3", "error")])
    run_id = store.record_run(report, fingerprint="fp-1", git_commit="abc123")
    assert isinstance(run_id, int)
    got = store.get_run(run_id)
    assert got["run"].pop("id") == run_id
    assert got == report  # the whole report, items included
    assert store.get_run(run_id + 1000) is None
    assert store.get_run("nonsense") is None
    info = store.run_info(run_id)
    assert info["fingerprint"] == "fp-1" and info["git_commit"] == "abc123" and info["n"] == 3
    assert info["suites"] == ["core.rmbench.yaml"] and info["gate_passed"] is True and info["seconds"] == 2.5
    rows = store._query(store._sql("SELECT nodeid, idx, subset, outcome, chosen_score, margin, content_hash, prompt_hash"
                                   " FROM items WHERE run_id = ? ORDER BY idx"), (run_id,))
    assert [tuple(r) for r in rows] == [
        ("core.rmbench.yaml::chat/x", 0, "chat", "correct", 1.0, 1.0, "h1", "p-x"),
        ("core.rmbench.yaml::safety/y", 1, "safety", "incorrect", 0.0, -1.0, "h2", "p-y"),
        ("core.rmbench.yaml::chat/z", 2, "chat", "error", None, None, "h3", "p-z"),
    ]
    # the caller's dict is not changed
    assert "id" not in report["run"]


def test_ids_increase_and_the_report_is_not_required_to_be_complete(store):
    first = store.record_run({"run": {"model": "m"}, "items": []}, fingerprint=None, git_commit=None)
    second = store.record_run({}, fingerprint=None, git_commit=None)  # nothing but an empty dict
    assert second > first
    assert store.get_run(second)["run"] == {"id": second}
    assert store.list_runs()[0] == {**store.list_runs()[0], "id": second, "model": None, "n": 0, "accuracy": None,
                                    "gate_passed": None}


def test_duplicate_node_ids_keep_the_first(store):
    report = make_report("m", [("x", "h1", "correct"), ("x", "h2", "incorrect")])
    run_id = store.record_run(report)
    rows = store._query(store._sql("SELECT content_hash FROM items WHERE run_id = ?"), (run_id,))
    assert [r[0] for r in rows] == ["h1"]


def test_nan_and_infinity_are_stored_as_null(store):
    report = make_report("m", [("x", "h1", "correct"), ("y", "h2", "incorrect")])
    report["items"][0].update(chosen_score=float("nan"), margin=float("inf"))
    report["items"][1].update(rejected_score=float("-inf"))
    report["overall"]["mean_margin"] = float("nan")
    report["run"]["seconds"] = float("nan")
    run_id = store.record_run(report)

    def strict(text):
        return json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in stored JSON"))

    (raw, summary, seconds), = store._query(store._sql("SELECT report, summary, seconds FROM runs WHERE id = ?"),
                                            (run_id,))
    got = strict(raw)
    assert strict(summary)["overall"]["mean_margin"] is None and seconds is None
    assert got["items"][0]["chosen_score"] is None and got["items"][0]["margin"] is None
    assert got["items"][1]["rejected_score"] is None
    rows = store._query(store._sql("SELECT chosen_score, rejected_score, margin FROM items WHERE run_id = ? ORDER BY idx"),
                        (run_id,))
    assert [tuple(r) for r in rows] == [(None, 0.0, None), (0.0, None, -1.0)]
    assert report["items"][0]["margin"] == float("inf")  # the caller's report is untouched


def test_dumps_handles_odd_values():
    class Scalar:  # like a numpy scalar
        def __init__(self, v):
            self.v = v

        def item(self):
            return self.v

    text = dumps({"a": Scalar(float("nan")), "b": Scalar(3), "c": (1, float("inf")), "d": {2, 1}, "e": object})
    assert json.loads(text) == {"a": None, "b": 3, "c": [1, None], "d": [1, 2], "e": str(object)}


# ------------------------------------------------------------------------------- find


def test_find_latest_needs_a_shared_item_and_skips_the_current_run(store):
    r1 = store.record_run(make_report("m1", [("a", "h1", "correct"), ("b", "h1", "correct")]))
    r2 = store.record_run(make_report("m1", [("a", "EDITED", "correct")]))  # same node id, other content
    r3 = store.record_run(make_report("m2", [("other", "h1", "correct")]))  # same hash, other node id
    current = {"core.rmbench.yaml::chat/a": "h1", "core.rmbench.yaml::chat/new": "h9"}
    assert store.find_run("latest", current)["run"]["id"] == r1
    r4 = store.record_run(make_report("m3", [("a", "h1", "incorrect"), ("new", "h9", "correct")]))
    assert store.find_run("latest", current)["run"]["id"] == r4
    assert store.find_run("latest", current, exclude=r4)["run"]["id"] == r1
    assert store.find_run("latest", {"core.rmbench.yaml::chat/new": "h9"}, exclude=r4) is None
    assert store.find_run("latest", {"core.rmbench.yaml::chat/a": "EDITED"}, exclude=r4)["run"]["id"] == r2
    assert store.find_run("latest", {"nothing::here": "h1"}) is None
    assert store.find_run("latest", {}) is None
    # without items: the most recent run of all
    assert store.find_run("latest")["run"]["id"] == r4
    assert store.find_run("latest", exclude=r4)["run"]["id"] == r3


def test_find_latest_matches_items_without_a_hash(store):
    r1 = store.record_run(make_report("m", [("a", None, "correct")]))
    store.record_run(make_report("m", [("a", "h1", "correct")]))
    assert store.find_run("latest", {"core.rmbench.yaml::chat/a": None})["run"]["id"] == r1


def test_find_latest_with_many_items(store):
    many = [(f"i{n}", f"h{n}", "correct") for n in range(2500)]  # more than SQLite's bound-parameter limit
    r1 = store.record_run(make_report("m", many))
    store.record_run(make_report("m", [("x", "hx", "correct")]))
    current = {f"core.rmbench.yaml::chat/i{n}": ("changed" if n < 2499 else f"h{n}") for n in range(2500)}
    assert store.find_run("latest", current)["run"]["id"] == r1
    current["core.rmbench.yaml::chat/i2499"] = "changed"
    assert store.find_run("latest", current) is None


def test_find_by_id_and_by_model(store):
    r1 = store.record_run(make_report("org/rm-a", [("a", "h", "correct")]))
    r2 = store.record_run(make_report("org/rm-b", [("a", "h", "correct")]))
    r3 = store.record_run(make_report("org/rm-a", [("a", "h", "incorrect")]))
    assert store.find_run(str(r2))["run"]["id"] == r2
    assert store.find_run(r1)["run"]["id"] == r1
    assert store.find_run(f" {r1} ")["run"]["id"] == r1
    assert store.find_run(str(r1), exclude=r1)["run"]["id"] == r1  # an explicit id is what was asked for
    assert store.find_run("org/rm-a")["run"]["id"] == r3
    assert store.find_run("org/rm-a", exclude=r3)["run"]["id"] == r1
    assert store.find_run("org/rm-c") is None
    assert store.find_run("999999") is None
    assert store.find_run(str(2**70)) is None


def test_list_runs(store):
    ids = [store.record_run(make_report(f"m{i}", [("a", "h", "correct"), ("b", "h", "correct" if i else "incorrect")],
                                        started=f"2025-01-0{i + 1}T00:00:00+00:00", gate_passed=bool(i)),
                            git_commit=f"c{i}")
           for i in range(3)]
    runs = store.list_runs()
    assert [r["id"] for r in runs] == ids[::-1]
    first = runs[-1]
    assert {k: first[k] for k in ("id", "started", "model", "git_commit", "n", "accuracy", "gate_passed")} == {
        "id": ids[0], "started": "2025-01-01T00:00:00+00:00", "model": "m0", "git_commit": "c0", "n": 2,
        "accuracy": 0.5, "gate_passed": False}
    assert runs[0]["accuracy"] == 1.0 and runs[0]["gate_passed"] is True
    assert [r["id"] for r in store.list_runs(limit=2)] == ids[:0:-1]
    assert len(store.list_runs(limit=0)) == 3 and len(store.list_runs(limit=None)) == 3


def test_reopen_keeps_the_runs(target):
    with open_store(target) as s:
        run_id = s.record_run(make_report("m", [("a", "h", "correct")]))
    with open_store(target) as s:
        assert s.get_run(run_id)["run"]["model"] == "m"


def test_a_newer_schema_is_refused(target):
    with open_store(target) as s:
        with s._write() as cur:
            cur.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    with pytest.raises(StoreError, match="schema version 99"):
        open_store(target)


def test_database_failures_are_store_errors(target):
    with open_store(target) as s:
        run_id = s.record_run(make_report("m", [("a", "h", "correct")]))
        with s._write() as cur:
            cur.execute("DROP TABLE items")
        with pytest.raises(StoreError, match="record_run"):
            s.record_run(make_report("m", [("a", "h", "correct")]))
        with pytest.raises(StoreError, match="list_runs"):
            s.list_runs()
        assert s.get_run(run_id)["run"]["id"] == run_id  # what does not need the items table still works


# ------------------------------------------------------------------- SQLite specifics


def test_open_store_picks_the_back_end(tmp_path):
    s = open_store(tmp_path / "a" / "b.sqlite")  # a PathLike, parents created
    assert isinstance(s, SqliteStore) and (tmp_path / "a" / "b.sqlite").exists()
    assert s.dialect.name == "sqlite"
    s.close()
    assert s._conn is None
    s.close()  # twice is fine
    conn = sqlite3.connect(tmp_path / "a" / "b.sqlite")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")} >= {"items_nodeid_hash"}
    assert conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()[0] == "1"
    conn.close()


def test_postgres_url_without_the_driver(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg now fails
    for url in ("postgresql://u:secret@db.example/x", "postgres://u@db/x", "POSTGRESQL://db/x"):
        with pytest.raises(StoreError, match=r'pip install "pytest-rmbench\[postgres\]"') as info:
            open_store(url)
        assert "secret" not in str(info.value)


def test_postgres_unreachable_server_is_a_store_error():
    pytest.importorskip("psycopg", reason='psycopg is not installed: pip install -e ".[postgres]"')
    with pytest.raises(StoreError, match="could not connect") as info:
        open_store("postgresql://someone:hunter2@127.0.0.1:1/db?connect_timeout=3")
    assert "hunter2" not in str(info.value) and "***" in str(info.value)


def test_redact():
    assert redact("postgresql://u:pw@h:5432/db?x=1") == "postgresql://u:***@h:5432/db?x=1"
    assert redact("postgresql://u@h/db") == "postgresql://u@h/db"
    assert redact("postgres://h/db") == "postgres://h/db"


def fill(path, runs=3):
    with open_store(path) as s:
        for _ in range(runs):
            s.record_run(make_report("m", [(f"i{n}", f"h{n}", "correct") for n in range(50)]))


def test_garbage_file_is_moved_aside(tmp_path):
    path = tmp_path / "runs.sqlite"
    path.write_bytes(b"this is not an SQLite database, just bytes " * 200)
    with pytest.warns(StoreWarning, match=r"moved to .*runs\.sqlite\.corrupt-\d+"):
        s = open_store(str(path))
    assert s.moved_aside and os.path.exists(s.moved_aside)
    assert open(s.moved_aside, "rb").read().startswith(b"this is not")
    run_id = s.record_run(make_report("m", [("a", "h", "correct")]))
    assert s.get_run(run_id)["run"]["model"] == "m"
    s.close()


def test_truncated_file_is_moved_aside(tmp_path):
    path = tmp_path / "runs.sqlite"
    fill(str(path), runs=5)
    assert not os.path.exists(str(path) + "-wal") or os.path.getsize(str(path) + "-wal") == 0
    size = os.path.getsize(path)
    assert size > 8 * 4096
    with open(path, "r+b") as fh:
        fh.truncate(size // 2)
    with pytest.warns(StoreWarning, match="unreadable"):
        s = open_store(str(path))
    assert s.list_runs() == []
    assert len(list(tmp_path.glob("runs.sqlite.corrupt-*"))) == 1
    s.close()
    with open_store(str(path)) as again:  # the fresh store is fine: no second warning
        assert again.moved_aside is None


def test_two_corrupt_files_in_one_second_keep_both(tmp_path):
    path = tmp_path / "runs.sqlite"
    for _ in range(2):
        path.write_bytes(b"garbage" * 1000)
        with pytest.warns(StoreWarning):
            open_store(str(path)).close()
    assert len(list(tmp_path.glob("runs.sqlite.corrupt-*"))) == 2


def test_a_busy_store_is_not_taken_for_corrupt(tmp_path):
    path = str(tmp_path / "runs.sqlite")
    fill(path, runs=1)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # even readers wait (the file is in WAL mode: they don't)
    try:
        with open_store(path) as s:
            assert len(s.list_runs()) == 1 and s.moved_aside is None
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert not list(tmp_path.glob("*.corrupt-*"))


# ----------------------------------------------------------------------- concurrency


def _writer(target, worker, runs, barrier):
    barrier.wait()  # start together, so opening and writing really overlap
    with open_store(target) as s:
        for i in range(runs):
            s.record_run(make_report(f"worker-{worker}",
                                     [(f"w{worker}-r{i}-{n}", f"h{n}", "correct") for n in range(10)]
                                     + [("shared", "h", "correct")]),
                         git_commit=f"{worker}-{i}")


def run_writers(target, processes, runs):
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(processes)
    procs = [ctx.Process(target=_writer, args=(target, w, runs, barrier)) for w in range(processes)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * processes


def check_all_written(s, processes, runs):
    listed = s.list_runs(limit=0)
    assert len(listed) == processes * runs
    assert sorted(r["git_commit"] for r in listed) == sorted(f"{w}-{i}" for w in range(processes) for i in range(runs))
    assert all(r["n"] == 11 for r in listed)
    assert s.find_run("latest", {"core.rmbench.yaml::chat/shared": "h"})["run"]["id"] == listed[0]["id"]


def test_concurrent_writers_sqlite(tmp_path):
    path = str(tmp_path / ".rmbench" / "runs.sqlite")  # not created yet: the writers race to create it
    run_writers(path, processes=8, runs=20)
    with open_store(path) as s:
        check_all_written(s, 8, 20)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 160 * 11
    conn.close()


def test_concurrent_writers_postgres():
    admin = os.environ.get(PG_ENV)
    if not admin:
        pytest.skip(PG_SKIP)
    url, drop = pg_database(admin)
    try:
        run_writers(url, processes=4, runs=20)
        with open_store(url) as s:
            assert isinstance(s, PostgresStore)
            check_all_written(s, 4, 20)
            assert s._query("SELECT COUNT(*) FROM items")[0][0] == 80 * 11
    finally:
        drop()


def test_postgres_is_skipped_with_a_how_to():
    """The skip reason says how to run the PostgreSQL tests (checked here so it cannot rot)."""
    assert PG_ENV in PG_SKIP and ".ci/run" in PG_SKIP


# ------------------------------------------------------------------ read-only, filters


def test_list_runs_filters_by_model_and_suite(store):
    def run(model, files):
        report = make_report(model, [(f"i{k}", "h", "correct") for k in range(len(files))])
        for item, file in zip(report["items"], files):
            item["file"] = file
            item["nodeid"] = f"{file}::{item['id']}"
        return store.record_run(report)

    a = run("org/RM-a", ["core.rmbench.yaml"])
    b = run("org/rm-b", ["core.rmbench.yaml", "benchmarks/x_1.rmbench.yaml"])
    c = run("other/rm_a%", ["rewardbench", "benchmarks/x_1.rmbench.yaml"])

    def ids(**kw):
        return [r["id"] for r in store.list_runs(**kw)]

    assert ids(model="rm-a") == [a] and ids(model="ORG/") == [b, a] and ids(model="rm_a%") == [c]
    assert ids(model="rm_a_") == [] and ids(model="%") == [c]  # LIKE's wildcards are plain characters
    assert ids(suite="core.rmbench.yaml") == [b, a] and ids(suite="rewardbench") == [c]
    assert ids(suite="benchmarks/x_1.rmbench.yaml") == ids(suite="x_1.rmbench.yaml") == [c, b]
    assert ids(suite="x%1.rmbench.yaml") == [] and ids(suite="rmbench.yaml") == [] and ids(suite="core") == []
    assert ids(model="org", suite="benchmarks/x_1.rmbench.yaml") == [b]
    assert ids(suite="core.rmbench.yaml", limit=1) == [b] and ids(model=None, suite=None) == [c, b, a]


def test_read_only_reads_and_writes_nothing(tmp_path):
    path = tmp_path / "runs.sqlite"
    with open_store(str(path)) as s:
        first = s.record_run(make_report("m", [("a", "h", "correct")]))
    before = path.read_bytes()
    with open_store(str(path), read_only=True) as s:
        assert s.read_only and s.moved_aside is None
        assert [r["id"] for r in s.list_runs()] == [first]
        assert s.find_run("latest", items={"core.rmbench.yaml::chat/a": "h"})["run"]["id"] == first
        with pytest.raises(StoreError, match="read-only"):
            s.record_run(make_report("m", [("a", "h", "correct")]))
    assert path.read_bytes() == before
    with open_store(str(path)) as s:  # a writer afterwards is unaffected
        assert s.record_run(make_report("m", [("a", "h", "correct")])) == first + 1


def test_read_only_on_a_corrupt_file_raises_and_moves_nothing(tmp_path, recwarn):
    path = tmp_path / "runs.sqlite"
    path.write_bytes(b"this is not an SQLite database, just bytes " * 200)
    with pytest.raises(StoreError, match=r"runs\.sqlite is unreadable \(file is not a database\); it was left as it is"):
        open_store(str(path), read_only=True)
    assert path.read_bytes().startswith(b"this is not") and os.listdir(tmp_path) == ["runs.sqlite"]
    assert not [w for w in recwarn if issubclass(w.category, StoreWarning)]


def test_read_only_missing_empty_and_foreign_files(tmp_path):
    with pytest.raises(StoreError, match="no run store at"):
        open_store(str(tmp_path / "none" / "runs.sqlite"), read_only=True)
    assert not (tmp_path / "none").exists()
    (tmp_path / "empty.sqlite").write_bytes(b"")
    with open_store(str(tmp_path / "empty.sqlite"), read_only=True) as s:
        assert s.list_runs() == [] and s.find_run("latest") is None and s.get_run(1) is None
    assert (tmp_path / "empty.sqlite").read_bytes() == b""
    conn = sqlite3.connect(tmp_path / "other.sqlite")
    conn.execute("CREATE TABLE t (x)")
    conn.close()
    with pytest.raises(StoreError, match="not a pytest-rmbench run store"):
        open_store(str(tmp_path / "other.sqlite"), read_only=True)
    with open_store(str(tmp_path / "newer.sqlite")) as s:
        with s._write() as cur:
            cur.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    with pytest.raises(StoreError, match="schema version 99"):
        open_store(str(tmp_path / "newer.sqlite"), read_only=True)
