"""Chunks of items -> batches on the model: de-duplication, length sorting, outcomes.

The engine knows nothing of pytest. The plugin plans chunks over the collected items
(keys are node ids); the first time any item of a chunk asks for its outcome, the whole
chunk is scored and the other items read their result.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Sequence

from .items import ERROR, Item, ItemOutcome, MultiHeadScore, Rules, ScoreRequest, ScoreResult, StepsRequest, item_outcome
from .models.base import ModelLoadError, Prepared, RewardModelAdapter, blind_to_images, capabilities
from .models.device import free_accelerator_memory, is_out_of_memory

if TYPE_CHECKING:  # the cache opens SQLite: imported where a run uses it, not at start-up
    from .storage.cache import ScoreCache


@dataclass
class EngineStats:
    pairs: int = 0
    sequences: int = 0
    batches: int = 0
    tokens: int = 0
    padded_tokens: int = 0
    seconds: float = 0.0
    oom_halvings: int = 0
    cached: int = 0


MAX_TOKENS = 16384  # padded tokens per forward pass: the default on a GPU (--rm-max-batch-tokens)
CPU_MAX_TOKENS = 4096  # ... and for float32 on the CPU


@dataclass
class BatchLimits:
    """A batch ends before it would exceed a limit; padded tokens = rows x longest row.

    min_fill keeps padding low: a sequence shorter than min_fill x the batch's longest
    starts a new batch (on a CPU a padded token costs as much as a real one; on a GPU
    wide batches of similar lengths still form).

    max_tokens None (the default) means by device, set by score_requests from the model's
    device and dtype: CPU_MAX_TOKENS for float32 on the CPU, where smaller batches stay in
    cache and run faster per token (bench/results/length-mix-2cpu.json), MAX_TOKENS elsewhere
    (bfloat16 on the CPU gained nothing from smaller batches).
    """

    max_sequences: int = 64
    max_tokens: int | None = None
    min_fill: float = 0.8

    def for_device(self, device, dtype: str | None = None) -> BatchLimits:
        """Fixes max_tokens for the model's device and dtype when it was left to the default; returns self."""
        if self.max_tokens is None:
            cpu_float32 = str(device) == "cpu" and dtype in (None, "float32")
            self.max_tokens = CPU_MAX_TOKENS if cpu_float32 else MAX_TOKENS
        return self

    def batches(self, prepared: Sequence[Prepared]) -> list[list[Prepared]]:
        """Consecutive slices of `prepared`, which the caller sorted longest first."""
        out: list[list[Prepared]] = []
        batch: list[Prepared] = []
        for p in prepared:
            width = max([p.length] + [q.length for q in batch[:1]])  # sorted: the first is the longest
            if batch and (
                len(batch) >= self.max_sequences
                or width * (len(batch) + 1) > (self.max_tokens or MAX_TOKENS)
                or p.length < self.min_fill * width
            ):
                out.append(batch)
                batch = []
            batch.append(p)
        if batch:
            out.append(batch)
        return out


def score_requests(
    model: RewardModelAdapter,
    requests: Sequence[ScoreRequest],
    limits: BatchLimits,
    stats: EngineStats | None = None,
    on_batch: Callable[[list[tuple[ScoreRequest, ScoreResult]]], None] | None = None,
) -> dict[ScoreRequest, ScoreResult]:
    """Score each distinct request once, in batches of similar length."""
    stats = stats if stats is not None else EngineStats()
    results: dict[ScoreRequest, ScoreResult] = {}
    prepared: list[Prepared] = []
    distinct = list(dict.fromkeys(requests))
    try:
        prepared = list(model.prepare(distinct))  # all at once: tokenizers work faster on lists
        if len(prepared) != len(distinct):
            raise ValueError(f"prepare returned {len(prepared)} entries for {len(distinct)} requests")
    except Exception:
        prepared = []
        for request in distinct:  # one by one, so one bad sequence errors alone
            try:
                prepared.extend(model.prepare([request]))
            except Exception as exc:
                results[request] = ScoreResult(None, error=f"could not prepare the input: {one_line(exc)}")
    # Longest first: padding per batch stays small, and a memory problem shows up early.
    prepared.sort(key=lambda p: -p.length)
    limits.for_device(getattr(model, "device", None), getattr(model, "dtype", None))
    start = time.perf_counter()
    for batch in limits.batches(prepared):
        scored = [(p.request, result) for p, result in zip(batch, _score_batch(model, batch, limits, stats))]
        results.update(scored)
        if on_batch is not None:
            on_batch(scored)  # e.g. the score cache: an interrupted run keeps every finished batch
    stats.seconds += time.perf_counter() - start
    stats.sequences += len(prepared)
    return results


