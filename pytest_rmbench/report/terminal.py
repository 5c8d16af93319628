"""The end-of-run summary in the terminal: regressions first, then the table, then the gate."""

from __future__ import annotations

from ..items import ERROR, INCORRECT, NOT_LOADED
from ..items.images import count_with_images
from .format import fmt as _num
from .format import fmt_mib as _mib
from .format import fmt_interval, image_mark, text_table
from .schema import Report
from .comparison import text_lines as comparison_lines
from .tables import summary_table, text_rows

SHOWN = 10
ERRORS_SHOWN = 5


def table_lines(report, verbose: int = 0) -> list[str]:
    """The subsets / sections / overall table; subsets inside sections fold beyond 40 rows (not with -v)."""
    rows, rules = text_rows(summary_table(Report.of(report), fold=True, verbose=verbose))
    return text_table(rows, rules)


def write_summary(tr, report: Report | dict, records: list[dict], warnings: list[str], *, verbose: int, maxfail: int,
                  report_path: str | None, notes: list[str] = (), explanations: dict[str, str] | None = None,
                  explain: bool = False) -> None:
    """The summary; `report` is the typed Report or a report dict (read with Report.from_dict)."""
    report = Report.of(report)
    several = bool(report.get("models"))
    if several:  # several models (lineup.py): side by side, then the first model's details
        _write_models(tr, report, verbose)
    else:
        _write_model(tr, report.run, records)
    if report.baseline:
        _write_baseline(tr, report.baseline, verbose, records)
    for line in (comparison_lines(report, verbose) if several else table_lines(report, verbose)):
        tr.write_line(line)
    _write_figures(tr, report)
    if count_with_images(records):
        tr.write_line(f"items with images: {count_with_images(records)}")
    _write_errors(tr, records)
    _write_incorrect(tr, records, explanations if (verbose > 0 or explain) else None, verbose)
    _write_workers(tr, report.workers, verbose)
    _write_warnings(tr, report, warnings, notes, maxfail)
    _write_gate(tr, report.gate)
    recorded = [(name, (block.get("run") or {}).get("id")) for name, block in (report.get("models") or {}).items()]
    if recorded and any(run_id is not None for _, run_id in recorded):  # several models: one stored run each
        tr.write_line("recorded as runs " + ", ".join(f"{run_id} ({name})" for name, run_id in recorded if run_id is not None)
                      + " (python -m pytest_rmbench runs show ID)")
    elif report.run.get("id") is not None:
        tr.write_line(f"recorded as run {report.run.id} (python -m pytest_rmbench runs show {report.run.id})")
    if report_path:
        tr.write_line(f"report written to {report_path}")


def _write_model(tr, run, records: list[dict]) -> None:
    """The title line (the model) and, when it could not be loaded, why."""
    source = "; every score from the score cache" if run.scores_from_cache else ""
    tr.write_sep("=", f"rmbench: {run.model} ({run.kind}, {run.dtype}, {run.device}{source})")
    if run.load_error:
        not_loaded = sum(r["error"] == NOT_LOADED for r in records)
        tr.write_line(f"the reward model could not be loaded: {run.load_error}", red=True, bold=True)
        tr.write_line(f"  {not_loaded} item(s) were not scored", red=True)


def _write_models(tr, report: Report, verbose: int) -> None:
    """The title line of a run of several models, and each model that could not be loaded."""
    models = report["models"]
    tr.write_sep("=", f"rmbench: {len(models)} models: " + ", ".join(
        f"{name} ({(block.get('run') or {}).get('model')})" for name, block in models.items()))
    for name, block in models.items():
        run = block.get("run") or {}
        if run.get("load_error"):
            tr.write_line(f"{name}: the reward model could not be loaded: {run['load_error']}", red=True, bold=True)
    if report.baseline:
        tr.write_line(f"--rm-baseline compares the first model, {next(iter(models))}")


