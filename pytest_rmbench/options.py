"""Command-line options and ini settings of pytest-rmbench, and reading them back.

Every option has an ini twin; the command line wins over ini.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass

import pytest

from .collect import DEFAULT_PATTERNS
from .report.gate import INCONCLUSIVE, RULES
from .models.base import ModelSpec
from .text import strip_credentials
from .models.kinds import KIND_NAMES, PREFIXES

# kind options as they reach adapters in ModelSpec.options (None: not set)
KIND_OPTIONS = (
    "rm_ref_model", "rm_beta", "rm_ref_free", "rm_judge_template", "rm_judge_mode", "rm_step_separator",
    "rm_step_token", "rm_step_threshold", "rm_head", "rm_head_weights", "rm_api_key_env", "rm_concurrency",
    "rm_timeout",
    "rm_grader_mode", "rm_rubric", "rm_length_penalty", "rm_grader_temperature", "rm_grader_top_p",
    "rm_grader_max_tokens", "rm_grader_repetition_penalty", "rm_grader_retries", "rm_grader_samples",
    "rm_attn_implementation",
)


def add_options(parser) -> None:
    group = parser.getgroup("rmbench", "reward-model benchmarks (pytest-rmbench)")

    def option(flag, ini, help, ini_type="string", default=None, **kwargs):
        group.addoption(flag, dest=ini, default=None, help=f"{help} (ini: {ini})", **kwargs)
        parser.addini(ini, help=help, type=ini_type, default=default)

    group.addoption("--rm-model", dest="rm_model", action="append", default=[], metavar="[NAME=]PATH",
                    help="reward model: a transformers folder or Hub id, http(s)://host:port[/v1] (a vLLM-compatible server), "
                         "scores:FILE.jsonl, or builtin:length / builtin:random; repeat it to compare models in one run, "
                         "each optionally named (cand=./ckpt-900) (ini rm_model, one per line)")
    parser.addini("rm_model", help="reward model(s), one [NAME=]PATH per line", type="linelist", default=[])
    group.addoption("--rm-compare", dest="rm_compare", action="append", default=[], metavar="CAND=BASE",
                    help="several models: gate on CAND being not worse than BASE on the same items (non-inferiority, "
                         "--rm-max-regression margin; repeatable; ini rm_compare, one per line)")
    parser.addini("rm_compare", help="non-inferiority checks between models of the run, one CAND=BASE per line",
                  type="linelist", default=[])
    group.addoption("--rm-keep-models", dest="rm_keep_models", action="store_true", default=None,
                    help="several models: keep each model loaded once used (default: a worker frees a model before it "
                         "loads the next, so it holds one at a time)")
    parser.addini("rm_keep_models", help="keep every model loaded once used", type="bool", default=False)
    option("--rm-kind", "rm_kind", f"model kind: {', '.join(KIND_NAMES)}, or a kind a plugin adds (default auto: "
           "detected where the model makes it certain); with several models, NAME=KIND[,NAME=KIND...] sets some "
           "models' kinds (the others: auto)", metavar="KIND", default="auto")
    option("--rm-dtype", "rm_dtype", "float32, bfloat16 or float16 (default: the model config's dtype, else float32)", metavar="DTYPE")
    option("--rm-device", "rm_device", "torch device (default: cuda if available, else cpu)", metavar="DEVICE")
    option("--rm-max-length", "rm_max_length", "token limit per sequence (default: the smaller of the tokenizer's and the model's)", metavar="N")
    option("--rm-seed", "rm_seed", "seed for builtin:random and anything random (default 0)", metavar="N", default="0")
    option("--rm-batch-size", "rm_batch_size", "at most this many sequences per forward pass (default 64)", metavar="N", default="64")
    option("--rm-max-batch-tokens", "rm_max_batch_tokens", "at most this many padded tokens per forward pass (default 16384; "
           "4096 for float32 on the CPU)", metavar="N")
    option("--rm-chunk-size", "rm_chunk_size", "consecutive items scored together (default 128)", metavar="N", default="128")
    option("--rm-min-batch-fill", "rm_min_batch_fill", "a sequence shorter than this fraction of its batch's longest starts a new batch "
           "(default 0.8; 0 turns it off)", metavar="F", default="0.8")
    option("--rm-gpus-per-worker", "rm_gpus_per_worker", "GPUs per xdist worker, for a model too large for one (default 1)", metavar="K", default="1")
    option("--rm-ray", "rm_ray", "score on a Ray cluster, this process the controller: ADDRESS (e.g. ray://head:10001), auto "
           "(the cluster `ray start` or RAY_ADDRESS names) or local (a private one-machine cluster); needs the [ray] extra",
           metavar="ADDRESS")
    option("--rm-ray-actors", "rm_ray_actors", "--rm-ray: actors, each loading the model once (default: one per "
           "--rm-gpus-per-worker GPUs of the cluster; one CPU actor without GPUs)", metavar="N")
    option("--rm-cache-dir", "rm_cache_dir", "folder of the persistent score cache (default: .rmbench at the rootdir)", metavar="DIR")
    group.addoption("--rm-no-cache", dest="rm_no_cache", action="store_true", default=None,
                    help="neither read nor write the score cache")
    parser.addini("rm_no_cache", help="neither read nor write the score cache", type="bool", default=False)
    kinds = parser.getgroup("rmbench-kinds", "reward-model kinds (pytest-rmbench): options of one kind each")

    def kind_option(flag, ini, help, default=None, **kwargs):
        kinds.addoption(flag, dest=ini, default=None, help=f"{help} (ini: {ini})", **kwargs)
        parser.addini(ini, help=help, default=default)

    kind_option("--rm-ref-model", "rm_ref_model", "dpo: the reference model (default: reference-free, see --rm-ref-free)", metavar="PATH")
    kind_option("--rm-beta", "rm_beta", "dpo: beta of the implicit reward (default 0.1)", metavar="BETA", default="0.1")
    kind_option("--rm-ref-free", "rm_ref_free", "dpo without a reference: sum, mean or norm of the answer's token log-probs (default sum)",
                metavar="MODE", default="sum")
    kind_option("--rm-judge-template", "rm_judge_template", "judge: a file holding the pairwise prompt template", metavar="PATH")
    kind_option("--rm-judge-mode", "rm_judge_mode", "judge: logprob (compare the two labels' next-token log-probs, default) or generate",
                metavar="MODE", default="logprob")
    kind_option("--rm-step-separator", "rm_step_separator", "prm: the text after each step, where its score is read (default a blank line; \\n, \\t and \\\\ are decoded)", metavar="TEXT", default="\n\n")
    kind_option("--rm-step-token", "rm_step_token", "prm with a causal LM: the token predicted after a correct step, GOOD or GOOD,BAD (e.g. '+,-')", metavar="TOKEN")
    kind_option("--rm-step-threshold", "rm_step_threshold", "prm: a step under this probability is wrong (default 0.5)", metavar="P", default="0.5")
    kind_option("--rm-head", "rm_head", "classifier with several outputs: the output that is the reward (default 0)", metavar="N")
    kind_option("--rm-attn-implementation", "rm_attn_implementation", "transformers kinds: the attention kernel, sdpa or eager "
                "(default sdpa where the model has it: faster than eager on the CPU in float32 and bfloat16)", metavar="NAME")
    kind_option("--rm-head-weights", "rm_head_weights", "classifier with several outputs: reward = weighted sum, e.g. 0.5,0,1", metavar="W,W,...")
    kind_option("--rm-api-key-env", "rm_api_key_env", "http: the environment variable holding the API key (never printed or stored)", metavar="NAME")
    kind_option("--rm-concurrency", "rm_concurrency", "http: requests in flight, across all xdist workers together (default 8)", metavar="N", default="8")
    kind_option("--rm-timeout", "rm_timeout", "http: seconds per request before it is retried (default 60)", metavar="S", default="60")
    kind_option("--rm-pairwise-rule", "rm_pairwise_rule", "best_of_n under a pairwise model (judge, preference): round_robin "
                "(all n(n-1) ordered comparisons, default) or tournament (single elimination, 2(n-1))", metavar="RULE",
                default="round_robin")
    kind_option("--rm-grader-mode", "rm_grader_mode", "grader: absolute (Prometheus 2, [RESULT] 1-5 per answer, default), "
                "relative ([RESULT] A/B, both orders), checklist (WildBench A++..B++; needs --rm-length-penalty) or vl-rewardbench "
                "(VL-RewardBench's judge protocol: k sampled verdicts, majority)", metavar="MODE")
    kind_option("--rm-rubric", "rm_rubric", "grader: a file holding the score rubric for items without a 'rubric' field", metavar="PATH")
    kind_option("--rm-length-penalty", "rm_length_penalty", "grader checklist mode: K, a slight win becomes a tie when the "
                "winner is more than K characters longer (-1: off; required, no official default)", metavar="K")
    kind_option("--rm-grader-temperature", "rm_grader_temperature", "grader: sampling temperature (default 1.0, vl-rewardbench 0.2; 0: greedy)", metavar="T")
    kind_option("--rm-grader-top-p", "rm_grader_top_p", "grader: nucleus sampling top_p (default 0.9, vl-rewardbench 0.2)", metavar="P")
    kind_option("--rm-grader-max-tokens", "rm_grader_max_tokens", "grader: tokens per verdict (default 1024, vl-rewardbench 2048)", metavar="N")
    kind_option("--rm-grader-repetition-penalty", "rm_grader_repetition_penalty", "grader: repetition penalty (default 1.03, vl-rewardbench 1.0)", metavar="R")
    kind_option("--rm-grader-retries", "rm_grader_retries", "grader: new generations after an unreadable verdict (default 10)", metavar="N")
    kind_option("--rm-grader-samples", "rm_grader_samples", "grader vl-rewardbench mode: sampled verdicts per item, each in a "
                "random answer order; the majority of all of them decides (default 5)", metavar="K")
    kind_option("--rm-save-scores", "rm_save_scores", "write every score of this run as JSONL {prompt, answer, score} or {prompt, steps, scores} (replay with scores:PATH)", metavar="PATH")
    suites = parser.getgroup("rmbench-suites", "published benchmarks (pytest-rmbench)")
    from .suites import SUITES

    suites.addoption("--rm-bench", dest="rm_bench", action="append", default=[], metavar="NAME",
                     help=f"run a published benchmark: {', '.join(SUITES.builtin_names())}, or a suite a plugin adds "
                          "(repeatable; ini rm_bench, one per line)")
    parser.addini("rm_bench", help="published benchmarks to run, one name per line", type="linelist", default=[])
    suites.addoption("--rm-dataset", dest="rm_dataset", action="append", default=[], metavar="NAME_OR_PATH",
                     help="run any preference dataset: a Hugging Face id or a local file/folder (repeatable; ini rm_dataset)")
    parser.addini("rm_dataset", help="preference datasets to run, one per line", type="linelist", default=[])

    def suite_option(flag, ini, help, default=None, **kwargs):
        suites.addoption(flag, dest=ini, default=None, help=f"{help} (ini: {ini})", **kwargs)
        parser.addini(ini, help=help, default=default)

    suite_option("--rm-columns", "rm_columns", "--rm-dataset's columns: prompt=COL,chosen=COL,rejected=COL[,subset=COL][,id=COL]",
                 metavar="MAPPING")
    suite_option("--rm-dataset-split", "rm_dataset_split", "--rm-dataset's split (default: every split)", metavar="SPLIT")
    suite_option("--rm-dataset-config", "rm_dataset_config", "--rm-dataset's configuration (subset) name", metavar="NAME")
    suite_option("--rm-data-dir", "rm_data_dir", "read the suites' files from this folder instead of the Hub, under the "
                 "file names the benchmarks' own repositories use", metavar="DIR")
    suite_option("--rm-revision", "rm_revision", "dataset revision (a commit, tag or branch) to load from the Hub", metavar="REV")
    suite_option("--rm-languages", "rm_languages", "m-rewardbench: the languages to run, e.g. deu_Latn,zho_Hans (default all 23)",
                 metavar="CODES")
    suites.addoption("--rm-suite-option", dest="rm_suite_options", action="append", default=[], metavar="NAME=VALUE",
                     help="an option of a suite, e.g. sets=math,gpqa for ppe-bestofk (repeatable; ini rm_suite_options, one per line)")
    parser.addini("rm_suite_options", help="suite options, one NAME=VALUE per line", type="linelist", default=[])
    suites.addoption("--rm-prior-sets", dest="rm_prior_sets", action="store_true", default=None,
                     help="rewardbench: add the Prior Sets section (allenai/preference-test-sets) as older leaderboards did")
    parser.addini("rm_prior_sets", help="rewardbench: add the Prior Sets section", type="bool", default=False)
    option("--rm-report", "rm_report", "write the JSON report to this path", metavar="PATH")
    group.addoption("--rm-gate-rule", dest="rm_gate_rule", choices=RULES, default=None,
                    help="point: accuracy >= threshold (default); wilson: the 95%% interval must clear it (ini rm_gate_rule)")
    parser.addini("rm_gate_rule", help="point or wilson", default="point")
    group.addoption("--rm-inconclusive", dest="rm_inconclusive", choices=INCONCLUSIVE, default=None,
                    help="what an inconclusive decision does to the exit status: pass (default, with a warning) or fail")
    parser.addini("rm_inconclusive", help="pass or fail", default="pass")
    option("--rm-baseline", "rm_baseline", "compare with a baseline: latest, a run id, a model name or a report .json", metavar="REF")
    option("--rm-max-regression", "rm_max_regression", "non-inferiority margin against the baseline (default 0.01)", metavar="M", default="0.01")
    option("--rm-store", "rm_store", "run history: a SQLite path or a postgresql:// URL (default .rmbench/runs.sqlite)", metavar="PATH_OR_URL")
    group.addoption("--rm-no-store", dest="rm_no_store", action="store_true", default=None, help="do not record this run in the run history")
    parser.addini("rm_no_store", help="do not record runs in the run history", type="bool", default=False)
    option("--rm-sample", "rm_sample", "the quick gate: run a stratified sample of about N benchmark items (at least 3 per "
           "subset; the same items for every model and seed) and gate on intervals for the full suite", metavar="N")
    option("--rm-sample-seed", "rm_sample_seed", "which sample --rm-sample draws (default 0)", metavar="N", default="0")
    group.addoption("--rm-rerun-regressions", dest="rm_rerun_regressions", action="store_true", default=False,
                    help="run only the items that regressed in the latest recorded run")
    option("--rm-markdown", "rm_markdown", "write a Markdown summary here (default: $GITHUB_STEP_SUMMARY when set)", metavar="PATH")
    option("--rm-html", "rm_html", "write a self-contained HTML report here", metavar="PATH")
    group.addoption("--rm-min-accuracy", dest="rm_min_accuracy", action="append", default=[], metavar="NAME=VALUE",
                    help="gate: minimum accuracy of overall, a section or a subset (repeatable; ini rm_min_accuracy, one per line)")
    parser.addini("rm_min_accuracy", help="gate thresholds, one NAME=VALUE per line", type="linelist", default=[])
    group.addoption("--rm-section", dest="rm_sections", action="append", default=[], metavar="NAME=SUBSETS",
                    help="a section: NAME=subset,subset (weights by item count) or NAME=subset:w,subset:w (repeatable; ini rm_sections)")
    parser.addini("rm_sections", help="sections, one NAME=SUBSETS per line", type="linelist", default=[])
    option("--rm-null-answer", "rm_null_answer", "null-model check: pair and judged items also compare the chosen answer with "
           "this constant answer, in both orders: TEXT, a FILE holding it, or 'builtin' (a fixed non-answer)", metavar="TEXT|FILE")
    option("--rm-max-null-win-rate", "rm_max_null_win_rate", "gate: the null answer may win at most this share of its "
           "comparisons (needs --rm-null-answer)", metavar="R")
    group.addoption("--rm-trust-remote-code", dest="rm_trust_remote_code", action="store_true", default=None,
                    help="allow a model to run code from its repository (off by default)")
    parser.addini("rm_trust_remote_code", help="allow a model to run code from its repository", type="bool", default=False)
    group.addoption("--rm-allow-pickle", dest="rm_allow_pickle", action="store_true", default=None,
                    help="allow pickle (.bin) weights, loaded with weights_only=True (off by default: safetensors only)")
    parser.addini("rm_allow_pickle", help="allow pickle (.bin) weights", type="bool", default=False)
    parser.addini("rm_file_patterns", help="file name patterns of benchmark files", type="args", default=list(DEFAULT_PATTERNS))


def setting(config, name):
    """The command line wins over ini."""
    value = getattr(config.option, name, None)
    return config.getini(name) if value in (None, []) else value


def flag(name: str) -> str:
    """An option's command-line spelling, for messages: rm_max_regression -> --rm-max-regression."""
    return "--" + name.replace("_", "-")


