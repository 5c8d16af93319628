"""The batching engine on a fake adapter: budgets, de-duplication, OOM back-off, bad sequences."""

import math

import pytest

from pytest_rmbench import engine
from pytest_rmbench.engine import BatchLimits, ChunkedScorer, EngineStats, plan_chunks, score_requests
from pytest_rmbench.items import JudgeRequest, PairItem, ScoreRequest, ScoreResult, StepsItem
from pytest_rmbench.models import device
from pytest_rmbench.models.base import Prepared


class OutOfMemoryError(RuntimeError):
    """Same name as torch.cuda.OutOfMemoryError."""


class Fake:
    name = kind = "fake"
    dtype = "n/a"
    device = "cpu"

    def __init__(self, oom_above_tokens=None):
        self.batches = []
        self.oom_above_tokens = oom_above_tokens

    def prepare(self, requests):
        out = []
        for r in requests:
            if r.answer == "UNPREPARABLE":
                raise ValueError("cannot tokenize")
            out.append(Prepared(r, len(r.answer)))
        return out

    def score_batch(self, batch):
        padded = max(p.length for p in batch) * len(batch)
        if self.oom_above_tokens is not None and padded > self.oom_above_tokens:
            raise OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        self.batches.append([p.request.answer for p in batch])
        if any(p.request.answer == "CRASH" for p in batch):
            raise RuntimeError("bad sequence")
        return [float(len(p.request.answer)) for p in batch]


def requests(lengths):
    """Distinct answers of the given lengths."""
    return [ScoreRequest("p", chr(ord("a") + i) * n) for i, n in enumerate(lengths)]


def test_token_budget_counts_padded_tokens():
    model = Fake()
    score_requests(model, requests([10, 9, 8, 5, 5, 5, 1]), BatchLimits(max_sequences=100, max_tokens=20, min_fill=0))
    # longest first; a batch stops before rows x longest exceeds 20
    assert [[len(a) for a in b] for b in model.batches] == [[10, 9], [8, 5], [5, 5, 1]]


def test_min_fill_starts_a_new_batch_for_much_shorter_sequences():
    model = Fake()
    stats = EngineStats()
    score_requests(model, requests([10, 9, 8, 7, 5, 5, 4, 1]), BatchLimits(max_sequences=100, max_tokens=10**6), stats)
    # 7 < 0.8 x 10, then 5 < 0.8 x 7; 4 >= 0.8 x 5 joins; 1 < 0.8 x 5
    assert [[len(a) for a in b] for b in model.batches] == [[10, 9, 8], [7], [5, 5, 4], [1]]
    assert stats.padded_tokens == 30 + 7 + 15 + 1


def test_sequence_cap():
    model = Fake()
    score_requests(model, requests([3] * 7), BatchLimits(max_sequences=3, max_tokens=10**6))
    assert [len(b) for b in model.batches] == [3, 3, 1]


def test_each_distinct_request_is_scored_once():
    model = Fake()
    stats = EngineStats()
    reqs = [ScoreRequest("p", "xxxx")] * 3 + [ScoreRequest("q", "xxxx"), ScoreRequest("p", "xx")]
    results = score_requests(model, reqs, BatchLimits(), stats)
    assert sum(len(b) for b in model.batches) == 3 and stats.sequences == 3
    assert results[ScoreRequest("p", "xxxx")].score == 4.0


def test_out_of_memory_halves_the_batch_and_keeps_the_smaller_size():
    model = Fake(oom_above_tokens=16)
    stats = EngineStats()
    results = score_requests(model, requests([4] * 8 + [2] * 8), BatchLimits(max_sequences=8, max_tokens=10**6), stats)
    assert all(r.score is not None for r in results.values())
    assert stats.oom_halvings >= 1
    assert all(max(len(a) for a in b) * len(b) <= 16 for b in model.batches)
    assert sum(len(b) for b in model.batches) == 16  # every sequence scored exactly once