def _write_figures(tr, report: Report) -> None:
    """Length baseline, per-head accuracy, step F1, the suites' headlines and the score cache."""
    run = report.run
    length, pps = report.length_baseline.accuracy, run.pairs_per_second
    tr.write_line(
        f"length baseline (longer answer wins): {_num(length)}   truncated: {report.truncated}"
        + ("" if pps is None else f"   pairs/s: {pps:,.1f}")
    )
    heads = report.heads
    if heads:
        figures = ", ".join(f"{h}: {_num(a)}" for h, a in enumerate(heads.overall))
        tr.write_line(f"per-head accuracy (each output as the reward, {heads.n} pairs): {figures}")
    for name, block in (report.steps or {}).items():
        tr.write_line(f"steps {name}: F1 {_num(block.f1)} (accuracy on erroneous {_num(block.acc_error)}, "
                      f"on correct {_num(block.acc_correct)})")
    for name in report.scores or {}:
        headline, value = report.headline(name)
        sampled = (report.datasets.get(name).get("estimate") if name in (report.datasets or {}) else None) or {}
        note = f" (an estimate from {sampled['items']} of {sampled['of']} items: --rm-sample)" if sampled else ""
        tr.write_line(f"{name}: {headline} {_num(value)}{note}" if value is not None else f"{name}: see \"scores\" in the JSON report")
    cached = sum(w.cached or 0 for w in report.workers)
    if cached:
        total = cached + sum(w.sequences or 0 for w in report.workers)
        tr.write_line(f"score cache: {cached} of {total} sequences read from the cache (--rm-no-cache to rescore)")


def _write_errors(tr, records: list[dict]) -> None:
    """Each distinct error message once (the first few); not the load error's."""
    errors = list(dict.fromkeys(
        r["error"] for r in records if r["outcome"] == ERROR and r["error"] and r["error"] != NOT_LOADED
    ))
    for message in errors[:ERRORS_SHOWN]:
        tr.write_line(f"error: {message}", red=True)
    if len(errors) > ERRORS_SHOWN:
        tr.write_line(f"  ... and {len(errors) - ERRORS_SHOWN} more error message(s) (--rm-report has every item)", red=True)


def _write_incorrect(tr, records: list[dict], explanations: dict[str, str] | None, verbose: int) -> None:
    """The incorrect items, worst margin first (kinds without a margin, steps, last); with -v every one."""
    incorrect = sorted((r for r in records if r["outcome"] == INCORRECT),
                       key=lambda r: (r["margin"] is None, r["margin"] or 0.0))
    if not incorrect:
        return
    shown = incorrect if verbose > 0 else incorrect[:SHOWN]
    tr.write_line(f"incorrect ({len(incorrect)}):")
    for r in shown:
        figure = f"margin {r['margin']:+.4g}" if r["margin"] is not None else f"credit {r.get('credit') or 0:.3g}"
        tr.write_line(f"  {r['nodeid']}  {figure}{image_mark(r)}")
        why = (explanations or {}).get(r["nodeid"])
        if why:  # both scores, the margin and the start of each answer
            for line in why.splitlines()[1:]:
                tr.write_line(f"    {line.strip()}")
    if len(shown) < len(incorrect):
        tr.write_line(f"  ... and {len(incorrect) - len(shown)} more (-v lists all with their scores; "
                      "--rm-report has every item)")


def _write_workers(tr, workers: list, verbose: int) -> None:
    """Each worker's figures (with -v, or more than one worker) and any out-of-memory retries."""
    for w in workers:
        if len(workers) > 1 or verbose > 0:
            whose = f" ({w.extra['model']}, loaded {w.extra.get('loads')}x)" if w.extra.get("model") else ""
            tr.write_line(
                f"worker {w.worker}{whose}: {w.items} items, {w.batches} batches, {w.tokens} tokens, "
                f"{w.seconds:.2f}s scoring, peak memory {_mib(w.peak_memory_bytes)}, device {w.device}"
                + (f" (CUDA_VISIBLE_DEVICES={w.cuda_visible_devices})" if w.cuda_visible_devices else "")
                + (f", model loaded in {w.load_seconds:.1f}s" if w.load_seconds else "")
            )
    halvings = sum(w.oom_halvings or 0 for w in workers)
    if halvings:
        tr.write_line(f"warning: out of memory {halvings} time(s): batches were halved and retried "
                      "(lower --rm-max-batch-tokens to avoid it)", yellow=True)


def _write_warnings(tr, report: Report, warnings: list[str], notes: list[str], maxfail: int) -> None:
    """Rescored items, a partial run, -x, the run's warnings, then its notes."""
    run = report.run
    if report.recovered:
        tr.write_line(f"warning: an xdist worker died; {len(report.recovered)} item(s) were scored again on another "
                      "worker (each counted once): " + ", ".join(report.recovered[:5]), yellow=True)
    if (run.ran or 0) < (run.collected or 0):
        tr.write_line(f"partial run: the gate covers {run.ran} of {run.collected} items", yellow=True)
    if maxfail:
        tr.write_line("warning: -x/--maxfail stops at the first failures; the gate sees only the items that ran", yellow=True)
    for message in warnings:
        tr.write_line(f"warning: {message}", yellow=True)
    for message in notes:
        tr.write_line(message)