# name -> (low, high, integer, open_low): every numeric option and its range, in one place
NUMBERS = {
    "rm_max_regression": (0.0, 1.0, False, False),
    "rm_beta": (0.0, math.inf, False, True),
    "rm_timeout": (0.0, math.inf, False, True),
    "rm_concurrency": (1, math.inf, True, False),
    "rm_head": (0, math.inf, True, False),
    "rm_step_threshold": (0.0, 1.0, False, False),
    "rm_min_batch_fill": (0.0, 1.0, False, False),
    "rm_batch_size": (1, math.inf, True, False),
    "rm_max_batch_tokens": (1, math.inf, True, False),
    "rm_chunk_size": (1, math.inf, True, False),
    "rm_gpus_per_worker": (1, math.inf, True, False),
    "rm_ray_actors": (1, math.inf, True, False),
    "rm_max_length": (1, math.inf, True, False),
    "rm_seed": (0, math.inf, True, False),
    "rm_sample": (1, math.inf, True, False),
    "rm_sample_seed": (0, math.inf, True, False),
    "rm_max_null_win_rate": (0.0, 1.0, False, False),
    "rm_length_penalty": (-1, math.inf, True, False),
    "rm_grader_temperature": (0.0, math.inf, False, False),
    "rm_grader_top_p": (0.0, 1.0, False, True),
    "rm_grader_max_tokens": (1, math.inf, True, False),
    "rm_grader_repetition_penalty": (0.0, math.inf, False, True),
    "rm_grader_retries": (0, math.inf, True, False),
    "rm_grader_samples": (1, math.inf, True, False),
}
GRADER_MODES = ("absolute", "relative", "checklist", "vl-rewardbench")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def number(config, name: str):
    """A numeric option, checked against its range in NUMBERS (exit 4 naming the flag); None when unset."""
    low, high, integer, open_low = NUMBERS[name]
    raw = setting(config, name)
    if raw in (None, ""):
        return None
    try:
        value = int(raw) if integer else float(raw)
    except (TypeError, ValueError):
        raise pytest.UsageError(f"{flag(name)}: expected {'an integer' if integer else 'a number'}, got {raw!r}") from None
    if not math.isfinite(value) or value < low or value > high or (open_low and value == low):
        bound = f"greater than {low:g}" if open_low and high == math.inf else (
            f"at least {low:g}" if high == math.inf else f"between {low:g} and {high:g}")
        raise pytest.UsageError(f"{flag(name)}: must be {bound}, got {raw}")
    return value


