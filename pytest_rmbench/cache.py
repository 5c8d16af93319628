"""The persistent score cache: SQLite, one row per (model fingerprint, sequence).

Rows are written after every batch, so an interrupted run keeps what it scored and the
next run resumes. WAL mode and a busy timeout let xdist workers and parallel jobs write
at once. A file that SQLite cannot read is moved aside and rebuilt, with a warning.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
import warnings
from typing import Iterable

from .items import ScoreRequest, ScoreResult

SCHEMA_VERSION = 1


class CacheWarning(UserWarning):
    pass


def request_key(request: ScoreRequest) -> str:
    text = json.dumps([request.prompt_key(), request.answer], ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class ScoreCache:
    def __init__(self, path: str):
        self.path = path
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.moved_aside: str | None = None
        try:
            self._conn = self._open()
        except sqlite3.DatabaseError as exc:
            self.moved_aside = f"{path}.corrupt-{int(time.time())}"
            os.replace(path, self.moved_aside)
            for suffix in ("-wal", "-shm"):
                if os.path.exists(path + suffix):
                    os.unlink(path + suffix)
            warnings.warn(CacheWarning(
                f"the score cache {path} was unreadable ({exc}); it was moved to {self.moved_aside} and rebuilt"
            ))
            self._conn = self._open()

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout = 60000")
            conn.execute("PRAGMA journal_mode = WAL")
            check = conn.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise sqlite3.DatabaseError(f"integrity check: {check}")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS scores (model TEXT NOT NULL, seq TEXT NOT NULL, score REAL NOT NULL,"
                " truncated INTEGER NOT NULL, created REAL NOT NULL, PRIMARY KEY (model, seq)) WITHOUT ROWID"
            )
            conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        except sqlite3.DatabaseError:
            conn.close()
            raise
        return conn

    def get_many(self, model: str, requests: Iterable[ScoreRequest]) -> dict[ScoreRequest, ScoreResult]:
        keyed = {request_key(r): r for r in requests}
        found: dict[ScoreRequest, ScoreResult] = {}
        keys = list(keyed)
        for start in range(0, len(keys), 500):  # SQLite's limit on bound parameters
            part = keys[start : start + 500]
            marks = ",".join("?" * len(part))
            rows = self._conn.execute(
                f"SELECT seq, score, truncated FROM scores WHERE model = ? AND seq IN ({marks})", [model, *part]
            )
            for seq, score, truncated in rows:
                found[keyed[seq]] = ScoreResult(score, bool(truncated))
        return found

    def put_many(self, model: str, results: Iterable[tuple[ScoreRequest, ScoreResult]]) -> None:
        rows = [
            (model, request_key(r), res.score, int(res.truncated), time.time())
            for r, res in results
            if res.error is None and res.score is not None and res.score == res.score and abs(res.score) != float("inf")
        ]
        if rows:
            with self._conn:  # one transaction per batch
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.executemany("INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?, ?)", rows)

    def close(self) -> None:
        self._conn.close()
