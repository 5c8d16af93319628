"""The persistent score cache: SQLite, one row per (model fingerprint, sequence).

Rows are written after every batch, so an interrupted run keeps what it scored and the
next run resumes. WAL mode and a busy timeout let xdist workers and parallel jobs write
at once. A file that SQLite cannot read is moved aside and rebuilt, with a warning.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
import time
from typing import Iterable

from ..items import MultiHeadScore, ScoreRequest, ScoreResult, request_parts
from .sqlite_file import open_shared

SCHEMA_VERSION = 1


class CacheWarning(UserWarning):
    pass


class CacheError(Exception):
    pass


def cache_key(request) -> str:
    """The score cache's key of one request: a SHA-256 of its parts (prompt, answer or steps)."""
    text = json.dumps(request_parts(request), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class ScoreCache:
    def __init__(self, path: str):
        self.path = path
        self._conn, self.moved_aside = open_shared(path, self._create, "the score cache", CacheWarning, CacheError)

    @staticmethod
    def _create(conn: sqlite3.Connection) -> None:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS scores (model TEXT NOT NULL, seq TEXT NOT NULL, score REAL NOT NULL,"
            " truncated INTEGER NOT NULL, created REAL NOT NULL, PRIMARY KEY (model, seq)) WITHOUT ROWID"
        )
        conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        # what made a fingerprint's scores (kind, dtype, device, versions): a fully cached run reports it
        conn.execute("CREATE TABLE IF NOT EXISTS models (model TEXT PRIMARY KEY, info TEXT NOT NULL)")
        conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))

    def get_many(self, model: str, requests: Iterable[ScoreRequest]) -> dict[ScoreRequest, ScoreResult]:
        keyed = {cache_key(r): r for r in requests}
        found: dict[ScoreRequest, ScoreResult] = {}
        keys = list(keyed)
        for start in range(0, len(keys), 500):  # SQLite's limit on bound parameters
            part = keys[start : start + 500]
            marks = ",".join("?" * len(part))
            rows = self._conn.execute(
                f"SELECT seq, score, truncated FROM scores WHERE model = ? AND seq IN ({marks})", [model, *part]
            )
            for seq, score, truncated in rows:
                if isinstance(score, str):  # per-step scores or a multi-head score, stored as JSON
                    score = _loaded(json.loads(score))
                found[keyed[seq]] = ScoreResult(score, bool(truncated))
        return found

    def put_many(self, model: str, results: Iterable[tuple[ScoreRequest, ScoreResult]]) -> None:
        rows = [
            (model, cache_key(r), _stored(res.score), int(res.truncated), time.time())
            for r, res in results
            if res.error is None and _finite(res.score)
        ]
        if rows:
            with self._conn:  # one transaction per batch
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.executemany("INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?, ?)", rows)

    def put_model_info(self, model: str, info: dict) -> None:
        with self._conn:
            self._conn.execute("INSERT OR REPLACE INTO models VALUES (?, ?)", (model, json.dumps(info)))

    def model_info(self, model: str) -> dict | None:
        row = self._conn.execute("SELECT info FROM models WHERE model = ?", (model,)).fetchone()
        return json.loads(row[0]) if row else None

    def close(self) -> None:
        self._conn.close()


def _finite(score) -> bool:
    if isinstance(score, tuple):
        return bool(score) and all(_finite(s) for s in score)
    return isinstance(score, (int, float)) and math.isfinite(score)


def _stored(score):
    if isinstance(score, MultiHeadScore):
        return json.dumps({"score": float(score), "heads": list(score.heads)})
    return json.dumps(list(score)) if isinstance(score, tuple) else score


def _loaded(value):
    if isinstance(value, dict):
        return MultiHeadScore(value["score"], value["heads"])
    return tuple(value)
