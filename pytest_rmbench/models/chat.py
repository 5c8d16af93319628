"""(prompt, answer) -> token ids through the tokenizer's chat template, with truncation.

Rules (documented in the README):
- With a chat template, the template's text is tokenized WITHOUT adding special tokens:
  the template already holds them (BOS and the like), so none appears twice.
- Without a chat template, the fallback text is "User: ...\\n\\nAssistant: ..." (one
  block per message, roles capitalised) tokenized WITH the tokenizer's special tokens
  (e.g. BERT's [CLS] ... [SEP]).
- Messages go to the template as they are; only if it rejects them are consecutive
  messages of one role merged (with a warning) and tried again.
- Too long: drop the oldest context turns, then cut the prompt from the left; if the
  answer alone does not fit, cut its end.
"""

from __future__ import annotations

import warnings
from typing import Any

from .. import RmbenchWarning  # the package's one warning category (re-exported for adapters)

FORMAT_VERSION = 1  # bump when formatting or truncation changes: it keys the score cache
FALLBACK_ROLE_NAMES = {"system": "System", "user": "User", "assistant": "Assistant"}


def merge_consecutive(messages: list[dict]) -> list[dict]:
    merged: list[dict] = []
    for m in messages:
        if merged and merged[-1]["role"] == m["role"]:
            merged[-1] = {"role": m["role"], "content": merged[-1]["content"] + "\n\n" + m["content"]}
        else:
            merged.append(dict(m))
    return merged


def fallback_text(messages: list[dict]) -> str:
    return "\n\n".join(f"{FALLBACK_ROLE_NAMES[m['role']]}: {m['content']}" for m in messages)


class ChatEncoder:
    def __init__(self, tokenizer: Any, max_length: int | None):
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.has_template = bool(getattr(tokenizer, "chat_template", None))
        self.merged_warning_given = False

    def render(self, messages: list[dict]) -> str:
        if not self.has_template:
            return fallback_text(messages)
        try:
            return self.tokenizer.apply_chat_template(messages, tokenize=False)
        except Exception:
            merged = merge_consecutive(messages)
            if merged == messages:
                raise
            if not self.merged_warning_given:
                self.merged_warning_given = True
                warnings.warn(
                    RmbenchWarning(
                        "the chat template rejected consecutive messages of one role; "
                        "they were merged (joined by a blank line) for this model"
                    )
                )
            return self.tokenizer.apply_chat_template(merged, tokenize=False)

    def encode(self, messages: list[dict]) -> list[int]:
        text = self.render(messages)
        return list(self.tokenizer(text, add_special_tokens=not self.has_template)["input_ids"])

    def encode_many(self, conversations: list[list[dict]]) -> list[tuple[list[int], bool]]:
        """encode_fitted for many conversations, tokenized in one call (the fast tokenizer
        works through a list in parallel); only those over the limit take the slow path."""
        texts = [self.render(m) for m in conversations]
        all_ids = self.tokenizer(texts, add_special_tokens=not self.has_template)["input_ids"] if texts else []
        out = []
        for messages, ids in zip(conversations, all_ids):
            if self.max_length is not None and len(ids) > self.max_length:
                out.append(self.encode_fitted(messages, ids))  # the full text's ids are known: not encoded again
            else:
                out.append((list(ids), False))
        return out

    def encode_fitted(self, messages: list[dict], ids: list[int] | None = None) -> tuple[list[int], bool]:
        """Token ids of the conversation, truncated to max_length; (ids, truncated). `ids`: those
        of the whole conversation when the caller has them (encode_many), the same as encode's."""
        ids = self.encode(messages) if ids is None else list(ids)
        limit = self.max_length
        if limit is None or len(ids) <= limit:
            return ids, False
        prompt, answer = [dict(m) for m in messages[:-1]], dict(messages[-1])
        system = prompt[:1] if len(prompt) > 1 and prompt[0]["role"] == "system" else []
        context, last = prompt[len(system) : -1], prompt[-1]

        def current() -> list[dict]:
            return system + context + [last, answer]

        # 1. drop the oldest context turns (never the system message or the final user turn)
        while context and len(ids) > limit:
            context.pop(0)
            while context and context[0]["role"] == "assistant":
                context.pop(0)
            ids = self.encode(current())
        # 2. cut the prompt from the left: system text first, then the final user turn
        for message in system + [last]:
            ids = self._shrink(message, current, ids, from_left=True)
        # 3. the answer alone is too long: cut its end
        ids = self._shrink(answer, current, ids, from_left=False)
        return ids[:limit], True  # only the template's own text is left over the limit

    def _shrink(self, message: dict, current, ids: list[int], from_left: bool) -> list[int]:
        while len(ids) > self.max_length and message["content"]:
            excess = len(ids) - self.max_length
            content_ids = self.tokenizer(message["content"], add_special_tokens=False)["input_ids"]
            if excess >= len(content_ids):
                message["content"] = ""
            else:
                kept = content_ids[excess:] if from_left else content_ids[: len(content_ids) - excess]
                text = self.tokenizer.decode(kept)
                # decode/encode may not round-trip exactly: always make progress
                if len(text) >= len(message["content"]):
                    text = message["content"][1:] if from_left else message["content"][:-1]
                message["content"] = text
            ids = self.encode(current())
        return ids