def _write_baseline(tr, baseline, verbose: int, records: list[dict] = ()) -> None:
    regressed = baseline.regressed
    images = {r.get("nodeid"): r for r in records or () if hasattr(r, "get")}
    tr.write_line(
        f"against baseline {baseline.label}: {baseline.shared} shared items, {baseline.edited} edited "
        f"(left out), {len(regressed)} regressed, non-inferiority margin {baseline.margin:g}"
    )
    shown = regressed if verbose > 0 else regressed[:SHOWN]
    for nodeid in shown:
        tr.write_line(f"  REGRESSED {nodeid}{image_mark(images.get(nodeid) or {})}", red=True)
    if len(shown) < len(regressed):
        tr.write_line(f"  ... and {len(regressed) - len(shown)} more (--rm-rerun-regressions runs just those)")
    rows = [("", "n", "before", "after", "delta", "one-sided 95%", "regr", "fixes", "McNemar p", "decision")]
    for name, b in list(baseline.subsets.items()) + [("overall", baseline.overall)]:
        rows.append((name, str(b.n), _num(b.before), _num(b.after), _num(b.delta, "+.3f"),
                     fmt_interval(b.delta_low, b.delta_high, "+.3f"), str(b.regressions), str(b.fixes),
                     _num(b.mcnemar_p, ".3g"), b.decision))
    for line in text_table(rows):
        tr.write_line(line)


VERDICTS = {"pass": "pass", "fail": "FAIL", "not run": "not run", "inconclusive": "INCONCLUSIVE"}


def _write_gate(tr, gate) -> None:
    if gate["checks"]:
        tr.write_line("gate checks:")
    for check in gate["checks"]:
        verdict = VERDICTS[check["status"]]
        whose = f"{check['model']}: " if check.get("model") else ""  # several models: the checks without a name say whose
        if check["kind"] == "accuracy":
            if check["value"] is None:
                value = f"no item scored ({check['errors']} errored)" if check.get("errors") else "not run (no items selected)"
            else:
                value = f"{check['value']:.3f}"
            interval = f" [{check['low']:.3f}, {check['high']:.3f}]" if check.get("low") is not None else ""
            tr.write_line(f"  {check['name']} {value}{interval}, needs >= {check['threshold']:.3f}: {verdict} "
                          f"({check['rule']} rule, from {check['source']})")
        elif check["kind"] in ("baseline", "compare"):  # --rm-compare: the other model is the baseline
            if check["value"] is None:
                tr.write_line(f"  {check['name']}: not run: {verdict}")
            else:
                tr.write_line(f"  {check['name']} delta {check['value']:+.3f}, one-sided 95% [{check['low']:+.3f}, "
                              f"{check['high']:+.3f}], needs > {check['threshold']:+.3f}: {verdict} ({check['rule']} rule)")
        elif check["kind"] == "baseline-missing":
            tr.write_line(f"  {whose}baseline: {check['rule']}: {verdict}")
        elif check["kind"] == "errors":
            tr.write_line(f"  {whose}{check['value']} item(s) errored, needs none: {verdict}")
        elif check["kind"] == "max":  # a figure that may not exceed its cap (the null answer's win rate)
            value = "not run" if check["value"] is None else f"{check['value']:.3f}"
            tr.write_line(f"  {check['name']} {value}, needs <= {check['threshold']:.3f}: {verdict} (from {check['source']})")
        else:
            failed = ", ".join(check["failed"][:5])
            tr.write_line(f"  {whose}strict items: {check['rule']}: {verdict}" + (f" (failed: {failed})" if failed else ""))
    inconclusive = [c["name"] for c in gate["checks"] if c["status"] == "inconclusive"]
    if inconclusive:
        verdict = "counted as passed" if all(c["passed"] for c in gate["checks"] if c["status"] == "inconclusive") else "counted as failed"
        why = "--rm-sample: never a pass" if any(c.get("rule") == "sample interval" for c in gate["checks"]
                                                 if c["status"] == "inconclusive") else "--rm-inconclusive"
        tr.write_line(f"warning: inconclusive ({verdict}, {why}): {', '.join(inconclusive)}", yellow=True)
    if not gate["configured"] and gate["passed"]:
        tr.write_line("gate: no gate was set (add thresholds with --rm-min-accuracy NAME=VALUE or a file's gate:)")
    elif gate["passed"]:
        tr.write_line("gate: PASSED", green=True, bold=True)
    else:
        tr.write_line("gate: FAILED", red=True, bold=True)