def _check_kind_options(config) -> None:
    """Names that must be names, and a --rm-kind that fits the model's prefix (exit 4)."""
    weights = setting(config, "rm_head_weights")
    if weights not in (None, ""):
        try:
            values = [float(w) for w in str(weights).split(",")]
        except ValueError:
            values = []
        if not values or not all(math.isfinite(v) for v in values):
            raise pytest.UsageError(f"--rm-head-weights: expected numbers separated by commas, got {weights!r}")
    env = setting(config, "rm_api_key_env")
    if env not in (None, "") and not ENV_NAME.match(str(env)):
        # the value may be the key itself: never repeat it
        raise pytest.UsageError(
            "--rm-api-key-env takes the NAME of an environment variable that holds the key (letters, digits and _, "
            "e.g. OPENAI_API_KEY), not the key itself; the value given is not a valid name and is not shown"
        )
    mode = str(setting(config, "rm_grader_mode") or "absolute").strip().lower()
    if mode not in GRADER_MODES:
        raise pytest.UsageError(f"--rm-grader-mode: choose one of {', '.join(GRADER_MODES)}, got {mode!r}")
    if mode == "checklist" and setting(config, "rm_length_penalty") in (None, ""):
        raise pytest.UsageError("--rm-grader-mode checklist needs --rm-length-penalty K (a slight win becomes a tie when the "
                                "winner is more than K characters longer; -1 turns it off): there is no official default")


