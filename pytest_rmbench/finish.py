"""The end of a run on the controller: records -> report -> gate -> store, JUnit, files, exit status.

Called once by `RunSession.finish`. Each step is a short function over plain data; a step
that fails costs its own output (a warning, or one line in the summary), never the others.
"""

from __future__ import annotations

import os

import pytest

from .items import Section
from .items.files import parse_assignments, parse_section_assignment, parse_threshold_value
from .collect import one_model_nodeid
from .engine import one_line
from .report import baseline as baseline_mod
from .models.base import model_info
from .models.device import peak_memory_bytes
from .report.aggregate import aggregate, write_json
from .report.build import build_report
from .sample import as_estimates
from .report.gate import (GateConfig, GateConfigError, RULES, INCONCLUSIVE, Threshold, evaluate, for_model, merge_sections,
                          merge_thresholds, validate)
from .storage import history
from .storage.outputs import append_text, write_text

__all__ = ["GateConfigError", "finish_run", "gate_config", "worker_figures"]


def gate_config(settings, catalog) -> GateConfig:
    """Thresholds and sections from the files' headers, then ini, then the command line."""
    (ini_sections, cli_sections), (ini_thresholds, cli_thresholds) = settings.section_lines, settings.threshold_lines
    try:  # parsed in the order the messages have always come in
        cli_s, ini_s = ({n: parse_section_assignment(n, v) for n, v in parse_assignments(lines, source)}
                        for source, lines in (cli_sections, ini_sections))
        cli_t, ini_t = ({n: parse_threshold_value(n, v) for n, v in parse_assignments(lines, source)}
                        for source, lines in (cli_thresholds, ini_thresholds))
    except ValueError as exc:
        raise GateConfigError(str(exc)) from None
    files = catalog.files
    file_sections = [(path, {n: Section(n, w) for n, w in f["sections"].items()}) for path, f in files.items()]
    config = GateConfig(
        thresholds=merge_thresholds([(p, f["gate"]) for p, f in files.items()] + [("ini", ini_t), ("command line", cli_t)]),
        sections=merge_sections(file_sections + [("ini", ini_s), ("command line", cli_s)]),
        rule=settings.gate_rule,
        inconclusive=settings.inconclusive,
    )
    max_null = settings.max_null_win_rate
    if max_null is not None:  # --rm-max-null-win-rate (ini rm_max_null_win_rate)
        config.maximums["null_answer"] = Threshold("null_answer", max_null, "--rm-max-null-win-rate")
    if config.rule not in RULES or config.inconclusive not in INCONCLUSIVE:
        raise GateConfigError(f"rm_gate_rule must be one of {RULES} and rm_inconclusive one of {INCONCLUSIVE}")
    models = [name for name, _ in settings.models]
    for model in (models if len(models) > 1 else [None]):  # MODEL:NAME thresholds name a subset of that model
        try:
            validate(for_model(config, model, models) if model else config, catalog.subsets(), set(catalog.suites))
        except GateConfigError as exc:
            if len(models) > 1:
                raise GateConfigError(f"{exc} (with several models, MODEL:NAME applies to one model; models: "
                                      f"{', '.join(models)})") from None
            raise
    return config


def worker_figures(run) -> list[dict]:
    """One scoring process's figures per model: throughput, cache hits, memory, what model ran.
    With several models, each figure names its model; a model this process never touched has none."""
    if not run.settings.several_models:
        return [lane_figures(run, run.primary)]
    out = []
    for name, lane in run.lanes.items():
        if lane.scorer.stats.pairs or lane.loads or lane.model_error:
            out.append(dict(lane_figures(run, lane), model=name, loads=lane.loads, freed=lane.freed))
    return out


def lane_figures(run, lane) -> dict:
    stats = lane.scorer.stats
    model = lane.loaded_model
    info = {} if model is None else model_info(model)
    if model is None and lane.loads:  # freed to make room for another model: described when it was loaded
        info = lane.last_info
    if model is None and stats.cached and not info:  # every score came from the cache: say what made them
        try:
            cache = lane.score_cache()
            info = dict(cache[0].model_info(cache[1]) or {}, from_cache=True) if cache else {}
        except Exception:
            info = {}
    return {
        "worker": getattr(run.config, "workerinput", {}).get("workerid", "main"),
        "items": stats.pairs,
        "sequences": stats.sequences,
        "batches": stats.batches,
        "tokens": stats.tokens,
        "padded_tokens": stats.padded_tokens,
        "oom_halvings": stats.oom_halvings,
        "cached": stats.cached,
        "seconds": stats.seconds,
        "load_seconds": lane.load_seconds,
        "load_error": lane.model_error,
        "peak_memory_bytes": peak_memory_bytes(),
        "device": info.get("device"),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "versions": info.get("versions") or {},
        "kind": info.get("kind"),
        "dtype": info.get("dtype"),
        "from_cache": bool(info.get("from_cache")),
        "warnings": list(run.state.warnings) if run.is_worker else [],
    }


