"""Cost per best_of_n item under pairwise models: forwards counted and time measured, same run.

    python bench/pairwise_cost.py [--items 24] [--sizes 4,8] [--repeats 3] [--threads 1] [--json FILE]

Ranking n answers with a pairwise model takes comparisons. Round robin asks all n(n-1)
ordered comparisons (PairRM's rank), a tournament 2(n-1) (both placements of each of the
n-1 matches, over ceil(log2 n) rounds). A model that reads both answers in one sequence (a
judge, a PairRM-style preference model) pays one forward per comparison; a general
preference model (--rm-kind gpm) embeds each answer once and compares embeddings, so it
pays n forwards whatever the rule.

The script builds tiny random-init models (tests/tinymodels.py: a Llama backbone of 2 layers,
hidden size 32, with a GPM head of d = 4 and a prompt head; the judge's LlamaForCausalLM of
the same size), writes `--items` best_of_n items per n of deterministic prompts and answers,
and for each model kind and rule scores every item through the engine (engine.score_requests,
the batching a run uses; a tournament's rounds are further passes, as the engine runs them).
Forwards are counted by the model (GpmModel.forwards; one per scored request for the judge),
times are the best of `--repeats` (model load excluded). Ratios are to the GPM under the same
rule at the same n, from the same run. Tiny models make the forward cheap, so the time ratios
understate what a real backbone shows; the forward counts are exact.

One function per model kind and rule sits in MEASURES: a kind that is not available here
returns None and its row says so. (The preference kind with PairRM's layout plugs in at
`measure_preference`.)
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # tinymodels: the tiny models the tests build

import tinymodels  # noqa: E402

from pytest_rmbench import engine  # noqa: E402
from pytest_rmbench.items import JudgeRequest  # noqa: E402
from pytest_rmbench.models.base import ModelSpec  # noqa: E402

PROMPTS = [line for line in tinymodels.CORPUS if line.endswith("?")] + [
    "Tell me one number between one and ten .", "Please write a short poem about a cat .",
    "Suggest a name for my new grey kitten .", "Explain why the sum of two and two equals four .",
]
WORDS = tinymodels.WORDS


@dataclass
class Item:
    prompt: str
    answers: list


@dataclass
class Measurement:
    kind: str
    rule: str
    n: int
    items: int
    requests_per_item: float  # ordered comparisons asked
    forwards_per_item: float  # backbone forwards (sequences run)
    ms_per_item: float  # best of the repeats


def make_items(n: int, count: int, seed: int = 0) -> list[Item]:
    """`count` items of n distinct answers each, 4 to 14 words long, deterministic."""
    rng = random.Random(f"{seed}-{n}")
    items = []
    for i in range(count):
        answers: list = []
        while len(answers) < n:
            answer = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 14)))
            if answer not in answers:
                answers.append(answer)
        items.append(Item(PROMPTS[i % len(PROMPTS)], answers))
    return items


# -- the request plans ---------------------------------------------------------------------------


def round_robin(item: Item) -> list[JudgeRequest]:
    a = item.answers
    return [JudgeRequest(item.prompt, a[i], a[j]) for i in range(len(a)) for j in range(len(a)) if i != j]


def score_round_robin(model, items: list[Item], limits) -> int:
    """Scores every item's n(n-1) comparisons in one pass; returns the requests asked."""
    requests = [r for item in items for r in round_robin(item)]
    results = engine.score_requests(model, requests, limits)
    assert all(r.error is None for r in results.values()), next(r.error for r in results.values() if r.error)
    return len(requests)


def score_tournament(model, items: list[Item], limits, seed: int = 0) -> int:
    """Single elimination, both placements per match, one engine pass per round over all
    items (as the engine's further passes do); the bracket is seeded. Returns the requests asked."""
    brackets = []
    for k, item in enumerate(items):
        order = list(range(len(item.answers)))
        random.Random(f"{seed}-{k}").shuffle(order)
        brackets.append(order)
    asked = 0
    while any(len(b) > 1 for b in brackets):
        matches = [(k, b[m], b[m + 1]) for k, b in enumerate(brackets) for m in range(0, len(b) - 1, 2)]
        shown = {}
        for k, i, j in matches:
            a = items[k].answers
            shown[(k, i, j)] = (JudgeRequest(items[k].prompt, a[i], a[j]), JudgeRequest(items[k].prompt, a[j], a[i]))
        requests = [r for pair in shown.values() for r in pair]
        results = engine.score_requests(model, requests, limits)
        assert all(r.error is None for r in results.values())
        asked += len(requests)
        winners: dict = {k: [] for k in range(len(items))}
        for (k, i, j), (first, second) in shown.items():
            margin = results[first].score - results[second].score
            winners[k].append(i if margin >= 0 else j)
        brackets = [winners[k] + ([b[-1]] if len(b) % 2 else []) if len(b) > 1 else b for k, b in enumerate(brackets)]
    return asked


