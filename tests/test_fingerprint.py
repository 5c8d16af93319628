"""Model fingerprints count weight files by their bytes; a per-user SQLite file remembers the digests."""

import json
import os
import shutil
import time

import pytest

from pytest_rmbench.models import fingerprint as fp
from pytest_rmbench.models.base import ModelSpec
from pytest_rmbench.models.kinds import pytest_rmbench_model_fingerprint

WEIGHTS = 3 * 2**20 + 5  # above the size from which digests are remembered, and not a whole number of blocks


def _safetensors_like(seed: int, size: int = WEIGHTS) -> bytes:
    header = json.dumps({"score.weight": {"dtype": "F32", "shape": [1, 8], "data_offsets": [0, 32]}}).encode()
    body = bytes((seed * 131 + i * 7) % 251 for i in range(256)) * (size // 256 + 1)
    return (len(header).to_bytes(8, "little") + header + body)[:size]


def _write_model(folder, seed=1):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as fh:
        json.dump({"architectures": ["LlamaForSequenceClassification"]}, fh)
    with open(os.path.join(folder, "model.safetensors"), "wb") as fh:
        fh.write(_safetensors_like(seed))
    return str(folder)


def _fingerprint(folder):
    return fp.local_model_fingerprint(ModelSpec(model=str(folder), kind="classifier"), "classifier")


@pytest.fixture
def hash_home(tmp_path, monkeypatch):
    """The per-user cache folder in tmp_path; files 50 ms old already count as settled."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(fp, "RACY_NS", 50_000_000, raising=False)
    return tmp_path / "xdg" / "pytest-rmbench" / "file-hashes.sqlite"


@pytest.fixture
def reads(monkeypatch):
    """Names of the files whose bytes were read, in order."""
    seen = []
    real = fp._hash_file

    def counting(path):
        seen.append(os.path.basename(path))
        return real(path)

    monkeypatch.setattr(fp, "_hash_file", counting)
    return seen


def _settle():
    time.sleep(0.1)  # past the 50 ms in which a digest is not trusted yet (see fp.RACY_NS)


def test_rewrite_in_place_with_same_size_and_mtime_changes_the_fingerprint(tmp_path, hash_home):
    model = _write_model(tmp_path / "model", seed=1)
    weights = os.path.join(model, "model.safetensors")
    _settle()
    before = _fingerprint(model)
    assert _fingerprint(model) == before  # now served from the hash cache
    old = os.stat(weights)
    with open(weights, "r+b") as fh:  # what `cp -p` or `tar -x` over the old checkpoint leaves behind
        fh.write(_safetensors_like(2))
    os.utime(weights, ns=(old.st_atime_ns, old.st_mtime_ns))
    new = os.stat(weights)
    assert (new.st_size, new.st_mtime_ns) == (old.st_size, old.st_mtime_ns)
    after = _fingerprint(model)
    assert after != before
    assert after == _fingerprint(_write_model(tmp_path / "fresh", seed=2))  # the bytes decide, nothing else
    assert after.startswith("classifier:")


def test_unchanged_file_is_not_read_again(tmp_path, hash_home, reads):
    model = _write_model(tmp_path / "model")
    _settle()
    first = _fingerprint(model)
    assert reads == ["config.json", "model.safetensors"]
    assert hash_home.is_file()
    reads.clear()
    assert _fingerprint(model) == first
    assert reads == ["config.json"]  # small files are hashed every time; the weights come from the cache
    with fp.FileHashCache(str(hash_home)) as hashes:
        assert fp.file_digest(os.path.join(model, "model.safetensors"), hashes) == fp._hash_file(
            os.path.join(model, "model.safetensors"))
        assert (hashes.hits, hashes.misses) == (1, 0)


def test_touch_rereads_but_keeps_the_fingerprint(tmp_path, hash_home, reads):
    model = _write_model(tmp_path / "model")
    weights = os.path.join(model, "model.safetensors")
    _settle()
    first = _fingerprint(model)
    os.utime(weights, ns=(0, 10**18))  # a new mtime (and ctime): checked again, same bytes, same scores
    reads.clear()
    assert _fingerprint(model) == first
    assert reads == ["config.json", "model.safetensors"]


def test_a_replaced_file_is_read_again(tmp_path, hash_home, reads):
    model = _write_model(tmp_path / "model", seed=1)
    weights = os.path.join(model, "model.safetensors")
    _settle()
    first = _fingerprint(model)
    with open(weights + ".tmp", "wb") as fh:
        fh.write(_safetensors_like(3))
    old = os.stat(weights)
    os.utime(weights + ".tmp", ns=(old.st_atime_ns, old.st_mtime_ns))
    os.replace(weights + ".tmp", weights)  # new inode, same size and mtime
    reads.clear()
    assert _fingerprint(model) != first
    assert reads == ["config.json", "model.safetensors"]


def test_a_just_written_file_is_not_remembered_yet(tmp_path, monkeypatch, reads):
    """Within RACY_NS of its last change a file could change again inside the same timestamp tick."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(fp, "RACY_NS", 3600 * 10**9)  # every file is "just written"
    model = _write_model(tmp_path / "model")
    first = _fingerprint(model)
    reads.clear()
    assert _fingerprint(model) == first
    assert reads == ["config.json", "model.safetensors"]


def test_a_file_changing_while_it_is_read_is_read_again(tmp_path, hash_home, monkeypatch):
    model = _write_model(tmp_path / "model", seed=1)
    weights = os.path.join(model, "model.safetensors")
    _settle()
    real, calls = fp._hash_file, []

    def rewritten_during_the_read(path):
        calls.append(path)
        digest = real(path)
        if len(calls) == 1 and path.endswith(".safetensors"):
            time.sleep(0.02)  # another timestamp tick
            with open(path, "r+b") as fh:
                fh.write(_safetensors_like(4))
        return digest

    monkeypatch.setattr(fp, "_hash_file", rewritten_during_the_read)
    with fp.FileHashCache(str(hash_home)) as hashes:
        got = fp.file_digest(weights, hashes)
    assert got == real(weights) and len(calls) == 2
    assert _fingerprint(model) == _fingerprint(_write_model(tmp_path / "fresh", seed=4))


def test_hub_snapshot_links_share_one_entry(tmp_path, hash_home, reads):
    blobs = tmp_path / "hub" / "blobs"
    blobs.mkdir(parents=True)
    (blobs / "0123abcd").write_bytes(_safetensors_like(5))
    for revision in ("rev1", "rev2"):
        snapshot = tmp_path / "hub" / "snapshots" / revision
        snapshot.mkdir(parents=True)
        (snapshot / "model.safetensors").symlink_to(blobs / "0123abcd")
    _settle()
    one = _fingerprint(tmp_path / "hub" / "snapshots" / "rev1")
    two = _fingerprint(tmp_path / "hub" / "snapshots" / "rev2")
    assert one == two
    assert reads == ["0123abcd"]


@pytest.mark.parametrize("damage", ["a file where the folder goes", "a folder where the database goes", "not a database"])
def test_a_broken_hash_cache_only_means_hashing_again(tmp_path, monkeypatch, hash_home, reads, damage):
    model = _write_model(tmp_path / "model")
    _settle()
    expected = _fingerprint(model)
    shutil.rmtree(tmp_path / "xdg")
    os.makedirs(tmp_path / "xdg")
    if damage == "a file where the folder goes":
        (tmp_path / "xdg" / "pytest-rmbench").write_text("not a folder")
    elif damage == "not a database":
        hash_home.parent.mkdir()
        hash_home.write_bytes(b"\x00garbage" * 512)
    else:
        hash_home.mkdir(parents=True)
    reads.clear()
    assert _fingerprint(model) == expected
    assert _fingerprint(model) == expected
    assert reads == ["config.json", "model.safetensors"] * 2


def test_the_kinds_hook_uses_content_fingerprints(tmp_path, hash_home):
    model = _write_model(tmp_path / "model", seed=1)
    _settle()
    before = pytest_rmbench_model_fingerprint(None, ModelSpec(model=model))
    assert before == _fingerprint(model)
    weights = os.path.join(model, "model.safetensors")
    old = os.stat(weights)
    with open(weights, "r+b") as fh:
        fh.write(_safetensors_like(6))
    os.utime(weights, ns=(old.st_atime_ns, old.st_mtime_ns))
    assert pytest_rmbench_model_fingerprint(None, ModelSpec(model=model)) != before