def _pairwise_rule(config) -> str:
    """--rm-pairwise-rule, checked (exit 4 naming the flag)."""
    from .items.best_of_n import PAIRWISE_RULES

    rule = str(setting(config, "rm_pairwise_rule") or "round_robin").strip().lower().replace("-", "_")
    if rule not in PAIRWISE_RULES:
        raise pytest.UsageError(f"--rm-pairwise-rule: choose one of {', '.join(PAIRWISE_RULES)}, got {rule!r}")
    return rule


MODEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*\Z")  # fits a node id's [NAME], -k and a CAND=BASE pair


def model_entries(config) -> list[tuple[str | None, str]]:
    """(name or None, model) for each --rm-model (or rm_model line): NAME=PATH names a model
    when NAME is a name; a path, Hub id or URL is never split (its '=' sits after a '/' or ':')."""
    out = []
    for value in setting(config, "rm_model") or ():
        value = str(value).strip()
        name, sep, rest = value.partition("=")
        out.append((name, rest) if sep and rest and MODEL_NAME.match(name) else (None, value))
    return [(name, model) for name, model in out if model]


def model_kinds(config) -> dict:
    """--rm-kind: {None: KIND} for every model, or {NAME: KIND, ...} for the models it names
    (NAME=KIND[,NAME=KIND...]); a name that is no model of the run is exit 4."""
    value = str(setting(config, "rm_kind") or "auto").strip()
    if "=" not in value:
        return {None: value or "auto"}
    names = [name or default_model_name(model) for name, model in model_entries(config)]
    kinds = {}
    for part in value.split(","):
        name, _, kind = part.strip().partition("=")
        name, kind = name.strip(), kind.strip()
        if name not in names or not kind:
            raise pytest.UsageError(f"--rm-kind {value}: expected KIND, or NAME=KIND entries naming models of this run "
                                    f"({', '.join(names) or 'none'}), got {part.strip()!r}")
        kinds[name] = kind
    return kinds


