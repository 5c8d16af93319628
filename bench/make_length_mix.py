"""Writes bench/data/length-mix.rmbench.jsonl: a SYNTHETIC benchmark with real-like lengths.

    python bench/make_length_mix.py [--pairs 930] [--seed 17] [--out bench/data/length-mix.rmbench.jsonl]

The texts are words of bench/throughput.py's vocabulary (about one MiniLM token per word, plus
some punctuation and code-like lines), so scores mean nothing; only the LENGTH MIX is modelled
on held-out preference data (RM-Bench chat / code / safety and HH-RLHF, ~930 pairs), which is
what batching speed depends on:

- prompts shared in groups: RM-Bench-like groups of 1 to 3 pairs over one prompt (style
  variants of one chosen / rejected answer pair, lengths spread 0.6x to 1.6x around the group's),
  HH-like single pairs with multi-turn context; few exact duplicates (some stock refusals);
- answers from a few tokens to past 512 (a log-normal body around 120 tokens, 12% of very short
  answers of 2 to 12 tokens such as refusals, and a heavy tail: about 10% of the sequences exceed
  MiniLM's 512-token limit and are truncated);
- prompts from a few tokens to several hundred (log-normal, median about 30).

Deterministic: the same seed writes the same bytes.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import throughput  # noqa: E402  (the vocabulary)

DEFAULT_OUT = BENCH_DIR / "data" / "length-mix.rmbench.jsonl"
SUBSETS = (("chat", 0.35), ("code", 0.2), ("safety", 0.25), ("hh", 0.2))
REFUSALS = ("I cannot help with that.", "Sorry, no.", "I won't do that.", "No.", "I am not able to answer this request.")


def words(rng: random.Random, n: int, code: bool = False) -> str:
    out = []
    for i in range(max(1, n)):
        w = rng.choice(throughput.VOCABULARY)
        if code and rng.random() < 0.15:
            w = rng.choice(("(", ")", "=", "x", "def", "return", "+", "[", "]", ":")) + w
        out.append(w)
        if rng.random() < 0.08:
            out.append(rng.choice((".", ",", "\n", ";")))
    return " ".join(out)


def answer_tokens(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.12:
        return rng.randint(2, 12)  # one-line answers and refusals
    if r < 0.22:
        return int(rng.uniform(450, 1400))  # the heavy tail: many of these pass 512 with the prompt
    return max(3, int(rng.lognormvariate(math.log(120), 0.8)))


def prompt_tokens(rng: random.Random) -> int:
    return max(3, min(900, int(rng.lognormvariate(math.log(30), 1.0))))


def make(pairs: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    names, weights = zip(*SUBSETS)
    rows: list[dict] = []
    group = 0
    while len(rows) < pairs:
        subset = rng.choices(names, weights)[0]
        code = subset == "code"
        if subset == "hh":  # single pair, multi-turn context
            turns = rng.randint(0, 3)
            context = []
            for _ in range(turns):
                context += [{"role": "user", "content": words(rng, prompt_tokens(rng) // 2)},
                            {"role": "assistant", "content": words(rng, answer_tokens(rng) // 2)}]
            prompt = words(rng, prompt_tokens(rng))
            combos = [(words(rng, answer_tokens(rng)), words(rng, answer_tokens(rng)))]
        else:  # RM-Bench-like: a few chosen and rejected answers over one prompt, paired
            context = []
            prompt = words(rng, prompt_tokens(rng), code)
            base = answer_tokens(rng)
            n = rng.choice((1, 2, 3, 3))  # style variants of one answer pair (RM-Bench: concise, detailed, markdown)
            spread = lambda: max(2, int(base * rng.uniform(0.6, 1.6)))  # noqa: E731
            chosen = [words(rng, spread(), code) for _ in range(n)]
            if subset == "safety" and rng.random() < 0.3:
                rejected = [rng.choice(REFUSALS) for _ in range(n)]  # short vs long in one pair; a few repeat file-wide
            else:
                rejected = [words(rng, spread(), code) for _ in range(n)]
            combos = [(c, r) for c, r in zip(chosen, rejected) if c != r]
        for chosen_text, rejected_text in combos:
            if len(rows) >= pairs:
                break
            shown = context + [{"role": "user", "content": prompt}] if context else prompt  # HH: chat messages
            rows.append({"id": f"m{len(rows):04d}", "subset": subset, "prompt": shown, "chosen": chosen_text, "rejected": rejected_text})
        group += 1
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=930)
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    args = ap.parse_args(argv)
    rows = make(args.pairs, args.seed)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    print(f"wrote {len(rows)} pairs to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