def finish_run(run, session, exitstatus) -> None:
    state = run.state
    if run.ray_pool is not None:  # --rm-ray: the actors scored; their figures, and the Ray lines of the summary
        state.workers = run.ray_pool.worker_figures()
        state.warnings.extend(run.ray_pool.warnings)
        state.notes.extend(run.ray_pool.summary_lines())
    elif not run.config.pluginmanager.hasplugin("dsession"):  # not distributed: this process scored
        state.workers = run.worker_figures()
    for worker in state.workers:
        state.warnings.extend(w for w in worker.get("warnings") or () if w not in state.warnings)
    try:
        config = gate_config(run.settings, run.catalog)
    except GateConfigError as exc:  # under xdist the names are known only now
        state.usage_error = f"pytest-rmbench: {exc}"
        session.exitstatus = pytest.ExitCode.USAGE_ERROR
        return
    if run.settings.several_models:  # one report per model, compared (lineup.py)
        state.report = finish_models(run, config, exitstatus)
    else:
        state.report = model_report(run, run.primary, list(state.records.values()), state.workers, config, exitstatus)
        record_run(run, state.report, run.primary)
    junit_properties(run.config, state.report)
    write_files(run)
    if exitstatus not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        return  # interrupted, internal or usage errors keep pytest's own code
    ok = state.report.gate.passed and not state.other_failures and not state.collection_failed and not state.report_error
    session.exitstatus = pytest.ExitCode.OK if ok else pytest.ExitCode.TESTS_FAILED


def finish_models(run, config, exitstatus):
    """Several models: each model's records through model_report (its gate: for_model), one
    stored run per model; --rm-baseline compares the first model, the one the top level shows."""
    from . import lineup

    built, real_ids, names = {}, {}, list(run.lanes)
    for name, lane in run.lanes.items():
        records, real_ids[name] = lineup.model_records(run, name)
        workers = [w for w in run.state.workers if w.get("model") == name]
        built[name] = (model_report(run, lane, records, workers, for_model(config, name, names), exitstatus,
                                    baseline=lane is run.primary), bool(records))
    # the first model is recorded last: after this run, --rm-baseline latest is the first model's run
    for name in reversed(names):
        report, ran = built[name]
        if ran:  # a model none of whose tests ran (-k) is no run to keep
            record_run(run, report, run.lanes[name])
    reports = {name: report.to_dict() for name, (report, _) in built.items()}
    return lineup.compared(run, reports, real_ids, config.inconclusive)


def model_report(run, lane, records: list[dict], workers: list[dict], config, exitstatus, *, baseline: bool = True):
    """One model's report from its item records: figures, official scores, selection, baseline, gate."""
    summary = aggregate(records, config.sections, run.settings.null_answer)
    if run.catalog.sample:  # --rm-sample: each accuracy estimates the full suite's
        as_estimates(summary, run.catalog.sample["population"], config.sections)
    summary["scores"], summary["datasets"] = suite_scores(run, records)
    suites = run.catalog.suites
    summary["headlines"] = {n: (sc or {}).get(suites[n]["headline"]) for n, sc in summary["scores"].items()}
    if run.catalog.sample:  # a suite's official score from a sample: an estimate with no interval
        sampled_scores(summary, records, run.catalog.sample["population"])
    summary["selection"] = selection(run, exitstatus, records, lane.name)
    comparison, baseline_checks = (compare_with_baseline(run, summary["items"], config.inconclusive, lane.spec.seed)
                                   if baseline else (None, []))
    gate = evaluate(config, summary, baseline_checks)
    summary.pop("headlines")
    return build_report(
        records, catalog=run.catalog.to_dict(), workers=workers, gate=gate, model=lane.display_name,
        kind=lane.spec.kind, dtype=lane.spec.dtype, device=lane.spec.device, seed=lane.spec.seed, started=run.started,
        selection=summary["selection"], scores=summary["scores"], datasets=summary["datasets"],
        recovered=list(run.xdist.crashed) if run.xdist else [], baseline=comparison, summary=summary)


