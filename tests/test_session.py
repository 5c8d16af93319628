"""The RunSession closes what it opened (model, score cache, run store, score file) however the
run ends: a normal end, a failed gate, Ctrl-C in the middle of scoring, a usage error found
after the model was built."""

import json

import pytest

# every close() the run makes is written to closed.log, next to the run
CONFTEST = '''
import os
import pytest
from pytest_rmbench.models.base import Prepared
from pytest_rmbench.storage import cache, scorefile, store

LOG = os.path.join(os.getcwd(), "closed.log")
FAULT = os.environ.get("FAULT", "")

def log(what):
    with open(LOG, "a") as fh:
        fh.write(what + "\\n")

class Model:
    kind = "toy"; dtype = "n/a"; device = "cpu"; name = "toy"
    batches = 0
    def prepare(self, requests):
        return [Prepared(r, len(r.answer)) for r in requests]
    def score_batch(self, batch):
        self.batches += 1
        if FAULT == "interrupt" and self.batches > 1:  # Ctrl-C after the first batch was saved
            raise KeyboardInterrupt
        return [float(len(p.request.answer)) for p in batch]
    def close(self):
        log("model")

@pytest.hookimpl
def pytest_rmbench_make_model(config, spec):
    return Model()

@pytest.hookimpl
def pytest_rmbench_model_fingerprint(config, spec):
    return "toy-v1"

PATCHES = []

def patch(owner, what):
    original = owner.close
    def close(self):
        log(what)
        return original(self)
    PATCHES.append((owner, original))
    owner.close = close

patch(cache.ScoreCache, "cache")
patch(scorefile.ScoreWriter, "score file")
patch(store.SqliteStore, "store")

@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session):
    log("sessionfinish")
'''

ITEMS = "".join(json.dumps({"id": i, "subset": "s", "prompt": "p", "chosen": "long answer", "rejected": "no"}) + "\n"
                for i in range(4))


@pytest.fixture
def run(pytester, monkeypatch):
    pytester.makeconftest(CONFTEST)
    (pytester.path / "items.rmbench.jsonl").write_text(ITEMS)

    def run(*args, fault=""):
        monkeypatch.setenv("FAULT", fault)
        result = pytester.runpytest_subprocess("--rm-model=toy", "--rm-save-scores=scores.jsonl", *args)
        log = pytester.path / "closed.log"
        closed = log.read_text().split() if log.exists() else []
        log.unlink(missing_ok=True)
        return result, closed
    run.report = lambda: json.loads((pytester.path / "run.json").read_text())
    return run


def test_a_finished_run_closes_the_model_cache_store_and_score_file(run):
    result, closed = run()
    assert result.ret == 0
    assert {"model", "cache", "store", "score"} <= set(closed)  # "score file" is two words
    assert closed.index("sessionfinish") < closed.index("model")  # at unconfigure, after the run's end


def test_ctrl_c_while_scoring_still_closes_everything(run):
    result, closed = run("--rm-batch-size=1", fault="interrupt")
    assert result.ret == 2  # pytest's own code for an interrupted run
    assert {"model", "cache", "score"} <= set(closed)


def test_under_xdist_each_worker_closes_its_model_and_the_controller_its_store(run):
    result, closed = run("-n", "2", "--rm-report=run.json")
    assert result.ret == 0
    loaded = sum(1 for w in run.report()["workers"] if w["load_seconds"] is not None)
    assert loaded >= 1 and closed.count("model") == loaded  # each worker that loaded a model closed it
    assert closed.count("store") == 1  # only the controller records the run