def default_model_name(model: str) -> str:
    """A model's name when none is given: the last part of its path, file or URL (no credentials)."""
    for prefix in ("builtin:", "scores:"):
        if model.startswith(prefix):
            model = os.path.splitext(os.path.basename(model[len(prefix):]))[0] or model[len(prefix):]
    tail = [part for part in strip_credentials(model).split("?", 1)[0].rstrip("/").split("/") if part]
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", tail[-1] if tail else model).strip("-.")
    return name if name and MODEL_NAME.match(name) else f"model-{name}" if name else "model"


def _model_specs(config, numbers: dict) -> tuple:
    """((name, ModelSpec), ...) in the order given; two models with one name, or a --rm-kind that
    does not fit a model's prefix, is exit 4."""
    specs, seen = [], {}
    kinds = model_kinds(config)
    for name, model in model_entries(config):
        name = name or default_model_name(model)
        kind = kinds.get(name, kinds.get(None, "auto"))
        prefixes = tuple(p for p, k in PREFIXES if k == kind)  # kinds named by the model's prefix
        if prefixes and not model.startswith(prefixes):
            raise pytest.UsageError(f"--rm-kind {kind} needs --rm-model={prefixes[0]}..., got --rm-model={strip_credentials(model)}")
        if name in seen:
            raise pytest.UsageError(
                f"--rm-model: two models are named {name!r} ({strip_credentials(seen[name])} and {strip_credentials(model)}): "
                f"name them, e.g. --rm-model a={strip_credentials(seen[name])} --rm-model b={strip_credentials(model)}")
        seen[name] = model
        specs.append((name, _model_spec(model, kind, config, numbers)))
    return tuple(specs)