def sampled_scores(summary: dict, records: list[dict], population: dict) -> None:
    """--rm-sample: each suite's official scores say they are an estimate (items drawn of the
    suite's items), and a threshold on one cannot pass: there is no interval to decide it by."""
    for name, scores in summary["scores"].items():
        if scores is None:
            continue
        drawn = sum(1 for r in records if r["file"] == name)
        of = sum(n for subset, n in population.items() if subset.startswith(f"{name}/"))
        summary["datasets"][name]["estimate"] = {"items": drawn, "of": of}
        if summary["headlines"].get(name) is not None:
            summary["headlines"][name] = {"accuracy": summary["headlines"][name], "estimate": True}


def suite_scores(run, records: list[dict]) -> tuple[dict, dict]:
    """Each suite's official scores from its items' results, and the datasets it read."""
    from .suites import SuiteResult

    scores, datasets = {}, {}
    for name, info in run.catalog.suites.items():
        datasets[name] = {"headline": info["headline"], "datasets": info["datasets"], "not_run": info["not_run"],
                          "items": info["items"]}
        results = [
            SuiteResult(r["id"], r["suite_subset"], r["outcome"], r.get("credit"), r.get("details") or {}, r.get("group") or "")
            for r in records if r["file"] == name and r.get("suite_subset") is not None
        ]
        if not results:
            continue
        suite = next((s for s in run.resolve_suites() if s.name == name), None)
        try:
            scores[name] = suite.score(results) if suite is not None else None
        except Exception as exc:  # a scorer's bug must not lose the run's item results
            run.state.warnings.append(f"{name}: the official score could not be computed: {type(exc).__name__}: {exc}")
            scores[name] = None
    return scores, datasets


def selection(run, exitstatus, records: list[dict], model: str | None = None) -> dict:
    """Which files ran, and whether every collected item of them did: a partial run
    (-k, -m, --lf, --rm-rerun-regressions, --rm-sample, a crash) is never the `latest` baseline of a full one."""
    state, sample = run.state, run.catalog.sample
    why = []
    if sample and sample["drawn"] < sample["of"]:
        why.append(f"a stratified sample of {sample['drawn']} of {sample['of']} items (--rm-sample {sample['size']},"
                   f" seed {sample['seed']})")
    deselected = state.deselected
    if run.settings.several_models:  # this model's tests, and tests that are no model's
        deselected = state.deselected_by_model[model] + state.deselected_by_model[None]
    deselected -= sample["of"] - sample["drawn"] if sample else 0  # -k, -m, ... beside the sample
    if deselected > 0:
        why.append(f"{deselected} item(s) deselected (-k, -m, --lf, ...)")
    if getattr(run.config.option, "lf", False):
        why.append("--lf")
    if run.settings.rerun_regressions:
        why.append("--rm-rerun-regressions")
    if state.collection_failed:
        why.append("collection errors")
    if exitstatus not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        why.append(f"the session ended early ({pytest.ExitCode(exitstatus).name.lower()})")
    missing = len(run.catalog.items) - len(records)
    if missing > 0 and not state.deselected:
        why.append(f"{missing} collected item(s) did not run")
    out = {"files": sorted({r["file"] for r in records}), "partial": bool(why), "why": why}
    if sample:
        out["sample"] = {k: sample[k] for k in ("size", "seed", "drawn", "of")}
    return out


