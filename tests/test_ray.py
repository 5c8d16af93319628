"""--rm-ray (#16): a Ray cluster scores the chunks, the pytest process is the controller.

One local cluster (2 CPUs, no dashboard) is started per module with `ray start --head` and the
runs join it with `--rm-ray ADDRESS`; one run starts its own with `--rm-ray local`. Each run is
a subprocess, as Ray's process model wants. Skipped, with the reason, only where Ray cannot start.
"""

import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

import pytest

ray = pytest.importorskip("ray", reason="the [ray] extra is not installed: pip install 'pytest-rmbench[ray]'")

N_ITEMS = 24


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster():
    """A 2-CPU Ray head on this machine, stopped through the process that started it."""
    temp = tempfile.mkdtemp(prefix="rmray")  # short: Ray's socket paths have a length limit
    port = free_port()
    # a throwaway cluster on this machine: no token authentication (ray start's default in Ray 2.5x)
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", RAY_USAGE_STATS_ENABLED="0",
               RAY_AUTH_MODE="disabled")
    cli = os.path.join(os.path.dirname(sys.executable), "ray")
    head = subprocess.Popen([cli, "start", "--head", "--block", "--num-cpus", "2", "--include-dashboard=false",
                             f"--port={port}", f"--temp-dir={temp}", "--disable-usage-stats"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    address = f"127.0.0.1:{port}"
    deadline, why = time.monotonic() + 90, "ray start ended"
    while time.monotonic() < deadline and head.poll() is None:
        probe = subprocess.run([sys.executable, "-c", f"import ray; ray.init(address={address!r}); ray.shutdown()"],
                               env=env, capture_output=True, text=True, timeout=60)
        if probe.returncode == 0:
            break
        why = (probe.stderr.strip().splitlines() or ["?"])[-1]
        time.sleep(1)
    else:
        head.kill()
        pytest.skip(f"a local Ray cluster could not start: {why}")
    yield address
    head.terminate()  # `ray start --block` stops the cluster's processes when it ends
    try:
        head.wait(timeout=30)
    except subprocess.TimeoutExpired:
        head.kill()


def items_text(n=N_ITEMS) -> str:
    return "".join(json.dumps({"id": i, "subset": f"s{i % 3}", "prompt": f"question {i}", "chosen": "c" * (i % 7 + 1),
                               "rejected": "r" * (i % 5 + 1)}) + "\n" for i in range(n))


@pytest.fixture
def bench(pytester, subprocess_env, monkeypatch):
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    (pytester.path / "items.rmbench.jsonl").write_text(items_text())
    return pytester


def run(pytester, report, *args):
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider", "--rm-no-store",
                                           f"--rm-report={report}", *args)
    data = json.loads((pytester.path / report).read_text()) if (pytester.path / report).exists() else None
    return result, data


def items(report) -> list[dict]:
    """The items as a run's report has them, without their timings."""
    return [{k: v for k, v in item.items() if k not in ("start", "stop", "duration")} for item in report["items"]]


def same_report(a, b) -> None:
    assert items(a) == items(b)
    for block in ("overall", "subsets", "sections", "gate", "selection"):
        assert a[block] == b[block], block


def test_a_ray_run_equals_n0_item_by_item(bench, cluster):
    gate = ("--rm-min-accuracy", "overall=0.6", "--rm-model=builtin:length")
    plain, n0 = run(bench, "n0.json", *gate)
    result, on_ray = run(bench, "ray.json", *gate, "--rm-ray", cluster, "--rm-ray-actors", "2", "--rm-chunk-size", "4")
    assert result.ret == plain.ret == 1  # 0.5 < 0.6: the same gate fails the same way
    same_report(n0, on_ray)
    assert [i["nodeid"] for i in on_ray["items"]] == [i["nodeid"] for i in n0["items"]]
    workers = on_ray["workers"]
    assert [w["worker"] for w in workers] == ["ray-0", "ray-1"]
    assert sum(w["items"] for w in workers) == N_ITEMS and sum(w["chunks"] for w in workers) == 8  # 3 a chunk: 4 per actor
    assert all(w["node"] and w["device"] == "cpu" and w["busy_seconds"] >= 0 for w in workers)
    assert sum(w["retried"] for w in workers) == 0
    result.stdout.fnmatch_lines([f"Ray ({cluster}): 8 chunks on 2 actor(s), 0 chunk(s) retried*",
                                 "Ray actor ray-0 on * (cpu): * chunks, *s busy, peak memory * MiB"])


def test_a_killed_actor_loses_and_double_counts_nothing(bench, cluster, monkeypatch):
    """Actor ray-0's process dies as it starts chunk 2: Ray restarts it and runs its unfinished chunks again."""
    plain, n0 = run(bench, "n0.json", "--rm-model=builtin:length")
    monkeypatch.setenv("RMBENCH_RAY_FAULT", "exit:0:2")
    result, on_ray = run(bench, "ray.json", "--rm-model=builtin:length", "--rm-ray", cluster, "--rm-ray-actors", "2",
                         "--rm-chunk-size", "3")
    same_report(n0, on_ray)
    assert len({i["nodeid"] for i in on_ray["items"]}) == len(on_ray["items"]) == N_ITEMS
    workers = {w["worker"]: w for w in on_ray["workers"]}
    retried = sum(w["retried"] for w in workers.values())
    assert retried >= 1 and workers["ray-0"]["restarts"] == 1, (workers, result.stdout.str())
    assert sum(w["chunks"] for w in workers.values()) == 8  # each chunk counted once, whichever attempt returned it
    assert sum(w["items"] for w in workers.values()) == N_ITEMS
    result.stdout.fnmatch_lines([f"Ray ({cluster}): 8 chunks on 2 actor(s), {retried} chunk(s) retried after an actor "
                                 "died (each item counted once)*", "Ray actor ray-0 on * restarted 1 time(s)"])


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from tinymodels import build_minilm_classifier

    return build_minilm_classifier(tmp_path_factory.mktemp("ray-models") / "minilm")


def cache_rows(path) -> dict:
    with sqlite3.connect(path) as conn:
        return dict(conn.execute("SELECT seq, score FROM scores").fetchall())


def test_a_tiny_real_model_on_local_ray_equals_n0_with_its_cache(bench, tiny_model, cluster):
    model = (f"--rm-model={tiny_model}", "--rm-save-scores=scores.jsonl")
    plain, n0 = run(bench, "n0.json", *model, "--rm-cache-dir=cache-n0")
    n0_scores = (bench.path / "scores.jsonl").read_text().splitlines()
    result, on_ray = run(bench, "ray.json", *model, "--rm-cache-dir=cache-ray", "--rm-ray", "local", "--rm-ray-actors", "2")
    assert result.ret == plain.ret
    assert [(i["nodeid"], i["outcome"]) for i in on_ray["items"]] == [(i["nodeid"], i["outcome"]) for i in n0["items"]]
    assert len({i["margin"] for i in n0["items"]}) > 10  # a model whose scores differ: the comparison means something
    for a, b in zip(n0["items"], on_ray["items"]):  # batches differ (finer chunks on 2 actors): equal to float noise
        assert a["chosen_score"] == pytest.approx(b["chosen_score"], abs=1e-5)
    first, second = cache_rows(bench.path / "cache-n0" / "scores.sqlite"), cache_rows(bench.path / "cache-ray" / "scores.sqlite")
    assert first.keys() == second.keys() and len(first) == 2 * N_ITEMS
    assert all(first[k] == pytest.approx(second[k], abs=1e-5) for k in first)
    assert sorted(json.loads(r)["answer"] for r in (bench.path / "scores.jsonl").read_text().splitlines()) == \
        sorted(json.loads(r)["answer"] for r in n0_scores)
    assert {w["kind"] for w in on_ray["workers"]} == {"classifier"}
    # a second run reads every score from the cache the controller wrote
    again, cached = run(bench, "again.json", *model, "--rm-cache-dir=cache-ray", "--rm-ray", cluster)
    assert items(cached) == items(on_ray) or [i["outcome"] for i in items(cached)] == [i["outcome"] for i in items(on_ray)]
    assert sum(w["cached"] for w in cached["workers"]) == 2 * N_ITEMS and sum(w["sequences"] for w in cached["workers"]) == 0


def test_a_model_path_the_first_actor_cannot_read_fails_once(bench, cluster, tiny_model, monkeypatch):
    monkeypatch.setenv("RMBENCH_RAY_FAULT", "hide-model:0")
    result, report = run(bench, "ray.json", f"--rm-model={tiny_model}", "--rm-ray", cluster, "--rm-ray-actors", "2",
                         "--rm-no-cache")
    assert result.ret == 1
    assert {i["outcome"] for i in report["items"]} == {"error"}
    text = result.stdout.str()
    assert len(re.findall("not-on-this-node", text)) == 1, text  # the load error, said once
    assert report["run"]["load_error"].startswith("on Ray actor ray-0 (")  # which actor, on which node
    assert report["run"]["load_error"].endswith("there is no folder '%s'" % (tiny_model / "not-on-this-node"))
    assert sum(w["chunks"] for w in report["workers"]) == 0  # no chunk went out


def test_an_actor_that_cannot_load_the_model_is_left_out_and_the_others_score_its_chunks(bench, cluster, monkeypatch):
    plain, n0 = run(bench, "n0.json", "--rm-model=builtin:length")
    monkeypatch.setenv("RMBENCH_RAY_FAULT", "hide-model:1")
    result, on_ray = run(bench, "ray.json", "--rm-model=builtin:length", "--rm-ray", cluster, "--rm-ray-actors", "2")
    same_report(n0, on_ray)
    workers = {w["worker"]: w for w in on_ray["workers"]}
    assert workers["ray-1"]["chunks"] == 0 and workers["ray-0"]["chunks"] == 8 and workers["ray-0"]["items"] == N_ITEMS
    result.stdout.fnmatch_lines(["warning: Ray actor ray-1 on * could not load the model (*not-on-this-node*); the model "
                                 "path must be readable on every node"])


def test_an_address_where_nothing_answers_is_one_line(bench):
    result = bench.runpytest_subprocess("--rm-model=builtin:length", "--rm-ray", f"127.0.0.1:{free_port()}")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["ERROR: pytest-rmbench: --rm-ray 127.0.0.1:*: nothing answers there (*); give the "
                                 "head node's HOST:PORT*"])