def _compare_pairs(config, names: list[str]) -> tuple:
    """--rm-compare CAND=BASE: both must be models of this run, and different (exit 4)."""
    pairs = []
    for line in setting(config, "rm_compare") or ():
        cand, sep, base = str(line).partition("=")
        cand, base = cand.strip(), base.strip()
        if not sep or not cand or not base:
            raise pytest.UsageError(f"--rm-compare: expected CAND=BASE (two model names), got {line!r}")
        unknown = [n for n in (cand, base) if n not in names]
        if unknown:
            raise pytest.UsageError(f"--rm-compare {line}: unknown model {unknown[0]!r}; models of this run: "
                                    f"{', '.join(names) or '(none)'} (name them with --rm-model NAME=PATH)")
        if cand == base:
            raise pytest.UsageError(f"--rm-compare {line}: a model compared with itself")
        pairs.append((cand, base))
    return tuple(dict.fromkeys(pairs))


def _model_spec(model: str, kind: str, config, numbers: dict) -> ModelSpec:
    return ModelSpec(
        model=model,
        kind=kind,
        dtype=setting(config, "rm_dtype") or None,
        device=setting(config, "rm_device") or None,
        max_length=numbers["rm_max_length"],
        seed=numbers["rm_seed"] or 0,
        trust_remote_code=bool(setting(config, "rm_trust_remote_code")),
        allow_pickle=bool(setting(config, "rm_allow_pickle")),
        gpus=numbers["rm_gpus_per_worker"],
        options={name[3:]: setting(config, name) for name in KIND_OPTIONS if setting(config, name) not in (None, "")},
    )