def compare_with_baseline(run, items: list[dict], inconclusive: str, seed: int = 0) -> tuple[dict | None, list[dict]]:
    """(the comparison, its gate checks). A baseline the user named that cannot be used fails
    the gate: a typo must not switch the regression gate off. Only `latest` with no earlier
    complete run passes, with a line saying so."""
    ref = run.settings.baseline
    if not ref:
        return None, []
    files = sorted({i["file"] for i in items})
    try:
        baseline, label = history.load_baseline(ref, run.open_store, items, files)
    except history.BaselineError as exc:
        return None, [baseline_mod.unusable_check(str(exc))]
    except Exception as exc:  # e.g. an unreadable store
        return None, [baseline_mod.unusable_check(f"--rm-baseline={ref}: the run store cannot be read: {one_line(exc)}")]
    if baseline is None:  # latest, and no earlier complete run of these files
        run.state.notes.append(f"baseline: {label}")
        return None, []
    if baseline.get("models"):  # a report of several models (a .json): its first model, as a one-model run names it
        first = next(iter(baseline["models"]))
        label = f"{label}, its first model {first}"
        baseline = dict(baseline, items=[dict(i, nodeid=one_model_nodeid(i["nodeid"], first))
                                         for i in baseline.get("items") or () if i.get("model") == first])
    comparison = baseline_mod.compare(items, baseline["items"], run.settings.max_regression, seed=seed)
    comparison = {"run": baseline.get("run", {}).get("id", label), "label": label, **comparison}
    if not comparison["shared"] and not comparison["edited"] and ref != "latest":
        return comparison, [baseline_mod.unusable_check(f"--rm-baseline={ref}: {label} has no item of this run")]
    if not comparison["shared"]:
        return comparison, [baseline_mod.inconclusive_check(
            f"{label} shares no unedited item with this run ({comparison['edited']} edited)", inconclusive)]
    return comparison, baseline_mod.checks(comparison, inconclusive)


def record_run(run, report, lane) -> None:
    """The model's report into the run store (one run per model); its id goes on the report."""
    if run.settings.no_store:
        return
    try:
        fingerprint = run.config.hook.pytest_rmbench_model_fingerprint(config=run.config, spec=lane.spec)
        # the texts are in the files the items came from: the store keeps the results
        data = report.to_dict()
        stored = dict(data, items=[{k: v for k, v in i.items() if k != "texts"} for i in data["items"]])
        run_id = run.open_store().record_run(
            stored, fingerprint=fingerprint or lane.display_name, git_commit=history.git_commit(str(run.config.rootpath))
        )
        report.run.id = run_id
    except Exception as exc:  # the history is a convenience: never lose the run over it
        run.state.warnings.append(f"the run could not be recorded in the run store: {type(exc).__name__}: {exc}")


def junit_properties(config, report: dict) -> None:
    """Run-level figures as <testsuite> properties (pytest's junitxml writes after this hook)."""
    try:
        from _pytest.junitxml import xml_key  # no public accessor; guarded in case it moves
    except ImportError:
        return
    xml = config.stash.get(xml_key, None)
    if xml is None:
        return
    xml.add_global_property("rm_model", report["run"]["model"])
    xml.add_global_property("rm_gate_passed", report["gate"]["passed"])
    xml.add_global_property("rm_accuracy_overall", report["overall"]["accuracy"])
    if report["run"].get("load_error"):
        xml.add_global_property("rm_load_error", report["run"]["load_error"])
    for kind, blocks in (("subset", report["subsets"]), ("section", report["sections"])):
        for name, block in blocks.items():
            xml.add_global_property(f"rm_accuracy_{kind}_{name}", block["accuracy"])
    for name, block in (report.get("models") or {}).items():  # several models: the top level is the first's
        xml.add_global_property(f"rm_model[{name}]", block["run"]["model"])
        xml.add_global_property(f"rm_accuracy_overall[{name}]", block["overall"]["accuracy"])


def without_thumbnails(report):
    """The report for the JSON file: image thumbnails (made for the HTML page only) left out."""
    data = report.to_dict() if hasattr(report, "to_dict") else report
    if not any("thumbnail" in (i.get("texts") or {}) for i in data.get("items") or ()):
        return report
    items = [dict(i, texts={k: v for k, v in i["texts"].items() if k != "thumbnail"}) if i.get("texts") else i
             for i in data["items"]]
    return dict(data, items=items)


def write_files(run) -> None:
    """--rm-report, --rm-markdown (or $GITHUB_STEP_SUMMARY), --rm-html: one lost output never costs the others."""
    settings = run.settings
    outputs = [(settings.report, lambda report, path: write_json(without_thumbnails(report), path))]
    markdown = settings.markdown_target()
    if markdown:
        from .report.markdown import render_markdown

        outputs.append((markdown, lambda report, path: append_text(path, render_markdown(report))))
    if settings.html:
        from .report.html import render_html

        outputs.append((settings.html, lambda report, path: write_text(path, render_html(report))))
    for path, write in outputs:
        if not path:
            continue
        try:
            write(run.state.report, path)
        except Exception as exc:  # one output lost, not the others
            run.state.report_error = f"pytest-rmbench: could not write {path!r}: {exc}"

