"""Model fingerprints for the score cache, from files only (no torch, no model load).

Every file of the model folder counts by its bytes (sha256), weights included: a checkpoint
rewritten in place with the same size and mtime (`cp -p`, a tarball, `rsync -a`) changes the
fingerprint, so the score cache can never serve the old checkpoint's scores. Hashing a large
file once is ~1 s per 2 GB; after that its digest comes from a small per-user SQLite file
(`$XDG_CACHE_HOME/pytest-rmbench/file-hashes.sqlite`, else `~/.cache/...`), keyed by the file's
real path, size, mtime_ns, ctime_ns, inode and device. Any write to a file moves its ctime to
the current time, which a user cannot set back, so a changed file always misses and is read
again. A hash cache that cannot be opened or written only means hashing again.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time

from .base import ModelSpec
from .chat import FORMAT_VERSION

OUTCOME_ONLY_OPTIONS = ("step_threshold",)
BLOCK = 8 * 2**20  # bytes read per step while hashing
CACHED_MIN_SIZE = 2**20  # smaller files (configs, most tokenizers) are hashed every time: cheaper than a lookup
# A digest is remembered only for a file whose ctime is at least this much older than the start
# of its hashing: a write within the same timestamp tick as the hash could otherwise keep the
# key unchanged (the "racy" case git guards against the same way). Such a file is simply hashed
# again next time, when it is old enough.
RACY_NS = 2 * 10**9


def local_model_dir(model: str) -> str | None:
    if os.path.isdir(model):
        return model
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(model, local_files_only=True)  # the cached snapshot, no network
    except Exception:
        return None


def local_model_fingerprint(spec: ModelSpec, kind: str, hash_cache: str | None = None) -> str | None:
    """The score cache's key for this model: its settings and the bytes of its files.

    hash_cache: the SQLite file of remembered file digests (default: default_hash_cache())."""
    folder = local_model_dir(spec.model)
    if folder is None:
        return None  # not available locally: loading will say why; nothing to cache against
    digest = hashlib.sha256()
    # the step threshold decides outcomes from scores, never the scores themselves
    options = sorted((k, v) for k, v in spec.options.items() if k not in OUTCOME_ONLY_OPTIONS)
    settings = {
        "kind": kind, "dtype": spec.dtype, "max_length": spec.max_length, "seed": spec.seed,
        "format": FORMAT_VERSION, "options": options,
    }
    if kind == "prm":
        from .prm import PRM_FORMAT_VERSION  # no torch at import

        settings["prm_format"] = PRM_FORMAT_VERSION
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    for name, value in sorted(spec.options.items()):
        if isinstance(value, str) and name != "ref_model" and os.path.isfile(value):
            with open(value, "rb") as fh:  # e.g. a judge template: its text, not its name, decides
                digest.update(name.encode() + b"\0" + hashlib.sha256(fh.read()).digest())
    if kind == "judge":
        from .judge import DEFAULT_TEMPLATE  # a changed default template changes the scores

        digest.update(DEFAULT_TEMPLATE.encode())
    with FileHashCache(default_hash_cache() if hash_cache is None else hash_cache) as hashes:
        _hash_folder(digest, folder, hashes)
        reference = spec.options.get("ref_model")
        if reference:  # a DPO reward depends on the reference model too
            ref_folder = local_model_dir(reference)
            if ref_folder is None:
                return None
            _hash_folder(digest, ref_folder, hashes)
    return f"{kind}:{digest.hexdigest()}"


def _hash_folder(digest, folder: str, hashes: FileHashCache) -> None:
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            rel = os.path.relpath(path, folder)
            digest.update(f"{rel}\0".encode() + file_digest(path, hashes))


def default_hash_cache() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "pytest-rmbench", "file-hashes.sqlite")


def _hash_file(path: str) -> bytes:
    """sha256 of the file's bytes, streamed BLOCK bytes at a time."""
    digest = hashlib.sha256()
    buffer = bytearray(BLOCK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as fh:
        while True:
            got = fh.readinto(buffer)
            if not got:
                return digest.digest()
            digest.update(view[:got])


def _key(path: str, stat: os.stat_result) -> tuple:
    return (path, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino, stat.st_dev)


def file_digest(path: str, hashes: FileHashCache | None = None) -> bytes:
    """sha256 of a file's bytes; a large file's digest is remembered in hashes against its key."""
    real = os.path.realpath(path)  # a Hub snapshot links to its blobs: one entry per blob
    stat = os.stat(real)
    if hashes is None or stat.st_size < CACHED_MIN_SIZE:
        return _hash_file(real)
    key = _key(real, stat)
    known = hashes.get(key)
    if known is not None:
        return known
    for _ in range(3):  # a file that changes while it is read is read again
        started = time.time_ns()
        value = _hash_file(real)
        after = _key(real, os.stat(real))
        if after == key:
            if key[3] < started - RACY_NS:
                hashes.put(key, value)
            return value
        key = after
    return value  # still changing: a digest of no finished file, which no later run will match


def _stat_text(key: tuple) -> str:
    return ":".join(str(field) for field in key[1:])


class FileHashCache:
    """(real path, size, mtime_ns, ctime_ns, inode, device) -> sha256, in a SQLite file.

    Never fatal: a file that cannot be created, opened, read or written turns the cache off
    (for this process) and every file is hashed again. hits and misses count lookups."""

    def __init__(self, path: str | None):
        self.path = path
        self.hits = self.misses = 0
        self._conn = None
        if path is None:
            return
        try:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            conn = sqlite3.connect(path, timeout=10, isolation_level=None)
            try:
                # the stat fields as one text: inode and device numbers may not fit SQLite's int64
                conn.execute("CREATE TABLE IF NOT EXISTS file_hashes (path TEXT PRIMARY KEY, stat TEXT, sha256 BLOB)")
            except sqlite3.Error:
                conn.close()
                raise
            self._conn = conn
        except (OSError, sqlite3.Error):
            self._conn = None

    def get(self, key: tuple) -> bytes | None:
        value = None
        if self._conn is not None:
            try:
                row = self._conn.execute("SELECT stat, sha256 FROM file_hashes WHERE path = ?", (key[0],)).fetchone()
            except sqlite3.Error:
                self.close()
                row = None
            if row is not None and row[0] == _stat_text(key) and isinstance(row[1], bytes) and len(row[1]) == 32:
                value = row[1]
        if value is None:
            self.misses += 1
        else:
            self.hits += 1
        return value

    def put(self, key: tuple, value: bytes) -> None:
        if self._conn is None:
            return
        try:
            self._conn.execute("INSERT OR REPLACE INTO file_hashes VALUES (?, ?, ?)", (key[0], _stat_text(key), value))
        except sqlite3.Error:
            self.close()

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except sqlite3.Error:
                pass
            self._conn = None

    def __enter__(self) -> FileHashCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