def _score_batch(model: RewardModelAdapter, batch: list[Prepared], limits: BatchLimits, stats: EngineStats) -> list[ScoreResult]:
    try:
        scores = list(model.score_batch(batch))
        if len(scores) != len(batch):
            raise ValueError(f"the model returned {len(scores)} scores for a batch of {len(batch)}")
    except Exception as exc:
        if len(batch) == 1:
            return [ScoreResult(None, batch[0].truncated, f"scoring failed: {one_line(exc)}")]
        if is_out_of_memory(exc):
            # halve and retry; later batches of this run keep the smaller size
            stats.oom_halvings += 1
            half = len(batch) // 2
            limits.max_sequences = max(1, min(limits.max_sequences, half))
            limits.max_tokens = max(1, min(limits.max_tokens, max(p.length for p in batch) * half))
            free_accelerator_memory()
            return _score_batch(model, batch[:half], limits, stats) + _score_batch(model, batch[half:], limits, stats)
        # retry one by one so that a single bad sequence errors alone
        return [r for p in batch for r in _score_batch(model, [p], limits, stats)]
    stats.batches += 1
    stats.tokens += sum(p.length for p in batch)
    stats.padded_tokens += max(p.length for p in batch) * len(batch)
    return [ScoreResult(_as_score(s), p.truncated) for p, s in zip(batch, scores)]


def _as_score(score):
    """A float, or a tuple of floats (per-step scores); None for anything else."""
    if isinstance(score, MultiHeadScore):
        return score
    if isinstance(score, (list, tuple)):
        values = tuple(_as_score(s) for s in score)
        return None if any(v is None or isinstance(v, tuple) for v in values) else values
    try:
        return float(score)
    except (TypeError, ValueError):
        return None


MAX_PASSES = 64  # further scoring passes per chunk (a tournament of n answers needs ceil(log2 n) - 1)


def _no_more(results, rules) -> list:
    return []


CHUNKS_PER_WORKER = 4  # under xdist, small sets are cut finer so every worker gets work


