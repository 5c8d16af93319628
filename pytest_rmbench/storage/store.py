"""Run history: one row per run and one per item, in SQLite (a path) or PostgreSQL (a URL).

The store is a layer of its own, behind `RunStore`: the plugin hands it the finished
report dict and it never reaches back into pytest. Both back ends share one schema,
written once below with the few dialect differences filled in:

    runs(id, started, finished, model, fingerprint, git_commit, suites JSON, gate_passed,
         summary JSON, report JSON, seconds)
    items(run_id, idx, nodeid, content_hash, prompt_hash, subset, outcome,
          chosen_score, rejected_score, margin)   primary key (run_id, nodeid)
    meta(key, value)                              the schema version

Only what the report dict holds is stored (the caller strips anything secret first).
NaN and infinities are stored as null. SQLite runs in WAL mode with a long busy timeout
and takes its write lock up front (`BEGIN IMMEDIATE`), so parallel jobs and xdist
controllers can record at once; a file SQLite cannot read is moved aside
(`<name>.corrupt-<timestamp>`) with a `StoreWarning`, and a fresh store is created.
`open_store(path, read_only=True)` (the `runs` CLI) opens an SQLite file with `mode=ro`
instead: it creates, repairs and moves nothing, and an unreadable file is a StoreError.
PostgreSQL needs psycopg 3 (`pip install "pytest-rmbench[postgres]"`), imported only
when a URL is opened.
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

from ..text import json_safe, redact_url
from .sqlite_file import open_shared

SCHEMA_VERSION = 1
SUMMARY_KEYS = ("subsets", "sections", "overall", "gate", "length_baseline", "selection")
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
_PG_DDL_LOCK = 0x726D62656E6368  # "rmbench": serialises CREATE TABLE between concurrent first opens


class StoreError(Exception):
    """The store cannot be opened or used (missing driver, unreachable server, newer schema)."""


class StoreWarning(UserWarning):
    """Something was repaired (e.g. an unreadable SQLite file moved aside)."""


@dataclass(frozen=True)
class _Dialect:
    name: str
    id_column: str  # the runs.id column definition
    id_ref: str  # the type of items.run_id
    boolean: str
    real: str  # 8-byte floats on both (PostgreSQL's REAL is 4 bytes)
    param: str  # the driver's placeholder

    def ddl(self) -> list[str]:
        """The schema, written once for both back ends."""
        return [
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS runs ("
            f"id {self.id_column}, started TEXT, finished TEXT, model TEXT, fingerprint TEXT, git_commit TEXT,"
            f" suites TEXT, gate_passed {self.boolean}, summary TEXT, report TEXT NOT NULL, seconds {self.real})",
            f"CREATE TABLE IF NOT EXISTS items ("
            f"run_id {self.id_ref} NOT NULL REFERENCES runs (id) ON DELETE CASCADE, idx INTEGER NOT NULL,"
            f" nodeid TEXT NOT NULL, content_hash TEXT, prompt_hash TEXT, subset TEXT, outcome TEXT,"
            f" chosen_score {self.real}, rejected_score {self.real}, margin {self.real},"
            f" PRIMARY KEY (run_id, nodeid))",
            "CREATE INDEX IF NOT EXISTS items_nodeid_hash ON items (nodeid, content_hash)",
            "CREATE INDEX IF NOT EXISTS runs_model ON runs (model, id)",
            "INSERT INTO meta (key, value) VALUES ('schema', '%d') ON CONFLICT (key) DO NOTHING" % SCHEMA_VERSION,
        ]


SQLITE = _Dialect("sqlite", "INTEGER PRIMARY KEY AUTOINCREMENT", "INTEGER", "INTEGER", "REAL", "?")
POSTGRES = _Dialect("postgresql", "BIGSERIAL PRIMARY KEY", "BIGINT", "BOOLEAN", "DOUBLE PRECISION", "%s")


def open_store(target: str | os.PathLike, read_only: bool = False) -> "RunStore":
    """A path opens (or creates) an SQLite store; a postgresql:// or postgres:// URL a PostgreSQL one.

    read_only: an SQLite file that must exist is opened read-only (for reading the history: a
    corrupt file is reported, never moved aside); a PostgreSQL store opens as usual."""
    text = os.fspath(target)
    if text.lower().startswith(POSTGRES_SCHEMES):
        return PostgresStore(text)
    return SqliteStore(text, read_only=read_only)


def _like(text: str) -> str:
    """`text` as a LIKE pattern matching itself only (with ESCAPE '\\')."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def redact(url: str) -> str:
    """A URL fit for messages: the password replaced by ***."""
    return redact_url(url, mask="***")