# --rm-null-answer builtin: a constant answer that answers nothing (a sound judge never prefers it)
BUILTIN_NULL_ANSWER = "Thank you for your question. I have read it carefully, and this is my complete answer."


def null_answer(config) -> str | None:
    """--rm-null-answer: None when unset; 'builtin' is BUILTIN_NULL_ANSWER; a value naming an
    existing file is that file's text (UTF-8); anything else is the text itself."""
    value = setting(config, "rm_null_answer")
    if value in (None, ""):
        return None
    value = str(value)
    if value == "builtin":
        return BUILTIN_NULL_ANSWER
    if os.path.isfile(value):
        try:
            with open(value, encoding="utf-8-sig") as f:
                value = f.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise pytest.UsageError(f"--rm-null-answer: cannot read {value}: {exc}") from None
    if not value.strip():
        raise pytest.UsageError("--rm-null-answer: the null answer is empty")
    return value


def _max_null_win_rate(config, numbers: dict) -> float | None:
    rate = numbers["rm_max_null_win_rate"]
    if rate is not None and setting(config, "rm_null_answer") in (None, ""):
        raise pytest.UsageError("--rm-max-null-win-rate needs --rm-null-answer TEXT|FILE|builtin (the answer to compare with)")
    return rate


def _ray_address(config) -> str | None:
    """--rm-ray, which spreads the items itself: with xdist's -n it is a usage error (exit 4)."""
    address = str(setting(config, "rm_ray") or "").strip() or None
    if address and getattr(config.option, "numprocesses", None):
        raise pytest.UsageError("--rm-ray and -n both spread the items over workers: pick one (--rm-ray for a Ray "
                                "cluster, -n for xdist workers on this machine)")
    return address


def _names(config, name: str) -> tuple:
    return tuple(dict.fromkeys(setting(config, name) or []))


