"""Faults provoked for real: SIGINT mid-run, CUDA out-of-memory, a report that cannot be written."""

import json
import signal
import subprocess
import sys
import time

CONFTEST = """
import json, os, time
import pytest
from pytest_rmbench.models.base import Prepared

class Slow:
    kind = "slow"; dtype = "n/a"; device = "cpu"; name = "slow"
    def prepare(self, requests):
        return [Prepared(r, len(r.answer)) for r in requests]
    def score_batch(self, batch):
        with open("batches.log", "a") as fh:
            fh.write(json.dumps([p.request.answer for p in batch]) + "\\n")
        time.sleep(0.3)
        return [float(len(p.request.answer)) for p in batch]

@pytest.hookimpl
def pytest_rmbench_make_model(config, spec):
    return Slow()

@pytest.hookimpl
def pytest_rmbench_model_fingerprint(config, spec):
    return "slow-v1"
"""


def test_sigint_keeps_scores_and_the_next_run_resumes(pytester):
    pytester.makeconftest(CONFTEST)
    rows = [{"id": i, "subset": "s", "prompt": f"p{i}", "chosen": f"good answer {i}", "rejected": f"bad {i}"} for i in range(40)]
    (pytester.path / "items.rmbench.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    args = [sys.executable, "-m", "pytest", "--rm-model=slow", "--rm-batch-size", "4", "--rm-report=run.json", "-p", "no:cacheprovider"]
    proc = subprocess.Popen(args, cwd=pytester.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log = pytester.path / "batches.log"
    deadline = time.time() + 60
    while time.time() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 3):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2, out  # pytest's "interrupted", not a gate result
    assert "KeyboardInterrupt" in out
    scored_before = {a for line in log.read_text().splitlines() for a in json.loads(line)}
    assert 8 <= len(scored_before) < 80
    log.unlink()
    resumed = subprocess.run(args, cwd=pytester.path, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stdout
    scored_after = {a for line in log.read_text().splitlines() for a in json.loads(line)}
    # only the batch that Ctrl-C cut short is scored again; every finished one came from the cache
    assert len(scored_after & scored_before) <= 4
    assert scored_before | scored_after == {f"good answer {i}" for i in range(40)} | {f"bad {i}" for i in range(40)}
    assert len(json.loads((pytester.path / "run.json").read_text())["items"]) == 40


OOM_CONFTEST = """
import pytest
from pytest_rmbench.models.base import Prepared

class OutOfMemoryError(RuntimeError):  # the name torch.cuda raises
    pass

class Greedy:
    kind = "greedy"; dtype = "n/a"; device = "cuda"; name = "greedy"
    def prepare(self, requests):
        return [Prepared(r, len(r.answer)) for r in requests]
    def score_batch(self, batch):
        if len(batch) > 2:
            raise OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return [float(len(p.request.answer)) for p in batch]

@pytest.hookimpl
def pytest_rmbench_make_model(config, spec):
    return Greedy()
"""


def test_out_of_memory_halves_batches_and_the_summary_says_so(pytester):
    pytester.makeconftest(OOM_CONFTEST)
    rows = [{"id": i, "subset": "s", "prompt": "p", "chosen": f"good answer {i}", "rejected": f"bad {i}"} for i in range(10)]
    (pytester.path / "items.rmbench.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    result = pytester.runpytest("--rm-model=greedy", "--rm-batch-size", "16", "--rm-report=run.json", "--rm-no-store")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["warning: out of memory * time(s): batches were halved and retried*"])
    data = json.loads((pytester.path / "run.json").read_text())
    assert data["overall"]["correct"] == 10 and data["workers"][0]["oom_halvings"] >= 1


def test_disk_full_while_writing_the_report_is_a_clear_error(pytester):
    """A real write failure: the file-size limit (RLIMIT_FSIZE) makes writes past it fail with EFBIG."""
    import resource

    rows = [{"id": i, "subset": "s", "prompt": "p" * 200, "chosen": f"good answer {i}" * 20, "rejected": f"bad {i}"}
            for i in range(300)]
    (pytester.path / "items.rmbench.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")

    def limit_file_size():
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))  # Python ignores SIGXFSZ

    args = [sys.executable, "-m", "pytest", "--rm-model=builtin:length", "--rm-no-store", "--rm-report=run.json",
            "-p", "no:cacheprovider", "-q"]
    proc = subprocess.run(args, cwd=pytester.path, capture_output=True, text=True, timeout=120, preexec_fn=limit_file_size)
    assert proc.returncode == 1, proc.stdout[-2000:]
    assert "pytest-rmbench: could not write 'run.json'" in proc.stdout and "File too large" in proc.stdout
    assert not (pytester.path / "run.json").exists(), "no half-written report is left behind"
    assert not list(pytester.path.glob("run.json.tmp*"))