def chunk_size_for(configured: int, items: int, workers: int) -> int:
    """The configured size, made smaller under xdist when there would be too few chunks to share.

    Both the controller's scheduler and each worker compute this from the same numbers,
    so they agree on the chunks.
    """
    if workers <= 1:
        return max(1, configured)
    return max(1, min(configured, -(-items // (workers * CHUNKS_PER_WORKER))))


def plan_chunks(keys: Sequence[str], chunk_size: int, lane_of: Callable[[str], object] | None = None) -> list[list[str]]:
    """Consecutive keys, chunk_size at a time; with `lane_of` (several models), a chunk also
    ends where the model changes, so a chunk is always one model's.

    The xdist scheduler on the controller and the scorer in each worker both call this on
    the same ordered node ids, so a chunk the scheduler sends whole is the chunk scored.
    """
    size = max(1, chunk_size)
    if lane_of is None:
        return [list(keys[i : i + size]) for i in range(0, len(keys), size)]
    chunks: list[list[str]] = []
    lane = object()
    for key in keys:
        this = lane_of(key)
        if not chunks or len(chunks[-1]) >= size or this != lane:
            chunks.append([])
            lane = this
        chunks[-1].append(key)
    return chunks


@dataclass
class ChunkedScorer:
    """Per-process: scores whole chunks of items on first use, hands out outcomes."""

    get_model: Callable[[], RewardModelAdapter]
    limits: BatchLimits
    cache: Callable[[], tuple[ScoreCache, str] | None] = lambda: None  # (cache, model fingerprint)
    pairwise_hint: bool | None = False  # None: ask the loaded model (a kind from a plugin)
    on_scores: list = field(default_factory=list)  # callbacks: [(request, result)], cached ones too
    step_threshold: float = 0.5
    null_answer: str | None = None  # --rm-null-answer (Rules.null_answer)
    pairwise_rule: str = "round_robin"  # best_of_n under a pairwise model (--rm-pairwise-rule)
    both_orders: str = "counter"  # how a pairwise model's two orders decide (Rules.both_orders)
    on_progress: Callable[[int], None] | None = None  # items of the chunk being scored that are done, roughly
    stats: EngineStats = field(default_factory=EngineStats)
    _chunk_of: dict[str, int] = field(default_factory=dict)
    _chunks: list[list[tuple[str, Item]] | None] = field(default_factory=list)
    _outcomes: dict[str, ItemOutcome] = field(default_factory=dict)

    def plan(self, chunks: Sequence[Sequence[tuple[str, Item]]]) -> None:
        """Chunks as made by plan_chunks, each a list of (key, item)."""
        self._chunk_of.clear()
        self._chunks = []
        self._outcomes.clear()
        for chunk in chunks:
            for key, _ in chunk:
                self._chunk_of[key] = len(self._chunks)
            self._chunks.append(list(chunk))

    def outcome(self, key: str, item: Item) -> ItemOutcome:
        if key in self._outcomes:
            return self._outcomes.pop(key)
        index = self._chunk_of.get(key)
        chunk = self._chunks[index] if index is not None else None
        if chunk is None:  # not planned (e.g. a chunk already freed): score it alone
            chunk = [(key, item)]
        else:
            self._chunks[index] = None  # freed: its outcomes live in _outcomes until read
        try:
            self._outcomes.update(self.score_items(chunk))
        except ModelLoadError:
            raise  # the plugin says it once, for the whole run
        except Exception as exc:  # a bug or a broken store must cost this chunk's items, not the run
            failed = error_outcome(f"scoring failed: {one_line(exc)}")
            self._outcomes.update((k, failed) for k, _ in chunk)
        return self._outcomes.pop(key)

    def score_items(self, keyed_items: Sequence[tuple[str, Item]]) -> dict[str, ItemOutcome]:
        cache = self.cache()
        pairwise, requests, results = self._lookup(keyed_items, cache)
        rules = self._rules(pairwise)
        unsaved: dict = {}  # request -> why its score could not be written
        self._score_missing(keyed_items, requests, results, cache, unsaved)
        # further passes: items whose later requests depend on earlier scores (a tournament's rounds)
        for _ in range(MAX_PASSES):
            more = list(dict.fromkeys(
                r for _, item in keyed_items if not (rules.pairwise and item.scalar_only)
                for r in (getattr(item, "more_requests", None) or _no_more)(results, rules) if r not in results
            ))
            if not more:
                break
            found = cache[0].get_many(cache[1], more) if cache else {}
            results.update(found)
            self._score_missing(keyed_items, more, results, cache, unsaved, found)
        # a score that could not be written where the user asked is no verdict: its items error
        results.update((r, ScoreResult(None, error=why)) for r, why in unsaved.items())
        self.stats.pairs += len(keyed_items)
        return {key: item_outcome(item, results, rules) for key, item in keyed_items}

    def _score_missing(self, keyed_items, requests: list, results: dict, cache, unsaved: dict, cached: dict | None = None) -> None:
        """Scores the requests that `results` lacks (adding them to it); `cached` (default: all
        of results) are the ones the cache gave, handed to the savers as part of the run."""
        cached = results if cached is None else cached
        self.stats.cached += len(cached)
        if cached:
            _save_rows(self.on_scores, list(cached.items()), unsaved)  # cached scores are part of the run too
        missing = [r for r in requests if r not in results]
        if missing:  # a fully cached chunk never loads the model
            model = self.get_model()  # raises ModelLoadError: the caller reports it
            if not capabilities(model).steps:
                # steps items need per-step scores, which only a process reward model gives
                unable = ScoreResult(None, error=(
                    f"items of kind 'steps' need a process reward model (--rm-kind prm); a {getattr(model, 'kind', '?')} "
                    "model gives one score per answer"))
                results.update((r, unable) for r in missing if isinstance(r, StepsRequest))
                missing = [r for r in missing if not isinstance(r, StepsRequest)]
            blind = blind_to_images(model, missing)  # an image is never silently dropped
            results.update(blind)
            missing = [r for r in missing if r not in blind]
            savers = ([_CacheWriter(*cache)] if cache else []) + self.on_scores
            done = [0]

            def save(rows) -> None:
                _save_rows(savers, rows, unsaved)
                done[0] += len(rows)
                if self.on_progress is not None:
                    self.on_progress(len(keyed_items) * done[0] // len(missing))

            results.update(score_requests(model, missing, self.limits, self.stats, save))

    def _lookup(self, keyed_items: Sequence[tuple[str, Item]], cache) -> tuple[bool, list, dict]:
        """(pairwise, the chunk's requests, those of them the score cache has).

        A pairwise judge is asked for (prompt, A, B) in both orders, any other model for each
        answer alone. When only the loaded model can tell which it is (pairwise_hint None),
        the cache is asked first for single answers: a chunk it fully covers never loads the
        model. Otherwise the model is asked, and a judge's requests are looked up instead.
        """
        def cached(requests) -> dict:
            return cache[0].get_many(cache[1], requests) if cache else {}

        pairwise = self.pairwise_hint
        if pairwise is None and cache:
            requests = self._requests(keyed_items, self._rules(False))
            results = cached(requests)
            if len(results) == len(requests) or not self._model_is_pairwise():
                return False, requests, results
            pairwise = True
        elif pairwise is None:
            pairwise = self._model_is_pairwise()
        requests = self._requests(keyed_items, self._rules(pairwise))
        return bool(pairwise), requests, cached(requests)

    def _rules(self, pairwise) -> Rules:
        return Rules(pairwise=bool(pairwise), step_threshold=self.step_threshold, pairwise_rule=self.pairwise_rule,
                     null_answer=self.null_answer, both_orders=self.both_orders)

    @staticmethod
    def _requests(keyed_items: Sequence[tuple[str, Item]], rules: Rules) -> list:
        """A pairwise judge sees (prompt, A, B) in both orders; other models score each answer alone."""
        return list(dict.fromkeys(
            r for _, item in keyed_items if not (rules.pairwise and item.scalar_only) for r in item.requests(rules)
        ))

    def _model_is_pairwise(self) -> bool:
        return capabilities(self.get_model()).pairwise  # loads the model; ModelLoadError says why it cannot


def error_outcome(message: str) -> ItemOutcome:
    return ItemOutcome(ERROR, error=message)


from .text import one_line  # noqa: E402,F401  (re-exported: engine.one_line stays importable)



class SaveError(Exception):
    """A score could not be written where the run keeps it (cache, score file); the message says where."""


@dataclass
class _CacheWriter:
    cache: ScoreCache
    fingerprint: str

    def __call__(self, rows) -> None:
        try:
            self.cache.put_many(self.fingerprint, rows)
        except Exception as exc:
            raise SaveError(f"could not write the score cache {self.cache.path}: {one_line(exc)}") from exc


def _save_rows(savers, rows, unsaved: dict) -> None:
    """Hand a batch's scores to each saver (cache, --rm-save-scores); a saver that fails
    marks the batch's requests instead of ending the run."""
    for save in savers:
        try:
            save(rows)
        except Exception as exc:
            why = str(exc) if isinstance(exc, SaveError) else one_line(exc)
            unsaved.update((request, why) for request, _ in rows if request not in unsaved)