@dataclass(frozen=True)
class Settings:
    """Every pytest-rmbench setting, read once at configure time (command line over ini),
    range-checked (a bad value is exit 4 naming the flag) and typed."""

    max_sequences: int
    max_tokens: int | None  # None: by device (engine.BatchLimits.for_device)
    min_fill: float
    chunk_size: int
    gpus_per_worker: int
    step_threshold: float
    file_patterns: tuple
    save_scores: str | None  # as given (messages show it so); RunSession makes it absolute
    report: str | None
    html: str | None
    markdown: str | None  # the option; GITHUB_STEP_SUMMARY is read when the summary is written
    store: str | None
    no_store: bool
    cache_dir: str | None
    no_cache: bool
    baseline: str | None
    max_regression: float
    gate_rule: str
    inconclusive: str
    rerun_regressions: bool
    bench: tuple
    datasets: tuple
    columns: str
    dataset_split: str | None
    dataset_config: str | None
    data_dir: str | None
    revision: str | None
    suite_option_lines: tuple
    languages: tuple
    prior_sets: bool
    threshold_lines: tuple  # ((source, [NAME=VALUE, ...]), ...): ini first, the command line last
    section_lines: tuple
    pairwise_rule: str = "round_robin"  # best_of_n under a pairwise model (--rm-pairwise-rule)
    null_answer: str | None = None  # --rm-null-answer, its text (a file read, 'builtin' resolved)
    max_null_win_rate: float | None = None  # --rm-max-null-win-rate
    sample: int | None = None  # --rm-sample: the quick gate's sample size (sample.py)
    sample_seed: int = 0
    ray: str | None = None  # --rm-ray: ADDRESS, auto or local
    ray_actors: int | None = None  # --rm-ray-actors
    models: tuple = ()  # ((name, ModelSpec), ...): every --rm-model, in the order given
    compare: tuple = ()  # ((candidate, base), ...): --rm-compare
    keep_models: bool = False  # --rm-keep-models

    @property
    def model(self) -> ModelSpec | None:
        """The first --rm-model's spec; None: no --rm-model, benchmark items are skipped."""
        return self.models[0][1] if self.models else None

    @property
    def several_models(self) -> bool:
        return len(self.models) > 1

    @classmethod
    def from_config(cls, config) -> "Settings":
        numbers = {name: number(config, name) for name in NUMBERS}
        _check_kind_options(config)
        option = config.option
        models = _model_specs(config, numbers)
        ray = _ray_address(config)
        if len(models) > 1 and ray:
            raise pytest.UsageError("--rm-ray runs one model: run each model in its own session, or use -n N for "
                                    "several models in one")
        return cls(
            models=models,
            compare=_compare_pairs(config, [name for name, _ in models]),
            keep_models=bool(setting(config, "rm_keep_models")),
            max_sequences=numbers["rm_batch_size"],
            max_tokens=numbers["rm_max_batch_tokens"],
            min_fill=numbers["rm_min_batch_fill"],
            chunk_size=numbers["rm_chunk_size"],
            gpus_per_worker=numbers["rm_gpus_per_worker"],
            step_threshold=numbers["rm_step_threshold"],
            file_patterns=tuple(config.getini("rm_file_patterns")),
            save_scores=setting(config, "rm_save_scores") or None,
            report=setting(config, "rm_report") or None,
            html=setting(config, "rm_html") or None,
            markdown=setting(config, "rm_markdown") or None,
            store=setting(config, "rm_store") or None,
            no_store=bool(setting(config, "rm_no_store")),
            cache_dir=setting(config, "rm_cache_dir") or None,
            no_cache=bool(setting(config, "rm_no_cache")),
            baseline=setting(config, "rm_baseline") or None,
            max_regression=numbers["rm_max_regression"] if numbers["rm_max_regression"] is not None else 0.01,
            gate_rule=setting(config, "rm_gate_rule") or "point",
            inconclusive=setting(config, "rm_inconclusive") or "pass",
            rerun_regressions=bool(option.rm_rerun_regressions),
            bench=_names(config, "rm_bench"),
            datasets=_names(config, "rm_dataset"),
            columns=setting(config, "rm_columns") or "",
            dataset_split=setting(config, "rm_dataset_split") or None,
            dataset_config=setting(config, "rm_dataset_config") or None,
            data_dir=setting(config, "rm_data_dir") or None,
            revision=setting(config, "rm_revision") or None,
            suite_option_lines=tuple(setting(config, "rm_suite_options") or ()),
            languages=tuple(c.strip() for c in (setting(config, "rm_languages") or "").split(",") if c.strip()),
            prior_sets=bool(setting(config, "rm_prior_sets")),
            threshold_lines=(("rm_min_accuracy", tuple(config.getini("rm_min_accuracy"))),
                             ("--rm-min-accuracy", tuple(option.rm_min_accuracy))),
            section_lines=(("rm_sections", tuple(config.getini("rm_sections"))),
                           ("--rm-section", tuple(option.rm_sections))),
            pairwise_rule=_pairwise_rule(config),
            null_answer=null_answer(config),
            max_null_win_rate=_max_null_win_rate(config, numbers),
            sample=numbers["rm_sample"],
            sample_seed=numbers["rm_sample_seed"] or 0,
            ray=ray,
            ray_actors=numbers["rm_ray_actors"],
        )

    def limits(self):
        from .engine import BatchLimits

        return BatchLimits(self.max_sequences, self.max_tokens, self.min_fill)

    def markdown_target(self) -> str | None:
        return self.markdown or os.environ.get("GITHUB_STEP_SUMMARY") or None