PLANS: dict[str, Callable] = {"round robin": score_round_robin, "tournament": score_tournament}


# -- one function per model kind: (rule, n, items, folder) -> Measurement | None -----------------


def timed(load: Callable, plan: Callable, items: list[Item], count_forwards: Callable, repeats: int, kind: str,
          rule: str) -> Measurement:
    """Loads the model once, then scores the items `repeats` times from a cold start."""
    model = load()
    best, requests, forwards = float("inf"), 0, 0
    for _ in range(repeats):
        before = count_forwards(model, None)  # None: the model counts no forwards (one per request)
        start = time.perf_counter()
        requests = plan(model, items, engine.BatchLimits())
        best = min(best, time.perf_counter() - start)
        forwards = count_forwards(model, before) if before is not None else requests
    n = len(items[0].answers)
    return Measurement(kind, rule, n, len(items), requests / len(items), forwards / len(items), 1000 * best / len(items))


def measure_gpm(rule: str, items: list[Item], folders: dict, repeats: int) -> Measurement | None:
    from pytest_rmbench.models import gpm

    def load():
        return gpm.build(ModelSpec(str(folders["gpm"]), kind="gpm", device="cpu"))

    def count(model, before):
        if before is None:
            model.clear_cache()  # every repeat from a cold start: no embedding known yet
            return model.forwards
        return model.forwards - before

    return timed(load, PLANS[rule], items, count, repeats, "gpm", rule)


def measure_judge(rule: str, items: list[Item], folders: dict, repeats: int) -> Measurement | None:
    """A generative judge in logprob mode: one forward per ordered comparison (what a model that
    reads both answers in one sequence pays)."""
    from pytest_rmbench.models import judge

    def load():
        return judge.build(ModelSpec(str(folders["judge"]), kind="judge", device="cpu"))

    return timed(load, PLANS[rule], items, lambda model, before: None, repeats, "judge", rule)


def measure_preference(rule: str, items: list[Item], folders: dict, repeats: int) -> Measurement | None:
    """--rm-kind preference (PairRM's layout): one forward per ordered comparison, like the judge."""
    from pytest_rmbench.models import preference

    def load():
        return preference.build(ModelSpec(str(folders["preference"]), kind="preference", device="cpu"))

    return timed(load, PLANS[rule], items, lambda model, before: None, repeats, "preference", rule)


MEASURES: dict[str, Callable] = {"gpm": measure_gpm, "judge": measure_judge, "preference": measure_preference}


def build_models(root: Path) -> dict:
    return {
        "gpm": tinymodels.build_gpm_llama(root / "gpm", dim=4, prompt_head=True),
        "judge": tinymodels.build_judge_llama(root / "judge"),
        "preference": tinymodels.build_tiny_pairrm(root / "preference"),
    }


# -- the table -------------------------------------------------------------------------------------


def table(rows: list, skipped: list) -> str:
    gpm = {(m.rule, m.n): m for m in rows if m.kind == "gpm"}
    head = f"{'model':<11} {'rule':<12} {'n':>2} {'requests':>9} {'forwards':>9} {'ms/item':>8} {'fwd vs gpm':>11} {'time vs gpm':>12}"
    lines = [head, "-" * len(head)]
    for m in rows:
        ref = gpm.get((m.rule, m.n))
        fwd = f"{m.forwards_per_item / ref.forwards_per_item:.2f}x" if ref else "-"
        tim = f"{m.ms_per_item / ref.ms_per_item:.2f}x" if ref else "-"
        lines.append(f"{m.kind:<11} {m.rule:<12} {m.n:>2} {m.requests_per_item:>9.1f} {m.forwards_per_item:>9.1f} "
                     f"{m.ms_per_item:>8.2f} {fwd:>11} {tim:>12}")
    for kind, rule, n in skipped:
        lines.append(f"{kind:<11} {rule:<12} {n:>2} {'not measured: the kind is not available here':>55}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=24, help="best_of_n items per n (default 24)")
    parser.add_argument("--sizes", default="4,8", help="answers per item, comma-separated (default 4,8)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats; the best is kept (default 3)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--json", help="also write the measurements to this JSON file")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    sizes = [int(s) for s in args.sizes.split(",")]
    rows, skipped = [], []
    with tempfile.TemporaryDirectory() as tmp:
        folders = build_models(Path(tmp))
        for n in sizes:
            items = make_items(n, args.items)
            for kind, measure in MEASURES.items():
                for rule in PLANS:
                    found = measure(rule, items, folders, args.repeats)
                    (rows.append(found) if found is not None else skipped.append((kind, rule, n)))
    print(f"best_of_n cost per item: {args.items} items per n, best of {args.repeats}, {args.threads} thread(s), "
          f"torch {torch.__version__}")
    print(table(rows, skipped))
    if args.json:
        Path(args.json).write_text(json.dumps({"measurements": [asdict(m) for m in rows],
                                               "not_measured": [list(s) for s in skipped]}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
