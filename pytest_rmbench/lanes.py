"""One model of a run: what it is, the adapter once loaded, its score-cache key, its scorer.

A run has one `ModelLane` per --rm-model (most runs: one). Each lane scores only its own
tests' chunks, with its own ChunkedScorer; the lanes share the run's score cache file (rows
are keyed by each model's fingerprint). A worker holds one model at a time: before a lane
loads its model, the run frees every other lane's (RunSession.make_room), unless
--rm-keep-models. Nothing here knows pytest's nodes.
"""

from __future__ import annotations

import os
import time

from .engine import ChunkedScorer, SaveError, one_line
from .models.base import ModelLoadError, ModelSpec, close_model, model_info
from .models.resolve import resolve


def score_file_for(path: str, name: str, several: bool) -> str:
    """--rm-save-scores for one model: the path itself with one model, else NAME before the
    extension (scores.jsonl -> scores.cand.jsonl), or in place of a {model} the path holds."""
    if "{model}" in path:
        return path.replace("{model}", name)
    if not several:
        return path
    root, ext = os.path.splitext(path)
    return f"{root}.{name}{ext}"


class ModelLane:
    """One model of the run, in one process: loaded on first use, freed when another needs room."""

    def __init__(self, run, name: str, spec: ModelSpec, several: bool):
        self.run, self.name, self.spec = run, name, spec
        self.resolved = resolve(spec, run.config)  # kind, capabilities, display name: read once
        self._model = None
        self.model_error: str | None = None  # why the model could not be loaded: tried once per process
        self.load_seconds: float | None = None  # its first load
        self.loads = 0  # more than one: it was freed for another model and needed again
        self.freed = 0  # times it was let go to make room for another model
        self.last_info: dict = {}  # model_info of the model last loaded
        self._fingerprint: str | None | bool = False  # False: not asked yet
        self._score_writer = None
        s = run.settings
        self.scorer = ChunkedScorer(self.get_model, s.limits(), self.score_cache, self.resolved.pairwise,
                                    step_threshold=s.step_threshold, null_answer=s.null_answer,
                                    pairwise_rule=s.pairwise_rule, both_orders=self.resolved.both_orders)
        # xdist workers may run in another folder: every process writes the one absolute path
        self.save_scores_path = (os.path.abspath(score_file_for(s.save_scores, name, several))
                                 if s.save_scores else None)
        if self.save_scores_path:
            if not run.is_worker:  # emptied once, before any xdist worker starts
                from .storage.scorefile import start_score_file

                start_score_file(self.save_scores_path)
            self.scorer.on_scores.append(self.save_scores)

    @property
    def display_name(self) -> str:
        """The model as reports, logs and the store show it: no credentials from a URL."""
        return self.resolved.display_name

    @property
    def loaded_model(self):
        """The model if this process holds it now, else None (a fully cached lane never loads it)."""
        return self._model

    def get_model(self):
        if self._model is None:
            if self.model_error is not None:
                raise ModelLoadError(self.model_error)
            self.run.make_room(self)
            self._model = self._load_model()
        return self._model

    def _load_model(self):
        started = time.perf_counter()
        run = self.run
        # builtin models load instantly; xdist workers have no terminal
        announce = run.progress if run.progress is not None and self.resolved.kind != "builtin" else None
        if announce:
            announce.loading(self.display_name)
        try:
            model = run.config.hook.pytest_rmbench_make_model(config=run.config, spec=self.spec)
            if model is None:
                raise ModelLoadError(f"no installed plugin builds a model of kind {self.spec.kind!r} for {self.display_name!r}")
        except Exception as exc:
            self.model_error = str(exc) if isinstance(exc, ModelLoadError) else f"{type(exc).__name__}: {exc}"
            if announce:
                announce.loaded(self.display_name, None)
            raise ModelLoadError(self.model_error) from exc
        self.loads += 1
        try:  # the report describes the model even after it was freed for another
            self.last_info = model_info(model)
        except Exception:
            self.last_info = {}
        if self.load_seconds is None:
            self.load_seconds = time.perf_counter() - started
        if announce:
            announce.loaded(self.display_name, time.perf_counter() - started, model)
        cache = self.score_cache()
        if cache and self.loads == 1:  # so that a later, fully cached run can say what its scores came from
            try:
                cache[0].put_model_info(cache[1], model_info(model))
            except Exception as exc:
                run.state.warnings.append(f"the score cache could not record the model: {one_line(exc)}")
        return model

    def free(self) -> bool:
        """Let the loaded model go (its weights, its GPU memory); True when there was one."""
        model, self._model = self._model, None
        if model is None:
            return False
        try:
            close_model(model)
        finally:
            del model
            import gc

            gc.collect()  # the weights go now, before the next model loads
            from .models.device import free_accelerator_memory

            free_accelerator_memory()
        return True

    def fingerprint(self) -> str | None:
        """What the cache keys this model's scores by; None: its scores are not cached."""
        if self._fingerprint is False:
            try:
                self._fingerprint = self.run.config.hook.pytest_rmbench_model_fingerprint(
                    config=self.run.config, spec=self.spec) or None
            except ModelLoadError as exc:  # e.g. a kind that cannot be told: it is the model's load error
                self.model_error, self._fingerprint = str(exc), None  # later calls: no cache, the load error
                raise
        return self._fingerprint

    def score_cache(self):
        """(cache, model fingerprint); None when caching is off for this model."""
        cache = self.run.open_cache()
        if cache is None:
            return None
        fingerprint = self.fingerprint()
        return (cache, fingerprint) if fingerprint else None

    def save_scores(self, rows) -> None:
        """--rm-save-scores: every process appends this model's scores to its one file."""
        if self._score_writer is None:
            from .storage.scorefile import ScoreWriter

            self._score_writer = ScoreWriter(self.save_scores_path)
        try:
            self._score_writer.write(rows)
        except Exception as exc:
            raise SaveError(f"could not write --rm-save-scores={self.save_scores_path}: {one_line(exc)}") from exc

    def close_files(self) -> None:
        if self._score_writer is not None:
            self._score_writer.close()

    def close(self) -> None:
        """Everything the lane opened: the model and the score file (each tried, errors ignored)."""
        for step in (self.free, self.close_files):
            try:
                step()
            except Exception:  # closing must not turn a finished run into an error
                pass