def test_out_of_memory_on_one_sequence_errors_that_sequence():
    model = Fake(oom_above_tokens=3)
    long, short = requests([5, 2])
    results = score_requests(model, [long, short], BatchLimits())
    assert results[long].error.startswith("scoring failed: OutOfMemoryError")
    assert results[short].score == 2.0


def test_a_bad_sequence_errors_alone():
    model = Fake()
    reqs = [ScoreRequest("p", a) for a in ("CRASH", "fine", "UNPREPARABLE", "ok")]
    results = score_requests(model, reqs, BatchLimits())
    assert "bad sequence" in results[reqs[0]].error
    assert "cannot tokenize" in results[reqs[2]].error
    assert results[reqs[1]].score == 4.0 and results[reqs[3]].score == 2.0


def test_plan_chunks():
    assert plan_chunks(list("abcde"), 2) == [["a", "b"], ["c", "d"], ["e"]]


def test_chunked_scorer_scores_a_chunk_when_its_first_item_asks():
    model = Fake()
    pairs = [(f"k{i}", PairItem(id=str(i), subset="s", prompt="p", chosen="y" * (i + 2), rejected="n")) for i in range(5)]
    scorer = ChunkedScorer(lambda: model, BatchLimits(min_fill=0))
    scorer.plan([pairs[:3], pairs[3:]])
    assert scorer.outcome("k1", pairs[1][1]).outcome == "correct"
    assert len(model.batches) == 1 and len(model.batches[0]) == 4  # 3 chosen + the shared "n"
    scorer.outcome("k0", pairs[0][1])
    assert len(model.batches) == 1  # read from the scored chunk
    scorer.outcome("k4", pairs[4][1])
    assert len(model.batches) == 2


@pytest.mark.parametrize("bad", [math.nan, math.inf, "x"])
def test_non_finite_scores_make_errors(bad):
    class Bad(Fake):
        def score_batch(self, batch):
            return [bad if p.request.answer == "chosen" else 1.0 for p in batch]

    scorer = ChunkedScorer(lambda: Bad(), BatchLimits())
    outcome = scorer.score_items([("k", PairItem(id="1", subset="s", prompt="p", chosen="chosen", rejected="rejected"))])["k"]
    assert outcome.outcome == "error" and outcome.chosen_score is None and "non-finite" in outcome.error


def test_wrong_number_of_scores_is_an_error():
    class Short(Fake):
        def score_batch(self, batch):
            self.batches.append(batch)
            return [1.0]

    model = Short()
    results = score_requests(model, requests([3, 2]), BatchLimits(min_fill=0))
    # the batch of two fails the shape check, then each sequence is retried alone
    assert [len(b) for b in model.batches] == [2, 1, 1]
    assert all(r.score == 1.0 for r in results.values())


def test_the_accelerator_probes_live_in_models_device():
    assert engine.is_out_of_memory is device.is_out_of_memory
    assert device.is_out_of_memory(OutOfMemoryError("x")) and device.is_out_of_memory(RuntimeError("CUDA out of memory"))
    assert not device.is_out_of_memory(ValueError("bad"))
    device.free_accelerator_memory()  # no torch loaded, or no GPU: nothing to do
    peak = device.peak_memory_bytes()
    assert peak is None or peak > 0


class FakeCache:
    """ScoreCache's get_many / put_many, in memory, counting lookups."""

    def __init__(self, scores=None):
        self.scores = dict(scores or {})
        self.lookups = []

    def get_many(self, fingerprint, requests):
        requests = list(requests)
        self.lookups.append(requests)
        return {r: ScoreResult(self.scores[r]) for r in requests if r in self.scores}

    def put_many(self, fingerprint, rows):
        self.scores.update((r, res.score) for r, res in rows)


class Judge(Fake):
    """A pairwise judge: positive when answer_a is longer."""

    pairwise = True

    def prepare(self, requests):
        assert all(isinstance(r, JudgeRequest) for r in requests)
        return [Prepared(r, len(r.answer_a) + len(r.answer_b)) for r in requests]

    def score_batch(self, batch):
        self.batches.append([p.request for p in batch])
        return [float(len(p.request.answer_a) - len(p.request.answer_b)) for p in batch]


