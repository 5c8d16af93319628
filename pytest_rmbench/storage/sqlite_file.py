"""Opening an SQLite file that several processes share: WAL, waiting writers, corruption.

Used by the score cache and the run store alike. A file SQLite cannot read (not a
database, malformed, truncated) is moved aside as `<name>.corrupt-<timestamp>` with a
warning and a new one is created; a file that is merely locked is never taken for corrupt.
"""

from __future__ import annotations

import os
import sqlite3
import time
import warnings
from typing import Callable

BUSY_TIMEOUT_S = 120  # a writer waits this long for another one before giving up


class Corrupt(Exception):
    pass


def is_corruption(exc: sqlite3.DatabaseError) -> bool:
    """SQLITE_CORRUPT or SQLITE_NOTADB; a locked or busy database is not corrupt."""
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    if code is not None:
        return code & 0xFF in (11, 26)
    text = str(exc).lower()
    return "malformed" in text or "not a database" in text or not isinstance(exc, sqlite3.OperationalError)


def enable_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL. The switch does not wait on the busy handler (two processes creating the
    file at once get "database is locked" at once), so wait here, as long as a writer would."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    delay = 0.01
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def _identity(path: str):
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def move_aside(path: str, reason: str, what: str, category: type[Warning]) -> str | None:
    stamp = int(time.time())
    aside = f"{path}.corrupt-{stamp}"
    n = 1
    while os.path.exists(aside):
        aside = f"{path}.corrupt-{stamp}-{n}"
        n += 1
    try:
        os.replace(path, aside)
    except FileNotFoundError:
        return None  # someone else moved it
    for suffix in ("-wal", "-shm"):
        try:
            os.replace(path + suffix, aside + suffix)
        except OSError:
            pass
    warnings.warn(category(f"{what} {path} was unreadable ({reason}); it was moved to {aside} and rebuilt"), stacklevel=4)
    return aside


def open_shared(path: str, setup: Callable[[sqlite3.Connection], None], what: str,
                category: type[Warning], fail: type[Exception]) -> tuple[sqlite3.Connection, str | None]:
    """(connection, where a corrupt file was moved or None). `setup` creates tables; it may raise Corrupt."""
    memory = path == ":memory:" or path.startswith("file:")
    if not memory:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    moved = None
    reason = ""
    for _ in range(3):
        identity = _identity(path)
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, uri=path.startswith("file:"))
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_S * 1000}")
            check = conn.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise Corrupt(f"integrity check: {check}")
            enable_wal(conn)
            setup(conn)
            return conn, moved
        except sqlite3.DatabaseError as exc:
            conn.close()
            if not is_corruption(exc):
                raise fail(f"{what} {path} could not be opened: {exc}") from exc
            reason = str(exc)
        except Corrupt as exc:
            conn.close()
            reason = str(exc)
        except BaseException:
            conn.close()
            raise
        if not memory and _identity(path) == identity:  # else another process replaced it meanwhile: look again
            moved = move_aside(path, reason, what, category) or moved
    raise fail(f"{what} {path} is unreadable and could not be replaced: {reason}")
