"""`python -m pytest_rmbench runs ...`: read the run history that `--rm-store` records.

    runs list    [--limit N] [--model TEXT] [--suite NAME]   the most recent runs
    runs show    RUN [--json]         the summary table of one run
    runs compare A B [--json]         per-subset accuracies, regressions and fixes between two runs
    runs export  RUN [-o FILE]        the stored JSON report
    runs agreement   [--by subset] [--min-models N]  Kendall tau between benchmarks (standings.py)
    runs leaderboard [--suite NAME ...]  mean win rate and Bradley-Terry, with intervals; pairs of models
    runs correlate   [--model NAME ...]  Spearman and centred Pearson between the models' rewards
    runs seeds       [--model NAME ...]  IQM and probability of improvement over several runs per model

RUN is a run id, "latest", or a model name (its most recent run). Every command takes
`--store PATH_OR_URL`; without it the store is found as pytest finds its rootdir: from the
current folder up to the first pytest.ini / pytest.toml, pyproject.toml with [tool.pytest...],
tox.ini with [pytest] or setup.cfg with [tool:pytest], whose folder holds .rmbench/runs.sqlite
(or its rm_store ini option says where); with no such file, the first folder upwards holding
.rmbench/runs.sqlite. The store is only read (SQLite mode=ro): a corrupt file is reported and
left as it is. An unknown run, a missing or unreadable store, or two runs with no unedited
item in common exit 2 with a message.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Sequence

from .items import CORRECT, INCORRECT
from .report.aggregate import official_figures
from .report.compare import MATCHED, by_nodeid, pair_items
from .report.format import fmt, fmt_count, text_table
from .report.schema import Report
from .report.tables import summary_table, text_rows
from .storage.store import POSTGRES_SCHEMES, StoreError, open_store, redact

DEFAULT_STORE = os.path.join(".rmbench", "runs.sqlite")  # relative to pytest's rootdir: see history.find_store


class CliError(Exception):
    """A message for the user; exit status 2."""


def _fmt(value, spec: str = ".3f") -> str:
    """A number for the tables ("-" when missing); spec "d": a count (a sum of fractional credits with .4g)."""
    return fmt_count(value, ".4g") if spec == "d" else fmt(value, spec)


def _when(started) -> str:
    return "-" if not started else str(started)[:19].replace("T", " ")


def _table(rows: list[tuple], rules: Sequence[int] = (), left: int = 1) -> list[str]:
    """The first `left` columns left-aligned, the others right-aligned; a rule line before each row in rules."""
    return text_table(rows, rules, left, strip=True)


# ---------------------------------------------------------------------------- comparing


def compare_reports(a: dict, b: dict) -> dict:
    """Per subset and overall: accuracies of A and B, delta (B - A), and the paired changes.

    Items are paired by node id (report/compare.py); one whose content hash differs, or is
    missing on one side, is "edited" and left out of the paired counts. regressions: correct in A, incorrect in B; fixes:
    the reverse; errored: an error on either side (left out, as accuracy leaves errors out).
    """
    from .report.stats import mcnemar_exact

    a_items, b_items = by_nodeid(a.get("items")), by_nodeid(b.get("items"))
    names = sorted(set(a.get("subsets") or {}) | set(b.get("subsets") or {})
                   | {str(i.get("subset")) for i in [*a_items.values(), *b_items.values()]})

    def empty() -> dict:
        return {"matched": 0, "regressions": 0, "fixes": 0, "edited": 0, "errored": 0, "only_a": 0, "only_b": 0}

    paired = {name: empty() for name in names}
    overall = empty()
    for _, ia, ib, key in pair_items(a_items.values(), b_items.values()):
        counts = paired[str((ib or ia).get("subset"))]
        if key == MATCHED:
            change = (ia.get("outcome"), ib.get("outcome"))
            extra = {(CORRECT, INCORRECT): "regressions", (INCORRECT, CORRECT): "fixes"}.get(change)
            if extra:
                counts[extra] += 1
                overall[extra] += 1
        counts[key] += 1
        overall[key] += 1

    def row(block_a: dict | None, block_b: dict | None, counts: dict) -> dict:
        acc_a = (block_a or {}).get("accuracy")
        acc_b = (block_b or {}).get("accuracy")
        return {
            "n_a": (block_a or {}).get("n"), "accuracy_a": acc_a,
            "n_b": (block_b or {}).get("n"), "accuracy_b": acc_b,
            "delta": None if acc_a is None or acc_b is None else acc_b - acc_a,
            **counts,
            "p_value": mcnemar_exact(counts["regressions"], counts["fixes"]),
        }

    def who(report: dict) -> dict:
        run = report.get("run") or {}
        return {"id": run.get("id"), "model": run.get("model"), "started": run.get("started")}

    return {
        "a": who(a), "b": who(b),
        "subsets": {name: row((a.get("subsets") or {}).get(name), (b.get("subsets") or {}).get(name), paired[name])
                    for name in names},
        "overall": row(a.get("overall"), b.get("overall"), overall),
    }


def nothing_compared(result: dict) -> None:
    """A CliError when the two runs have no item to pair: no node id in common, or all edited."""
    o = result["overall"]
    if o["matched"] + o["errored"]:
        return
    a, b = result["a"]["id"], result["b"]["id"]
    why = [f"{o['edited']} edited" if o["edited"] else "", f"{o['only_a']} only in {a}" if o["only_a"] else "",
           f"{o['only_b']} only in {b}" if o["only_b"] else ""]
    why = ", ".join(w for w in why if w)
    raise CliError(f"runs {a} and {b} share no unedited items: nothing to compare" + (f" ({why})" if why else ""))


def compare_lines(result: dict) -> list[str]:
    a, b = result["a"], result["b"]
    lines = [f"A: run {a['id']}  {a['model']}  {_when(a['started'])}",
             f"B: run {b['id']}  {b['model']}  {_when(b['started'])}", ""]
    rows = [("subset", "n A", "acc A", "n B", "acc B", "delta", "regressions", "fixes", "edited", "p (McNemar)")]

    def add(label: str, r: dict):
        rows.append((label, _fmt(r["n_a"], "d"), _fmt(r["accuracy_a"]), _fmt(r["n_b"], "d"), _fmt(r["accuracy_b"]),
                     _fmt(r["delta"], "+.3f"), r["regressions"], r["fixes"], r["edited"], _fmt(r["p_value"], ".3g")))

    for name, r in result["subsets"].items():
        add(name, r)
    add("overall", result["overall"])
    lines += _table(rows, rules=(1, len(rows) - 1))
    o = result["overall"]
    lines.append(f"matched items: {o['matched']}   edited (content changed, left out): {o['edited']}   "
                 f"errored: {o['errored']}   only in A: {o['only_a']}   only in B: {o['only_b']}")
    return lines


# ----------------------------------------------------------------------------- showing


def summary_of(report: dict) -> dict:
    run = report.get("run") or {}
    return {"id": run.get("id"), "model": run.get("model"), "started": run.get("started"),
            "seconds": run.get("seconds"),
            **{k: report.get(k) for k in ("subsets", "sections", "overall", "scores", "gate", "length_baseline")}}


def show_lines(report: dict, info: dict | None) -> list[str]:
    run = report.get("run") or {}
    info = info or {}
    lines = [f"run {run.get('id')}  model {run.get('model')}  started {_when(run.get('started'))}"
             f"  seconds {_fmt(run.get('seconds'), '.1f')}"]
    if info.get("git_commit") or info.get("suites"):
        lines.append(f"git commit {info.get('git_commit') or '-'}  suites {', '.join(info.get('suites') or []) or '-'}")
    lines.append("")
    rows, rules = text_rows(summary_table(Report.of(report)), unsummed="-")
    lines += _table(rows, rules=rules)
    length = (report.get("length_baseline") or {}).get("accuracy")
    lines.append(f"length baseline (longer answer wins): {_fmt(length)}")
    for name, headline, value, _ in official_figures(report):
        lines.append(f"{name}: {headline or 'score'} {_fmt(value)}")
    gate = report.get("gate") or {}
    if not gate.get("configured"):
        state = "not configured" + ("" if gate.get("passed", True) else " (failed)")
    else:
        state = "passed" if gate.get("passed") else "FAILED"
    lines.append(f"gate: {state}")
    for check in gate.get("checks") or []:
        if check.get("passed") is False:
            lines.append(f"  failed: {check.get('name')} {_fmt(check.get('value'), '.3f') if isinstance(check.get('value'), float) else check.get('value')}"
                         f" (needs {check.get('threshold')}, {check.get('rule')})")
    return lines


# --------------------------------------------------------------------------------- main


def _open(target: str | None):
    how = ""
    if target is None:
        from .storage.history import find_store

        target, how = find_store()
        how = f"{how}; "
    if not target.lower().startswith(POSTGRES_SCHEMES) and not os.path.exists(target):
        raise CliError(f"no run store at {target} ({how}pytest --rm-store records runs there;"
                       " --store picks another store)")
    try:
        return open_store(target, read_only=True)
    except StoreError as exc:
        raise CliError(str(exc)) from exc


def _run(store, ref: str) -> dict:
    report = store.find_run(ref)
    if report is None:
        raise CliError(f"no run matches {ref!r} in {store.target} (a run id, 'latest', or a model name;"
                       f" 'python -m pytest_rmbench runs list' shows the runs)")
    return report


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--store", default=None, metavar="PATH_OR_URL",
                        help=f"an SQLite file or a postgresql:// URL (default: {DEFAULT_STORE} in pytest's"
                             " rootdir, found from the current folder upwards as pytest finds it)")
    parser = argparse.ArgumentParser(prog="python -m pytest_rmbench", description="pytest-rmbench's run history.")
    top = parser.add_subparsers(dest="group", metavar="runs", required=True)
    runs = top.add_parser("runs", help="list, show, compare and export recorded runs")
    sub = runs.add_subparsers(dest="command", metavar="COMMAND", required=True)
    p = sub.add_parser("list", parents=[common], help="the most recent runs")
    p.add_argument("--limit", type=int, default=20, help="at most N runs (default 20; 0: all)")
    p.add_argument("--model", metavar="TEXT", help="only runs whose model name contains TEXT (case-insensitive)")
    p.add_argument("--suite", metavar="NAME",
                   help="only runs of that benchmark file (path as in the report, or its file name) or --rm-bench suite")
    p = sub.add_parser("show", parents=[common], help="the summary table of one run")
    p.add_argument("run", metavar="RUN", help="a run id, 'latest', or a model name")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p = sub.add_parser("compare", parents=[common], help="accuracy changes, regressions and fixes from run A to run B")
    p.add_argument("a", metavar="A", help="the earlier run (id, 'latest', or a model name)")
    p.add_argument("b", metavar="B", help="the later run")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")
    p = sub.add_parser("export", parents=[common], help="the stored JSON report of one run")
    p.add_argument("run", metavar="RUN", help="a run id, 'latest', or a model name")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")
    _standings_parsers(sub, common)
    return parser


def _standings_parsers(sub, common) -> None:
    models = argparse.ArgumentParser(add_help=False)  # what every cross-run command takes
    models.add_argument("--model", action="append", metavar="NAME", help="only these models (repeat; default: all)")
    models.add_argument("--reps", type=int, default=1000, help="bootstrap resamples (default 1000)")
    models.add_argument("--seed", type=int, default=0, help="the bootstrap's seed (default 0)")
    models.add_argument("--json", action="store_true", help="print the result as JSON")
    shared = argparse.ArgumentParser(add_help=False, parents=[models])  # ... and those over item tables
    shared.add_argument("--by", choices=("suite", "subset"), default="suite",
                        help="compare whole benchmark files/suites (default) or each subset")
    shared.add_argument("--suite", action="append", metavar="NAME",
                        help="only these benchmark files or suites (repeat; default: all)")
    p = sub.add_parser("agreement", parents=[common, shared],
                       help="Kendall tau between benchmarks' rankings of the models they share (BenchBench)")
    p.add_argument("--min-models", type=int, default=5, help="pairs of benchmarks sharing fewer models are not"
                   " compared (default 5)")
    p = sub.add_parser("leaderboard", parents=[common, shared],
                       help="models by mean win rate and a Bradley-Terry fit over item outcomes, with intervals, and"
                            " every pair of models compared (McNemar, paired bootstrap, Holm)")
    p.add_argument("--html", metavar="FILE", help="also write a page with the table, forest plots and the pairs matrix")
    p.add_argument("--markdown", metavar="FILE", help="also write the table and the pairs as Markdown")
    sub.add_parser("correlate", parents=[common, shared],
                   help="how alike the models' rewards are: Spearman over answers and per-item centred Pearson")
    sub.add_parser("seeds", parents=[common, models],
                   help="several runs per model (seeds, sampled judges): IQM with a stratified bootstrap and the"
                        " probability of improvement (rliable)")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = _dispatch(args)
        sys.stdout.flush()
        return code
    except (CliError, StoreError) as exc:
        print(f"pytest-rmbench: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `... | head`: not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _dispatch(args) -> int:
    from .report.aggregate import json_safe, write_json

    with _open(args.store) as store:
        if args.command == "list":
            runs = store.list_runs(limit=args.limit, model=args.model, suite=args.suite)
            if not runs:
                chosen = [f"{k} {v!r}" for k, v in (("model", args.model), ("suite", args.suite)) if v]
                print(f"no run in {store.target} matches {' and '.join(chosen)}" if chosen
                      else f"no runs recorded in {store.target}")
                return 0
            rows = [("id", "started", "model", "git", "n", "accuracy", "gate")]
            for r in runs:
                gate = "-" if r["gate_passed"] is None else ("pass" if r["gate_passed"] else "FAIL")
                rows.append((r["id"], _when(r["started"]), r["model"] or "-", (r["git_commit"] or "-")[:10], r["n"],
                             _fmt(r["accuracy"]), gate))
            print("\n".join(_table(rows, rules=(1,), left=4)))
        elif args.command == "show":
            report = _run(store, args.run)
            if args.json:
                print(json.dumps(json_safe(summary_of(report)), indent=2, allow_nan=False))
            else:
                print("\n".join(show_lines(report, store.run_info(report["run"]["id"]))))
        elif args.command == "compare":
            result = compare_reports(_run(store, args.a), _run(store, args.b))
            nothing_compared(result)
            if args.json:
                print(json.dumps(json_safe(result), indent=2, allow_nan=False))
            else:
                print("\n".join(compare_lines(result)))
        elif args.command in ("agreement", "leaderboard", "correlate", "seeds"):
            return _standings(store, args, json_safe)
        elif args.command == "export":
            report = _run(store, args.run)
            if args.output:
                try:
                    write_json(report, args.output)
                except OSError as exc:
                    raise CliError(f"could not write {args.output}: {exc}") from exc
                print(f"run {report['run']['id']} written to {args.output}", file=sys.stderr)
            else:
                print(json.dumps(json_safe(report), indent=2, allow_nan=False, ensure_ascii=False))
    return 0


def _leaderboard_files(result: dict, html_path: str | None, markdown_path: str | None) -> None:
    from .report.leaderboard import leaderboard_html, leaderboard_markdown
    from .storage.outputs import write_text

    for path, render in ((html_path, leaderboard_html), (markdown_path, leaderboard_markdown)):
        if path:
            try:
                write_text(path, render(result))
            except OSError as exc:
                raise CliError(f"could not write {path}: {exc}") from exc
            print(f"written to {path}", file=sys.stderr)


def _standings(store, args, json_safe) -> int:
    from . import standings

    if args.reps < 1 or getattr(args, "min_models", 2) < 2:
        raise CliError("--reps must be at least 1 and --min-models at least 2")
    if args.command == "seeds":
        runs, tasks = standings.seed_runs(store, args.model)
        if not runs:
            print(f"no complete run in {store.target} matches the models asked for")
            return 0
        result = standings.seeds(runs, tasks, reps=args.reps, seed=args.seed)
        print(json.dumps(json_safe(result), indent=2, allow_nan=False) if args.json
              else "\n".join(standings.seed_lines(result)))
        return 0
    table = standings.outcome_table(store, by=args.by, models=args.model, benchmarks=args.suite)
    if not table:
        print(f"no complete run in {store.target} matches the models and suites asked for")
        return 0
    if args.command == "agreement":
        result = standings.agreement(table, min_models=args.min_models, reps=args.reps, seed=args.seed)
        lines = standings.agreement_lines
    elif args.command == "correlate":
        result = standings.correlations(table, args.model)
        lines = standings.correlation_lines
    else:
        result = standings.leaderboard(table, reps=args.reps, seed=args.seed)
        lines = standings.leaderboard_lines
        _leaderboard_files(result, args.html, args.markdown)
    print(json.dumps(json_safe(result), indent=2, allow_nan=False) if args.json else "\n".join(lines(result)))
    return 0


__all__ = ["main", "build_parser", "compare_reports", "redact"]