PAIR = PairItem(id="1", subset="s", prompt="p", chosen="long answer", rejected="short")
SINGLE = {ScoreRequest("p", "long answer"): 11.0, ScoreRequest("p", "short"): 5.0}


class Loader:
    """get_model for the scorer, counting loads."""

    def __init__(self, model):
        self.model, self.loads = model, 0

    def __call__(self):
        self.loads += 1
        return self.model


def scorer_for(model, cache, pairwise_hint):
    loader = Loader(model)
    scorer = ChunkedScorer(loader, BatchLimits(min_fill=0), (lambda: (cache, "fp")) if cache is not None else (lambda: None),
                           pairwise_hint)
    return scorer, loader


def test_unknown_pairwise_and_a_fully_cached_chunk_never_loads_the_model():
    cache = FakeCache(SINGLE)
    scorer, loader = scorer_for(Fake(), cache, None)
    assert scorer.score_items([("k", PAIR)])["k"].outcome == "correct"
    assert loader.loads == 0 and len(cache.lookups) == 1 and scorer.stats.cached == 2


def test_unknown_pairwise_and_a_partly_cached_chunk_asks_the_model_once():
    cache = FakeCache({ScoreRequest("p", "short"): 5.0})
    model = Fake()
    scorer, loader = scorer_for(model, cache, None)
    assert scorer.score_items([("k", PAIR)])["k"].outcome == "correct"
    assert len(cache.lookups) == 1  # not a judge: the single-answer lookup stands
    assert model.batches == [["long answer"]]  # only what the cache lacked
    assert cache.scores[ScoreRequest("p", "long answer")] == 11.0


def test_unknown_pairwise_and_a_judge_looks_up_and_scores_both_orders():
    cache = FakeCache()
    model = Judge()
    scorer, loader = scorer_for(model, cache, None)
    outcome = scorer.score_items([("k", PAIR)])["k"]
    assert outcome.outcome == "correct"
    assert [type(r) for r in cache.lookups[0]] == [ScoreRequest, ScoreRequest]
    assert cache.lookups[1] == [JudgeRequest("p", "long answer", "short"), JudgeRequest("p", "short", "long answer")]
    assert len(cache.lookups) == 2 and sum(len(b) for b in model.batches) == 2


@pytest.mark.parametrize("hint", [True, None])
def test_a_judge_without_a_cache(hint):
    model = Judge()
    scorer, loader = scorer_for(model, None, hint)
    assert scorer.score_items([("k", PAIR)])["k"].outcome == "correct"
    assert all(isinstance(r, JudgeRequest) for b in model.batches for r in b)


def test_a_known_kind_looks_up_once_and_never_asks_the_model_what_it_is():
    cache = FakeCache()
    scorer, loader = scorer_for(Fake(), cache, False)
    scorer.score_items([("k", PAIR)])
    assert len(cache.lookups) == 1 and loader.loads == 1  # loaded to score, once


def test_steps_items_need_a_model_that_says_it_gives_step_scores():
    item = StepsItem(id="1", subset="s", problem="p", steps=("a", "b"), label=-1)
    scorer, _ = scorer_for(Fake(), None, False)  # a user adapter that says nothing: no steps
    outcome = scorer.score_items([("k", item)])["k"]
    assert outcome.outcome == "error" and "need a process reward model" in outcome.error and "a fake model" in outcome.error

    class Steps(Fake):
        steps = True

        def prepare(self, requests):
            return [Prepared(r, len(r.steps)) for r in requests]

        def score_batch(self, batch):
            return [tuple(0.9 for _ in p.request.steps) for p in batch]

    scorer, _ = scorer_for(Steps(), None, False)
    assert scorer.score_items([("k", item)])["k"].outcome == "correct"