def test_without_the_option_ray_is_never_imported(bench):
    bench.makeconftest("import sys\n"
                       "def pytest_sessionfinish(session):\n"
                       "    print('ray imported:', 'ray' in sys.modules)\n")
    result = bench.runpytest_subprocess("--rm-model=builtin:length", "-s")
    result.stdout.fnmatch_lines(["*ray imported: False*"])


def test_ray_with_xdist_is_a_usage_error(bench):
    result = bench.runpytest_subprocess("--rm-model=builtin:length", "--rm-ray", "local", "-n", "2")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*--rm-ray and -n both spread the items over workers: pick one*"])


def test_without_ray_one_line_names_the_extra(bench, monkeypatch):
    (bench.path / "noray").mkdir()
    (bench.path / "noray" / "ray.py").write_text("raise ModuleNotFoundError(\"No module named 'ray'\", name='ray')\n")
    monkeypatch.setenv("PYTHONPATH", str(bench.path / "noray"))
    result = bench.runpytest_subprocess("--rm-model=builtin:length", "--rm-ray", "local")
    assert result.ret == 4
    lines = [line for line in result.stderr.lines if "ray" in line.lower()]
    assert lines == ["ERROR: pytest-rmbench: --rm-ray needs Ray, which is not installed (ModuleNotFoundError: No module "
                     "named 'ray'): pip install 'pytest-rmbench[ray]'"]


