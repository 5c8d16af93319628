"""pytest -n N: whole chunks per worker, GPU pinning, a worker killed mid-chunk."""

import json

import pytest

from pytest_rmbench.xdist import assign_gpus

CONFTEST = """
import json, os
import pytest
from pytest_rmbench.models.base import Prepared

class Counting:
    kind = "counting"; dtype = "n/a"; device = "cpu"
    name = "counting"
    def prepare(self, requests):
        return [Prepared(r, len(r.answer)) for r in requests]
    def score_batch(self, batch):
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        if os.environ.get("DIE_ONCE") and worker == "gw0" and not os.path.exists("died"):
            open("died", "w").close()
            os._exit(3)  # a worker killed in the middle of a chunk
        with open(f"batches-{worker}.log", "a") as fh:
            fh.write(json.dumps([p.request.answer for p in batch]) + "\\n")
        return [float(len(p.request.answer)) for p in batch]

@pytest.hookimpl
def pytest_rmbench_make_model(config, spec):
    with open("devices.log", "a") as fh:
        fh.write(f"{os.environ.get('PYTEST_XDIST_WORKER')} {os.environ.get('CUDA_VISIBLE_DEVICES')}\\n")
    if spec.model == "counting":
        return Counting()
"""


def suite_text(n=24):
    # every answer is distinct, so each chunk has 2 * chunk_size sequences
    lines = [
        json.dumps({"id": i, "subset": f"s{i % 3}", "prompt": "p", "chosen": f"chosen answer {i:03d} long", "rejected": f"rej {i:03d}"})
        for i in range(n)
    ]
    return "\n".join(lines) + "\n"


@pytest.fixture
def suite(pytester):
    pytester.makeconftest(CONFTEST)
    (pytester.path / "items.rmbench.jsonl").write_text(suite_text())
    pytester.makepyfile(test_plain="def test_a():\n    pass\ndef test_b():\n    pass\n")
    return pytester


def batches(pytester):
    out = {}
    for path in pytester.path.glob("batches-*.log"):
        out[path.stem.split("-", 1)[1]] = [json.loads(line) for line in path.read_text().splitlines()]
    return out


def test_each_chunk_goes_whole_to_one_worker_and_is_scored_once(suite):
    result = suite.runpytest_subprocess(
        "--rm-model=counting", "-n", "2", "--rm-chunk-size", "3", "--rm-batch-size", "100", "--rm-report=run.json",
        "--rm-min-batch-fill", "0",
    )
    assert result.ret == 0
    per_worker = batches(suite)
    assert set(per_worker) == {"gw0", "gw1"}, "both workers got work"
    all_batches = [b for bs in per_worker.values() for b in bs]
    assert len(all_batches) == 8, "24 items in chunks of 3: one batch per chunk, each scored exactly once"
    scored = [a for b in all_batches for a in b]
    assert len(scored) == len(set(scored)) == 48
    for batch in all_batches:  # a batch holds one whole chunk: 3 consecutive items
        ids = sorted({int(a.split()[-2] if a.startswith("chosen") else a.split()[-1]) for a in batch})
        assert len(ids) == 3 and ids[-1] - ids[0] == 2 and ids[0] % 3 == 0
    data = json.loads((suite.path / "run.json").read_text())
    assert [w["worker"] for w in data["workers"]] == ["gw0", "gw1"]
    assert sum(w["items"] for w in data["workers"]) == 24
    assert all(w["batches"] >= 1 and w["seconds"] >= 0 and w["peak_memory_bytes"] > 0 for w in data["workers"])
    result.stdout.fnmatch_lines(["worker gw0: * items, * batches*", "worker gw1: * items*"])


def test_reports_are_identical_with_n0_n1_n2(suite):
    reports = []
    for n in ("0", "1", "2"):
        suite.runpytest_subprocess("--rm-model=builtin:random", "-n", n, "--rm-chunk-size", "5", f"--rm-report=r{n}.json")
        data = json.loads((suite.path / f"r{n}.json").read_text())
        reports.append({k: data[k] for k in ("items", "subsets", "overall", "sections", "length_baseline", "gate")})
    assert reports[0] == reports[1] == reports[2]
    assert len(reports[0]["items"]) == 24


@pytest.mark.parametrize(
    "env, args, expected",
    [
        ({"RMBENCH_GPU_COUNT": "4"}, ["-n", "2"], {"gw0": "0", "gw1": "1"}),
        ({"RMBENCH_GPU_COUNT": "4"}, ["-n", "2", "--rm-gpus-per-worker", "2"], {"gw0": "0,1", "gw1": "2,3"}),
        ({"CUDA_VISIBLE_DEVICES": "5,7"}, ["-n", "2"], {"gw0": "5", "gw1": "7"}),
        ({"RMBENCH_GPU_COUNT": "3"}, ["-n", "auto"], {"gw0": "0", "gw1": "1", "gw2": "2"}),
    ],
)
def test_each_worker_sees_its_own_gpus(suite, monkeypatch, env, args, expected):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = suite.runpytest_subprocess("--rm-model=counting", "--rm-chunk-size", "2", *args)
    assert result.ret == 0
    seen = dict(line.split() for line in (suite.path / "devices.log").read_text().splitlines())
    assert seen == expected


def test_no_gpus_leaves_the_environment_alone(suite, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("RMBENCH_GPU_COUNT", "0")
    suite.runpytest_subprocess("--rm-model=counting", "-n", "2")
    assert set((suite.path / "devices.log").read_text().split()) <= {"gw0", "gw1", "None"}


def test_small_sets_are_cut_finer_under_xdist(suite):
    # 24 items, 2 workers, chunk size 128: chunks of 3, so each worker gets several
    suite.runpytest_subprocess("--rm-model=counting", "-n", "2", "--rm-batch-size", "100", "--rm-min-batch-fill", "0")
    per_worker = batches(suite)
    assert set(per_worker) == {"gw0", "gw1"}, "both workers got chunks"
    assert sum(len(b) for b in per_worker.values()) == 8
    assert all(len(batch) == 6 for bs in per_worker.values() for batch in bs)


def test_chunk_size_for():
    from pytest_rmbench.engine import chunk_size_for

    assert chunk_size_for(128, 10_000, 1) == 128
    assert chunk_size_for(128, 10_000, 2) == 128
    assert chunk_size_for(128, 200, 2) == 25  # ceil(200 / 8)
    assert chunk_size_for(128, 3, 4) == 1


def test_assign_gpus_round_robin():
    assert assign_gpus(["0", "1"], 3, 1) == ["0", "1", "0"]
    assert assign_gpus(["0", "1", "2"], 2, 2) == ["0,1", "0,1"]
    assert assign_gpus([], 2, 1) == [None, None]


def test_worker_killed_mid_chunk_loses_nothing_and_counts_nothing_twice(suite, monkeypatch):
    monkeypatch.setenv("DIE_ONCE", "1")
    result = suite.runpytest_subprocess(
        "--rm-model=counting", "-n", "2", "--rm-chunk-size", "4", "--rm-report=run.json", "--rm-min-accuracy", "overall=0.9"
    )
    assert (suite.path / "died").exists(), "the worker really died"
    data = json.loads((suite.path / "run.json").read_text())
    nodeids = [i["nodeid"] for i in data["items"]]
    assert len(nodeids) == len(set(nodeids)) == 24
    assert data["overall"]["accuracy"] == 1.0
    assert data["recovered"], "the dead worker's item is listed"
    result.stdout.fnmatch_lines(["*warning: an xdist worker died*scored again*"])
    assert result.ret == 0, "the recovered run's exit status is the gate's"