def _fallback(value: Any) -> Any:
    """json.dumps default: numpy scalars and the like become plain values, anything else its str()."""
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return json_safe(item())
        except (TypeError, ValueError):
            pass
    if isinstance(value, (set, frozenset)):
        return json_safe(sorted(value, key=str))
    return str(value)


def dumps(value: Any) -> str:
    """Strict JSON: NaN and infinities become null; never fails on odd value types."""
    return json.dumps(json_safe(value), allow_nan=False, default=_fallback, ensure_ascii=True, separators=(",", ":"))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _utc_now() -> str:
    import datetime as _dt

    return _dt.datetime.now(_dt.timezone.utc).isoformat()


def _guarded(method):
    """Driver errors (a locked, vanished or broken database, a lost connection) become StoreError."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except self._driver_errors as exc:
            raise StoreError(f"the run store {self.target} failed in {method.__name__}: {str(exc).strip()}") from exc

    return wrapper


class RunStore:
    """The interface the plugin and the CLI use; the subclasses only know their driver.

    Every public method raises StoreError when the database fails underneath it.
    """

    dialect: _Dialect
    target: str  # for messages (a URL with its password redacted)
    _driver_errors: tuple = ()

    # -- what a back end provides ---------------------------------------------------------

    def _query(self, sql: str, params: tuple | list = ()) -> list[tuple]:
        raise NotImplementedError

    @contextmanager
    def _write(self) -> Iterator[Any]:
        """One write transaction; yields a cursor-like object with execute and executemany."""
        raise NotImplementedError
        yield

    def _insert_run(self, cur, columns: tuple[str, ...], values: tuple) -> int:
        raise NotImplementedError

    @contextmanager
    def _probe(self, pairs: dict[str, str]) -> Iterator[tuple[str, list]]:
        """A FROM-clause fragment `... AS p` with columns (nodeid, content_hash), and its parameters."""
        raise NotImplementedError
        yield

    def close(self) -> None:
        raise NotImplementedError

    # -- shared --------------------------------------------------------------------------

    def _sql(self, sql: str) -> str:
        return sql if self.dialect.param == "?" else sql.replace("?", self.dialect.param)

    def __enter__(self) -> "RunStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.target!r})"

    @_guarded
    def record_run(self, report: dict, *, fingerprint: str | None = None, git_commit: str | None = None) -> int:
        """Store a finished report (the run row and all its items, in one transaction); returns the run id.
        `report` is the report dict or a typed Report (report/schema.py)."""
        if hasattr(report, "to_dict") and not isinstance(report, dict):
            report = report.to_dict()
        if not isinstance(report, dict):
            raise TypeError(f"record_run needs the report dict, not {type(report).__name__}")
        text = dumps(report)
        clean = json.loads(text)  # the same values the stored JSON holds: NaN already null
        run = clean.get("run") if isinstance(clean.get("run"), dict) else {}
        items = [i for i in clean.get("items") or [] if isinstance(i, dict)]
        gate = clean.get("gate") if isinstance(clean.get("gate"), dict) else {}
        passed = gate.get("passed")
        columns = ("started", "finished", "model", "fingerprint", "git_commit", "suites", "gate_passed",
                   "summary", "report", "seconds")
        values = (
            _text(run.get("started")) or _utc_now(),
            _text(run.get("finished")) or _utc_now(),
            _text(run.get("model")),
            _text(fingerprint),
            _text(git_commit),
            dumps(sorted({str(i["file"]) for i in items if i.get("file") is not None})),
            None if passed is None else bool(passed),
            dumps({k: clean.get(k) for k in SUMMARY_KEYS}),
            text,
            _number(run.get("seconds")),
        )
        rows, seen = [], set()
        for idx, item in enumerate(items):
            nodeid = item.get("nodeid")
            if nodeid is None or str(nodeid) in seen:
                continue  # each node id once: the first record wins
            seen.add(str(nodeid))
            rows.append((idx, str(nodeid), _text(item.get("content_hash")), _text(item.get("prompt_hash")),
                         _text(item.get("subset")), _text(item.get("outcome")), _number(item.get("chosen_score")),
                         _number(item.get("rejected_score")), _number(item.get("margin"))))
        with self._write() as cur:
            run_id = self._insert_run(cur, columns, values)
            if rows:
                cur.executemany(
                    self._sql("INSERT INTO items (run_id, idx, nodeid, content_hash, prompt_hash, subset, outcome,"
                              " chosen_score, rejected_score, margin) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
                    [(run_id, *row) for row in rows],
                )
        return run_id

    @_guarded
    def get_run(self, run_id: int) -> dict | None:
        """The stored report (items included) with run["id"] set; None if there is no such run."""
        try:
            run_id = int(run_id)
        except (TypeError, ValueError):
            return None
        if not -(2**63) <= run_id < 2**63:
            return None
        rows = self._query(self._sql("SELECT report FROM runs WHERE id = ?"), (run_id,))
        if not rows:
            return None
        report = json.loads(rows[0][0])
        if not isinstance(report.get("run"), dict):
            report["run"] = {}
        report["run"]["id"] = run_id
        return report

    @_guarded
    def run_info(self, run_id: int) -> dict | None:
        """The run row's own columns (no report): id, started, finished, model, fingerprint, git_commit,
        suites, gate_passed, seconds, n (items stored)."""
        rows = self._query(self._sql(
            "SELECT r.id, r.started, r.finished, r.model, r.fingerprint, r.git_commit, r.suites, r.gate_passed,"
            " r.seconds, (SELECT COUNT(*) FROM items i WHERE i.run_id = r.id) FROM runs r WHERE r.id = ?"),
            (int(run_id),))
        if not rows:
            return None
        (id_, started, finished, model, fingerprint, git_commit, suites, passed, seconds, n) = rows[0]
        return {"id": int(id_), "started": started, "finished": finished, "model": model,
                "fingerprint": fingerprint, "git_commit": git_commit, "suites": json.loads(suites or "[]"),
                "gate_passed": None if passed is None else bool(passed), "seconds": seconds, "n": int(n)}

    @_guarded
    def find_run(self, ref: str | int, items: dict[str, str] | None = None, exclude: int | None = None) -> dict | None:
        """Resolve a run reference to its report (as get_run), or None.

        ref is "latest": the most recently recorded run other than `exclude` that shares at
        least one (nodeid, content_hash) with `items` (nodeid -> content_hash; None: any run);
        an integer id (exclude does not apply); or a model name: its most recent run other
        than `exclude`. "Most recent" is the order of recording (the id).
        """
        run_id = self._resolve(ref, items, exclude)
        return None if run_id is None else self.get_run(run_id)

    @_guarded
    def latest_complete(self, files: list[str], exclude: int | None = None) -> tuple[dict | None, list[int]]:
        """The most recent complete run over exactly these files (the same selection), as get_run,
        and the ids of the newer partial runs of those files it passed over (-k, --lf, a crash, ...)."""
        rows = self._query(self._sql("SELECT r.id, r.summary FROM runs r WHERE r.suites = ? ORDER BY r.id DESC"),
                           (dumps(sorted(set(files))),))
        passed_over = []
        for id_, summary in rows:
            if exclude is not None and int(id_) == int(exclude):
                continue
            if ((json.loads(summary or "{}") or {}).get("selection") or {}).get("partial"):
                passed_over.append(int(id_))
                continue
            return self.get_run(int(id_)), passed_over
        return None, passed_over

    def _resolve(self, ref: str | int, items: dict[str, str] | None, exclude: int | None) -> int | None:
        excl, excl_params = ("", []) if exclude is None else (" AND r.id <> ?", [int(exclude)])
        if isinstance(ref, int) and not isinstance(ref, bool):
            return ref if self.get_run(ref) is not None else None
        ref = str(ref).strip()
        if ref == "latest":
            if items is None:
                rows = self._query(self._sql(f"SELECT r.id FROM runs r WHERE 1 = 1{excl} ORDER BY r.id DESC LIMIT 1"),
                                   excl_params)
            elif not items:
                return None
            else:
                with self._probe({str(k): "" if v is None else str(v) for k, v in items.items()}) as (src, params):
                    rows = self._query(self._sql(
                        f"SELECT r.id FROM runs r WHERE EXISTS (SELECT 1 FROM items i JOIN {src}"
                        f" ON p.nodeid = i.nodeid AND p.content_hash = COALESCE(i.content_hash, '')"
                        f" WHERE i.run_id = r.id){excl} ORDER BY r.id DESC LIMIT 1"), [*params, *excl_params])
            return int(rows[0][0]) if rows else None
        if ref.isdigit() and int(ref) < 2**63:
            rows = self._query(self._sql("SELECT id FROM runs WHERE id = ?"), (int(ref),))
            if rows:
                return int(rows[0][0])
        rows = self._query(self._sql(f"SELECT r.id FROM runs r WHERE r.model = ?{excl} ORDER BY r.id DESC LIMIT 1"),
                           [ref, *excl_params])
        return int(rows[0][0]) if rows else None

    @_guarded
    def list_runs(self, limit: int | None = 20, *, model: str | None = None, suite: str | None = None) -> list[dict]:
        """The most recent runs first: id, started, model, git_commit, n (items), accuracy (overall),
        gate_passed, plus fingerprint, seconds and suites. limit None or <= 0: all runs.

        model: only runs whose model name contains it (case-insensitive). suite: only runs that ran
        items of that benchmark file or --rm-bench suite (a key of the report's run.suites, e.g.
        benchmarks/chat.rmbench.yaml or rewardbench; a file may also be named without its folder)."""
        where, params = [], []
        if model:
            where.append("LOWER(r.model) LIKE ? ESCAPE '\\'")
            params.append(f"%{_like(model.lower())}%")
        if suite:
            # the suites column is the JSON list of those keys: match one whole element
            where.append("(r.suites LIKE ? ESCAPE '\\' OR r.suites LIKE ? ESCAPE '\\')")
            params += [f"%{_like(dumps(suite))}%", f"%{_like(dumps('/' + suite)[1:])}%"]
        sql = ("SELECT r.id, r.started, r.model, r.git_commit, r.gate_passed, r.summary, r.fingerprint, r.seconds,"
               " r.suites, (SELECT COUNT(*) FROM items i WHERE i.run_id = r.id) FROM runs r"
               + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY r.id DESC")
        if limit is not None and int(limit) > 0:
            sql += " LIMIT ?"
            params.append(int(limit))
        out = []
        for id_, started, model, commit, passed, summary, fingerprint, seconds, suites, n in self._query(
                self._sql(sql), params):
            overall = (json.loads(summary or "{}") or {}).get("overall") or {}
            out.append({
                "id": int(id_), "started": started, "model": model, "git_commit": commit, "n": int(n),
                "accuracy": overall.get("accuracy"), "gate_passed": None if passed is None else bool(passed),
                "fingerprint": fingerprint, "seconds": seconds, "suites": json.loads(suites or "[]"),
            })
        return out

    @_guarded
    def run_files(self) -> list[dict]:
        """Every run, newest first: id, model, suites (the benchmark files and suites it ran),
        partial (a -k / --lf / crashed selection) and subsets (name -> accuracy), for the
        cross-run tables of `runs agreement`, `leaderboard`, `correlate` and `seeds`."""
        out = []
        for id_, model, suites, summary in self._query(self._sql(
                "SELECT r.id, r.model, r.suites, r.summary FROM runs r ORDER BY r.id DESC")):
            summary = json.loads(summary or "{}") or {}
            out.append({"id": int(id_), "model": model, "suites": json.loads(suites or "[]"),
                        "partial": bool((summary.get("selection") or {}).get("partial")),
                        "subsets": {name: (block or {}).get("accuracy")
                                    for name, block in (summary.get("subsets") or {}).items()}})
        return out

    @_guarded
    def item_outcomes(self, run_id: int) -> list[tuple]:
        """(nodeid, subset, outcome, prompt_hash, chosen_score, rejected_score) of every item stored for one run."""
        return [(str(row[0]), *row[1:]) for row in self._query(self._sql(
            "SELECT nodeid, subset, outcome, prompt_hash, chosen_score, rejected_score FROM items"
            " WHERE run_id = ? ORDER BY idx"), (int(run_id),))]


# ------------------------------------------------------------------------------- SQLite


class SqliteStore(RunStore):
    dialect = SQLITE
    _driver_errors = (sqlite3.Error,)

    def __init__(self, path: str, read_only: bool = False):
        self.path = path
        self.target = path
        self.read_only = read_only
        if read_only:
            self._conn, self.moved_aside = self._open_read_only(path), None
        else:
            self._conn, self.moved_aside = open_shared(path, self._create, "the run store", StoreWarning, StoreError)

    def _open_read_only(self, path: str) -> sqlite3.Connection:
        """mode=ro: nothing is created, repaired or moved; an unreadable file is one StoreError."""
        from urllib.parse import quote

        from .sqlite_file import BUSY_TIMEOUT_S, is_corruption

        if not os.path.isfile(path):
            raise StoreError(f"no run store at {path}")
        uri = "file:" + quote(os.path.abspath(path)) + "?mode=ro"
        side = [path + suffix for suffix in ("-wal", "-shm") if not os.path.exists(path + suffix)]
        conn = None
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_S * 1000}")
            check = conn.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise StoreError(f"the run store {path} is damaged (integrity check: {' '.join(str(check).split())});"
                                 " it was left as it is")
            version = self._version(conn)
            if version is None and conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]:
                raise StoreError(f"{path} is an SQLite database but not a pytest-rmbench run store")
            if version is not None and version != SCHEMA_VERSION:
                raise StoreError(f"the run store {path} has schema version {version}; this pytest-rmbench"
                                 f" reads version {SCHEMA_VERSION} (upgrade pytest-rmbench or use another store)")
            self._empty = version is None  # an empty file: a store with no runs yet
            return conn
        except sqlite3.DatabaseError as exc:
            self._unopened(conn, side)
            why = " ".join(str(exc).split())
            if is_corruption(exc):
                raise StoreError(f"the run store {path} is unreadable ({why}); it was left as it is") from exc
            raise StoreError(f"the run store {path} could not be opened: {why}") from exc
        except BaseException:
            self._unopened(conn, side)
            raise

    @staticmethod
    def _unopened(conn, side: list[str]) -> None:
        """Close a connection that failed to open, and remove the empty -wal and the -shm SQLite
        made for it (a file it could not read is left exactly as it was found)."""
        if conn is not None:
            conn.close()
        for name in side:
            try:
                if name.endswith("-shm") or os.path.getsize(name) == 0:
                    os.unlink(name)
            except OSError:
                pass

    def _create(self, conn: sqlite3.Connection) -> None:
        conn.execute("PRAGMA foreign_keys = ON")
        if self._version(conn) != SCHEMA_VERSION:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if self._version(conn) is None:  # no other process made it while we waited
                    for statement in SQLITE.ddl():
                        conn.execute(statement)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            version = self._version(conn)
            if version != SCHEMA_VERSION:
                raise StoreError(f"the run store {self.path} has schema version {version}; this pytest-rmbench"
                                 f" reads version {SCHEMA_VERSION} (upgrade pytest-rmbench or use another store)")

    @staticmethod
    def _version(conn) -> int | None:
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return None
            raise
        return int(row[0]) if row else None

    def _query(self, sql, params=()):
        if getattr(self, "_empty", False):
            return []
        return self._conn.execute(sql, tuple(params)).fetchall()

    @contextmanager
    def _write(self):
        if self.read_only:
            raise StoreError(f"the run store {self.path} was opened read-only")
        self._conn.execute("BEGIN IMMEDIATE")  # take the write lock now: no deadlock between two readers upgrading
        try:
            yield self._conn.cursor()
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def _insert_run(self, cur, columns, values):
        cur.execute(f"INSERT INTO runs ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", values)
        return int(cur.lastrowid)

    @contextmanager
    def _probe(self, pairs):
        self._conn.execute("CREATE TEMP TABLE IF NOT EXISTS rmbench_probe (nodeid TEXT PRIMARY KEY, content_hash TEXT)")
        self._conn.execute("DELETE FROM temp.rmbench_probe")
        self._conn.executemany("INSERT INTO temp.rmbench_probe VALUES (?, ?)", list(pairs.items()))
        try:
            yield "temp.rmbench_probe AS p", []
        finally:
            self._conn.execute("DELETE FROM temp.rmbench_probe")

    def close(self) -> None:
        conn = getattr(self, "_conn", None)
        if conn is not None:
            conn.close()
            self._conn = None


# --------------------------------------------------------------------------- PostgreSQL


class PostgresStore(RunStore):
    dialect = POSTGRES

    def __init__(self, url: str):
        self.target = redact(url)
        try:
            import psycopg
        except ImportError as exc:
            raise StoreError(
                f"the run store {self.target} is a PostgreSQL URL, which needs psycopg 3:"
                f' pip install "pytest-rmbench[postgres]"'
            ) from exc
        self._driver_errors = (psycopg.Error,)
        kwargs = {"autocommit": True}
        if "connect_timeout" not in url:
            kwargs["connect_timeout"] = 10
        try:
            self._conn = psycopg.connect(url, **kwargs)
        except psycopg.Error as exc:
            raise StoreError(f"could not connect to the run store {self.target}: {str(exc).strip()}") from exc
        try:
            if self._version() != SCHEMA_VERSION:
                with self._conn.transaction():
                    # One session creates the schema; the others wait here, then find it made. (DDL
                    # run while other sessions insert would deadlock with them: CREATE INDEX locks the table.)
                    self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_DDL_LOCK,))
                    if self._version() is None:
                        for statement in POSTGRES.ddl():
                            self._conn.execute(statement)
                version = self._version()
                if version != SCHEMA_VERSION:
                    raise StoreError(f"the run store {self.target} has schema version {version}; this"
                                     f" pytest-rmbench reads version {SCHEMA_VERSION}")
        except psycopg.Error as exc:
            self._conn.close()
            raise StoreError(f"the run store {self.target} could not be prepared: {str(exc).strip()}") from exc
        except BaseException:
            self._conn.close()
            raise

    def _version(self) -> int | None:
        # A plain catalog query, not to_regclass(): that reads the session's relation cache, which can
        # still say "no such table" after another session created it while we waited for the lock.
        row = self._conn.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = current_schema()"
            " AND tablename = 'meta')").fetchone()
        if not row[0]:
            return None
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        return int(row[0]) if row else None

    def _query(self, sql, params=()):
        return self._conn.execute(sql, list(params)).fetchall()

    @contextmanager
    def _write(self):
        with self._conn.transaction():
            with self._conn.cursor() as cur:
                yield cur

    def _insert_run(self, cur, columns, values):
        cur.execute(
            f"INSERT INTO runs ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))}) RETURNING id",
            values,
        )
        return int(cur.fetchone()[0])

    @contextmanager
    def _probe(self, pairs):
        yield "unnest(?::text[], ?::text[]) AS p (nodeid, content_hash)", [list(pairs), list(pairs.values())]

    def close(self) -> None:
        conn = getattr(self, "_conn", None)
        if conn is not None:
            conn.close()
            self._conn = None