def test_a_scores_file_needs_no_actors_and_says_so(bench):
    lines = [{"prompt": f"question {i}", "answer": a, "score": float(len(a))}
             for i in range(N_ITEMS) for a in ("c" * (i % 7 + 1), "r" * (i % 5 + 1))]
    (bench.path / "s.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    plain, n0 = run(bench, "n0.json", "--rm-model=scores:s.jsonl")
    result, report = run(bench, "ray.json", "--rm-model=scores:s.jsonl", "--rm-ray", "local")
    same_report(n0, report)
    result.stdout.fnmatch_lines(["*--rm-ray: a scores model needs no Ray actors: it was scored in this process*"])


class FakeRay:
    """ray.cluster_resources() and ray.nodes() of a cluster on paper."""

    def __init__(self, nodes):
        self._nodes = [{"Alive": True, "Resources": r} for r in nodes]

    def cluster_resources(self):
        total = {}
        for node in self._nodes:
            for key, value in node["Resources"].items():
                total[key] = total.get(key, 0) + value
        return total

    def nodes(self):
        return self._nodes


def test_actors_by_default_one_per_gpus_per_worker_gpus_else_cpu_actors_sharing_a_node():
    from pytest_rmbench.cluster.ray_pool import RayUnavailable, actor_resources

    eight_gpus = FakeRay([{"CPU": 32, "GPU": 4}, {"CPU": 32, "GPU": 4}])
    assert actor_resources(eight_gpus, None, 1) == (8, 1, 1)
    assert actor_resources(eight_gpus, None, 2) == (4, 1, 2)  # --rm-gpus-per-worker 2
    assert actor_resources(eight_gpus, 3, 2) == (3, 1, 2)
    with pytest.raises(RayUnavailable, match="--rm-ray-actors 5 needs 10 GPUs at --rm-gpus-per-worker 2; the cluster has 8"):
        actor_resources(eight_gpus, 5, 2)
    cpus = FakeRay([{"CPU": 8}, {"CPU": 6}])
    assert actor_resources(cpus, None, 1) == (1, 6, 0)  # one actor, the smallest node's cores
    assert actor_resources(cpus, 3, 1) == (3, 3, 0)  # two a node at most: 6 / 2 cores each
    assert actor_resources(FakeRay([{"CPU": 2}]), 3, 1) == (3, 0.66, 0)  # more actors than cores share them


def test_a_first_actor_that_never_starts_is_a_load_error_not_a_hang(monkeypatch):
    from pytest_rmbench.cluster.ray_pool import START_TIMEOUT_ENV, ActorFigures, RayPool

    class GetTimeoutError(Exception):
        pass

    class Stuck:  # ray.get of an actor Ray cannot place: waits its whole timeout
        exceptions = type("exceptions", (), {"GetTimeoutError": GetTimeoutError})
        asked = None

        def get(self, ref, timeout=None):
            Stuck.asked = timeout
            raise GetTimeoutError("GetTimeoutError")

    monkeypatch.setenv(START_TIMEOUT_ENV, "3")
    pool = RayPool.__new__(RayPool)
    pool.ray, pool.loads, pool.figures, pool.checked, pool.load_error = Stuck(), ["ref"], [ActorFigures(0)], False, None
    pool.resources, pool.live = (2, 1), [0]
    assert pool._first_load_ok() is False and Stuck.asked == 3.0 and pool.live == []
    assert pool.load_error == ("on Ray actor ray-0 (?): the Ray actor did not start and load the model within 3 s (does "
                               f"the cluster have room for an actor with 2 CPU(s) and 1 GPU(s)? {START_TIMEOUT_ENV} sets the wait)")


def test_a_score_the_controller_cannot_write_errors_its_items_as_under_n0():
    import errno

    from pytest_rmbench.cluster.actor import STAT_FIELDS
    from pytest_rmbench.cluster.ray_pool import ActorFigures, Chunk, RayPool
    from pytest_rmbench.items import ItemOutcome, PairItem, Rules

    class FullDisk:  # the score cache on a full disk
        path = "/tmp/scores.sqlite"

        def put_many(self, model, rows):
            raise OSError(errno.ENOSPC, "No space left on device")

    class Ray:  # the actor's reply to the one chunk in flight
        def get(self, ref):
            return result

    one = PairItem(id="1", subset="s", prompt="p", chosen="a", rejected="b")
    two = PairItem(id="2", subset="s", prompt="q", chosen="c", rejected="d")
    new_rows = [(r, 1.0) for r in one.requests(Rules())]  # only item one's scores are new
    result = {"load_error": None, "attempt": 0, "busy": 0.1, "stats": dict.fromkeys(STAT_FIELDS, 0), "node": "n",
              "pid": 1, "new_rows": new_rows, "rows": [], "outcomes": {"k1": ItemOutcome("correct"), "k2": ItemOutcome("correct")}}
    pool = RayPool.__new__(RayPool)
    pool.ray, pool.save_rows, pool.retried, pool.outcomes = Ray(), None, 0, {}
    pool.cache = lambda: (FullDisk(), "fp")
    pool.rules = lambda pairwise: Rules(pairwise=bool(pairwise))
    pool.chunks, pool.figures = [Chunk([("k1", one), ("k2", two)], actor=0)], [ActorFigures(0)]
    pool.pending = {"ref": 0}
    pool._collect("ref")
    assert pool.outcomes["k1"].outcome == "error" and pool.outcomes["k2"].outcome == "correct"
    assert pool.outcomes["k1"].error == ("could not write the score cache /tmp/scores.sqlite: OSError: [Errno 28] "
                                         "No space left on device")
    assert pool.chunks[0].done
